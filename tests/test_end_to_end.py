"""End to end, as a user meets it: the installed wheel, in a real pseudo-terminal, from a folder
outside the checkout.

The dashboard trains `deep-sigmoid` live until the diagnosis line calls it vanishing; the test presses
the key the line names for the first fix, waits for the fresh run's healthy flow, quits with q and
checks the terminal it leaves behind. The recording it wrote then becomes a screencast, whose end is
checked the same way: the dashboard's last frame on the main screen, the cursor visible.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import select
import signal
import struct
import time
from collections.abc import Callable
from pathlib import Path

from conftest import Installed  # the wheel, built and installed once per session
from terminal import APP_MODES, Terminal  # tests/terminal.py

COLUMNS, ROWS = 120, 40
WAIT = 120.0
"""Seconds to wait for each state: training on a loaded two-core machine is slow, never this slow."""
PROMPT = "$ vgp-tui --preset deep-sigmoid --record run.jsonl"
# "... vanishing. Press [1] relu + init he, [2] batchnorm on, [3] skip on.": the key and its fix's
# label (plain words, so a toast drawn over the line cannot pass for part of a label).
FIRST_FIX = re.compile(r"vanishing\. Press \[(\d)\] ([\w.+= -]+?)(?:, \[\d\]|\.)")
RUN = re.compile(r"· run (\d+) ·")


class PtyApp:
    """A program on a pseudo-terminal, its output drawn by a :class:`Terminal`."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        import fcntl
        import pty
        import termios

        self.terminal = Terminal(COLUMNS, ROWS)
        self.terminal.feed(PROMPT + "\r\n")  # what the shell showed before the app took the screen
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.exit_code: int | None = None
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: size its terminal, then become the app
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
                os.chdir(cwd)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)

    def text(self) -> str:
        return "\n".join(self.terminal.screen.display)

    def flat(self) -> str:
        """The screen as one line, so that a sentence wrapped over rows can be matched."""
        return " ".join(self.text().split())

    def pump(self, seconds: float) -> bool:
        """Draw what the program writes for up to ``seconds``; False once it has closed the terminal."""
        end = time.monotonic() + seconds
        while True:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                return True
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # EIO: the child has gone and the terminal is closed
                data = b""
            if not data:
                return False
            self.terminal.feed(self.decoder.decode(data))

    def wait_for(self, what: str, found: Callable[[], object]) -> object:
        """Pump output until ``found()`` is truthy; fail with the screen after :data:`WAIT` seconds."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            result = found()
            if result:
                return result
            if not self.pump(0.2):
                self.wait_exit()
                raise AssertionError(f"vgp-tui exited {self.exit_code} before {what}:\n{self.text()}")
        raise AssertionError(f"no {what} within {WAIT:g} s; the screen:\n{self.text()}")

    def press(self, key: str) -> None:
        os.write(self.fd, key.encode())

    def wait_exit(self) -> int:
        """Draw the rest of the output and reap the child; kill it after :data:`WAIT` seconds."""
        deadline = time.monotonic() + WAIT
        while self.exit_code is None:
            if not self.pump(0.2):
                time.sleep(0.05)  # the terminal is closed; the process may still be finishing
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.exit_code = os.waitstatus_to_exitcode(status)
                self.pump(0)  # whatever is still buffered
            elif time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                raise AssertionError(f"vgp-tui did not quit within {WAIT:g} s; the screen:\n{self.text()}")
        return self.exit_code

    def close(self) -> None:
        if self.exit_code is None:  # a failed check left the app running
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)


def _run_number(app: PtyApp) -> int:
    status = app.terminal.screen.display[0]  # the status line, the top row
    match = RUN.search(status)
    return int(match.group(1)) if match else 0


def test_vanishing_fixed_by_the_first_offered_key_then_cast(installed: Installed, tmp_path: Path) -> None:
    env = dict(installed.env, TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(ROWS))
    env.pop("NO_COLOR", None)
    app = PtyApp([str(installed.script), "--preset", "deep-sigmoid", "--record", "run.jsonl"], tmp_path, env)
    try:
        fix = app.wait_for("vanishing diagnosis", lambda: FIRST_FIX.search(app.flat()))
        assert isinstance(fix, re.Match)
        key, label = fix.group(1), fix.group(2)
        assert _run_number(app) == 1, app.text()
        app.press(key)
        # The fix starts one fresh run, and with it the gradient reaches layer 1.
        app.wait_for("healthy flow in run 2", lambda: "healthy flow" in app.flat() and _run_number(app) == 2)
        app.press("q")
        code = app.wait_exit()
    finally:
        app.close()

    assert code == 0, app.text()
    screen = app.terminal
    assert not screen.on_alternate, "the dashboard left the terminal on the alternate screen"
    assert not screen.screen.cursor.hidden, "the dashboard left the cursor hidden"
    assert not screen.modes_on() & APP_MODES, f"modes left on: {sorted(screen.modes_on() & APP_MODES)}"
    # The shell's screen is back as it was: the command line, and no dashboard drawn over it.
    assert screen.screen.display[0].startswith(PROMPT)
    assert "Gradient heatmap" not in app.text()

    # The recording notes the key and the fix it applied, and closes whole with both runs.
    records = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    pressed = [r for r in records if r["type"] == "key"]
    assert [(r["key"], r["action"]) for r in pressed] == [(key, f"fix={label}")]
    assert {r["run"] for r in records if r["type"] == "step"} == {1, 2}
    # Quitting ended the run for good: the recording says so, and its replay ends FINISHED, not TRAINING.
    last_step = [r for r in records if r["type"] == "step"][-1]["step"]
    assert records[-1] == {**records[-1], "type": "state", "run": 2, "state": "finished",
                           "message": f"run 2 stopped after {last_step} steps"}, records[-1]

    installed.run(installed.script, "cast", "run.jsonl", "-o", "demo.cast", "--speed", "50", cwd=tmp_path)
    lines = (tmp_path / "demo.cast").read_text().splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and (header["width"], header["height"]) == (COLUMNS, ROWS)
    viewer = Terminal(COLUMNS, ROWS)
    viewer.feed("$ asciinema cat demo.cast\r\n")
    viewer.feed("".join(json.loads(line)[2] for line in lines[1:]))
    assert not viewer.on_alternate, "the cast leaves the viewer on the alternate screen"
    assert not viewer.screen.cursor.hidden, "the cast leaves the cursor hidden"
    shown = viewer.screen.display
    run = RUN.search(shown[0])  # the status line, on the top row: not scrolled away
    assert "deep-sigmoid" in shown[0] and "FINISHED" in shown[0] and run and run.group(1) == "2", shown[0]
    picture = "\n".join(shown)
    for title in ("Loss", "Gradient heatmap", "Gradient flow"):
        assert title in picture, picture
    assert shown[-1].strip(), "the dashboard's bottom row is blank"
