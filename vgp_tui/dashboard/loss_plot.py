"""The loss plot: the current run, earlier runs as labelled ghosts, markers where a live remedy changed."""

from __future__ import annotations


import numpy as np
from textual_plotext.plot import Plot

from vgp_tui.dashboard.plot_panel import PlotPanel
from vgp_tui.dashboard.ticks import step_ticks, value_ticks
from vgp_tui.engine.history import LOSS, History, RunHistory
from vgp_tui.engine.remedies import describe, differences

GHOST_COLORS = ("gray", "magenta", "cyan", "yellow", "blue", "red", "white")


class LossPlot(PlotPanel):
    """Drawn from History views sized to the plot's width, so it never plots more points than columns."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.log_scale = True
        self.history: History | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self.border_title = "Loss"

    def show(self, history: History) -> None:
        self.history = history
        self.border_title = f"Loss · {'log' if self.log_scale else 'linear'} axis (y toggles)"
        self.redraw()

    def draw(self, plt: Plot) -> None:
        width = max(self.size.width - 12, 10)
        self._span: tuple[tuple[float, float], tuple[float, float]] | None = None
        history = self.history
        current = history.current if history is not None else None
        if history is None or current is None or current.steps == 0:
            plt.title("waiting for the first steps…")
            return
        label_width = max(12, self.size.width // 2 - 6)
        for i, ghost in enumerate(reversed(history.ghosts())):
            self._line(plt, ghost, width, GHOST_COLORS[i % len(GHOST_COLORS)], fit(ghost_label(ghost, current), label_width))
        self._line(plt, current, width, "green", f"run {current.run} (now)")
        for marker in current.markers:
            plt.vline(marker.step, "red" if marker.kind in ("diverged", "error") else "orange")
        plt.yscale("log" if self.log_scale else "linear")
        if self._span is not None:
            (x0, x1), (y0, y1) = self._span
            last_marker = max((marker.step for marker in current.markers), default=x1)
            if last_marker > x1:
                # A divergence comes after the last finite loss: the axis reaches it, and a little
                # beyond so that its line is not hidden under the frame.
                x1 = float(last_marker)
                plt.xlim(x0, x1 + max(1.0, 0.02 * (x1 - x0)))
            plt.xticks(*step_ticks(x0, x1))
            plt.yticks(*value_ticks(y0, y1, self.log_scale))

    def _line(self, plt: Plot, run: object, width: int, color: str, label: str) -> None:
        view = run.series.view(width)  # type: ignore[attr-defined]
        steps = view.last_step.astype(float)
        loss = view.mean[:, LOSS]
        keep = np.isfinite(loss) & ((loss > 0) if self.log_scale else True)
        if not keep.any():
            return
        xs, ys = steps[keep], loss[keep]
        plt.plot(xs.tolist(), ys.tolist(), color=color, label=label, marker="braille")
        span = ((float(xs.min()), float(xs.max())), (float(ys.min()), float(ys.max())))
        if self._span is not None:
            (a, b), (c, d) = self._span
            span = ((min(a, span[0][0]), max(b, span[0][1])), (min(c, span[1][0]), max(d, span[1][1])))
        self._span = span


def fit(label: str, width: int) -> str:
    """``label`` cut to ``width`` characters, with an ellipsis where it was cut."""
    return label if len(label) <= width else label[: width - 1] + "…"


def ghost_label(ghost: RunHistory, current: RunHistory) -> str:
    """``run 1: activation=sigmoid init=default``: what the earlier run had that the current one has not."""
    changed = differences(current.started_with, ghost.started_with)
    text = describe(changed)
    return f"run {ghost.run}: {text}" if text else f"run {ghost.run}: same remedies"
