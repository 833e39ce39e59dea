"""How far back in time the gradient reaches: the gradient per time step (its label says which, e.g.
|dL/dx_t|), for recurrent presets.

The current run's latest measurement is drawn with the previous run's beside it, so switching the
cell from rnn to lstm shows the difference at once. The legend is a row or two above the plot, never
over a curve (plotext's, in the plot's top left corner, hid the LSTM's flat curve), and the y-range
holds every curve drawn with a row to spare above the highest (an LSTM's, on the frame's top edge,
read as cut off). Where there is nothing to draw the panel says why (not measured yet, only
NaN/Inf), and where it is too short for a plot (80x24) it draws the current run's curve as one line
of block characters with its two ends labelled.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual_plotext.plot import Plot

from vgp_tui.dashboard.heatmap import INF_GLYPH, NAN_GLYPH, ZERO_GLYPH
from vgp_tui.dashboard.panels import Panel
from vgp_tui.dashboard.plot_panel import PlotPanel
from vgp_tui.dashboard.ticks import step_ticks
from vgp_tui.engine.history import History, RunHistory
from vgp_tui.text import clip_end, format_norm

MIN_PLOT_HEIGHT = 6
"""Fewest lines a plotext plot needs to show a curve between its axis ticks and label."""
_ENLARGE = ("enlarge the terminal for the plot", "a taller terminal plots it", "taller: a plot")
"""What the one-line view says of the full plot, longest first: the first that fits is shown."""
SPARK = "▁▂▃▄▅▆▇█"
CURRENT, PREVIOUS = "green", "gray"
"""plotext's colours of the current run's curve and the previous run's."""
LEGEND_STYLES = {CURRENT: Style(color="color(2)"), PREVIOUS: Style(color="color(8)")}
"""The same colours in Rich's words (plotext writes ANSI colours 2 and 8), for the legend."""


def _plottable(run: RunHistory) -> tuple[np.ndarray, np.ndarray] | None:
    """(time steps, values) of ``run``'s latest measurement where they can go on a log axis."""
    if run.latest_time_grad is None:
        return None
    values = np.asarray(run.latest_time_grad, dtype=float)
    keep = np.isfinite(values) & (values > 0)
    if not keep.any():
        return None
    return np.arange(1, len(values) + 1)[keep], values[keep]


def _zero_steps(run: RunHistory) -> list[int]:
    """The time steps (from 1) whose gradient in ``run``'s latest measurement is exactly 0."""
    return [t for t, v in enumerate(run.latest_time_grad or (), start=1) if v == 0]


def sparkline(values: np.ndarray, width: int) -> str:
    """``values`` as ``width`` block characters on a log scale, resampled to fit: an exact 0 is
    ``·`` (as in the heatmap), Inf ``▲`` and NaN ``×``, so that a stretch of time steps that gets
    nothing back reads as nothing, not as the lowest bar."""
    if width <= 0 or not len(values):
        return ""
    values = np.asarray(values, dtype=float)
    picked = values[(np.arange(width) * len(values)) // width]
    positive = values[np.isfinite(values) & (values > 0)]
    if not positive.size:
        return "".join(_glyph_of(v) for v in picked.tolist())
    low, high = float(np.log10(positive.min())), float(np.log10(positive.max()))
    out = []
    for v in picked.tolist():
        if not (math.isfinite(v) and v > 0):
            out.append(_glyph_of(v))
        elif high <= low:
            out.append(SPARK[len(SPARK) // 2])
        else:
            out.append(SPARK[min(len(SPARK) - 1, int((math.log10(v) - low) / (high - low) * len(SPARK)))])
    return "".join(out)


def _glyph_of(value: float) -> str:
    """The heatmap's glyph for a value a log scale cannot place."""
    return NAN_GLYPH if math.isnan(value) else INF_GLYPH if math.isinf(value) else ZERO_GLYPH


class TimeGradientPlot(PlotPanel, Panel):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.history: History | None = None
        self._plot_height: int | None = None
        """Lines of the plot at its last build: the panel's less the legend's."""

    def on_mount(self) -> None:
        super().on_mount()
        self.border_title = "Gradient through time"

    EVERY = 1.0

    def watches(self, history: History) -> tuple[Hashable, Hashable]:
        # A new measurement is a new tuple: its identity is enough, and cheaper than its values.
        return tuple(id(r.latest_time_grad) for r in history.runs.values()), len(history.runs)

    def draw_from(self, history: History) -> None:
        self.show(history)

    def show(self, history: History) -> None:
        self.history = history
        current = history.current
        label = current.time_view if current else None
        self.border_title = f"|{label}| per time step" if label else "Gradient through time"
        self.redraw()

    def _runs(self) -> list[RunHistory]:
        """The previous run (if it had a time view) and the current one, with a measurement each."""
        history = self.history
        if history is None:
            return []
        runs = [r for r in history.ghosts()[-1:] if r.latest_time_grad is not None and r.time_view]
        current = history.current
        if current is not None and current.latest_time_grad is not None:
            runs.append(current)
        return runs

    def why_empty(self) -> str | None:
        """Why there is nothing to draw, in words; None when there is."""
        runs = self._runs()
        if any(_plottable(r) is not None for r in runs):
            return None
        history = self.history
        if runs:
            values = np.concatenate([np.asarray(r.latest_time_grad, dtype=float) for r in runs if r.latest_time_grad])
            finite = values[np.isfinite(values)]
            if finite.size and np.all(finite == 0):
                # Saturated units pass exactly nothing back: that is the lesson, not missing data.
                return "every time step's gradient is exactly 0: nothing reaches back (saturated units)"
            return "no finite values to plot (NaN/Inf)"
        current = history.current if history is not None else None
        if history is not None and current is not None and history.state in ("diverged", "error") and current.latest:
            return f"no data: the run stopped at step {current.latest.step}, before its first measurement (measured every few steps)"
        return "no data yet: measured every few steps…"

    def _curves(self) -> list[tuple[RunHistory, str, np.ndarray, np.ndarray, list[int]]]:
        """What the plot draws: each run with something to plot, its colour, its time steps and values,
        and the time steps whose gradient is exactly 0."""
        current = self.history.current if self.history is not None else None
        curves = []
        for run in self._runs():
            points = _plottable(run)
            if points is not None:
                curves.append((run, CURRENT if run is current else PREVIOUS, *points, _zero_steps(run)))
        return curves

    def _legend(self, width: int) -> list[list[tuple[str, str]]]:
        """The legend's rows, each a list of (text, colour): every curve where there are two, the
        exactly-0 floor where there is one; a lone curve with no floor needs none."""
        curves = self._curves()
        entries = []
        if len(curves) > 1:
            entries += [(f"━━ run {run.run} {run.remedies.get('cell', '')}".rstrip(), color)
                        for run, color, *_ in curves]
        for run, color, _, _, zeros in curves:
            if zeros:
                entries.append(("·· exactly 0" if run is curves[-1][0] else f"·· run {run.run}: exactly 0", color))
        rows: list[list[tuple[str, str]]] = []
        used = width
        for text, color in entries:
            text = clip_end(text, max(width - 1, 1))
            if rows and used + 2 + len(text) <= width - 1:
                rows[-1].append((text, color))
                used += 2 + len(text)
            else:
                rows.append([(text, color)])
                used = len(text)
        return rows

    def _build(self, width: int, height: int) -> list[Strip]:
        why = self.why_empty()
        if why is not None:
            return _message(why, width, height)
        if height < MIN_PLOT_HEIGHT:
            return self._compact(width, height)
        legend = self._legend(width)
        legend = legend[: max(0, height - MIN_PLOT_HEIGHT)]  # (the plot first: the colours still tell)
        self._plot_height = height - len(legend)
        strips = super()._build(width, height - len(legend))
        if not legend:
            return strips
        # The legend takes the plot's own background (the theme's surface) so it reads as one panel.
        segments = list(strips[0]) if strips else []
        background = segments[-1].style.bgcolor if segments and segments[-1].style else None
        lines = []
        for row in legend:
            parts = [Segment(" ", Style(bgcolor=background))]
            for i, (text, color) in enumerate(row):
                if i:
                    parts.append(Segment("  ", Style(bgcolor=background)))
                parts.append(Segment(text, LEGEND_STYLES[color] + Style(bgcolor=background)))
            lines.append(Strip(parts).extend_cell_length(width, Style(bgcolor=background)).crop(0, width))
        return [*lines, *strips]

    def _compact(self, width: int, height: int) -> list[Strip]:
        """The current (else previous) run's curve as one line of blocks: a plot would show only axes."""
        runs = self._runs()
        run = next((r for r in reversed(runs) if _plottable(r) is not None), None)
        assert run is not None  # why_empty() said there is one
        values = np.asarray(run.latest_time_grad, dtype=float)  # every time step, zeros too
        first, last = (format_norm(float(v), signed_exponent=False) for v in (values[0], values[-1]))
        ends = f"t=1 {first} … t={len(values)} {last}"
        muted = Style(dim=True)
        spark = Strip([Segment(sparkline(values, width), Style(color="green" if run is runs[-1] else "grey50"))], width)
        lines = [spark]
        if height >= 2:
            lines.append(Strip([Segment(clip_end(ends, width), muted)]).adjust_cell_length(width))
        if height >= 3:
            hint = next((h for h in _ENLARGE if len(h) <= width), _ENLARGE[-1])  # whole words where they fit
            lines.append(Strip([Segment(clip_end(hint, width), muted)]).adjust_cell_length(width))
        return [*lines, *[Strip.blank(width)] * (height - len(lines))][:height]

    def draw(self, plt: Plot) -> None:
        curves = self._curves()
        if not curves:  # (_build says why instead)
            return
        low = min(float(values.min()) for _, _, _, values, _ in curves)
        high = max(float(values.max()) for _, _, _, values, _ in curves)
        length = max(len(run.latest_time_grad or ()) for run, *_ in curves)
        # (No labels: the legend is drawn above the plot, where it covers no curve.)
        for run, color, t, values, _ in curves:
            plt.plot(t.tolist(), values.tolist(), color=color, marker="braille")
        plt.yscale("log")
        # The axis spans every time step, not only those with a value to plot: a curve that starts at
        # t=41 of 50 must start near the right edge.
        plt.xlim(1, max(length, 2))
        plt.xticks(*step_ticks(1, length, 4))
        bottom = math.log10(low)
        if any(zeros for *_, zeros in curves):
            # Time steps that get exactly nothing back (saturated units) have no place on a log axis:
            # they are dotted along a floor below the lowest value, as the heatmap dots an exact 0.
            bottom -= 0.12 * max(1.0, math.log10(high) - math.log10(low))
            floor = 10**bottom
            for _, color, _, _, zeros in curves:
                if zeros:
                    plt.scatter(zeros, [floor] * len(zeros), color=color, marker=ZERO_GLYPH)
        bottom, top, ticks = decade_rows(bottom, math.log10(high), self._data_rows())
        plt.ylim(bottom, top)  # (plotext's log axis takes its limits in log10)
        plt.yticks([10.0**k for k in ticks], [f"1e{k}" for k in ticks])
        plt.xlabel("time step t")

    def _data_rows(self) -> int:
        """Rows of the plot's data area: the plot's height less its frame, step ticks and axis label."""
        return max(1, (self._plot_height or self.size.height) - 4)


def decade_rows(bottom: float, high: float, rows: int, count: int = 3) -> tuple[float, float, list[int]]:
    """The y-range (log10) of a plot ``rows`` rows high for curves from ``bottom`` to ``high``, and up
    to ``count`` whole-decade ticks, evenly spaced, each on a whole row.

    plotext puts a value on row ``floor(0.5 + (rows - 1) * (y - low) / (top - low))``: decades 11 apart,
    put where they fell, landed 1 and 2 rows apart on a plot of 6 rows. Here the highest tick is the
    decade at or above ``high``, on the row under the top one (a curve on the frame's top edge reads as
    cut off there), the others ``every`` rows apart below it, and the range is stretched downwards so
    that each lands exactly on its row."""
    steps = max(rows - 2, 1)  # rows from the lowest to the highest tick's, at most
    first = math.ceil(high - 1e-9)
    span = max(first - bottom, 1e-9)
    count = max(1, min(count, steps + 1, 2 if span <= 1 else count))
    if count == 1:
        return first - max(span, 1.0), first + max(span, 1.0) / 2, [first]
    decades = max(1, math.ceil(span / (count - 1) - 1e-9))  # between two ticks
    every = steps // (count - 1)  # rows between two ticks
    per_row = decades / every
    low = first - per_row * steps
    return low, first + per_row, [first - i * decades for i in range(count)][::-1]



def _message(text: str, width: int, height: int) -> list[Strip]:
    """``text`` wrapped to ``width`` and centred vertically, dimmed."""
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    lines = [clip_end(x, width) for x in lines][: max(1, height)]
    top = max(0, (height - len(lines)) // 2)
    muted = Style(dim=True)
    strips = [Strip.blank(width)] * top + [Strip([Segment(x.center(width), muted)]).adjust_cell_length(width) for x in lines]
    return (strips + [Strip.blank(width)] * height)[:height]
