"""The training thread's side of the dashboard: it runs the source (a live session or a replay),
builds a deferred session, and switches presets. It talks to the screen only through the feed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from vgp_tui.dashboard.feed import EventFeed, NewSession, Notice
from vgp_tui.dashboard.logfile import log_path
from vgp_tui.engine.commands import NoteKey, Stop
from vgp_tui.engine.remedies import RemedyValue
from vgp_tui.dashboard.screens import STAND_IN_LABEL
from vgp_tui.errors import DataMissing, UserError
from vgp_tui.source import Source

log = logging.getLogger("vgp_tui")


class Starting:
    """Stands in for the session while PyTorch and the data load, so the frame is on screen at once.

    Commands sent to it are dropped: there is nothing to train yet."""

    device = "starting…"
    data_label = ""
    run_number = 0

    def __init__(self, name: str) -> None:
        self.name = name
        self.sinks: list[Any] = []

    def initial_remedies(self) -> dict[str, RemedyValue]:
        return {}

    def send(self, command: Any) -> None:
        pass

    def end(self) -> None:
        pass


class Runner:
    """Runs one source after another in the training thread (see :meth:`run`).

    Args:
        source: the session or replay to run; None while ``start`` builds it.
        feed: where every event (and every message for the screen) goes.
        start: builds the session in the training thread (it imports torch and loads the data; the
            first model is then built there too, with :meth:`Session.prepare`).
        preset: the preset's name, shown while ``start`` runs.
        record: a recording to open once the session exists (it needs the session's header).
        recorder: a recording already open.
    """

    def __init__(self, source: Source | None, feed: EventFeed, *, start: Callable[[], Any] | None = None, preset: str = "",
                 record: str | None = None, recorder: Any = None) -> None:
        self.source = source if source is not None else Starting(preset)
        self.feed = feed
        self.recorder = recorder
        self.startup_error: str | None = None
        """Why the session could not be built (a user mistake found late, such as missing data)."""
        self.quit = threading.Event()
        self.threads: set[int] = set()
        """Idents of threads inside :meth:`run` right now (exactly one while the app runs)."""
        self._start = start
        self._record = record
        self._next: Any = None
        self._attach(self.source)

    @property
    def starting(self) -> bool:
        return isinstance(self.source, Starting)

    def _attach(self, source: Any) -> None:
        source.sinks.append(self.feed.put)
        if self.recorder is not None:
            source.sinks.append(self.recorder.write)

    def run(self, exit_app: Callable[[int], None]) -> None:
        """The training thread's loop: build the session if deferred, run it, then the next one after
        a preset switch. ``exit_app(status)`` closes the screen when the session cannot be had."""
        ident = threading.get_ident()
        self.threads.add(ident)
        try:
            if self._start is not None and not self._build(exit_app):
                return
            while not self.quit.is_set():
                source = self.source
                try:
                    source.run(self.quit)
                except Exception as exc:  # noqa: BLE001 - shown to the user; the app stays up
                    log.exception("training loop failed")
                    self.feed.put([Notice(f"training stopped: {exc}")])
                    return
                nxt, self._next = self._next, None
                if nxt is None:
                    break
                try:
                    nxt.run_number = source.run_number  # run numbers go on across presets, as on screen
                    nxt.prepare()  # its data and first model, before the screen switches to it
                except DataMissing as exc:
                    # As below; and said for the dashboard, which has no command line to pass
                    # --synthetic on: the picker offers the preset on its stand-in from now on.
                    self.feed.put([Notice(
                        f"{nxt.name} needs {exc.dataset}: {exc.why}; {source.name} goes on. For its labelled "
                        f"stand-in press p and pick '{nxt.name} {STAND_IN_LABEL}' (the README's 'Data without "
                        "the internet' says how to get the real one)", stand_in_for=nxt.name)])
                    continue
                except UserError as exc:
                    # The previous preset goes on where it was, run and step unchanged.
                    self.feed.put([Notice(f"{exc}; {source.name} goes on")])
                    continue
                except Exception as exc:  # noqa: BLE001 - a fault building it: the old preset still goes on
                    log.exception("preset %s could not start", nxt.name)
                    self.feed.put([Notice(f"{nxt.name} could not start: {exc.__class__.__name__}: {exc} "
                                          f"(details in {log_path()}); {source.name} goes on")])
                    continue
                nxt.sinks[:] = list(source.sinks)
                self.source = nxt
                self.feed.put([NewSession(nxt)])
            try:
                self.source.end()  # its last state, so that a recording of it ends on one
            except Exception:  # noqa: BLE001 - the screen is closing: the log keeps it
                log.exception("ending the session failed")
        finally:
            self.threads.discard(ident)

    def _build(self, exit_app: Callable[[int], None]) -> bool:
        from vgp_tui.engine.recording import RecordingWriter

        assert self._start is not None
        try:
            session = self._start()
            # Its first model too, as a preset switch builds it: one too big for memory is a mistake in
            # what the user asked for, said as one line once the screen has closed.
            session.prepare()
            if self._record:
                self.recorder = RecordingWriter(self._record, session.header())
        except UserError as exc:
            self.startup_error = str(exc)
            exit_app(2)
            return False
        except Exception as exc:  # noqa: BLE001 - shown as one line after the screen closes
            log.exception("the session could not start")
            self.startup_error = f"could not start: {exc.__class__.__name__}: {exc} (details in {log_path()})"
            exit_app(1)
            return False
        self._start = None
        self._attach(session)
        self.source = session
        self.feed.put([NewSession(session)])
        return not self.quit.is_set()

    def switch_to(self, session: Any, name: str) -> None:
        """Run ``session`` (another preset) once the current one has stopped at its next step."""
        self._next = session
        self.source.send(NoteKey("p", f"preset={name}"))
        self.source.send(Stop())

    def stop(self, command: Any) -> None:
        """End the loop: ``command`` tells the source (Stop, or StopReplay for a replay)."""
        self.quit.set()
        self.source.send(command)
