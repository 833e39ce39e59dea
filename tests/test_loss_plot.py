"""The loss plot with many runs: labels, colours, legend, y-range and divergence markers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.strip import Strip
from textual.widgets import Static

from vgp_tui.dashboard.loss_plot import LossPlot, ghost_label, run_color
from vgp_tui.engine.events import Event, RemedyChanged, RunStarted, StateChanged, StepMetrics
from vgp_tui.engine.history import LOSS, History

LAYERS = ("fc1", "fc2", "fc3", "fc4", "fc5", "head")
BASE = {
    "activation": "sigmoid", "init": "default", "batchnorm": False, "skip": False,
    "clip": None, "accumulate": 1, "lr": 0.1, "optimizer": "sgd",
}
# Each run: what it changes from the run before, its final loss, its steps. The loss starts at ln 3
# (three classes) and decays towards the final value, with a deterministic wiggle.
RUNS: list[tuple[dict[str, Any], float, int]] = [
    ({}, 1.05, 300),                                    # 1: sigmoid barely learns
    ({"activation": "relu"}, 0.45, 300),                # 2
    ({"init": "he"}, 0.2, 300),                         # 3
    ({"init": "poor"}, 0.0, 121),                       # 4: diverges (see ghost_events)
    ({"init": "he", "batchnorm": True}, 0.12, 300),     # 5
    ({"skip": True}, 0.08, 300),                        # 6
    ({"activation": "tanh"}, 0.3, 300),                 # 7: clip and accumulate changed live
    ({"activation": "relu"}, 0.1, 200),                 # 8: the current run
]
DIVERGED_RUN, DIVERGED_AT, PEAK = 4, 121, 4.6e36


def _loss(run: int, final: float, step: int) -> float:
    start = math.log(3)
    if run == DIVERGED_RUN:
        # Learns a little, then blows up by a factor of ten a step to 4.6e36, then NaN.
        if step >= DIVERGED_AT:
            return math.nan
        climb = DIVERGED_AT - 1 - step
        return PEAK / 10**climb if climb < 37 else 0.9 + 0.2 * math.exp(-step / 20)
    wiggle = 1 + 0.04 * math.sin(step * 0.7 + run)
    return (final + (start - final) * math.exp(-step / 60)) * wiggle


def ghost_events() -> list[Event]:
    """Seven earlier runs (six ghosts and run 4, which diverged to 4.6e36 then NaN) and the current
    run 8, as the feed would carry them: for ``app.feed.put`` or ``History.extend``."""
    events: list[Event] = []
    remedies = dict(BASE)
    t = 0.0
    for run, (change, final, steps) in enumerate(RUNS, start=1):
        for name, value in change.items():
            if run > 1:
                events.append(RemedyChanged(run - 1, RUNS[run - 2][2], t, name, remedies[name], value, structural=True))
            remedies[name] = value
        events.append(RunStarted(run=run, t=t, preset="deep-sigmoid", layers=LAYERS, remedies=dict(remedies), seed=0))
        for step in range(1, steps + 1):
            t += 0.01
            if run == 7 and step in (100, 150):  # live changes: marked on run 7, inherited by run 8
                name, value = ("clip", 1.0) if step == 100 else ("accumulate", 2)
                events.append(RemedyChanged(run, step, t, name, remedies[name], value, structural=False))
                remedies[name] = value
            if run == 8 and step == 120:
                events.append(RemedyChanged(run, step, t, "lr", 0.1, 0.2, structural=False))
                remedies["lr"] = 0.2
            loss = _loss(run, final, step)
            norms = tuple(10.0 ** (-(len(LAYERS) - k) * (2.0 if remedies["activation"] == "sigmoid" else 0.2))
                          for k in range(len(LAYERS)))
            if not math.isfinite(loss):
                norms = (math.nan,) * len(LAYERS)
            events.append(StepMetrics(run=run, step=step, t=t, loss=loss, grad_norm=norms, total_norm=sum(norms),
                                      lr=float(remedies["lr"])))  # type: ignore[arg-type]
        if run == DIVERGED_RUN:
            events.append(StateChanged(run=run, step=DIVERGED_AT, t=t, state="diverged", message="loss is nan"))
    return events


def ghost_history() -> History:
    """The History of :func:`ghost_events`: eight runs, the most History keeps by default."""
    history = History()
    history.extend(ghost_events())
    return history


# -- rendering ----------------------------------------------------------------------------------------

class PlotApp(App[None]):
    """Just the loss plot, sized as the dashboard sizes it: two thirds of the width and half of what
    the status line, diagnosis, remedies bar and footer (six rows) leave."""

    CSS = """
    #top { height: 1fr; }
    LossPlot { width: 2fr; border: round white; }
    #side { width: 1fr; }
    #below { height: 1fr; }
    #rest { height: 6; }
    """

    def __init__(self, history: History) -> None:
        super().__init__()
        self.history = history

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield LossPlot()
            yield Static(id="side")
        yield Static(id="below")
        yield Static(id="rest")

    def on_mount(self) -> None:
        self.query_one(LossPlot).show(self.history)


SIZES = [(80, 24), (120, 40)]


async def rendered(history: History, size: tuple[int, int]) -> list[Strip]:
    """The loss plot's lines for ``history`` in a terminal of ``size``."""
    app = PlotApp(history)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        plot = app.query_one(LossPlot)
        return [plot.render_line(y) for y in range(plot.size.height)]


def frame_right(lines: list[Strip]) -> int:
    """Column of the data area's right frame (plotext's ┐)."""
    return lines[0].text.index("┐")


def legend(lines: list[Strip]) -> list[str]:
    """The legend's rows: the text right of the data area's frame."""
    right = frame_right(lines)
    return [line.text[right + 1 :].strip() for line in lines if line.text[right + 1 :].strip()]


def colour_of(lines: list[Strip], text: str) -> Any:
    """The colour (RGB) of the legend row that starts with ``text`` (its swatch and label)."""
    right = frame_right(lines)
    for line in lines:
        if line.text[right + 1 :].strip().startswith(text):
            cells = [(ch, seg.style) for seg in line for ch in seg.text]
            return next(style.color.triplet for ch, style in cells[right + 1 :] if ch.strip())
    raise AssertionError(f"no legend row starts with {text!r}: {legend(lines)}")


def data_cells(lines: list[Strip]) -> list[tuple[int, int, str, Any]]:
    """(row, column, character, colour) of every drawn cell inside the data area's frame."""
    left, right = lines[0].text.index("┌"), frame_right(lines)
    bottom = next(y for y, line in enumerate(lines) if "└" in line.text)
    out = []
    for y, line in enumerate(lines[1:bottom], start=1):
        cells = [(ch, seg.style) for seg in line for ch in seg.text]
        out += [(y, x, ch, style.color.triplet if style.color else None)
                for x, (ch, style) in enumerate(cells) if left < x < right and ch.strip()]
    return out


def y_tick_labels(lines: list[Strip]) -> list[float]:
    return [float(line.text.split("┤")[0]) for line in lines if "┤" in line.text]


def step_at(lines: list[Strip], column: int) -> float:
    """The step under ``column``, interpolated between the x axis's first and last ticks."""
    bottom = next(y for y, line in enumerate(lines) if "└" in line.text)
    ticks = [x for x, ch in enumerate(lines[bottom].text) if ch == "┬"]
    labels = [float(word) for word in lines[bottom + 1].text.split() if word.isdigit()]
    first, last = labels[0], labels[len(ticks) - 1]
    return first + (column - ticks[0]) * (last - first) / (ticks[-1] - ticks[0])


@pytest.mark.parametrize("size", SIZES)
async def test_the_legend_is_beside_the_data_and_names_what_each_ghost_changed(size: tuple[int, int]) -> None:
    lines = await rendered(ghost_history(), size)
    right = frame_right(lines)
    for line in lines:  # no label inside the frame: nothing hides the first steps
        assert "run " not in line.text[: right + 1]
    rows = legend(lines)
    assert rows[0] == "━ run 8 (now)"
    assert rows[1].startswith("━ run 7: act")
    assert rows[2].startswith("━ run 6: clip=off")
    # Only what differs from run 8: every run had lr 0.1 and sgd at its start, runs 3 to 7 relu.
    assert not any(word in row for row in rows for word in ("lr=", "opt", "sgd", "relu"))
    assert all(len(row) <= right for row in rows)


def test_a_ghost_label_lists_structural_differences_first_and_live_changes_as_arrows() -> None:
    history = ghost_history()
    ghosts = {g.run: g for g in history.ghosts()}
    current = history.current
    assert ghost_label(ghosts[6], current) == "run 6: clip=off accumulate=1"
    assert ghost_label(ghosts[7], current) == "run 7: activation=tanh clip=off→1 accumulate=1→2"
    assert ghost_label(ghosts[7], current, 26) == "run 7: act=tanh clip=off→…"
    h = History()  # a preset that lists a live remedy before a structural one
    h.extend([RunStarted(1, 0.0, "p", ("a",), {"clip": None, "cell": "rnn"}, 0),
              RunStarted(2, 0.1, "p", ("a",), {"clip": 1.0, "cell": "lstm"}, 0)])
    assert ghost_label(h.ghosts()[0], h.current) == "run 1: cell=rnn clip=off"


async def test_each_run_keeps_its_colour_when_a_run_is_added() -> None:
    events = ghost_events()
    before = History()
    before.extend(events[: next(i for i, e in enumerate(events) if isinstance(e, RunStarted) and e.run == 8)])
    assert before.current.run == 7
    lines_before = await rendered(before, (120, 40))
    lines_after = await rendered(ghost_history(), (120, 40))
    for run in (4, 5, 6, 7):  # shown in both: as a ghost before and after, run 7 also as the live run
        before_colour = colour_of(lines_before, f"{'━' if run != 4 else '✕'} run {run}")
        assert colour_of(lines_after, f"{'━' if run != 4 else '✕'} run {run}") == before_colour


@pytest.mark.parametrize("size", SIZES)
async def test_no_two_runs_on_the_plot_share_a_colour_and_the_hidden_are_counted(size: tuple[int, int]) -> None:
    lines = await rendered(ghost_history(), size)
    rows = legend(lines)
    runs = [row for row in rows if " run " in f" {row[2:]}"]
    colours = [colour_of(lines, row[:7]) for row in runs]
    assert len(set(colours)) == len(colours) == 6  # the live run and five ghosts: six colours
    assert "+2 older hidden" in rows  # runs 1 and 2
    drawn = {colour for *_, colour in data_cells(lines)}
    assert set(colours) <= drawn  # each legend colour is a line on the plot


@pytest.mark.parametrize("size", SIZES)
async def test_a_diverged_ghost_does_not_stretch_the_axis_and_ends_in_a_marker(size: tuple[int, int]) -> None:
    history = ghost_history()
    lines = await rendered(history, size)
    live = history.current.series.view().mean[:, LOSS]
    ghost_low = min(float(np.nanmin(g.series.view().mean[:, LOSS])) for g in history.ghosts())
    ticks = y_tick_labels(lines)
    assert len(ticks) >= 2
    # Within the live run's range, widened only by the ghosts' finite losses: not up to 4.6e36.
    assert min(ticks) >= ghost_low * 0.99 and max(ticks) <= live.max() * 1.01
    crosses = [(y, x) for y, x, ch, _ in data_cells(lines) if ch == "✕"]
    assert len(crosses) == 1
    y, x = crosses[0]
    assert y == 1  # on the top edge: its loss left the range upwards before it became NaN
    width = lines[0].text.index("┐") - lines[0].text.index("┌")
    assert abs(step_at(lines, x) - DIVERGED_AT) <= 2 * 300 / width  # at its divergence step
    assert any(ch == "▲" for *_, ch, _ in data_cells(lines))  # where it went off the scale
    assert colour_of(lines, "✕ run 4") == run_color(4)


async def test_the_ghosts_can_be_thinned_and_hidden() -> None:
    app = PlotApp(ghost_history())
    async with app.run_test(size=(120, 40)) as pilot:
        plot = app.query_one(LossPlot)
        said = []
        for shown, hidden in ((6, 2), (2, 6), (1, 7), (6, 2)):
            await pilot.pause()
            lines = [plot.render_line(y) for y in range(plot.size.height)]
            assert [row for row in legend(lines) if row[2:].startswith("run ")][0] == "━ run 8 (now)"
            assert len([row for row in legend(lines) if row[2:].startswith("run ")]) == shown
            assert f"+{hidden} older hidden" in legend(lines)
            said.append(plot.cycle_ghosts())
    assert said[:3] == ["earlier runs: the last one only", "earlier runs: hidden", "earlier runs: all shown"]


async def test_a_live_run_that_diverged_keeps_the_axis_on_its_finite_part() -> None:
    h = History()
    h.add(RunStarted(1, 0.0, "p", ("a",), {"clip": None}, 0))
    for step in range(1, 31):  # learns, then climbs by ten a step from step 21, NaN at 30
        loss = 2.0 / step if step <= 20 else (0.1 * 10 ** (step - 20) if step < 30 else math.nan)
        h.add(StepMetrics(1, step, 0.01 * step, loss, (1.0,), 1.0))
    h.add(StateChanged(1, 30, 0.3, "diverged", "loss is nan"))
    lines = await rendered(h, (120, 40))
    assert max(y_tick_labels(lines)) <= 2.0 * 1.01
    assert any(ch == "✕" for *_, ch, _ in data_cells(lines))
    assert legend(lines)[0] == "✕ run 1 (now)"


async def test_the_symbols_get_a_legend_row_each_rather_than_being_cut() -> None:
    h = History()
    h.add(RunStarted(1, 0.0, "p", ("a",), {"lr": 0.6}, 0))
    for step in range(1, 41):  # learns, then climbs off the live run's scale, NaN at 40
        loss = 2.0 / step if step <= 30 else (10.0 ** (step - 30) if step < 40 else math.nan)
        h.add(StepMetrics(1, step, 0.01 * step, loss, (1.0,), 1.0))
    h.add(StateChanged(1, 40, 0.4, "diverged", "loss is nan"))
    h.add(RunStarted(2, 0.5, "p", ("a",), {"lr": 0.3}, 0, reason="remedy"))
    for step in range(1, 41):
        h.add(StepMetrics(2, step, 0.5 + 0.01 * step, 1.0 / step, (1.0,), 1.0))
    rows = legend(await rendered(h, (80, 24)))
    assert "✕ diverged" in rows and "▲▼ off scale" in rows, rows  # too narrow for both on one row


def test_y_ticks_are_round_values_inside_the_range_with_short_labels() -> None:
    from vgp_tui.dashboard.ticks import round_ticks

    assert round_ticks(0.0875, 1.08, log=True) == ([0.1, 0.2, 0.5, 1.0], ["0.1", "0.2", "0.5", "1"])
    assert round_ticks(0.0875, 1.08, log=True, most=3)[1] == ["0.1", "0.3", "1"]
    assert round_ticks(1e-5, 3.0, log=True)[1] == ["1e-5", "1e-3", "1e-1"]
    assert round_ticks(0.0875, 1.08, log=False)[1] == ["0.2", "0.4", "0.6", "0.8", "1"]
    # A narrow range still gets round steps, with the digits that tell them apart (a resnet's loss at
    # 2.299-2.311 was labelled 2.299, 2.303, 2.307, 2.311 on its log axis).
    assert round_ticks(2.3, 2.31, log=False) == ([2.3, 2.305, 2.31], ["2.3", "2.305", "2.31"])
    assert round_ticks(2.2985, 2.3112, log=True) == ([2.3, 2.305, 2.31], ["2.3", "2.305", "2.31"])
    values, labels = round_ticks(2.3, 2.3001, log=True)
    assert values[0] == 2.3 and values[-1] == 2.3001 and len(set(labels)) == len(labels) == 3
    # Two rows for ticks (80x24) over the least span a loss axis gets: the round ones, every other, not
    # the range's ends (1.04 and 1.17, where 1.05, 1.1 and 1.15 were there to take).
    assert round_ticks(1.0385, 1.1652, log=True, most=2) == ([1.05, 1.15], ["1.05", "1.15"])


def test_step_ticks_are_the_first_step_then_round_steps_with_short_labels() -> None:
    """Evenly spaced ticks once read "1 954 1 908 2 861" at 80x24: neither round nor clearly four numbers."""
    from vgp_tui.dashboard.ticks import step_ticks
    from vgp_tui.text import step_label

    assert step_ticks(1, 2861) == ([1.0, 1000.0, 2000.0], ["1", "1k", "2k"])
    assert step_ticks(1, 300)[1] == ["1", "100", "200", "300"]
    assert step_ticks(1, 5)[1] == ["1", "2", "3", "4", "5"]
    assert step_ticks(1, 1_500_000)[1] == ["1", "500k", "1M", "1.5M"]
    assert step_ticks(7, 7) == ([7.0], ["7"])
    # A narrow axis gets fewer ticks, each label with room around it.
    assert step_ticks(1, 300, width=27)[1] == ["1", "100", "200", "300"]
    assert step_ticks(1, 300, width=12)[1] == ["1", "200"]
    assert step_ticks(1, 3, width=5)[1] == ["1"]
    # No round tick crowds the first one.
    values, _ = step_ticks(2282, 2861)
    assert values[0] == 2282 and all(b - a >= 100 for a, b in zip(values, values[1:]))
    assert [step_label(n) for n in (950, 1000, 2500, 12000, 1_200_000)] == ["950", "1k", "2.5k", "12k", "1.2M"]
    assert step_label(999_999) == "1M" and step_label(999_400) == "999k"


async def test_the_step_axis_starts_no_later_than_the_first_drawn_point() -> None:
    """A history whose first recorded step comes after the start of its series (a follow that began
    mid-run, a benchmark's prefilled series): a point left of the axis made plotext trace the whole
    off-screen segment, a second or more per frame."""
    history = History()
    history.add(RunStarted(run=1, t=0.0, preset="p", layers=("a", "b"), remedies={}, seed=0))
    for step in range(1, 20_001):  # straight into the series, as a long run's older buckets
        history.current.series.append(step, [1.0, 1.0, 0.5, 1.0])
    history.add(StepMetrics(run=1, step=20_001, t=1.0, loss=1.0, grad_norm=(0.5, 1.0), total_norm=1.1))
    app = PlotApp(history)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        plot = app.query_one(LossPlot)
        limits: list[tuple[float, float]] = []
        real_xlim = plot.plt.xlim
        plot.plt.xlim = lambda low, high: (limits.append((low, high)), real_xlim(low, high))
        plot.redraw()
        [plot.render_line(y) for y in range(plot.size.height)]
        first_point = min(float(line.steps[0]) for line in plot._lines)
    assert limits and limits[-1][0] <= first_point


async def test_a_live_run_that_climbed_from_its_start_shows_the_climb() -> None:
    """A run that climbs from its first loss (deep-relu's first run: 100, then ten times more a step to
    1e19, NaN at 20) learned nothing, so there is no finite part to keep readable: the axis spans the
    climb (it was a band around 100 with the whole run flat on its edge). As a ghost behind a run that
    learns, it does not set the range at all: its first loss, 100, squeezed the new run's 1 to 0.025
    into the bottom rows."""
    h = History()
    h.add(RunStarted(1, 0.0, "p", ("a",), {"init": "poor"}, 0))
    for step in range(1, 21):
        h.add(StepMetrics(1, step, 0.01 * step, 100.0 * 10 ** (step - 1) if step < 20 else math.nan, (1.0,), 1.0))
    h.add(StateChanged(1, 20, 0.2, "diverged", "loss is nan"))
    lines = await rendered(h, (120, 40))
    labels = y_tick_labels(lines)
    assert max(labels) >= 1e15 and min(labels) <= 100.0, labels
    assert not any(ch in "▲▼" for *_, ch, _ in data_cells(lines))  # nothing off scale: it is all on the axis
    h.add(RunStarted(2, 0.5, "p", ("a",), {"init": "he"}, 0, reason="remedy"))
    waiting = "\n".join(line.text for line in await rendered(h, (120, 40)))  # run 2 before its first step
    assert "no finite loss" not in waiting and "run 1: init=poor" in waiting, waiting
    for step in range(1, 41):
        h.add(StepMetrics(2, step, 0.5 + 0.01 * step, 1.0 / step, (1.0,), 1.0))
    lines = await rendered(h, (120, 40))
    labels = y_tick_labels(lines)
    assert max(labels) <= 1.0 and min(labels) <= 0.05, labels  # the live run's own range
    assert any("off scale" in row for row in legend(lines))  # the ghost's climb, held on the edge


@pytest.mark.parametrize("size", SIZES)
async def test_a_lone_run_has_no_legend_and_the_data_area_takes_its_room(size: tuple[int, int]) -> None:
    """With one run and nothing marked, "━ run 1 (now)" explained nothing (the status line names the
    run) and took a third of the panel: at 80 columns the data area was 30 columns of 50. A second run
    brings the legend back, and so does a live change on the lone run."""
    h = History()
    h.add(RunStarted(1, 0.0, "p", ("a",), {"lr": 0.1}, 0))
    for step in range(1, 101):
        h.add(StepMetrics(1, step, 0.01 * step, 2.0 / step, (1.0,), 1.0))
    lines = await rendered(h, size)
    assert not any("run 1" in line.text for line in lines)
    width = len(lines[0].text.rstrip())
    assert frame_right(lines) == width - 1, lines[0].text  # the frame's right edge is the panel's
    h.add(RemedyChanged(1, 100, 1.0, "lr", 0.1, 0.05, structural=False))
    rows = legend(await rendered(h, size))
    assert rows[0] == "━ run 1 (now)" and rows[1].startswith("│ step 100: lr"), rows
    h.add(RunStarted(2, 1.0, "p", ("a",), {"lr": 0.05}, 0, reason="remedy"))
    h.add(StepMetrics(2, 1, 1.01, 2.0, (1.0,), 1.0))
    rows = legend(await rendered(h, size))
    assert rows[0] == "━ run 2 (now)" and rows[1].startswith("━ run 1"), rows


@pytest.mark.parametrize("log", [True, False])
async def test_a_loss_at_chance_is_drawn_flat_not_its_noise_across_the_panel(log: bool) -> None:
    """deep-sigmoid's first run wanders between 1.0995 and 1.103 (ln 3 = 1.0986: chance). An axis
    fitted to that drew the noise from the top of the data area to its bottom, as if it were learning."""
    h = History()
    h.add(RunStarted(1, 0.0, "p", ("a",), {}, 0))
    for step in range(1, 401):
        h.add(StepMetrics(1, step, 0.01 * step, 1.1 + 0.0015 * math.sin(step * 0.37), (1.0,), 1.0))
    app = PlotApp(h)
    async with app.run_test(size=(120, 40)) as pilot:
        plot = app.query_one(LossPlot)
        plot.log_scale = log
        plot.redraw()
        await pilot.pause()
        lines = [plot.render_line(y) for y in range(plot.size.height)]
    rows = {y for y, *_ in data_cells(lines)}
    height = next(y for y, line in enumerate(lines) if "└" in line.text) - 1
    assert len(rows) <= 3 < height, (sorted(rows), height)  # a flat band, in a data area of many rows
    labels = y_tick_labels(lines)
    assert max(labels) / min(labels) >= 1.05, labels
    # A run that learns still gets the axis fitted to it.
    for step in range(401, 801):
        h.add(StepMetrics(1, step, 0.01 * step, 1.1 * 0.995 ** (step - 400), (1.0,), 1.0))
    rows = {y for y, *_ in data_cells(await rendered(h, (120, 40)))}
    assert len(rows) > height // 2, sorted(rows)


async def test_a_new_run_after_a_long_one_is_drawn_beside_it_at_the_same_steps() -> None:
    """A fix pressed after 7 000 steps of deep-sigmoid started a run drawn in the plot's first
    columns, squeezed against the axis by its ghost's 7 000 steps. While the ghosts reach further than
    1.5 times the current run, the step axis ends at 1.5 times its steps, and the title says so."""
    from vgp_tui.dashboard.loss_plot import MIN_WINDOW

    def history(current_steps: int) -> History:
        events: list[Event] = []
        for run, steps, final in ((1, 7000, 1.05), (2, current_steps, 0.3)):
            remedies = dict(BASE, activation="sigmoid" if run == 1 else "relu")
            events.append(RunStarted(run=run, t=0.0, preset="deep-sigmoid", layers=LAYERS, remedies=remedies, seed=0))
            events += [StepMetrics(run=run, step=step, t=0.01 * step, loss=_loss(run, final, step),
                                   grad_norm=(0.1,) * len(LAYERS), total_norm=0.3) for step in range(1, steps + 1)]
        h = History()
        h.extend(events)
        return h

    app = PlotApp(history(200))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        plot = app.query_one(LossPlot)
        lines = [plot.render_line(y) for y in range(plot.size.height)]
        title = str(plot.border_title)
    assert title.endswith(" · to step 300"), title
    # The loss as a number (the axis's two or three ticks leave it to be guessed): the median of the
    # last 50 steps, since one batch's loss swings, with its trailing zeros.
    median = float(np.median([_loss(2, 0.3, step) for step in range(151, 201)]))
    assert title.startswith(f"Loss {median:#.3g} · log axis (y toggles)"), title
    assert max(float(line.steps[-1]) for line in plot._lines) <= 300
    assert step_at(lines, frame_right(lines) - 1) <= 320  # the axis ends at about step 300, not 7 000
    for current, window in ((0, MIN_WINDOW), (3000, 4500), (5000, None)):
        app = PlotApp(history(current) if current else history(1))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            plot = app.query_one(LossPlot)
            assert plot._window == (window if current else MIN_WINDOW), (current, plot._window)
            assert ("to step" in str(plot.border_title)) == (plot._window is not None)


async def test_the_loss_title_says_nan_when_the_last_loss_is_and_fits_a_narrow_panel() -> None:
    events: list[Event] = [RunStarted(run=1, t=0.0, preset="deep-sigmoid", layers=LAYERS, remedies=BASE, seed=0)]
    events += [StepMetrics(run=1, step=step, t=0.01 * step, loss=1.1 if step < 60 else math.nan,
                           grad_norm=(0.1,) * len(LAYERS), total_norm=0.3) for step in range(1, 61)]
    h = History()
    h.extend(events[:-1])
    app = PlotApp(h)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        plot = app.query_one(LossPlot)
        assert str(plot.border_title) == "Loss 1.10 · log axis (y toggles)"  # (ln 3, not "1.1")
        h.extend(events[-1:])
        plot.show(h)
        assert str(plot.border_title).startswith("Loss NaN · ")  # a divergence is not a median's to hide
    app = PlotApp(h)
    async with app.run_test(size=(40, 24)) as pilot:
        await pilot.pause()
        title = str(app.query_one(LossPlot).border_title)
        assert title == "Loss NaN · log axis", title  # the key's reminder goes where it does not fit


async def test_a_loss_of_zero_is_not_called_nan_on_the_log_axis() -> None:
    """A loss of exactly 0 has no place on a log axis: the panel said "no finite loss to plot (NaN/Inf)"."""
    zero, nan = History(), History()
    for h, loss in ((zero, 0.0), (nan, math.nan)):
        h.add(RunStarted(1, 0.0, "p", ("a",), {}, 0))
        for step in range(1, 11):
            h.add(StepMetrics(1, step, 0.01 * step, loss, (1.0,), 1.0))
    text = "\n".join(line.text for line in await rendered(zero, (120, 40)))
    assert "no loss above 0 for a log axis (y: linear)" in text and "NaN" not in text, text
    text = "\n".join(line.text for line in await rendered(nan, (120, 40)))
    assert "no finite loss to plot (NaN/Inf)" in text, text
