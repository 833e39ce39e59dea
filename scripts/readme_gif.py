#!/usr/bin/env python
"""Makes the README's GIF with the command itself: deep-sigmoid trains and vanishes, fix 1 (relu + init
he, the key the diagnosis offers) is pressed, and the heatmap lights up.

    python scripts/readme_gif.py [--out docs/deep-sigmoid.gif] [--seconds 6]

It records a session as the dashboard would, in real time (the replay keeps the recorded pace):
``--seconds`` of the vanishing run, the key press as the dashboard records it (a ``key`` record, then
the fix as one change), ``--seconds`` of the fixed run; then it runs ``vgp-tui cast`` on the recording. Needs the ``gif``
extra (``pip install -e '.[gif]'``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from vgp_tui.engine.commands import NoteKey, SetRemedies
from vgp_tui.engine.recording import RecordingWriter
from vgp_tui.engine.session import Session
from vgp_tui.scenario import load_preset

FIX = (("activation", "relu"), ("init", "he"))


def record(path: Path, seconds: float) -> None:
    session = Session(load_preset("deep-sigmoid"), device="cpu", seed=0, steps=0)
    writer = RecordingWriter(path, session.header())
    session.sinks.append(writer.write)
    stop = threading.Event()
    training = threading.Thread(target=session.run, args=(stop,))
    training.start()
    try:
        stop.wait(seconds)  # the vanishing run
        session.send(NoteKey("1", "fix=relu + init he"))
        session.send(SetRemedies(FIX))
        stop.wait(seconds)  # the fixed run, from the same seed
    finally:
        stop.set()
        training.join()
        writer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/deep-sigmoid.gif")
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds of each run")
    parser.add_argument("--size", default="100x30")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        recording = Path(folder) / "lesson.jsonl"
        record(recording, args.seconds)
        cast = [sys.executable, "-m", "vgp_tui", "cast", str(recording), "-o", args.out, "--size", args.size,
                "--fps", "4", "--font-size", "14"]
        return subprocess.call(cast)


if __name__ == "__main__":
    sys.exit(main())
