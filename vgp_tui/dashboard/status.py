"""The status line: preset, device, run, step, speed, probe cost, elapsed time and a state badge."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from vgp_tui.engine.history import History
from vgp_tui.text import thousands

BADGE_STYLES = {
    "training": "bold black on green",
    "paused": "bold black on yellow",
    "finished": "bold black on cyan",
    "diverged": "bold white on red",
    "error": "bold white on red",
    "replay": "bold black on magenta",
    "starting": "bold black on white",
}


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class StatusLine(Static):
    """One line at the top; redrawn on every tick (the clock moves even when training is paused)."""

    _shown: Text | None = None

    def show(self, history: History, preset: str, device: str, data_label: str, mode: str = "",
             state: str | None = None) -> None:
        """``state`` overrides the History's (``starting``, before the session exists)."""
        run = history.current
        latest = run.latest if run else None
        text = Text(no_wrap=True, overflow="ellipsis")
        state = state or history.state
        if mode:
            text.append(f" {mode.upper()} ", style=BADGE_STYLES["replay"])
        text.append(f" {state.upper()} ", style=BADGE_STYLES.get(state, "reverse"))
        text.append(f" {preset}", style="bold")
        text.append(f" · {device}")
        if run is not None:
            text.append(f" · run {run.run}")
            text.append(f" · step {thousands(latest.step if latest else 0)}")
        if latest is not None and latest.step_ms > 0:
            rate = 1000.0 / latest.step_ms
            # "1.0 steps/s" reads as a measurement; "1 steps/s" as a typo.
            shown = thousands(round(rate)) if rate >= 10 else f"{rate:.1f}"
            text.append(f" · {shown} steps/s")
            text.append(f" · probe {100.0 * latest.probe_ms / latest.step_ms:.1f}%")
        text.append(f" · {_clock(history.elapsed)}")
        if data_label:
            text.append(f" · {data_label}", style="dim")
        if text != self._shown:  # the same text again would still be repainted
            self._shown = text
            self.update(text, layout=False)  # one line, always: no layout pass
