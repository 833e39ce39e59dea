"""A terminal emulator for tests: pyte with both the main and the alternate screen.

Shared by the screencast test (what a viewer's terminal is left with) and the end-to-end test (the
live dashboard in a pseudo-terminal).
"""

from __future__ import annotations

import re

import pyte

ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[@-Z\\-_]")
ALTERNATE_SCREEN = re.compile(r"\x1b\[\?(?:47|1047|1049)([hl])")
PRIVATE_MODE = re.compile(r"\x1b\[\?[0-9;]*[hl]")
KITTY_KEYBOARD = re.compile(r"\x1b\[[<>=?][0-9;]*u")
# Sequences a terminal answers by typing into the shell's input.
QUERY = re.compile(r"\x1b\[\??[0-9;]*\$p|\x1b\[[>=]?0?c|\x1b\[\??[56]n|\x1b\[>0?q")
# Modes that an app turns on and a shell must not be left with: mouse reports, focus events,
# bracketed paste, the alternate screen.
APP_MODES = {9, 47, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1015, 1016, 1047, 1049, 2004}


class Terminal:
    """A terminal emulator with both screens.

    pyte has a single buffer and only notes mode 1049 in its mode set, so switching between the
    main and the alternate screen is done here: a picture drawn on the alternate screen is gone
    once the terminal is back on the main one, as in xterm.
    """

    def __init__(self, columns: int, rows: int) -> None:
        self.main, self.alternate = pyte.Screen(columns, rows), pyte.Screen(columns, rows)
        self.streams = {id(s): pyte.Stream(s) for s in (self.main, self.alternate)}
        self.on_alternate = False
        self.answers: list[str] = []  # what the terminal would type back to the program
        for screen in (self.main, self.alternate):
            screen.write_process_input = self.answers.append

    @property
    def screen(self) -> pyte.Screen:
        return self.alternate if self.on_alternate else self.main

    def feed(self, text: str) -> None:
        # pyte misreads the kitty keyboard protocol's CSI < u (it prints the "u"); it draws nothing.
        text = KITTY_KEYBOARD.sub("", text)
        at = 0
        for switch in ALTERNATE_SCREEN.finditer(text):
            self._draw(text[at : switch.start()])
            at = switch.end()
            self.on_alternate = switch.group(1) == "h"
            if self.on_alternate:  # entering it clears it
                self.alternate.erase_in_display(2)
                self.alternate.cursor_position()
        self._draw(text[at:])

    def _draw(self, text: str) -> None:
        active = self.screen
        other = self.main if active is self.alternate else self.alternate
        self.streams[id(active)].feed(text)
        for mode in PRIVATE_MODE.finditer(text):  # the cursor and mouse modes belong to the terminal
            self.streams[id(other)].feed(mode.group())

    def modes_on(self) -> set[int]:
        return {m >> 5 for m in self.screen.mode if m >= 1 << 5}


def run_in_pty(argv: list[str], columns: int = 80, rows: int = 24, env: dict[str, str] | None = None,
               timeout: float = 120.0) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal of ``columns`` x ``rows`` as its stdin, stdout and stderr;
    return its exit status and everything it wrote (decoded), once it closed the terminal."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import subprocess
    import termios
    import time

    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    process = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, env=env, close_fds=True)
    os.close(child)
    output = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([main], [], [], left)[0]:
            process.kill()  # still running at the deadline: a failure for the caller, not a hung test
            break
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(main)
    return process.wait(timeout=30), output.decode("utf-8", "replace")
