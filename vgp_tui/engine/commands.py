"""Commands: what another thread (the dashboard, a replay control) asks the training session to do.

They travel through the session's queue and are applied by the training thread between steps, so
nothing outside that thread ever touches the model or the optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass

from vgp_tui.engine.remedies import RemedyValue


@dataclass(frozen=True)
class SetRemedy:
    """Set a remedy: structural ones start a new run, live ones apply at the next step."""

    name: str
    value: RemedyValue


@dataclass(frozen=True)
class SetRemedies:
    """Set several remedies as one change (a diagnosis fix): at most one fresh run."""

    values: tuple[tuple[str, RemedyValue], ...]
    fresh_run: bool = False
    """Start a fresh run with them even if every one is live (the diagnosis's ``Fix.fresh_run``)."""


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class StepOnce:
    """One optimizer step while paused."""


@dataclass(frozen=True)
class Restart:
    """A fresh run with the current remedies and the same seed."""


@dataclass(frozen=True)
class Stop:
    """End the session's loop (quit)."""


@dataclass(frozen=True)
class NoteKey:
    """Record that the user pressed ``key`` for ``action`` (replays show it when it happened)."""

    key: str
    action: str


Command = SetRemedy | SetRemedies | Pause | Resume | StepOnce | Restart | Stop | NoteKey
