"""The plot panels: built from a clean figure every time, cut into the same cells Rich would draw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.segment import Segment
from rich.text import Text
from textual_plotext.plot import Plot

from vgp_tui.dashboard import make_app
from vgp_tui.dashboard.loss_plot import LossPlot
from vgp_tui.dashboard.plot_panel import ansi_strips
from vgp_tui.engine.recording import read_recording
from vgp_tui.engine.session import Session
from vgp_tui.scenario import load_preset

FIXTURE = Path(__file__).parent / "fixtures" / "deep-sigmoid.jsonl"


def cells(segments: Any) -> list[tuple[str, Any]]:
    """(character, style) per cell, whatever the segmentation."""
    return [(ch, segment.style) for segment in segments for ch in segment.text]


def test_ansi_strips_match_richs_reading_of_plotext_output_cell_for_cell() -> None:
    plt = Plot()
    plt.plot([1, 2, 3, 4, 5], [100.0, 10.0, 1.0, 0.1, 0.01], color="green", label="run 2 (now)", marker="braille")
    plt.plot([1, 2, 3, 4, 5], [50.0, 40.0, 30.0, 20.0, 10.0], color="gray", label="run 1", marker="braille")
    plt.vline(3, "orange")
    plt.yscale("log")
    plt.title("loss")
    plt.plotsize(60, 16)
    plt.theme("dark")
    output = plt.build()
    strips = ansi_strips(output, 60)
    lines = Text.from_ansi(output).split("\n")
    assert len(strips) == len(lines) == 16
    for strip, line in zip(strips, lines):
        assert strip.cell_length == 60
        expected = cells(line.render(_console()))
        assert cells(strip) == expected


def test_ansi_strips_pad_and_crop_to_the_width() -> None:
    strips = ansi_strips("\x1b[38;5;2mab\x1b[0mc\n\x1b[1mabcdefgh\x1b[0m", 5)
    assert [strip.text for strip in strips] == ["abc  ", "abcde"]
    assert strips[0]._segments[0] == Segment("ab", strips[0]._segments[0].style)
    assert strips[0]._segments[0].style.color is not None and strips[0]._segments[1].style.color is None
    assert strips[1]._segments[0].style.bold


def _console() -> Any:
    from rich.console import Console

    return Console(width=200, color_system="truecolor", force_terminal=True)


async def test_plots_survive_resizes_and_repeated_renders() -> None:
    """plotext's build is not repeatable (log scale applied in place, legend appended): before every
    build started from a clean figure, resizing the terminal took the app down with IndexError."""
    app = make_app(Session(load_preset("deep-sigmoid"), device="cpu"), train=False)
    async with app.run_test(size=(120, 40)) as pilot:
        app.feed.put(read_recording(FIXTURE).events)
        await pilot.pause()
        app.refresh_panels()
        await pilot.pause()
        plot = app.query_one(LossPlot)
        before = [plot.render_line(y).text for y in range(plot.size.height)]
        assert any("run 3 (now)" in line for line in before)
        for size in ((100, 30), (130, 45), (90, 28), (120, 40)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            plot.refresh()  # a render with no new data: the same figure must come out again
            await pilot.pause()
            assert app.is_running and app._exception is None
        app.refresh_panels()
        await pilot.pause()
        for _ in range(3):
            plot.redraw()
            after = [plot.render_line(y).text for y in range(plot.size.height)]
            assert after == before
        await pilot.press("question_mark")
        await pilot.pause()
        await pilot.resize_terminal(100, 32)  # the help screen's activation plot is rebuilt too
        await pilot.pause()
        assert app.is_running and app._exception is None
        await pilot.press("escape", "q")


def test_a_legend_label_too_long_for_the_plot_ends_in_an_ellipsis() -> None:
    from vgp_tui.text import clip_end

    assert clip_end("run 1: activation=sigmoid init=default", 20) == "run 1: activation=s…"
    assert len(clip_end("run 1: activation=sigmoid init=default", 20)) == 20
    assert clip_end("run 1: clip=off", 20) == "run 1: clip=off"


async def test_the_time_view_says_when_it_has_only_non_finite_values() -> None:
    from vgp_tui.dashboard.time_view import TimeGradientPlot
    from vgp_tui.engine.events import RunStarted, StepMetrics

    app = make_app(Session(load_preset("rnn-clipping"), device="cpu"), train=False)
    async with app.run_test(size=(120, 40)) as pilot:
        plot = app.query_one(TimeGradientPlot)

        def text() -> str:
            plot.show(app.history)  # at once: the app redraws this panel at most once a second
            return "\n".join(plot.render_line(y).text for y in range(plot.size.height))

        start = RunStarted(run=1, t=0.0, preset="rnn-clipping", layers=("rnn", "head"), remedies={"clip": None},
                           seed=0, time_view="dL/dh_t")
        app.feed.put([start, StepMetrics(run=1, step=1, t=0.0, loss=1.0, grad_norm=(1.0, 1.0), total_norm=1.0)])
        app.refresh_panels()
        await pilot.pause()
        assert "measured every few steps" in text()
        nan = float("nan")
        app.feed.put([StepMetrics(run=1, step=10, t=0.1, loss=nan, grad_norm=(nan, nan), total_norm=nan,
                                  time_grad=(nan, float("inf"), nan))])
        app.refresh_panels()
        await pilot.pause()
        assert "no finite values to plot" in text()
        app.feed.put([StepMetrics(run=1, step=15, t=0.15, loss=1.0, grad_norm=(1.0, 1.0), total_norm=1.0,
                                  time_grad=(0.0, 0.0, 0.0))])  # saturated tanh units: exact zeros
        app.refresh_panels()
        await pilot.pause()
        assert "exactly" in text() and "NaN" not in text()
        assert plot.why_empty() == "every time step's gradient is exactly 0: nothing reaches back (saturated units)"
        app.feed.put([StepMetrics(run=1, step=20, t=0.2, loss=1.0, grad_norm=(1.0, 1.0), total_norm=1.0,
                                  time_grad=(0.5, 0.1, 0.01))])
        app.refresh_panels()
        await pilot.pause()
        assert "no finite values" not in text() and "time step t" in text()
        await pilot.press("q")


def _time_view_text(app: Any, plot: Any) -> list[str]:
    plot.show(app.history)  # at once: the app redraws this panel at most once a second
    return [plot.render_line(y).text for y in range(plot.size.height)]


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_time_steps_that_get_exactly_nothing_back_are_dotted_where_they_are(size: tuple[int, int]) -> None:
    """A saturated RNN passes exactly 0 back to its first 40 of 50 time steps: a log axis cannot place
    a 0, but the plot must not stretch the last 10 over the whole axis (the curve began at the left
    edge, the axis read "40" alone under its first column). The axis spans t=1..50, the zeros are
    dotted on a floor below the curve and named in the legend; the one-line view dots them too."""
    from vgp_tui.dashboard.time_view import TimeGradientPlot
    from vgp_tui.engine.events import RunStarted, StepMetrics

    app = make_app(Session(load_preset("rnn-clipping"), device="cpu"), train=False)
    async with app.run_test(size=size) as pilot:
        plot = app.query_one(TimeGradientPlot)
        start = RunStarted(run=1, t=0.0, preset="rnn-clipping", layers=("rnn", "head"),
                           remedies={"clip": None, "cell": "rnn"}, seed=0, time_view="dL/dx_t")
        time_grad = tuple([0.0] * 40 + [10.0 ** (-20 + 3.5 * i) for i in range(10)])
        app.feed.put([start, StepMetrics(run=1, step=10, t=0.0, loss=1.0, grad_norm=(1.0, 1.0), total_norm=1.0,
                                         time_grad=time_grad)])
        app.refresh_panels()
        await pilot.pause()
        lines = _time_view_text(app, plot)
        if size == (80, 24):  # one line of blocks: 4 in 5 of it dots, then the rising blocks
            spark = lines[0].strip()
            cut = len(spark) * 4 // 5
            assert set(spark[: cut - 1]) == {"·"} and "·" not in spark[cut + 1 :], spark
            assert lines[1].strip() == "t=1 0 … t=50 3e+11", lines
        else:
            ticks = next(line for line in reversed(lines) if line.split() and line.split()[0] == "1")
            assert ticks.split() == ["1", "20", "40"], lines
            assert any("·· exactly 0" in line for line in lines), lines
            floor = next(line for line in lines if line.count("·") >= 10)
            frame = next(i for i, ch in enumerate(floor) if ch in "│┤")  # (the floor's row may hold a tick)
            dots = floor.index("·")
            curve = [line.rstrip().rstrip("│").rstrip() for line in lines if "┤" in line or "│" in line]
            first_braille = min(
                (i for line in curve for i, ch in enumerate(line) if "\u2800" < ch <= "\u28ff" and i > frame + 4),
                default=None,
            )
            assert dots == frame + 1, floor  # from t=1 on
            width = ticks.rstrip().index("40") - ticks.index("1")
            assert first_braille is not None and first_braille > frame + width * 0.7, lines  # not at t=1
        await pilot.press("q")


async def test_the_loss_axis_reaches_a_divergence_after_the_last_finite_loss() -> None:
    from vgp_tui.engine.events import RunStarted, StateChanged, StepMetrics

    app = make_app(Session(load_preset("rnn-clipping"), device="cpu"), train=False)
    async with app.run_test(size=(120, 40)) as pilot:
        events: list[Any] = [RunStarted(run=1, t=0.0, preset="rnn-clipping", layers=("a", "b"), remedies={}, seed=0)]
        for step in range(1, 30):  # finite up to step 19, then Inf; diverged at 29
            loss = 0.1 * 10 ** (1.5 * step) if step < 20 else float("inf")
            events.append(StepMetrics(run=1, step=step, t=0.01 * step, loss=loss, grad_norm=(1.0, 1.0), total_norm=1.0))
        events.append(StateChanged(run=1, step=29, t=0.3, state="diverged", message="loss is inf"))
        plot = app.query_one(LossPlot)
        limits: list[tuple[float, float]] = []
        real_xlim = plot.plt.xlim
        plot.plt.xlim = lambda low, high: (limits.append((low, high)), real_xlim(low, high))
        app.feed.put(events)
        app.refresh_panels()
        await pilot.pause()
        plot.render_line(0)
        assert limits and limits[-1][0] == 1 and limits[-1][1] >= 29  # not 19: the marker's step is on it
        ticks = plot.render_line(plot.size.height - 1).text.split()
        assert ticks == ["1", "10", "20"]  # round steps after the first; the status line has the last
        await pilot.press("q")


async def test_the_one_line_time_view_says_in_whole_words_that_a_taller_terminal_plots_it() -> None:
    from vgp_tui.dashboard.time_view import TimeGradientPlot
    from vgp_tui.engine.events import RunStarted, StepMetrics

    app = make_app(Session(load_preset("rnn-clipping"), device="cpu"), train=False)
    async with app.run_test(size=(80, 24)) as pilot:  # too short for a plot: a sparkline and its ends
        plot = app.query_one(TimeGradientPlot)
        start = RunStarted(run=1, t=0.0, preset="rnn-clipping", layers=("rnn", "head"), remedies={"clip": None},
                           seed=0, time_view="dL/dh_t")
        app.feed.put([start, StepMetrics(run=1, step=1, t=0.0, loss=1.0, grad_norm=(1.0, 1.0), total_norm=1.0,
                                         time_grad=tuple(float(v) for v in range(1, 51)))])
        app.refresh_panels()
        await pilot.pause()
        plot.show(app.history)
        lines = [plot.render_line(y).text.strip() for y in range(plot.size.height)]
        assert lines[1] == "t=1 1e0 … t=50 5e1", lines
        assert lines[2] in ("a taller terminal plots it", "taller: a plot"), lines  # whole words, never cut
        await pilot.press("q")
