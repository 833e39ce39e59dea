"""The time view (|dL/dx_t| per time step): its legend covers no curve, its y-range holds every run drawn."""

from __future__ import annotations

import math
from typing import Any

import pytest

from vgp_tui.dashboard import make_app
from vgp_tui.engine.session import Session
from vgp_tui.scenario import load_preset

# sentiment-lstm's measurements, in shape: a vanilla RNN's gradient falls 20 decades back in time, to
# exactly 0 for the middle 70 of 200 steps; the LSTM's stays near 1e-2 at every one of them.
RNN = tuple([1.3e-2 * 10 ** (-0.3 * t) for t in range(65)] + [0.0] * 70 + [6e-23 * 10 ** (0.3 * t) for t in range(65)])
LSTM = tuple(3e-3 * (1 + 4 * ((t * 7) % 11) / 10) for t in range(200))


def _is_braille(ch: str) -> bool:
    return "\u2800" < ch <= "\u28ff"


@pytest.mark.parametrize("size", [(120, 40), (200, 60)])
async def test_the_legend_sits_above_the_plot_and_the_range_holds_every_run(size: tuple[int, int]) -> None:
    """sentiment-lstm after l: plotext's legend sat in the plot's top left, over the LSTM's flat curve,
    and that curve lay on the frame's top edge, as if cut off there."""
    from vgp_tui.dashboard.time_view import TimeGradientPlot
    from vgp_tui.engine.events import RunStarted, StepMetrics

    app = make_app(Session(load_preset("rnn-clipping"), device="cpu"), train=False)
    async with app.run_test(size=size) as pilot:
        plot = app.query_one(TimeGradientPlot)
        limits: list[tuple[float, float]] = []
        real_ylim = plot.plt.ylim
        plot.plt.ylim = lambda low, high: (limits.append((low, high)), real_ylim(low, high))
        events: list[Any] = []
        for run, cell, grads in ((1, "rnn", RNN), (2, "lstm", LSTM)):
            events += [RunStarted(run=run, t=float(run), preset="sentiment-lstm", layers=("rnn", "head"),
                                  remedies={"cell": cell}, seed=0, time_view="dL/dx_t"),
                       StepMetrics(run=run, step=10, t=float(run), loss=0.7, grad_norm=(1.0, 1.0), total_norm=1.0,
                                   time_grad=grads)]
        app.feed.put(events)
        app.refresh_panels()
        await pilot.pause()
        plot.show(app.history)  # at once: the app redraws this panel at most once a second
        lines = [plot.render_line(y).text for y in range(plot.size.height)]
        top = next(i for i, line in enumerate(lines) if "┌" in line)
        bottom = next(i for i, line in enumerate(lines) if "└" in line)
        legend = " ".join(lines[:top])
        assert "━━ run 1 rnn" in legend and "━━ run 2 lstm" in legend and "·· run 1: exactly 0" in legend, lines
        inside = lines[top + 1 : bottom]
        assert not any("run" in line or "exactly" in line for line in inside), lines  # no legend over the curves
        # Every curve inside the range, the highest a row below the frame's top edge.
        low, high = limits[-1]
        assert low < math.log10(min(v for v in RNN if v > 0)) and high > math.log10(max(LSTM + RNN))
        assert not any(_is_braille(ch) for ch in inside[0]), lines
        ticked = [i for i, line in enumerate(inside) if "┤" in line]
        labels = [inside[i].split("┤")[0].strip() for i in ticked]
        assert labels[0] in ("1e0", "1e-1", "1e-2"), labels  # the LSTM's level is labelled, not only the RNN's
        assert ticked[0] == 1 and any(_is_braille(ch) for ch in "".join(inside[1 : ticked[1]])), lines  # the LSTM under it
        # Whole decades, evenly spaced, each on its own row: 11 decades apart they sat 1 and 2 rows apart.
        assert len(ticked) == 3 and ticked[1] - ticked[0] == ticked[2] - ticked[1], (ticked, lines)
        decades = [int(label[2:]) for label in labels]
        assert decades[0] - decades[1] == decades[1] - decades[2], labels
        await pilot.press("q")


async def test_a_lone_curve_without_zeros_has_no_legend() -> None:
    from vgp_tui.dashboard.time_view import TimeGradientPlot
    from vgp_tui.engine.events import RunStarted, StepMetrics

    app = make_app(Session(load_preset("rnn-clipping"), device="cpu"), train=False)
    async with app.run_test(size=(120, 40)) as pilot:
        plot = app.query_one(TimeGradientPlot)
        app.feed.put([RunStarted(run=1, t=0.0, preset="rnn-clipping", layers=("rnn", "head"), remedies={"cell": "lstm"},
                                 seed=0, time_view="dL/dx_t"),
                      StepMetrics(run=1, step=10, t=0.0, loss=0.7, grad_norm=(1.0, 1.0), total_norm=1.0, time_grad=LSTM)])
        app.refresh_panels()
        await pilot.pause()
        plot.show(app.history)
        lines = [plot.render_line(y).text for y in range(plot.size.height)]
        assert "┌" in lines[0] and not any("run" in line for line in lines), lines
        await pilot.press("q")
