"""Screencasts without screen-recording software: the real dashboard replaying a recording inside a
pseudo-terminal, its output written as an asciicast v2 file (``asciinema play``, ``agg``).

The child is ``vgp-tui replay FILE --exit-at-end`` on a pty of the requested size; every chunk it
writes becomes one ``[seconds, "o", text]`` event. Nothing here imports Textual: the dashboard runs
in the child exactly as a person would see it.

The output is then edited for a viewer (``_for_a_viewer``): the dashboard draws on the main screen
rather than the alternate one, so its last frame stays visible when the cast ends, and the cast ends
by turning off every terminal mode the app turned on (hidden cursor, mouse tracking, bracketed
paste, focus events, the kitty keyboard protocol). ``asciinema cat`` or ``play`` then leaves the
viewer's terminal usable, the dashboard's last frame still on it.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import select
import signal
import struct
import sys
import time
from pathlib import Path
from typing import NamedTuple

from vgp_tui.errors import UserError


class Cast(NamedTuple):
    """What :func:`record_cast` wrote: its events (the dashboard's writes to the terminal), how long it
    plays, and the seconds of pauses ``idle_limit`` cut out of it."""

    events: int
    seconds: float
    cut: float


def record_cast(
    recording: str | Path,
    output: str | Path,
    columns: int = 120,
    rows: int = 40,
    speed: float = 1.0,
    timeout: float = 3600.0,
    env: dict[str, str] | None = None,
    idle_limit: float | None = None,
) -> Cast:
    """Write an asciicast v2 file of the dashboard replaying ``recording``; returns what it wrote.

    ``env``: variables set for the replay beside this process's (``COLORTERM=truecolor`` for 24-bit colour).
    ``idle_limit``: seconds; any longer gap between two events is cut to it (None keeps the replay's time).
    """
    import fcntl
    import pty
    import termios

    from vgp_tui.engine.recording import read_recording

    header = read_recording(recording).header  # a bad file fails here, in one line, not in the child
    output = Path(output)
    if not output.parent.is_dir():
        raise UserError(f"-o {output}: folder '{output.parent}' does not exist")
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(columns), LINES=str(rows), **(env or {}))
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
        "title": f"vgp-tui · {header.preset or Path(recording).name}",
        "env": {"TERM": env["TERM"], "SHELL": os.environ.get("SHELL", "/bin/sh")},
    }
    if idle_limit is not None:
        # The times are cut here, so every player (and the picture drawn from this file) shows the cast
        # as cut; the header says so too, as asciinema's recorder writes it.
        cast_header["idle_time_limit"] = idle_limit
    with open(output, "w", encoding="utf-8") as f:
        f.write(json.dumps(cast_header) + "\n")
        shown = _for_a_viewer(events, rows)
        # From the dashboard's first output: the second or so before it is Python starting up (1.0 to
        # 1.3 s, as loaded as the machine is), a blank terminal at the start of every cast.
        start = shown[0][0] if shown else 0.0
        shown = [(t - start, text) for t, text in shown]
        kept = limit_idle(shown, idle_limit)
        for t, text in kept:
            f.write(json.dumps([round(t, 6), "o", text]) + "\n")
    seconds = kept[-1][0] if kept else 0.0
    return Cast(len(kept), seconds, shown[-1][0] - seconds if shown else 0.0)


def limit_idle(events: list[tuple[float, str]], limit: float | None) -> list[tuple[float, str]]:
    """``events`` with every gap longer than ``limit`` seconds (the first one counted from 0, as
    asciinema counts it) cut to ``limit``; the events themselves are kept. None: unchanged."""
    if limit is None:
        return list(events)
    kept, cut, before = [], 0.0, 0.0
    for t, text in events:
        cut += max(0.0, t - before - limit)
        before = t
        kept.append((t - cut, text))
    return kept


LEAVE_ALTERNATE_SCREEN = "\x1b[?1049l"
ALTERNATE_SCREEN_MODES = {47, 1047, 1049}
MODES_ON_BY_DEFAULT = {7, 25}  # autowrap and a visible cursor; every other DEC mode starts off
# What the alternate screen gives a full-screen app on entry: a blank screen, cursor at the top left.
CLEAR_SCREEN = "\x1b[H\x1b[2J"

# Any whole escape sequence (CSI, OSC, or two-character), to keep a sequence in one event where a
# read split it across two.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-~])")
_PRIVATE_MODES = re.compile(r"\x1b\[\?([0-9;]*)([hl])")
_KITTY_KEYBOARD = re.compile(r"\x1b\[([<>])([0-9]*)u")
# Questions the app asks its terminal. A viewer's terminal would answer them into the shell's input
# after the cast ends, so they are dropped.
_QUERIES = re.compile(
    r"\x1b\[\??[0-9;]*\$p"  # DECRQM: is mode N supported?
    r"|\x1b\[[>=]?0?c"  # device attributes
    r"|\x1b\[>0?q"  # terminal name and version
    r"|\x1b\[\??[56]n"  # status and cursor position reports
    r"|\x1b\[\?u"  # kitty keyboard flags
    r"|\x1b\]\d+(?:;[^\x07\x1b]*)?;\?(?:\x07|\x1b\\)"  # colour queries
)


def _for_a_viewer(events: list[tuple[float, str]], rows: int) -> list[tuple[float, str]]:
    """The app's output up to its exit, drawn on the main screen and ending with the modes it set undone.

    A player shows the last frame when a cast ends, and ``asciinema cat`` leaves the viewer's
    terminal as the last byte left it. Drawn on the alternate screen, the dashboard would vanish at
    the app's exit (or, cut before the exit, leave the viewer on the alternate screen with the
    cursor hidden); drawn on the main screen it stays, and the shell's prompt comes back on its last row.
    """
    if not events:
        return []
    joined = "".join(text for _, text in events)
    whole = [m.span() for m in _ESCAPE.finditer(joined)]
    # Event boundaries, each moved past any escape sequence it would split.
    bounds, at, i = [], 0, 0
    for _, text in events:
        at += len(text)
        while i < len(whole) and whole[i][1] <= at:
            i += 1
        bounds.append(whole[i][1] if i < len(whole) and whole[i][0] < at else at)
    cut = joined.find(LEAVE_ALTERNATE_SCREEN)  # the app's exit; what follows is its teardown
    end_time = events[-1][0]
    if cut >= 0:
        end_time = next(t for (t, _), b in zip(events, bounds) if b > cut)
    else:
        cut = len(joined)

    modes: dict[int, bool] = {}
    kitty_depth = 0

    def set_modes(match: re.Match[str]) -> str:
        on = match.group(2) == "h"
        kept, clear = [], ""
        for param in filter(None, match.group(1).split(";")):
            if int(param) in ALTERNATE_SCREEN_MODES:
                clear = CLEAR_SCREEN if on else ""
            else:
                kept.append(param)
                modes[int(param)] = on
        return (f"\x1b[?{';'.join(kept)}{match.group(2)}" if kept else "") + clear

    kept: list[tuple[float, str]] = []
    start = 0
    for (t, _), stop in zip(events, bounds):
        text = joined[start:min(stop, cut)]
        start = max(start, stop)
        text = _PRIVATE_MODES.sub(set_modes, _QUERIES.sub("", text))
        for push_or_pop, count in _KITTY_KEYBOARD.findall(text):
            kitty_depth = max(0, kitty_depth + 1 if push_or_pop == ">" else kitty_depth - int(count or 1))
        if text:
            kept.append((t, text))
        if stop >= cut:
            break

    restore = "\x1b[0m" + "\x1b[<u" * kitty_depth
    for mode, on in modes.items():
        default = mode in MODES_ON_BY_DEFAULT
        if on != default:
            restore += f"\x1b[?{mode}{'h' if default else 'l'}"
    # The cursor goes to the start of the last row: a newline there would scroll the dashboard's
    # top row away in a player exactly the cast's size.
    restore += f"\x1b[{rows};1H"
    kept.append((max(end_time, kept[-1][0] if kept else 0.0), restore))
    return kept
