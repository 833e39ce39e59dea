"""Gradient flow: the current per-layer gradient norms as horizontal bars on a log scale.

Drawn with Rich rather than plotext: a bar per layer with its name and value needs one text row per
layer and exact control of the labels, which plotext's bar chart (ticks picked by plotext, no per-bar
value labels on a log axis) does not give in a 30-column panel.
"""

from __future__ import annotations

import math

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from vgp_tui.dashboard.heatmap import merge_layers
from vgp_tui.engine.history import RunHistory

BLOCKS = " ▏▎▍▌▋▊▉█"


def fmt_norm(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf"
    if x == 0:
        return "0"
    return f"{x:.0e}".replace("e-0", "e-").replace("e+0", "e+")


def bar(fraction: float, width: int) -> str:
    """A bar ``fraction`` (0..1) of ``width`` cells long, in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (BLOCKS[part] if part else "")).ljust(width)


class GradientFlow(Widget):
    """Bars of log10 |g| for each layer (input side at the top), scaled to the run's current span.

    Drawn through the line API from segments with fixed styles: the bars move four times a second,
    and turning a Rich ``Text`` into Textual ``Content`` each time cost more than computing them.
    """

    _STYLES = {name: Style.parse(name) for name in ("dim", "green", "yellow", "red", "bold magenta")}

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._norms: tuple[float, ...] | None = None
        self._layers: tuple[str, ...] = ()
        self._built_for: object = None
        self._strips: list[Strip] = []

    def on_mount(self) -> None:
        self.border_title = "Gradient flow · |g| now"

    def show(self, run: RunHistory | None) -> None:
        latest = run.latest if run is not None else None
        self._norms = tuple(latest.grad_norm) if latest is not None else None
        self._layers = run.layers if run is not None else ()
        self._built_for = None
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        base = self.rich_style
        key = (width, height, base)
        if key != self._built_for:
            self._built_for = key
            self._strips = [Strip(line).adjust_cell_length(width, base) for line in self.lines(width, height, base)]
        return self._strips[y] if 0 <= y < len(self._strips) else Strip.blank(width, base)

    def lines(self, width: int, height: int, base: Style = Style.null()) -> list[list[Segment]]:
        """The panel's rows as segments: one bar per (merged) layer, or a waiting message."""
        if self._norms is None:
            return [[Segment("waiting…", base)]]
        # Merged the way the heatmap merges its rows (largest norm wins, NaN over Inf over numbers),
        # so both panels label the same layers alike.
        merged, names = merge_layers(np.asarray([self._norms], dtype=float), self._layers, max(height, 1))
        values = merged[:, 0].tolist()
        logs = [math.log10(v) for v in values if math.isfinite(v) and v > 0]
        low = min(logs) if logs else -1.0
        high = max(logs) if logs else 0.0
        low = min(low, high - 1.0)
        label_width = min(max(len(n) for n in names), 14)
        bar_width = max(width - label_width - 8, 3)
        styles = {name: base + style for name, style in self._STYLES.items()}
        rows = []
        for name, value in zip(names, values):
            if math.isfinite(value) and value > 0:
                fraction = (math.log10(value) - low + 0.05 * (high - low)) / (1.05 * (high - low))
                color = "green" if fraction > 0.5 else ("yellow" if fraction > 0.2 else "red")
                drawn = Segment(bar(fraction, bar_width), styles[color])
            else:
                drawn = Segment(("×" if not math.isfinite(value) else "·").ljust(bar_width), styles["bold magenta"])
            label = Segment(name[:label_width].rjust(label_width) + " ", styles["dim"])
            rows.append([label, drawn, Segment(f" {fmt_norm(value):>6}", base)])
        return rows
