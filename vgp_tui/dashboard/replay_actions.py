"""The keys of a replay (pause, seek, speed, start and end) and what the status line says of it.

A mixin of the app. The replay's state comes from its last ``Playback`` item on the feed, never from
the source's attributes, which change in the training thread.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from vgp_tui.replay import MAX_SPEED, MIN_SPEED, FromStart, Seek, SetSpeed, ToEnd, TogglePause
from vgp_tui.source import Playback


SETTLE_SECONDS = 0.1
SETTLE_TRIES = 100
"""A --screenshot-at frame reads the layout every SETTLE_SECONDS, at most this many times, until it settles."""
QUIET_SECONDS = 30.0
"""Following a file that has had no new record for this long, the status line says for how long."""
RECORDING_PAUSE_SECONDS = 2.0
"""Recording seconds without a record after which a replay is in a pause of the recorded job (its
last step's rate is no longer shown as the rate of now)."""


def _duration(seconds: float) -> str:
    """``45 s``, ``3 min``, ``2 h``: whole units, as a glance needs."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


class ReplayActions:
    replay: bool
    playback: Playback
    screenshot_to: Path | None
    exit_at_end: bool
    _warned: str
    _ending: bool
    _drew_the_end: bool
    fed_at: float
    _drawn: dict[str, Any]
    session: Any
    notify: Any
    clear_toasts: Any
    only_toast: Any
    replay_commands_sent: int
    call_after_refresh: Any
    set_timer: Any
    save_screenshot: Any
    history: Any
    _share_layer_rows: Any
    layout_signature: Any
    exit: Any

    def _tell_replay(self, command: Any) -> None:
        self.session.send(command)
        self.replay_commands_sent += 1

    def take_playback(self, report: Playback) -> None:
        """The replay's report, less the pause and speed that keys sent after it changed (the next key
        reads those: three spaces said "paused", "resumed", "paused" though a report came between)."""
        if report.commands_applied < self.replay_commands_sent:
            report = dataclasses.replace(report, paused=self.playback.paused, speed=self.playback.speed)
        self.playback = report

    def toggle_replay_pause(self) -> None:
        self._tell_replay(TogglePause())
        # Taken as done at once: the replay's own report comes up to 50 ms later, and a second key
        # before it read the old state (three spaces said "paused" three times).
        self.playback = dataclasses.replace(self.playback, paused=not self.playback.paused)
        self.only_toast("replay paused" if self.playback.paused else "replay resumed", timeout=2)

    def action_seek(self, seconds: float) -> None:
        self._tell_replay(Seek(seconds * max(1.0, self.playback.speed)))

    def action_replay_jump(self, where: str) -> None:
        self._tell_replay(FromStart() if where == "start" else ToEnd())
        self.only_toast("from the first record" if where == "start" else "to the last record", timeout=2)

    def action_speed(self, factor: float) -> None:
        self._tell_replay(SetSpeed(factor))
        speed = min(MAX_SPEED, max(MIN_SPEED, self.playback.speed * factor))
        self.playback = dataclasses.replace(self.playback, speed=speed)  # (as the pause: the next key reads it)
        self.only_toast(f"speed ×{speed:g}", timeout=2)

    def quiet_for(self) -> float | None:
        """Seconds a followed file has had no new record, once that is QUIET_SECONDS or more; else None."""
        if not (self.replay and self.playback.following):
            return None
        quiet = time.monotonic() - self.fed_at
        return quiet if quiet >= QUIET_SECONDS else None

    def in_recording_pause(self) -> bool:
        """A replay whose clock is RECORDING_PAUSE_SECONDS or more past the last record shown: the
        recorded job paused there (an evaluation, a checkpoint), and the replay plays the pause."""
        reached = self.playback.reached if self.replay else None
        return reached is not None and reached - self.history.elapsed >= RECORDING_PAUSE_SECONDS

    def _mode(self) -> str:
        if not self.replay:
            return ""
        playback = self.playback
        if self.screenshot_to is not None:
            return "replay"
        if playback.waiting:
            return "waiting"
        if playback.following:
            # A writer killed with -9 leaves no end record: the screen said "following" forever. How
            # long nothing came says it without a guess (an evaluation may be all it is).
            quiet = self.quiet_for()
            return "following" if quiet is None else f"following · quiet {_duration(quiet)}"
        if playback.ended:
            return "replay ended"
        return f"replay ×{playback.speed:g}" + (" paused" if playback.paused else "")

    def _replay_housekeeping(self) -> None:
        """Say what was wrong with the file; quit or take the screenshot once the replay is done."""
        warning = self.playback.warning
        if warning and warning != self._warned:
            self._warned = warning  # a followed file that is rewritten may bring a new one
            self.notify(warning, severity="warning", timeout=15)
        if not self.playback.ended:
            self._drew_the_end = False
            return
        if not self._drew_the_end:
            # The last frame is what a cast holds and a screenshot keeps: every panel draws the final
            # records now, whatever its cadence (the loss plot's 1 s once left a cast ending on a
            # frame from before the last run's steps: an empty heatmap, "waiting for the first step").
            self._drew_the_end = True
            self._drawn.clear()
        if self._ending:
            return
        if self.screenshot_to is not None:
            self._ending = True
            self.call_after_refresh(self._settle_then_screenshot, None, 0)
        elif self.exit_at_end:
            self._ending = True
            # The last frame is the one a cast holds longest: the recording's, not a toast over the
            # heatmap's legend (a recorded key of its last seconds, or its divergence).
            self.clear_toasts()
            self.set_timer(1.0, self.exit)

    def _settle_then_screenshot(self, before: Any, tries: int) -> None:
        """The frame once the screen has settled: the same layout (the panels' sizes for this run's
        layers, the layer rows shared from them, the footer's keys) after two refreshes running.

        Taken at the first tick that had the records (on a loaded machine the whole replay arrives in
        one), the frame caught the panels still sized for no layers: a 9-layer MLP's heatmap on 3
        merged rows, a tall loss plot, no footer. Two timer ticks can run back to back with no
        refresh between them on such a machine, so the layout is read after refreshes, not ticks.
        (At most SETTLE_TRIES: a frame that cannot settle is taken all the same.)"""
        layout = self.layout_signature()
        if (layout is None or layout != before) and tries < SETTLE_TRIES:
            self.set_timer(SETTLE_SECONDS, lambda: self.call_after_refresh(self._settle_then_screenshot, layout, tries + 1))
            return
        self._final_screenshot()

    def _final_screenshot(self) -> None:
        # The layer panels have their sizes for this run only now: share their rows before the frame
        # is taken, or the flow and the heatmap could group the layers differently in it.
        self._share_layer_rows()
        self.clear_toasts()  # a frame shows the recording, not toasts about it
        self.call_after_refresh(self._save_final_screenshot)

    def _save_final_screenshot(self) -> None:
        assert self.screenshot_to is not None
        try:
            self.save_screenshot(filename=self.screenshot_to.name, path=str(self.screenshot_to.parent))
        except OSError as exc:  # a full disk: the command line says so in one line
            self.screenshot_error = exc.strerror or str(exc)
        self.exit()
