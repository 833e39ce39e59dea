"""The loss plot: the current run, earlier runs as labelled ghosts, markers where a live remedy changed."""

from __future__ import annotations

import math

import numpy as np
from textual_plotext import PlotextPlot

from vgp_tui.engine.history import LOSS, History

GHOST_COLORS = ("gray", "magenta", "cyan", "yellow", "blue", "red", "white")


class LossPlot(PlotextPlot):
    """Redrawn from History views sized to the plot's width, so it never plots more points than columns."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.log_scale = True

    def on_mount(self) -> None:
        super().on_mount()
        self.border_title = "Loss"

    def show(self, history: History) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        width = max(self.size.width - 12, 10)
        current = history.current
        if current is None or current.steps == 0:
            plt.title("waiting for the first steps…")
            self.refresh()
            return
        for i, ghost in enumerate(reversed(history.ghosts())):
            self._line(ghost, width, GHOST_COLORS[i % len(GHOST_COLORS)], ghost.label)
        self._line(current, width, "green", f"{current.label} (now)")
        for marker in current.markers:
            plt.vline(marker.step, "red" if marker.kind in ("diverged", "error") else "orange")
        plt.yscale("log" if self.log_scale else "linear")
        plt.xlabel("step")
        self.border_title = f"Loss · {'log' if self.log_scale else 'linear'} axis [y]"
        self.refresh()

    def _line(self, run: object, width: int, color: str, label: str) -> None:
        view = run.series.view(width)  # type: ignore[attr-defined]
        steps = view.last_step.astype(float)
        loss = view.mean[:, LOSS]
        keep = np.isfinite(loss) & ((loss > 0) if self.log_scale else True)
        if not keep.any():
            return
        self.plt.plot(steps[keep].tolist(), loss[keep].tolist(), color=color, label=label, marker="braille")


def finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
