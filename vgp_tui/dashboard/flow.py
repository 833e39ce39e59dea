"""Gradient flow: the current per-layer gradient norms as horizontal bars on a log scale.

Drawn with Rich rather than plotext: a bar per layer with its name and value needs one text row per
layer and exact control of the labels, which plotext's bar chart (ticks picked by plotext, no per-bar
value labels on a log axis) does not give in a 30-column panel.
"""

from __future__ import annotations

import math

import numpy as np
from rich.text import Text
from textual.widgets import Static

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


class GradientFlow(Static):
    """Bars of log10 |g| for each layer (input side at the top), scaled to the run's current span."""

    def on_mount(self) -> None:
        self.border_title = "Gradient flow · |g| now"

    def show(self, run: RunHistory | None) -> None:
        if run is None or run.latest is None:
            self.update("waiting…")
            return
        rows = max(self.size.height, 1)
        # Merged the way the heatmap merges its rows (largest norm wins, NaN over Inf over numbers),
        # so both panels label the same layers alike.
        merged, names = merge_layers(np.asarray([run.latest.grad_norm], dtype=float), run.layers, rows)
        values = merged[:, 0].tolist()
        logs = [math.log10(v) for v in values if math.isfinite(v) and v > 0]
        low = min(logs) if logs else -1.0
        high = max(logs) if logs else 0.0
        low = min(low, high - 1.0)
        label_width = min(max(len(n) for n in names), 14)
        bar_width = max(self.size.width - label_width - 8, 3)
        text = Text(no_wrap=True, overflow="crop")
        for i, (name, value) in enumerate(zip(names, values)):
            if i:
                text.append("\n")
            text.append(name[:label_width].rjust(label_width), style="dim")
            text.append(" ")
            if math.isfinite(value) and value > 0:
                fraction = (math.log10(value) - low + 0.05 * (high - low)) / (1.05 * (high - low))
                style = "green" if fraction > 0.5 else ("yellow" if fraction > 0.2 else "red")
                text.append(bar(fraction, bar_width), style=style)
            else:
                text.append(("×" if not math.isfinite(value) else "·").ljust(bar_width), style="bold magenta")
            text.append(f" {fmt_norm(value):>6}")
        self.update(text)
