"""What feeds the dashboard: the :class:`Source` contract, and every item that crosses from the
training thread to the screen.

A source (a live :class:`~vgp_tui.engine.session.Session`, a :class:`~vgp_tui.replay.ReplaySource`
playing or following a file, or the stand-in shown while a session starts) runs in the training
thread and puts lists of items on its sinks: events (``vgp_tui.engine.events``) and the messages
below. The screen reads those items and nothing else of the source's state, so no attribute is read
across threads. Commands go the other way through :meth:`Source.send`. No Textual here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from vgp_tui.engine.events import Event
from vgp_tui.engine.remedies import RemedyValue

Sink = Callable[[list[Any]], Any]


class Source(Protocol):
    """What the dashboard needs of whatever feeds it."""

    sinks: list[Sink]

    @property
    def name(self) -> str: ...

    @property
    def device(self) -> str: ...

    @property
    def data_label(self) -> str: ...

    def initial_remedies(self) -> dict[str, RemedyValue]: ...

    def send(self, command: Any) -> None:
        """Queue a command for the training thread (safe from any thread)."""

    def run(self, stop: threading.Event) -> None:
        """Feed the sinks until ``stop`` is set or the source is done (in the training thread)."""

    def end(self) -> None:
        """Nothing more will run: put the last items on the sinks (in the training thread, once)."""


@dataclass(frozen=True)
class NewSession:
    """The items that follow come from ``session`` (a preset switch, or the session a deferred start built)."""

    session: Any


@dataclass(frozen=True)
class Notice:
    """A message for the user from the training thread (for example a preset that failed to load)."""

    text: str
    severity: str = "error"
    stand_in_for: str | None = None
    """A preset whose real data is not at hand: the preset picker offers it on synthetic data."""


@dataclass(frozen=True)
class Rewind:
    """Forget what was shown; the events that follow start again from the beginning (a replay's seek)."""


@dataclass(frozen=True)
class Playback:
    """Where a replay stands, sent whenever it changes; the screen shows the latest."""

    speed: float
    paused: bool
    ended: bool
    """Everything asked for was fed (the file's end, or the screenshot's step)."""
    following: bool
    """``--follow`` at the live end: new records show as they are written."""
    waiting: bool
    """``--follow`` of a file that does not exist yet."""
    warning: str | None = None
    """What was wrong with the file (a cut-off line, a bad record), if anything."""
    label: str = ""
    """The data label: the file's name, and "only up to line N" for a cut-off file."""
    name: str = ""
    device: str = ""
    commands_applied: int = 0
    """How many of the screen's commands the replay had applied: a report sent before the last key's
    command arrived still has the old pause and speed, which the screen's own must outlive."""
    length: float | None = None
    """The recording time of its last record (the status line's "00:00:12 / 00:00:32"); None while
    following a file that is still being written."""
    reached: float | None = None
    """The recording time the replay has reached, in whole seconds, at most ``length``: its clock runs
    on through a pause of the recording (an evaluation, a checkpoint), where no record comes, and the
    seek keys move it there; None while following (the last record's time is where it is)."""


Item = Event | NewSession | Notice | Rewind | Playback
"""Everything that travels on the feed."""
