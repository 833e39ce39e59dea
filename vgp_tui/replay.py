"""Replay: a recording's events fed to the dashboard at their recorded pace, as if training were live.

A :class:`ReplaySource` stands where a training session stands: it has sinks, a command queue and a
blocking ``run`` loop for the app's worker thread, and it puts the recorded events on the same feed.
Space pauses, seeking jumps the playback clock (backwards by rewinding the History and feeding the
events again up to the new time), and ``follow`` tails a file another process is still writing, as
``tail -F`` does: it waits for the file to appear, starts at the live end of what is written, shows
new records as soon as they are read, and starts over when the file is replaced or rewritten.
No Textual here: the app only sees events.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vgp_tui.engine.events import Event, KeyPressed, RunStarted, SessionHeader, StateChanged, StepMetrics
from vgp_tui.engine.recording import RecordingError, RecordingReader
from vgp_tui.source import Playback, Rewind, Sink

__all__ = ["FromStart", "ReplaySource", "Rewind", "Seek", "SetSpeed", "StopReplay", "ToEnd", "TogglePause"]


@dataclass(frozen=True)
class TogglePause:
    pass


@dataclass(frozen=True)
class Seek:
    """Move the playback clock by ``seconds`` of recording time (negative goes back)."""

    seconds: float


@dataclass(frozen=True)
class SetSpeed:
    factor: float
    """Multiply the playback speed by this."""


@dataclass(frozen=True)
class FromStart:
    """Go back to the first record and play on from there at the current speed."""


@dataclass(frozen=True)
class ToEnd:
    """Jump to the last record read; with ``follow`` that is the live end, where new records show at once."""


@dataclass(frozen=True)
class StopReplay:
    pass


MIN_SPEED, MAX_SPEED = 1 / 64, 1024.0


class ReplaySource:
    """Plays a recording into its sinks.

    Args:
        path: the recording.
        speed: recording seconds per wall second.
        follow: keep reading what another process appends, like ``tail -F``: the file may not exist
            yet; playing starts at the end of what is written; records read at the end are shown at
            once, whatever their times; a file replaced or rewritten from its start is played afresh.
        until_step: feed everything up to this step of the last run at once, then stop (screenshots);
            ``shortfall`` says so when the recording has no such step, or a GradScaler skipped it.
        until_run: with ``until_step``, the step of this run instead of the last one reaching it (a
            later run that passed the step would otherwise hide an earlier run's frame).
    """

    def __init__(self, path: str | Path, speed: float = 1.0, follow: bool = False, until_step: int | None = None,
                 until_run: int | None = None) -> None:
        self.path = Path(path)
        self.reader = RecordingReader(self.path, wait=follow)
        self.events: list[Event] = []
        if not follow:  # read at once, so that a bad file fails before the screen opens
            self.events = list(self.reader.read_available())
            self.reader.finish()
        self.speed = speed
        self.follow = follow
        self.until_step = until_step
        self.until_run = until_run
        self.sinks: list[Sink] = []
        self.commands: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.paused = False
        self.commands_applied = 0
        self.position = 0
        """Index of the next event to feed."""
        self.clock = self._start_time()
        """Recording time shown so far."""
        self.ended = False
        self.error: str | None = None
        """With ``follow``: why following stopped (the file that appeared is not a recording)."""
        self.shortfall: str | None = None
        """With ``until_step``: why the frame is not at that step (the recording ends before it, or the
        step was skipped by a GradScaler, so the panels show the last step drawn before it)."""
        self._to_live_end = follow
        """Jump to the end of what is written once the header is read (start of a follow)."""
        self._paused_at_end = False
        self._told: Playback | None = None

    # -- what the dashboard asks of a source ---------------------------------------------------------
    @property
    def header(self) -> SessionHeader | None:
        return self.reader.header

    @property
    def waiting(self) -> bool:
        """Following a file that does not exist yet (or has no whole header line yet)."""
        return self.header is None and self.error is None

    @property
    def name(self) -> str:
        if self.header is not None and self.header.preset:
            return self.header.preset
        first = next((e for e in self.events if isinstance(e, RunStarted) and e.preset), None)
        return first.preset if first else self.path.name  # type: ignore[union-attr]

    @property
    def device(self) -> str:
        return self.header.device if self.header is not None and self.header.device else "–"

    @property
    def data_label(self) -> str:
        if self.error is not None:
            return f"{self.path.name}: not a recording"
        if self.waiting:
            return f"waiting for {self.path}…"
        label = f"replay of {self.path.name}"
        if self.reader.last_line is not None:  # stays on screen after the warning's toast has gone
            label += f" · only up to line {self.reader.last_line}"
        return label

    @property
    def warning(self) -> str | None:
        return self.error or self.reader.warning

    def initial_remedies(self) -> dict[str, Any]:
        first = next((e for e in self.events if isinstance(e, RunStarted)), None)
        return dict(first.remedies) if first else {}

    def send(self, command: Any) -> None:
        self.commands.put(command)

    def playback(self) -> Playback:
        """Where the replay stands now (the screen gets it as a feed item, never by reading these)."""
        length = self.length
        return Playback(
            speed=self.speed, paused=self.paused, ended=self.ended,
            following=self.follow and self.error is None and self.position >= len(self.events) and not self.waiting,
            waiting=self.waiting, warning=self.warning, label=self.data_label, name=self.name, device=self.device,
            commands_applied=self.commands_applied, length=length,
            reached=None if length is None else float(math.floor(min(self.clock, length))),  # (told once a second)
        )

    @property
    def length(self) -> float | None:
        """The time of the recording's last record (it was read whole), None with ``follow`` (it grows)."""
        if self.follow:
            return None
        return next((float(t) for event in reversed(self.events) if (t := getattr(event, "t", None)) is not None), None)

    def _tell(self) -> None:
        """Put the playback state on the sinks when it changed since last told."""
        state = self.playback()
        if state != self._told:
            self._told = state
            self._emit([state])

    # -- the worker thread ---------------------------------------------------------------------------
    def _start_time(self) -> float:
        for event in self.events:
            t = getattr(event, "t", None)
            if t is not None:
                return float(t)
        return 0.0

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        if self.until_step is not None:
            self._emit(self._take_until_step(self.until_step, self.until_run))
            self.ended = True
            self._tell()
            return
        last = time.monotonic()
        while not stop.is_set():
            if not self._apply_commands():
                return
            now = time.monotonic()
            if not self.paused:
                self.clock += (now - last) * self.speed
            last = now
            if self.follow and self.error is None:
                self._read_more()
            batch = self._take_until(self.clock)
            if batch:
                self._emit(batch)
            if self.position >= len(self.events) and not self.follow and not self.ended:
                self.ended = True
            self._tell()
            time.sleep(0.05)

    def _read_more(self) -> None:
        at_end = self.position >= len(self.events)
        try:
            new = list(self.reader.read_available())
        except RecordingError as exc:  # the file that appeared is not a recording
            self._stop_following(str(exc))
            return
        if new:
            self.events.extend(new)
        elif self.reader.replaced():
            self._reopen()
            return
        if self.header is None:
            return
        if self._to_live_end:
            # Start where the writer is, with everything before it in the History (as a live
            # dashboard would have it), instead of replaying from the first step at the recorded pace.
            self._to_live_end = False
            self._go_to_end()
        elif new and at_end and not self.paused:
            self._go_to_end()  # live: show a record as soon as it is read, whatever its time says

    def _reopen(self) -> None:
        """The file was replaced or rewritten: start over with what it holds now."""
        self.reader.close()
        try:
            self.reader = RecordingReader(self.path, wait=True)
        except RecordingError as exc:
            self._stop_following(str(exc))
            return
        self.events = []
        self.position = 0
        self.clock = 0.0
        self._to_live_end = True
        self._emit([Rewind()])

    def _stop_following(self, message: str) -> None:
        self.error = message
        self.ended = True

    def _apply_commands(self) -> bool:
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return True
            if isinstance(command, StopReplay):
                return False
            self.commands_applied += 1
            if isinstance(command, TogglePause):
                self.paused = not self.paused
                if self.paused:
                    self._paused_at_end = self.follow and self.position >= len(self.events)
                elif self._paused_at_end:
                    self._go_to_end()  # paused while live: resume live, not behind the writer
            elif isinstance(command, SetSpeed):
                self.speed = min(MAX_SPEED, max(MIN_SPEED, self.speed * command.factor))
            elif isinstance(command, Seek):
                self._seek(command.seconds)
            elif isinstance(command, FromStart):
                self._from_start()
            elif isinstance(command, ToEnd):
                self._go_to_end()

    def _seek(self, seconds: float) -> None:
        shown = self.clock
        if self.events:  # at the end the clock runs on; a seek counts from the last record shown
            shown = min(shown, self._time_of(self.events[-1]))
        target = max(self._start_time(), shown + seconds)
        if self.events:
            target = min(target, self._time_of(self.events[-1]))
        if target < shown:
            self.position = 0
            self._emit([Rewind()])
            self.ended = False
            self._paused_at_end = False  # the user went back: a resume plays on from here, not live
        self.clock = target
        batch = self._take_until(self.clock)
        if batch:
            self._emit(batch)

    def _from_start(self) -> None:
        self.position = 0
        self.clock = self._start_time()
        self.ended = False
        self._paused_at_end = False
        self._emit([Rewind()])
        batch = self._take_until(self.clock)
        if batch:
            self._emit(batch)

    def _go_to_end(self) -> None:
        """Feed everything read so far at once (by position: times out of order do not hold it up)."""
        batch = self.events[self.position:]
        self.position += len(batch)
        if batch:
            # The clock to the last record's time, back too: a follow's clock ran on while it waited
            # for the writer, and standing ahead of the writer's times, a pause fed what came next.
            self.clock = max(self._time_of(e) for e in batch)
            self._emit(batch)

    @staticmethod
    def _time_of(event: Event) -> float:
        return float(getattr(event, "t", 0.0))

    def _take_until(self, clock: float) -> list[Event]:
        start = self.position
        end = start
        events = self.events
        while end < len(events) and self._time_of(events[end]) <= clock:
            end += 1
        self.position = end
        return events[start:end]

    @property
    def runs(self) -> list[int]:
        """The run numbers the recording (as read so far) starts."""
        return [e.run for e in self.events if isinstance(e, RunStarted)]

    def _take_until_step(self, step: int, run: int | None = None) -> list[Event]:
        """Every event up to where the last run that reaches ``step`` (or run ``run``) reached it."""
        events = self.events
        hits = [i for i, e in enumerate(events)
                if isinstance(e, StepMetrics) and e.step >= step and (run is None or e.run == run)]
        if not hits and run is not None:
            self.shortfall = self._describe_shortfall(step, run)
            ends = [i for i, e in enumerate(events) if isinstance(e, StepMetrics) and e.run == run]
            if ends:  # the frame of the run's last step
                hits = ends[-1:]
            else:  # the run as it started, before the next one
                start = next(i for i, e in enumerate(events) if isinstance(e, RunStarted) and e.run == run)
                self.position = next((i for i, e in enumerate(events) if i > start and isinstance(e, RunStarted)),
                                     len(events))
                return events[:self.position]
        if not hits:
            self.position = len(events)
            self.shortfall = self._describe_shortfall(step)
            return list(events)
        first_steps: dict[int, int] = {}
        for e in events:
            if isinstance(e, StepMetrics):
                first_steps.setdefault(e.run, e.step)
        # The last run that reaches the step from below: a run resumed at a later step has not "reached" it.
        reaching = [i for i in hits if first_steps[events[i].run] <= step] or hits  # type: ignore[union-attr]
        last_run = events[reaching[-1]].run  # type: ignore[union-attr]
        end = next(i for i in hits if events[i].run == last_run)  # type: ignore[union-attr]
        shown = events[end]
        if shown.step > step and not any(isinstance(e, StepMetrics) and e.run == last_run  # type: ignore[union-attr]
                                         for e in events[:end]):
            # A run resumed from a checkpoint starts at a later step (Recorder's first_step).
            self.shortfall = (f"{self.path} has no step {step} in run {last_run}: run {last_run} starts at step "
                              f"{shown.step}; the frame shows step {shown.step}")  # type: ignore[union-attr]
        if shown.skipped and self.shortfall is None:  # type: ignore[union-attr]
            # A skipped step is counted, not drawn: the panels show the step before it, which is not
            # what was asked for, so it is a shortfall like a missing step (a warning and status 1).
            # (A run that ends before the step already said so, naming the step drawn.)
            self.shortfall = self._describe_skipped(step, shown, end)  # type: ignore[arg-type]
        end += 1
        # What was recorded at that step after its measurement (the loop finished, a key was pressed)
        # belongs to its frame: a recording that ends there ends "finished", not "training".
        while (end < len(events) and isinstance(events[end], (StateChanged, KeyPressed))
               and events[end].run == shown.run and events[end].step <= shown.step):  # type: ignore[union-attr]
            end += 1
        self.position = end
        return events[:end]

    def _drawn(self, run: int, end: int) -> str:
        """What the frame shows of run ``run`` fed up to index ``end``. A step skipped by a GradScaler
        is not drawn: the status line reaches it, but the panels stay at the last step drawn before."""
        steps = [e for e in self.events[:end + 1] if isinstance(e, StepMetrics) and e.run == run]
        drawn = next((e for e in reversed(steps) if not e.skipped), None)
        if steps and not steps[-1].skipped:
            return f"the frame shows step {steps[-1].step}"
        return f"the panels show step {drawn.step}" if drawn is not None else "the panels show no step"

    def _describe_skipped(self, step: int, shown: StepMetrics, index: int) -> str:
        which = f"step {step}" if shown.step == step else f"step {shown.step} (there is no step {step})"
        return (f"{self.path}: {which} of run {shown.run} was skipped by the GradScaler (no gradients to draw); "
                f"{self._drawn(shown.run, index)}")

    def _describe_shortfall(self, step: int, run: int | None = None) -> str:
        last = next((e for e in reversed(self.events) if isinstance(e, StepMetrics) and run in (None, e.run)), None)
        shows = "" if last is None else self._drawn(last.run, len(self.events))  # (the last step may be skipped)
        read = "it" if self.reader.last_line is None else f"what can be read of it (up to line {self.reader.last_line})"
        if run is not None:
            if last is None:
                return f"{self.path} has no step {step} in run {run}: run {run} has no step records"
            return f"{self.path} has no step {step} in run {run}: run {run} ends at step {last.step}; {shows}"
        if last is None:
            return f"{self.path} has no step {step}: {read} has no step records; the frame shows none"
        return f"{self.path} has no step {step}: {read} ends at step {last.step} of run {last.run}; {shows}"

    def _emit(self, items: list[Any]) -> None:
        for sink in self.sinks:
            sink(items)

    def end(self) -> None:
        pass  # a replay shows what the file holds: it has nothing of its own to add at the end

    def close(self) -> None:
        self.reader.close()
