"""How far back in time the gradient reaches: |dL/dh_t| per time step, for recurrent presets.

The current run's latest measurement is drawn with the previous run's beside it, so switching the
cell from rnn to lstm shows the difference at once.
"""

from __future__ import annotations

import math

import numpy as np
from textual_plotext.plot import Plot

from vgp_tui.dashboard.plot_panel import PlotPanel
from vgp_tui.dashboard.ticks import step_ticks, value_ticks
from vgp_tui.engine.history import History


class TimeGradientPlot(PlotPanel):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.history: History | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self.border_title = "Gradient through time"

    def show(self, history: History) -> None:
        self.history = history
        current = history.current
        label = current.time_view if current else None
        self.border_title = f"|{label}| per time step" if label else "Gradient through time"
        self.redraw()

    def draw(self, plt: Plot) -> None:
        history = self.history
        if history is None:
            return
        current = history.current
        drawn = False
        low, high = math.inf, -math.inf
        runs = [r for r in history.ghosts()[-1:] if r.latest_time_grad is not None and r.time_view]
        if current is not None and current.latest_time_grad is not None:
            runs.append(current)
        for run in runs:
            values = np.asarray(run.latest_time_grad, dtype=float)
            t = np.arange(1, len(values) + 1)
            keep = np.isfinite(values) & (values > 0)
            if keep.sum() < 1:
                continue
            color = "green" if run is current else "gray"
            cell = run.remedies.get("cell", "")
            plt.plot(t[keep].tolist(), values[keep].tolist(), color=color, label=f"run {run.run} {cell}", marker="braille")
            drawn = True
            low, high = min(low, float(values[keep].min())), max(high, float(values[keep].max()))
            length = len(values)
        if drawn:
            plt.yscale("log")
            plt.xticks(*step_ticks(1, length, 4))
            plt.yticks(*value_ticks(low, high, log=True, count=3))
            plt.xlabel("time step t")
        else:
            # Measured but nothing plottable (a run that diverged has only NaN/Inf) is not the same as
            # not measured yet.
            plt.title("no finite values to plot (NaN/Inf)" if runs else "measured every few steps…")
            plt.frame(False)
            plt.xaxes(False)
            plt.yaxes(False)
