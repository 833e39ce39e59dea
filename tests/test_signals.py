"""The dashboard in a real pseudo-terminal: Ctrl+C, SIGTERM and SIGHUP quit cleanly, restore the
terminal and close the recording with its last records."""

from __future__ import annotations

import os
import select
import signal
import struct
import sys
import time
from pathlib import Path

import pytest

from vgp_tui.engine.events import StepMetrics
from vgp_tui.engine.recording import read_recording

ROOT = Path(__file__).resolve().parent.parent
RESTORE = b"\x1b[?1049l"  # leave the alternate screen: the shell's screen is back


def _small_preset(tmp_path: Path) -> Path:
    text = (ROOT / "presets" / "deep-sigmoid.toml").read_text()
    path = tmp_path / "small.toml"
    path.write_text(text.replace("depth = 20", "depth = 6").replace("width = 64", "width = 16"))
    return path


def _start(tmp_path: Path, record: Path) -> tuple[int, int]:
    import fcntl
    import pty
    import termios

    argv = [sys.executable, "-m", "vgp_tui", "--preset", str(_small_preset(tmp_path)), "--record", str(record)]
    env = dict(os.environ, TERM="xterm-256color")
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        os.execve(sys.executable, argv, env)
    return pid, fd


def _read(fd: int, seconds: float) -> bytes:
    out = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def _wait_for_steps(fd: int, record: Path, seconds: float = 60) -> bytes:
    out = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out += _read(fd, 0.3)
        if record.exists() and record.read_text().count('"type":"step"') > 20:
            return out
    raise AssertionError("the dashboard never recorded steps")


def _read_until_exit(fd: int, pid: int, seconds: float) -> tuple[int, bytes]:
    """The exit status of ``pid`` and what it wrote meanwhile, reading all the while (a process that
    writes to a terminal no one reads would block); killed after ``seconds``."""
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out += _read(fd, 0.2)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), out + _read(fd, 0.1)
    return _wait_exit(pid, 1), out


def _wait_exit(pid: int, seconds: float) -> int:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("the dashboard did not quit in time")


@pytest.mark.parametrize("how", ["ctrl+c", "SIGTERM", "SIGHUP"])
def test_quit_restores_the_terminal_and_closes_the_recording(tmp_path: Path, how: str) -> None:
    record = tmp_path / "run.jsonl"
    pid, fd = _start(tmp_path, record)
    try:
        out = _wait_for_steps(fd, record)
        if how == "ctrl+c":
            os.write(fd, b"\x03")
        else:
            os.kill(pid, getattr(signal, how))
        code, more = _read_until_exit(fd, pid, 10)
        out += more
    finally:
        os.close(fd)
    expected = {"ctrl+c": 0, "SIGTERM": 128 + signal.SIGTERM, "SIGHUP": 128 + signal.SIGHUP}[how]
    assert code == expected
    assert RESTORE in out
    # The user who quit is told where the session is, in the shell's screen (after the dashboard's):
    # the terminal folds the line, so its words are read without the line breaks.
    said = b"".join(out.rpartition(RESTORE)[2].split()).decode(errors="replace")
    told = "".join(f"recorded to {record}; watch it again with: vgp-tui replay {record}".split())
    assert (told in said) == (how == "ctrl+c"), said  # (a signal's sender may not be the user at all)
    result = read_recording(record)
    assert result.warning is None  # every line whole: closed, not cut off
    steps = [e.step for e in result.events if isinstance(e, StepMetrics)]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) > 20


def test_quitting_a_dashboard_whose_recording_failed_says_why_and_exits_1(tmp_path: Path) -> None:
    """A full disk (/dev/full) stops the recording, not the training; the toast that said so is gone
    with the screen, so the shell gets the line, and the exit status of ``run --record`` (1)."""
    pid, fd = _start(tmp_path, Path("/dev/full"))
    try:
        out = b""
        deadline = time.monotonic() + 60
        while b"Loss" not in out and time.monotonic() < deadline:  # the screen is up (the title of a panel)
            out += _read(fd, 0.3)
        out += _read(fd, 2)  # (a failure found at the first flush or only at the close: the same line)
        os.write(fd, b"\x03")
        code, more = _read_until_exit(fd, pid, 10)
        out += more
    finally:
        os.close(fd)
    said = b" ".join(out.rpartition(RESTORE)[2].split()).decode(errors="replace")
    assert code == 1, said
    assert "vgp-tui: error: " in said and "/dev/full" in said and "Traceback" not in said


def test_dumb_terminal_without_colour_still_works(tmp_path: Path) -> None:
    import fcntl
    import pty
    import termios

    record = tmp_path / "run.jsonl"
    argv = [sys.executable, "-m", "vgp_tui", "--preset", str(_small_preset(tmp_path)), "--record", str(record)]
    env = dict(os.environ, TERM="dumb", NO_COLOR="1")
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.execve(sys.executable, argv, env)
    try:
        out = _wait_for_steps(fd, record)
        os.write(fd, b"q")
        out += _read(fd, 3)
        code = _wait_exit(pid, 10)
    finally:
        os.close(fd)
    assert code == 0
    assert b"Gradient" in out and b"Traceback" not in out


_STUCK = """
import sys, threading
import textual.drivers._writer_thread as writer
import vgp_tui.dashboard as dashboard

writer.WriterThread.stop = lambda self: threading.Event().wait()  # what an SSH drop once did: wait forever
dashboard.SHUTDOWN_GRACE = 1.0
from vgp_tui.cli import main

sys.argv = ["vgp-tui", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("how", ["SIGHUP", "SIGTERM"])
def test_a_shutdown_stuck_after_a_signal_still_closes_the_recording_and_ends(tmp_path: Path, how: str) -> None:
    """Textual's shutdown once waited forever for its output thread after the terminal went away (a
    dashboard asleep an hour after its tmux server was killed, recording not closed). Made certain
    here: the output thread never stops. The watchdog closes the recording and ends the process with
    the signal's status once its grace has passed."""
    import fcntl
    import pty
    import termios

    record = tmp_path / "run.jsonl"
    script = tmp_path / "stuck.py"
    script.write_text(_STUCK)
    argv = [sys.executable, str(script), "--preset", str(_small_preset(tmp_path)), "--record", str(record)]
    env = dict(os.environ, TERM="xterm-256color", PYTHONPATH=str(ROOT))
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        os.execve(sys.executable, argv, env)
    try:
        _wait_for_steps(fd, record)
        os.kill(pid, getattr(signal, how))
        code, _ = _read_until_exit(fd, pid, 30)
    finally:
        os.close(fd)
    assert code == 128 + getattr(signal, how)
    result = read_recording(record)
    assert result.warning is None  # closed, every line whole
    assert result.events[-1].type == "state" and result.events[-1].state == "finished", result.events[-1]
