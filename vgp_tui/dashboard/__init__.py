"""The Textual dashboard (the only part of vgp-tui that imports Textual)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from vgp_tui.dashboard.logfile import configure_logging, log_path
from vgp_tui.errors import UserError

__all__ = ["log_path", "make_app", "make_replay_app", "require_terminal", "run_dashboard", "run_replay"]


def make_app(session: Any, record: str | None = None, screenshot_dir: str = ".", train: bool = True) -> Any:
    """Build the dashboard for ``session`` (the command line and the tests both call this)."""
    from vgp_tui.dashboard.app import VgpApp
    from vgp_tui.engine.devices import use_training_threads
    from vgp_tui.engine.recording import RecordingWriter

    recorder = RecordingWriter(record, session.header()) if record else None
    use_training_threads(session.device)
    return VgpApp(session, recorder=recorder, screenshot_dir=screenshot_dir, train=train)


def make_replay_app(path: str, speed: float = 1.0, follow: bool = False, exit_at_end: bool = False,
                    screenshot_at: int | None = None, screenshot_to: str | None = None,
                    screenshot_run: int | None = None) -> Any:
    """The dashboard playing a recording (the ``replay`` command, ``cast`` and the tests call this)."""
    from vgp_tui.dashboard.app import VgpApp
    from vgp_tui.replay import ReplaySource

    source = ReplaySource(path, speed=speed, follow=follow, until_step=screenshot_at, until_run=screenshot_run)
    app = VgpApp(source, replay=True, exit_at_end=exit_at_end, screenshot_to=screenshot_to)
    return app


WEB_DRIVER = "textual.drivers.web_driver:WebDriver"
"""The driver textual-serve sets (``TEXTUAL_DRIVER``) for the processes it starts, one per browser tab."""


def require_terminal(what: str = "the dashboard") -> None:
    """Refuse to draw a full-screen app where no one can see it (``ssh host vgp-tui`` without -t,
    or output sent to a file): it would write escape codes until killed. A browser tab of
    ``vgp-tui serve`` is the exception: Textual's web driver talks to it through pipes on purpose."""
    if (sys.stdin.isatty() and sys.stdout.isatty()) or os.environ.get("TEXTUAL_DRIVER") == WEB_DRIVER:
        return
    instead = ("'vgp-tui replay FILE --screenshot-at STEP -o shot.svg' for a frame, 'vgp-tui cast FILE -o "
               "demo.cast' for a screencast" if what == "replay" else "'vgp-tui run --preset NAME --steps N'")
    raise UserError(
        f"{what} needs a terminal on stdin and stdout: over SSH use 'ssh -t HOST vgp-tui ...'; "
        f"for a batch job use {instead} (headless)"
    )


SHUTDOWN_GRACE = 10.0
"""Seconds a dashboard ended by a signal may take to shut down before the watchdog ends the process."""


def _run_until_closed(app: Any, close: Callable[[], None]) -> None:
    """``app.run()``, then ``close()`` (stop training, close the recording), however the app ends.

    After SIGHUP or SIGTERM a watchdog waits :data:`SHUTDOWN_GRACE` seconds for that, and otherwise
    calls ``close()`` itself and ends the process with the signal's status. Textual's shutdown can
    wait forever on its output thread when the terminal is gone (an SSH drop): a dashboard was found
    asleep an hour after its tmux server was killed, stuck in ``WriterThread.stop``, its recording
    never closed, its memory (a GPU's, on a GPU box) never given back."""
    import threading

    closing = threading.Lock()  # close() runs once at a time: here, or in the watchdog
    finished = threading.Event()

    def close_once() -> None:
        with closing:
            close()

    def watchdog() -> None:
        app.signalled.wait()
        if finished.wait(SHUTDOWN_GRACE):
            return
        import logging

        log = logging.getLogger("vgp_tui")
        log.warning("shutdown still running %.0f s after signal %s: closing and ending the process",
                    SHUTDOWN_GRACE, app.quit_signal)
        close_once()
        os._exit(128 + int(app.quit_signal or 0))

    threading.Thread(target=watchdog, name="vgp-tui-shutdown-watchdog", daemon=True).start()
    if os.environ.get("TEXTUAL_DRIVER") == WEB_DRIVER:
        threading.Thread(target=_quit_when_the_server_goes, args=(app,), name="vgp-tui-server-watch",
                         daemon=True).start()
    try:
        app.run()
    finally:
        close_once()
        finished.set()


def _quit_when_the_server_goes(app: Any) -> None:
    """A browser tab's process (``vgp-tui serve``) reads its input from the server through a pipe.
    When the server is gone (stopped with SIGTERM, or crashed) the pipe hangs up, and Textual's web
    driver only stops reading: the tab's process went on drawing for nobody, a core's worth of CPU,
    and ignored SIGTERM. Its hang-up is the terminal's: quit as on SIGHUP, the watchdog of
    :func:`_run_until_closed` ending the process if the app does not get to it."""
    import select
    import signal

    poller = select.poll()
    poller.register(sys.stdin.fileno(), 0)  # POLLHUP and POLLERR are reported whatever is asked
    while not any(event & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, event in poller.poll()):
        pass
    app.quit_signal = signal.SIGHUP
    app.signalled.set()
    try:
        app.call_from_thread(app.exit, None, 128 + signal.SIGHUP)
    except RuntimeError:  # the app already stopped
        pass


def run_replay(app: Any) -> None:
    """Show a replay app until the user quits (or the replay ends it)."""
    require_terminal("replay")
    configure_logging()

    def close() -> None:
        app.stop_training()
        app.session.close()

    _run_until_closed(app, close)
    if app.return_code:
        raise SystemExit(app.return_code)


def run_dashboard(build: Callable[[], Any], preset: str, record: str | None = None, screenshot_dir: str = ".") -> None:
    """Open the dashboard and block until the user quits; the recording is closed on the way out.

    ``build`` makes the session (it imports torch, loads the data and sets the training threads): it
    runs in the training thread while the frame is already on screen. A UserError it raises closes
    the screen and is raised again here, so it ends as one line like any other mistake.
    """
    from vgp_tui.dashboard.app import VgpApp

    require_terminal()
    configure_logging()

    app = VgpApp(start=build, preset=preset, record=record, screenshot_dir=screenshot_dir)

    def close() -> None:
        app.stop_training()
        _wait_for_training(app)
        if app.recorder is not None:
            app.recorder.close()

    _run_until_closed(app, close)
    if app.startup_error:
        if app.return_code == 2:
            raise UserError(app.startup_error)
        print(f"vgp-tui: {app.startup_error}", file=sys.stderr)
    elif app.recorder is not None and not app.quit_signal:  # (a hung-up terminal has no one to read it)
        print(recording_said(app.recorder), file=sys.stderr)
        if app.recorder.error and not app.return_code:
            raise SystemExit(1)  # as ``run --record`` ends: the session is not all on disk
    if app.return_code:
        raise SystemExit(app.return_code)


def recording_said(recorder: Any) -> str:
    """The line a dashboard that recorded leaves in the terminal when it closes: where the session is
    and how to see it again, or why it is not all there. (The screen that said so is gone, and a
    recording's name is easy to forget by the time the session ends.)"""
    import shlex

    if recorder.error:
        return f"vgp-tui: error: {recorder.error}"
    return f"vgp-tui: recorded to {recorder.path}; watch it again with: vgp-tui replay {shlex.quote(str(recorder.path))}"


def _wait_for_training(app: Any, seconds: float = 5.0) -> None:
    """Let the training thread finish its step and flush, so the recording ends with its last records."""
    import time

    deadline = time.monotonic() + seconds
    while app.training_threads and time.monotonic() < deadline:
        time.sleep(0.01)
