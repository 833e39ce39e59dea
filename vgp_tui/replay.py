"""Replay: a recording's events fed to the dashboard at their recorded pace, as if training were live.

A :class:`ReplaySource` stands where a training session stands: it has sinks, a command queue and a
blocking ``run`` loop for the app's worker thread, and it puts the recorded events on the same feed.
Space pauses, seeking jumps the playback clock (backwards by rewinding the History and feeding the
events again up to the new time), and ``follow`` tails a file another process is still writing.
No Textual here: the app only sees events.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vgp_tui.engine.events import Event, RunStarted, StepMetrics
from vgp_tui.engine.recording import RecordingReader

Sink = Callable[[list[Any]], Any]


@dataclass(frozen=True)
class Rewind:
    """Feed marker: forget what was shown; the events that follow start again from the beginning."""


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
class StopReplay:
    pass


MIN_SPEED, MAX_SPEED = 1 / 64, 1024.0


class ReplaySource:
    """Plays a recording into its sinks.

    Args:
        path: the recording.
        speed: recording seconds per wall second.
        follow: keep reading what another process appends, like ``tail -f``.
        until_step: feed everything up to this step of the last run at once, then stop (screenshots).
    """

    def __init__(self, path: str | Path, speed: float = 1.0, follow: bool = False, until_step: int | None = None) -> None:
        self.path = Path(path)
        self.reader = RecordingReader(self.path)
        self.header = self.reader.header
        assert self.header is not None
        self.events: list[Event] = list(self.reader.read_available())
        if not follow:
            self.reader.finish()
        self.speed = speed
        self.follow = follow
        self.until_step = until_step
        self.sinks: list[Sink] = []
        self.commands: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.paused = False
        self.position = 0
        """Index of the next event to feed."""
        self.clock = self._start_time()
        """Recording time shown so far."""
        self.ended = False
        self.warnings: list[str] = []

    # -- what the dashboard asks of a source ---------------------------------------------------------
    @property
    def name(self) -> str:
        return self.header.preset  # type: ignore[union-attr]

    @property
    def device(self) -> str:
        return self.header.device  # type: ignore[union-attr]

    @property
    def data_label(self) -> str:
        return f"replay of {self.path.name}"

    @property
    def warning(self) -> str | None:
        return self.reader.warning

    def initial_remedies(self) -> dict[str, Any]:
        first = next((e for e in self.events if isinstance(e, RunStarted)), None)
        return dict(first.remedies) if first else {}

    def send(self, command: Any) -> None:
        self.commands.put(command)

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
            self._emit(self._take_until_step(self.until_step))
            self.ended = True
            return
        last = time.monotonic()
        while not stop.is_set():
            if not self._apply_commands():
                return
            now = time.monotonic()
            if not self.paused:
                self.clock += (now - last) * self.speed
            last = now
            if self.follow:
                self._read_more()
            batch = self._take_until(self.clock)
            if batch:
                self._emit(batch)
            if self.position >= len(self.events):
                if self.follow:
                    # Live tail: show new records as soon as they arrive, whatever the speed.
                    self.clock = max(self.clock, self._time_of(self.events[-1]) if self.events else self.clock)
                elif not self.ended:
                    self.ended = True
            time.sleep(0.05)

    def _read_more(self) -> None:
        new = list(self.reader.read_available())
        self.events.extend(new)

    def _apply_commands(self) -> bool:
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return True
            if isinstance(command, StopReplay):
                return False
            if isinstance(command, TogglePause):
                self.paused = not self.paused
            elif isinstance(command, SetSpeed):
                self.speed = min(MAX_SPEED, max(MIN_SPEED, self.speed * command.factor))
            elif isinstance(command, Seek):
                self._seek(command.seconds)

    def _seek(self, seconds: float) -> None:
        target = max(self._start_time(), self.clock + seconds)
        if self.events:
            target = min(target, self._time_of(self.events[-1]))
        if target < self.clock:
            self.position = 0
            self._emit([Rewind()])
            self.ended = False
        self.clock = target
        batch = self._take_until(self.clock)
        if batch:
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

    def _take_until_step(self, step: int) -> list[Event]:
        """Every event up to where the last run that reaches ``step`` reached it."""
        hits = [i for i, e in enumerate(self.events) if isinstance(e, StepMetrics) and e.step >= step]
        end = len(self.events)
        if hits:
            last_run = self.events[hits[-1]].run  # type: ignore[union-attr]
            end = next(i for i in hits if self.events[i].run == last_run) + 1  # type: ignore[union-attr]
        self.position = end
        return self.events[:end]

    def _emit(self, items: list[Any]) -> None:
        for sink in self.sinks:
            sink(items)

    def close(self) -> None:
        self.reader.close()
