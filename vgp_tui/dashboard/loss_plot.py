"""The loss plot: the current run, earlier runs as labelled ghosts, markers where a live remedy changed.

Readable with many runs:

* each run has one colour for its whole life, a function of its run number, and no two runs on the
  plot share one: when there are more runs than colours, only the most recent ghosts are drawn and
  the legend says how many are hidden (:meth:`LossPlot.cycle_ghosts` thins them further);
* the legend is a column beside the data area, never over it, and each ghost is labelled by the
  remedies it had that the current run has not; a lone run with nothing else to explain has none
  (the status line names the run), so at 80 columns its data area is half as wide again;
* the y-range follows the live run and what the ghosts did before they diverged: a loss that
  explodes on its way to NaN would otherwise stretch even a log axis over thirty decades. A run that
  climbed from its first steps, learning nothing, is the exception: live, the climb is its story and
  sets the range; as a ghost it sets none of it. What lies
  outside the range is drawn on its edge with a ▲ or ▼, and a diverged run ends in a ✕ at its
  divergence step. The range is never narrower than :data:`MIN_SPAN_DECADES` (log) or
  :data:`MIN_SPAN_FRACTION` (linear): a loss that does not move is drawn flat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Hashable
from typing import Union

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual_plotext.plot import Plot

from vgp_tui.dashboard.panels import Panel
from vgp_tui.dashboard.plot_panel import PlotPanel
from vgp_tui.dashboard.ticks import round_ticks, step_ticks
from vgp_tui.engine.events import CONTINUED
from vgp_tui.engine.history import LOSS, History, RunHistory
from vgp_tui.engine.remedies import REMEDIES, differences, format_value
from vgp_tui.health import RECENT
from vgp_tui.text import clip_end, thousands, three_significant

RGB = tuple[int, int, int]
Color = Union[RGB, str, None]

PALETTE: tuple[RGB, ...] = (
    (86, 180, 233),  # sky blue
    (0, 158, 115),  # bluish green
    (240, 228, 66),  # yellow
    (204, 121, 167),  # reddish purple
    (120, 150, 255),  # blue, lightened to read on a dark background
    (170, 170, 170),  # grey
)
"""Run colours, as many as stay distinct: Okabe & Ito's colour-blind-safe set less its orange and
vermillion (they would be taken for the orange remedy lines and the red divergence line) and its
black (the background), its blue lightened to read on a dark background, and a grey."""

GHOST_MODES = ("all", "last", "none")
"""What :meth:`LossPlot.cycle_ghosts` steps through: every ghost that fits, the last one, none."""
GHOST_TOASTS = {
    "all": "earlier runs: all shown",
    "last": "earlier runs: the last one only",
    "none": "earlier runs: hidden",
}

RANGE_DECADES = 2.0
"""Ghosts widen the log axis at most this many decades beyond the live run (a linear axis: one span)."""
MIN_SPAN_DECADES = 0.05
"""The least the log axis spans (12 %): deep-sigmoid's first run, at chance, wanders between 1.0995
and 1.103, and an axis fitted to that drew its noise from the top of the panel to the bottom, as if
it were learning."""
MIN_SPAN_FRACTION = 0.1
"""The least the linear axis spans, as a fraction of the largest value on it."""

DIVERGED = "✕"
ABOVE, BELOW = "▲", "▼"
REMEDY_COLOR = "yellow"
"""The legend's colour for remedy lines: the ANSI colour plotext draws as "orange"."""
LEGEND_FRACTION = 0.36
"""The legend column takes at most this share of the panel's width."""

WINDOW = 1.5
"""While earlier runs reach further, the step axis spans this many times the current run's steps."""
MIN_WINDOW = 100
"""Steps: the least span of the step axis while earlier runs reach further than the current one."""

SHORT_NAMES = {"activation": "act", "batchnorm": "bn", "accumulate": "accum", "optimizer": "opt"}
"""Remedy names in a label too long for the legend, before it is cut."""


def run_color(run: int) -> RGB:
    """The colour of run ``run``: the same for the run's whole life, whatever else is on the plot."""
    return PALETTE[(run - 1) % len(PALETTE)]


def shown_runs(history: History, mode: str = "all") -> tuple[list[RunHistory], int]:
    """The runs to draw, the current one first and then the ghosts newest first, and how many ghosts
    are left out: by ``mode`` (one of :data:`GHOST_MODES`), and once the next older ghost's colour is
    already taken."""
    current = history.current
    if current is None:
        return [], 0
    ghosts = history.ghosts()[::-1]
    limit = {"all": len(ghosts), "last": 1, "none": 0}[mode]
    shown = [current]
    colors = {run_color(current.run)}
    for ghost in ghosts[:limit]:
        color = run_color(ghost.run)
        if color in colors:
            break
        shown.append(ghost)
        colors.add(color)
    return shown, len(ghosts) - (len(shown) - 1)


def step_window(current: RunHistory, ghosts: list[RunHistory]) -> int | None:
    """The last step the plot shows while the ghosts reach further than WINDOW times the current
    run's steps: that many (at least MIN_WINDOW), so that it is drawn beside the ghosts at the same
    steps, over two thirds of the plot; None for the whole of every run. A fix pressed after 7 000
    steps of deep-sigmoid started a run drawn in the plot's first columns, squeezed against the axis
    by the ghost's 7 000."""
    latest = current.latest.step if current.latest is not None else 0
    longest = max((ghost.latest.step for ghost in ghosts if ghost.latest is not None), default=0)
    span = max(round(WINDOW * latest), MIN_WINDOW)
    return span if longest > span else None


def ghost_label(ghost: RunHistory, current: RunHistory, width: int | None = None) -> str:
    """``run 1: activation=sigmoid``: the remedies the earlier run started with that the current one
    did not, structural ones first (they are why the ghost is a run of its own, and a cut label keeps
    them). A live remedy the ghost changed on the way to the current run's value reads
    ``clip=off→1``, after the others: it differed for part of the ghost's run only. Longer than
    ``width``, the label names remedies shortly (``act=sigmoid``), then is cut with an ellipsis."""
    last = ghost.latest.step if ghost.latest is not None else 0
    if current.reason == CONTINUED and ghost.first is not None and (current.first is None or last < current.first.step):
        # The same training, resumed: its earlier steps, not another try from the same seed.
        return clip_end(f"run {ghost.run}: steps {thousands(ghost.first.step)}–{thousands(last)}", width or 1000)
    changed = differences(current.started_with, ghost.started_with)
    # Live changes the ghost trained with; one made after its last step (to recover from a
    # divergence, say) came to the next run, not to this one.
    trained = {m.text.split(" ", 1)[0] for m in ghost.markers if m.kind == "remedy" and m.step <= last}

    def rank(name: str) -> int:
        if name in REMEDIES and REMEDIES[name].structural:
            return 0
        return 2 if name in trained and ghost.remedies.get(name) != changed[name] else 1

    names = sorted(changed, key=rank)  # stable: the preset's order within each rank
    if not names:
        return clip_end(f"run {ghost.run}: same remedies", width or 1000)

    def text(short: bool) -> str:
        parts = []
        for name in names:
            value = format_value(name, changed[name])
            if rank(name) == 2:
                value += "→" + format_value(name, ghost.remedies.get(name))
            parts.append(f"{SHORT_NAMES.get(name, name) if short else name}={value}")
        return f"run {ghost.run}: {' '.join(parts)}"

    label = text(short=False)
    if width is None or len(label) <= width:
        return label
    return clip_end(text(short=True), width)


def divergence_step(run: RunHistory, steps: np.ndarray, loss: np.ndarray) -> int | None:
    """The step where ``run`` diverged: its divergence marker, else the first of the non-finite
    losses it ends with (a recording cut short after the NaN, say); None if it did not."""
    for marker in run.markers:
        if marker.kind == "diverged":
            return marker.step
    if len(loss) and not math.isfinite(loss[-1]):
        finite = np.flatnonzero(np.isfinite(loss))
        return int(steps[finite[-1] + 1] if len(finite) else steps[0])
    return None


def to_axis(loss: np.ndarray, log: bool) -> np.ndarray:
    """Losses in axis units: log10 on a log axis, where 0 and below become -inf (below any range)."""
    if not log:
        return loss.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(loss > 0, np.log10(np.where(loss > 0, loss, 1.0)), np.where(np.isnan(loss), np.nan, -np.inf))


CLIMB_ONLY = 3
"""A run that diverged with its lowest loss among its first this many points never learned."""


def never_learned(values: np.ndarray, diverged: bool) -> bool:
    """Whether a run diverged with its lowest loss among its first :data:`CLIMB_ONLY` points: a climb
    from its start (rnn-clipping's first run, 0.9 to 1e36 in 19 steps; deep-relu's, 100 to 1e5 in 2)."""
    finite = np.isfinite(values)
    if not diverged or not finite.any():
        return False
    lowest = int(np.nanargmin(np.where(finite, values, np.nan)))
    return int(np.count_nonzero(finite[: lowest + 1])) <= CLIMB_ONLY


def body(values: np.ndarray, diverged: bool, live: bool = False) -> np.ndarray:
    """The finite values that may set the y-range (axis units). A diverged run counts only up to its
    lowest point: what follows is the climb to NaN (1e36 and more before it), not the run. The
    ``live`` run that :func:`never_learned` counts whole: its climb is all there is to see (its axis
    was a band around its first loss, with the climb flat on the edge)."""
    finite = np.isfinite(values)
    if diverged and finite.any() and not (live and never_learned(values, diverged)):
        lowest = int(np.nanargmin(np.where(finite, values, np.nan)))
        finite[lowest + 1 :] = False
    return values[finite]


def y_range(live: np.ndarray, ghosts: list[np.ndarray], log: bool) -> tuple[float, float] | None:
    """The y-range in axis units: the live run's body, widened by the ghosts' bodies but at most
    :data:`RANGE_DECADES` decades (log) or one live span (linear) beyond it. None if nothing is finite."""
    others = np.concatenate(ghosts) if ghosts else np.empty(0)
    if live.size:
        low, high = float(live.min()), float(live.max())
        margin = RANGE_DECADES if log else max(high - low, 0.5 * max(abs(low), abs(high)), 1e-12)
        # Ghost values further out do not count: they are drawn on the edge.
        others = others[(others >= low - margin) & (others <= high + margin)]
        if others.size:
            low, high = min(low, float(others.min())), max(high, float(others.max()))
    elif others.size:
        low, high = float(others.min()), float(others.max())
    else:
        return None
    if high - low < 1e-9:  # one value: a small band around it
        pad = 0.1 if log else max(0.05 * abs(low), 1e-9)
        low, high = low - pad, high + pad
    least = MIN_SPAN_DECADES if log else MIN_SPAN_FRACTION * max(abs(low), abs(high))
    if high - low < least:  # a loss that does not move is drawn flat, not its noise across the panel
        middle = (low + high) / 2
        low, high = middle - least / 2, middle + least / 2
    return low, high


@dataclass
class Line:
    """One run as the plot draws it."""

    run: RunHistory
    color: RGB
    label: str
    steps: np.ndarray
    values: np.ndarray
    """Loss per bucket in axis units (NaN where there is nothing to draw)."""
    end: int | None
    """The step where it diverged, if it did."""
    clamped: np.ndarray = field(default_factory=lambda: np.empty(0))
    """``values`` held inside the y-range."""
    off: list[tuple[float, float, str]] = field(default_factory=list)
    """(step, edge, ▲ or ▼) where the line leaves the range."""


class LossPlot(PlotPanel, Panel):
    """Drawn from History views sized to the plot's width, so it never plots more points than columns."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.log_scale = True
        self.ghost_mode = "all"
        self.history: History | None = None
        self._lines: list[Line] = []
        self._range: tuple[float, float] | None = None
        self._axis_width: int | None = None
        """Columns of the x axis at the last build (None before the first): how many step ticks fit."""
        self._window: int | None = None
        """The last step shown (step_window), None for every run's whole length."""

    def on_mount(self) -> None:
        super().on_mount()
        self.border_title = "Loss"

    EVERY = 1.0  # plotext rebuilds the whole figure: at most once a second unless a run or marker came

    def watches(self, history: History) -> tuple[Hashable, Hashable]:
        # (a run's first steps are structure too: its line appears at once, not up to a second later)
        structure = (tuple((r.run, r.marker_count, r.steps > 0) for r in history.runs.values()), self.log_scale,
                     self.ghost_mode)
        return (structure, tuple((r.run, r.steps) for r in history.runs.values())), structure

    def draw_from(self, history: History) -> None:
        self.show(history)

    def show(self, history: History) -> None:
        self.history = history
        self._set_title()
        self.redraw()

    def toggle_log(self, history: History | None = None) -> str:
        """A log axis, else a linear one, drawn at once (a key press wants its answer); says which, for a toast."""
        self.log_scale = not self.log_scale
        self.show(history if history is not None else self.history or History())
        return "loss axis: log" if self.log_scale else "loss axis: linear"

    def reset_view(self) -> None:
        """The axis and the ghosts as a fresh dashboard has them: what another preset starts with."""
        self.log_scale, self.ghost_mode = True, GHOST_MODES[0]
        self._set_title()
        self.redraw()

    def cycle_ghosts(self) -> str:
        """Show every ghost that fits, then only the last one, then none; says which, for a toast."""
        self.ghost_mode = GHOST_MODES[(GHOST_MODES.index(self.ghost_mode) + 1) % len(GHOST_MODES)]
        self._set_title()
        self.redraw()
        return GHOST_TOASTS[self.ghost_mode]

    def _set_title(self) -> None:
        ghosts = {"all": "", "last": " · last ghost only", "none": " · ghosts hidden"}[self.ghost_mode]
        if self._window is not None:
            ghosts += f" · to step {thousands(self._window)}"
        head = f"Loss{self._loss_now()} · {'log' if self.log_scale else 'linear'} axis"
        title = f"{head} (y toggles){ghosts}"
        if self.size.width and len(title) > self.size.width - 4:  # (the corners and a cell of border each side)
            title = f"{head}{ghosts}"  # the key's reminder goes first: the footer has it
        if self.border_title != title:
            self.border_title = title

    def _loss_now(self) -> str:
        """`` 0.693``: the loss as a number (the log axis gives two or three ticks): the median of the
        current run's last RECENT steps, as the verdicts read the norms, since one batch's loss swings
        (rnn-clipping's last ten: 0.13 to 0.24, about a curve at 0.24); the last one where it is not
        finite. Three significant digits, trailing zeros kept (ln 3 reads 1.10, not 1.1)."""
        current = self.history.current if self.history is not None else None
        if current is None or current.latest is None:
            return ""
        losses = current.recent(RECENT).loss
        finite = losses[np.isfinite(losses)]
        value = float(np.median(finite)) if finite.size and math.isfinite(current.latest.loss) else current.latest.loss
        return f" {f'{value:#.3g}'.rstrip('.')}" if math.isfinite(value) else f" {three_significant(value)}"

    # -- building ---------------------------------------------------------------------------------------
    def _build(self, width: int, height: int) -> list[Strip]:
        self._set_title()  # (it fits the panel's width)
        legend = self._plan(width, height)
        legend_width = max((len(text) for text, _, _ in legend), default=0)
        if legend_width:
            legend_width += 1  # a blank column between the frame and the legend
        self._axis_width = width - legend_width - 7  # the x axis: less the y labels and the frame
        strips = super()._build(width - legend_width, height)
        if not legend_width:
            return strips
        out = []
        for y, strip in enumerate(strips):
            segments = list(strip)
            # The legend takes the plot's own background (the theme's surface) so it reads as one panel.
            background = segments[-1].style.bgcolor if segments and segments[-1].style else None
            text, color, bold = legend[y] if y < len(legend) else ("", None, False)
            if isinstance(color, tuple):
                color = f"rgb({color[0]},{color[1]},{color[2]})"
            style = Style(color=color, bgcolor=background, bold=bold)
            cell = Segment(" " + text.ljust(legend_width - 1), style)
            out.append(Strip([*segments, cell]).adjust_cell_length(width))
        return out

    def _plan(self, width: int, height: int) -> list[tuple[str, Color, bool]]:
        """Work out the lines, their range and the legend rows (text, colour, bold) for this size."""
        self._lines, self._range = [], None
        history = self.history
        current = history.current if history is not None else None
        if history is None or current is None or (current.steps == 0 and not history.ghosts()):
            return []  # (a fresh run with no step yet is drawn with its ghosts)
        runs, hidden = shown_runs(history, self.ghost_mode)
        if len(runs) + (hidden > 0) > height:  # the legend has a row for every run drawn
            keep = max(height - 1, 1)
            hidden += len(runs) - keep
            runs = runs[:keep]
        cap = max(12, min(int(width * LEGEND_FRACTION), width - 30))
        labels = [clip_end(f"run {current.run} (now)", cap - 2)]
        labels += [ghost_label(ghost, current, cap - 2) for ghost in runs[1:]]
        lone = len(runs) == 1 and not hidden  # a legend may not be needed: widest view until it is known
        points = max(width - (0 if lone else cap) - 8, 10)
        window = step_window(current, runs[1:])
        if window != self._window:
            self._window = window
            self._set_title()
        for run, label in zip(runs, labels):
            view = run.series.view(points, until=window)
            steps = view.last_step.astype(float)
            loss = view.mean[:, LOSS]
            values = to_axis(loss, self.log_scale)
            self._lines.append(Line(run, run_color(run.run), label, steps, values, divergence_step(run, steps, loss)))
        first, *ghosts = self._lines
        live = body(first.values, first.end is not None, live=True)
        # A ghost that never learned sets none of the range while the live run has a loss: its first
        # loss alone (deep-relu's 100) squeezed the run that learns into the bottom rows.
        self._range = y_range(live, [
            body(line.values, line.end is not None) for line in ghosts
            if not (live.size and never_learned(line.values, line.end is not None))
        ], self.log_scale)
        if self._range is not None:
            for line in self._lines:
                self._clamp(line, *self._range)
        changes = [m for m in reversed(current.markers) if m.kind == "remedy"]
        symbols = [s for s, used in ((f"{DIVERGED} diverged", any(line.end is not None for line in self._lines)),
                                     (f"{ABOVE}{BELOW} off scale", any(line.off for line in self._lines))) if used]
        if lone and not symbols and not changes:
            return []  # one line, one colour: a legend saying "run 1 (now)" would only take the plot's room
        rows: list[tuple[str, Color, bool]] = []
        for line in self._lines:
            swatch = DIVERGED if line.end is not None else "━"
            rows.append((f"{swatch} {line.label}", line.color, line.run is current))
        if hidden:
            rows.append((clip_end(f"+{hidden} older hidden", cap), None, False))
        if symbols and len("  ".join(symbols)) > cap and len(rows) + len(symbols) <= height:
            rows += [(clip_end(symbol, cap), None, False) for symbol in symbols]  # a row each, rather than cut
        elif symbols and len(rows) < height:
            rows.append((clip_end("  ".join(symbols), cap), None, False))
        # What the orange lines are, newest first, while rows remain.
        for marker in changes[: max(height - len(rows), 0)]:
            rows.append((clip_end(f"│ step {marker.step}: {marker.text}", cap), REMEDY_COLOR, False))
        return rows

    @staticmethod
    def _clamp(line: Line, low: float, high: float) -> None:
        """Hold the line inside [low, high] and note where it leaves: on the edge, one glyph per excursion."""
        values = line.values
        drawn = ~np.isnan(values)
        with np.errstate(invalid="ignore"):
            side = np.where(values > high, 1, np.where(values < low, -1, 0))
        line.clamped = np.clip(values, low, high)
        previous = 0
        for i in np.flatnonzero(drawn):
            if side[i] and side[i] != previous:
                line.off.append((float(line.steps[i]), high if side[i] > 0 else low, ABOVE if side[i] > 0 else BELOW))
            previous = side[i]

    def draw(self, plt: Plot) -> None:
        lines, span = self._lines, self._range
        if not lines:
            plt.title("waiting for the first steps…")
            return
        if span is None:
            # A loss of 0 (or below) is finite, but has no place on a log axis (to_axis: -inf): it was
            # called NaN/Inf. The linear axis draws it.
            off_log = self.log_scale and any(np.isneginf(line.values).any() for line in lines)
            plt.title("no loss above 0 for a log axis (y: linear)" if off_log else "no finite loss to plot (NaN/Inf)")
            return
        current = lines[0].run
        low, high = span
        # Oldest first, so the current run is drawn over its ghosts.
        for line in reversed(lines):
            keep = ~np.isnan(line.values)
            if keep.any():
                # The live run in half blocks: heavier than the ghosts' braille, whatever its colour.
                drawn_with = "hd" if line.run is current else "braille"
                plt.plot(line.steps[keep].tolist(), line.clamped[keep].tolist(), color=line.color, marker=drawn_with)
            for x, y, glyph in line.off:
                plt.scatter([x], [y], color=line.color, marker=glyph)
            if line.end is not None and (self._window is None or line.end <= self._window):
                last = line.clamped[keep][-1] if keep.any() else high
                plt.scatter([float(line.end)], [float(last)], color=line.color, marker=DIVERGED)
        for marker in current.markers:
            plt.vline(marker.step, "red" if marker.kind in ("diverged", "error", "nonfinite") else "orange")
        # The axis runs from the first step (not the end of the first bucket a view merged) to the
        # last loss, divergence or marker.
        # (Also no later than the first drawn point: a point left of the axis makes plotext trace the
        # whole off-screen segment, seconds of work for a long run.)
        firsts = [line.run.first.step for line in lines if line.run.first is not None]
        firsts += [float(line.steps[0]) for line in lines if len(line.steps)]
        data_end = max((float(line.steps[-1]) for line in lines if len(line.steps)), default=0.0)
        ends = [line.end for line in lines if line.end is not None] + [m.step for m in current.markers]
        ends = [end for end in ends if self._window is None or end <= self._window]  # (a ghost's, past the window)
        x0 = float(min(firsts, default=0))
        x1 = max(data_end, float(max(ends, default=0)))
        # Past the last loss, a little beyond the last marker so that its line is not under the frame.
        pad = max(1.0, 0.02 * (x1 - x0)) if x1 > data_end else 0.0
        if x1 + pad > x0:
            plt.xlim(x0, x1 + pad)
        plt.ylim(low, high)
        plt.xticks(*step_ticks(x0, x1, width=self._axis_width))
        plt.yticks(*self._y_ticks(low, high))

    def _y_ticks(self, low: float, high: float) -> tuple[list[float], list[str]]:
        """Round tick values inside [low, high] (positions in axis units), about one every other row:
        short labels leave the data area more columns."""
        most = max(2, min(5, (self.size.height - 3) // 2 + 1))
        if not self.log_scale:
            return round_ticks(low, high, log=False, most=most)
        values, labels = round_ticks(10.0**low, 10.0**high, log=True, most=most)
        ticks = [(math.log10(v), label) for v, label in zip(values, labels) if v > 0]
        ticks = [(t, label) for t, label in ticks if low - 1e-9 <= t <= high + 1e-9]
        return [t for t, _ in ticks], [label for _, label in ticks]
