"""Screencasts without screen-recording software: the real dashboard replaying a recording inside a
pseudo-terminal, its output written as an asciicast v2 file (``asciinema play``, ``agg``).

The child is ``vgp-tui replay FILE --exit-at-end`` on a pty of the requested size; every chunk it
writes becomes one ``[seconds, "o", text]`` event. Nothing here imports Textual: the dashboard runs
in the child exactly as a person would see it.
"""

from __future__ import annotations

import codecs
import json
import os
import select
import signal
import struct
import sys
import time
from pathlib import Path

from vgp_tui.errors import UserError


def record_cast(
    recording: str | Path,
    output: str | Path,
    columns: int = 120,
    rows: int = 40,
    speed: float = 1.0,
    timeout: float = 3600.0,
) -> int:
    """Write an asciicast v2 file of the dashboard replaying ``recording``; returns the event count."""
    import fcntl
    import pty
    import termios

    from vgp_tui.engine.recording import read_recording

    header = read_recording(recording).header  # a bad file fails here, in one line, not in the child
    output = Path(output)
    if not output.parent.is_dir():
        raise UserError(f"-o {output}: folder '{output.parent}' does not exist")
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(columns), LINES=str(rows))
    env.pop("NO_COLOR", None)
    argv = [sys.executable, "-m", "vgp_tui", "replay", str(recording), "--speed", repr(speed), "--exit-at-end"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: size its terminal, then become the dashboard
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        os.execve(sys.executable, argv, env)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    started = time.monotonic()
    events: list[tuple[float, str]] = []
    try:
        while True:
            if time.monotonic() - started > timeout:
                os.kill(pid, signal.SIGTERM)
                raise UserError(f"cast stopped after {timeout:g} s: the replay did not end (try a higher --speed)")
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            text = decoder.decode(data)
            if text:
                events.append((time.monotonic() - started, text))
    finally:
        os.close(fd)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = 0
    if os.waitstatus_to_exitcode(status) != 0:
        raise UserError(f"the replay inside the cast failed (exit {os.waitstatus_to_exitcode(status)})")
    cast_header = {
        "version": 2,
        "width": columns,
        "height": rows,
        "timestamp": int(time.time()),
        "title": f"vgp-tui · {header.preset}",
        "env": {"TERM": env["TERM"], "SHELL": os.environ.get("SHELL", "/bin/sh")},
    }
    with open(output, "w", encoding="utf-8") as f:
        f.write(json.dumps(cast_header) + "\n")
        kept = _until_teardown(events)
        for t, text in kept:
            f.write(json.dumps([round(t, 6), "o", text]) + "\n")
    return len(kept)


LEAVE_ALTERNATE_SCREEN = "\x1b[?1049l"


def _until_teardown(events: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """The output up to where the app leaves the alternate screen on exit.

    A player shows the last frame when a cast ends; keeping the exit sequence would end every
    cast on the empty shell screen instead of on the dashboard.
    """
    kept = []
    for t, text in events:
        cut = text.find(LEAVE_ALTERNATE_SCREEN)
        if cut >= 0:
            if text[:cut]:
                kept.append((t, text[:cut]))
            break
        kept.append((t, text))
    return kept
