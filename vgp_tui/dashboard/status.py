"""The status line: preset, device, run, step, skipped and clipped steps, speed, probe cost, elapsed time and a state badge."""

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


def _short_clock(seconds: float) -> str:
    """``0:07``, ``12:40``, ``1:02:03``: the clock without its leading zeros, where the line is narrow."""
    seconds = int(seconds)
    hours, minutes = seconds // 3600, seconds % 3600 // 60
    return f"{hours}:{minutes:02d}:{seconds % 60:02d}" if hours else f"{minutes}:{seconds % 60:02d}"


class StatusLine(Static):
    """One line at the top; redrawn on every tick (the clock moves even when training is paused)."""

    _shown: Text | None = None

    def show(self, history: History, preset: str, device: str, data_label: str, mode: str = "",
             state: str | None = None, mark: str = "", stale: bool = False, length: float | None = None,
             reached: float | None = None) -> None:
        """``state`` overrides the History's (``starting``, before the session exists). ``mark``
        follows the preset's name where ``data_label``, which says the same, is left out (or says
        something else: a replay's names the file). ``stale``: nothing has come for a while (a
        followed file gone quiet, a paused replay), so the last step's rate is not one of now. ``length``: a replay's
        recording time in all, shown after the time reached ("00:00:12 / 00:00:32": how far ←/→ go).
        ``reached``: the replay's clock, which runs on through a pause of the recording where no record
        comes (without it, the time of the last record shown)."""
        run = history.current
        latest = run.latest if run else None
        state = state or history.state
        # (text, style, rank): where the line is too narrow, the highest ranks are left out, so that
        # it never ends cut in the middle of a field or on a dangling separator. A field may be given
        # as alternatives, longest first: the longest that fits is shown.
        parts: list[tuple[str | tuple[str, ...], str, int]] = []
        if mode:
            parts.append((f" {mode.upper()} ", BADGE_STYLES["replay"], 0))
        parts.append((f" {state.upper()} ", BADGE_STYLES.get(state, "reverse"), 0))
        named = len(parts)
        parts.append((f" {preset}", "bold", 0))
        parts.append((f" · {device}", "", 3))
        if run is not None:
            parts.append((f" · run {run.run}", "", 1))
            # The step reached, skipped or not: the skipped count beside it is of the steps up to it.
            parts.append((f" · step {thousands(run.reached)}", "", 0))
            if run.skipped_steps:
                # The steps a mixed-precision scaler skipped are not drawn (nothing was applied): without
                # this, an AMP run's overflows left no trace on screen. Ranked next after the run number: it
                # says how to read the step count beside it, more than the device or the rate does.
                parts.append((f" · {thousands(run.skipped_steps)} skipped", "", 2))
            if run.clipped_steps:
                # How often clipping scaled the gradient down: a safety net, or every step of the
                # training? (A user's own step(clip=) left no other trace on screen.)
                parts.append((f" · {thousands(run.clipped_steps)} clipped", "", 2))  # (over a replay's file name)
        # (Paused, or stale: nothing runs at that rate now.)
        if latest is not None and latest.step_ms > 0 and state != "paused" and not stale:
            rate = 1000.0 / latest.step_ms
            # "1.0 steps/s" reads as a measurement; "1 steps/s" as a typo.
            shown = thousands(round(rate)) if rate >= 10 else f"{rate:.1f}"
            parts.append((f" · {shown} steps/s", "", 4))
            parts.append((f" · probe {100.0 * latest.probe_ms / latest.step_ms:.1f}%", "", 5))
        if length is None:
            parts.append((f" · {_clock(history.elapsed)}", "", 6))
        else:  # (where a replay is and how far it goes, what the seek keys move: before the file name)
            at = max(history.elapsed, reached or 0.0)  # (a screenshot's records come without the clock)
            parts.append(((f" · {_clock(at)} / {_clock(length)}", f" · {_short_clock(at)}/{_short_clock(length)}"),
                          "", 2))
        labelled = None
        if data_label:
            # A live session's data set is the first to go; a replay's label names the file and what
            # of it is missing ("only up to line N"), and while waiting for the file it is all there is.
            labelled = len(parts)
            parts.append((f" · {data_label}", "dim", 0 if mode == "waiting" else 2 if mode else 7))
        width = self.size.width or sum(len(_longest(t)) for t, _, _ in parts)
        kept = _fitting(parts, width)
        if mark and (mode or labelled not in kept):  # (a replay's label is the file's, not the data's)
            parts[named] = (f" {preset}{mark}", "bold", 0)
            kept = _fitting(parts, width)
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (part, style, rank) in enumerate(parts):
            if rank == 0 or i in kept:
                text.append(kept.get(i, _longest(part)), style=style or None)
        if text != self._shown:  # the same text again would still be repainted
            self._shown = text
            self.update(text, layout=False)  # one line, always: no layout pass


def _longest(text: str | tuple[str, ...]) -> str:
    return text if isinstance(text, str) else text[0]


def _fitting(parts: list[tuple[str | tuple[str, ...], str, int]], width: int) -> dict[int, str]:
    """The parts of rank above 0 that fit in ``width`` beside those of rank 0 (always shown: the
    ellipsis cuts the end), the most important first, each with the text it is shown as: the
    longest of its alternatives that fits."""
    room = width - sum(len(_longest(t)) for t, _, rank in parts if rank == 0)
    kept = {}
    for i in sorted((i for i, part in enumerate(parts) if part[2]), key=lambda i: parts[i][2]):
        shown = next((t for t in ((parts[i][0],) if isinstance(parts[i][0], str) else parts[i][0]) if len(t) <= room), None)
        if shown is not None:
            kept[i] = shown
            room -= len(shown)
    return kept
