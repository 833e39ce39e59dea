"""A recording survives its writer: kill -9 loses at most the last second, SIGTERM closes it whole.

These run the real command line (``python -m vgp_tui run --record FILE``) in a subprocess. The preset
is deliberately slow (about ten steps a second, four layers, so about 3 KiB of records a second): at
that rate Python's 8 KiB write buffer alone would reach the file only every few seconds, so the
freshness checks below fail if the recording's own time-based flushing is broken.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vgp_tui.engine.events import StateChanged, StepMetrics
from vgp_tui.engine.recording import RecordingError, RecordingReader, read_recording

SLOW_PRESET = """
name = "slow-sigmoid"
seed = 0

[model]
family = "mlp"
depth = 3
width = 512

[data]
kind = "spirals"
samples = 8192
classes = 3

[train]
batch_size = 2048

[remedies]
activation = "sigmoid"
init = "default"
batchnorm = false
skip = false
clip = "off"
accumulate = 1
lr = 0.1
optimizer = "sgd"
"""

MAX_LOST_SECONDS = 1.5
"""The recording is flushed every half second; allow a second and a half on a loaded machine."""


def _start(tmp_path: Path, record: Path) -> subprocess.Popen[bytes]:
    preset = tmp_path / "slow-sigmoid.toml"
    preset.write_text(SLOW_PRESET, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "vgp_tui", "run", "--preset", str(preset), "--steps", "100000", "--record", str(record)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


class Follower:
    """Follows the recording as ``replay --follow`` would, and estimates when the session started.

    A step's ``t`` is seconds since the session started; a step seen at (our) time T was written at or
    before T, so ``T - t`` is an upper bound of the session's start on our clock, and the smallest one
    over many looks is close to the truth. That cancels the unknown start-up time (importing torch).
    """

    def __init__(self, proc: subprocess.Popen[bytes], path: Path) -> None:
        self.proc = proc
        self.path = path
        self.reader: RecordingReader | None = None
        self.steps: list[int] = []
        self.last_t = 0.0
        self.t0 = float("inf")
        self.looks: list[tuple[float, float]] = []
        """(our time, ``t`` of the newest visible step) at each look after enough steps appeared."""

    def look(self) -> None:
        if self.proc.poll() is not None:
            stderr = self.proc.stderr.read().decode() if self.proc.stderr else ""
            pytest.fail(f"the run ended early with status {self.proc.returncode}: {stderr}")
        if self.reader is None:
            with contextlib.suppress(RecordingError):
                self.reader = RecordingReader(self.path)
            if self.reader is None:
                return
        now = time.monotonic()
        for event in self.reader.read_available():
            if isinstance(event, StepMetrics):
                self.steps.append(event.step)
                self.last_t = event.t
                self.t0 = min(self.t0, now - event.t)
        if self.steps:
            self.looks.append((now, self.last_t))

    @property
    def staleness(self) -> list[float]:
        """How far the newest visible step lagged behind the training at each look."""
        return [now - self.t0 - t for now, t in self.looks]

    def follow(self, min_steps: int, seconds_after: float, timeout: float = 60.0) -> None:
        """Look every 50 ms until ``min_steps`` steps appeared, then for ``seconds_after`` more."""
        deadline = time.monotonic() + timeout
        first = None
        while first is None or time.monotonic() - first < seconds_after:
            assert time.monotonic() < deadline, f"only {len(self.steps)} steps reached '{self.path}' in {timeout:g} s"
            self.look()
            if first is None and len(self.steps) >= min_steps:
                first = time.monotonic()
                self.looks.clear()  # judge freshness from here on, past any start-up hiccup
            time.sleep(0.05)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The run, followed for a few seconds and then killed with SIGKILL."""
    tmp_path = tmp_path_factory.mktemp("kill")
    path = tmp_path / "run.jsonl"
    proc = _start(tmp_path, path)
    follower = Follower(proc, path)
    try:
        follower.follow(min_steps=3, seconds_after=3.0)
        killed_at = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        follower.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    return {
        "path": path,
        "returncode": proc.returncode,
        "running": killed_at - follower.t0,  # seconds the session had run when it was killed
        "seen": follower.steps,
        "staleness": follower.staleness,
    }


def test_sigkill_loses_at_most_about_the_last_second(killed: dict) -> None:
    assert killed["returncode"] == -signal.SIGKILL
    result = read_recording(killed["path"])
    assert result.header.format == "vgp-tui-recording" and result.header.preset == "slow-sigmoid"
    # A kill can land in the middle of a write: then only the cut-off last line is dropped.
    assert result.warning is None or "is cut off" in result.warning, result.warning
    assert result.events and result.events[0].type == "run"
    steps = [e for e in result.events if isinstance(e, StepMetrics)]
    assert [s.step for s in steps] == list(range(1, len(steps) + 1))
    assert len(steps) >= len(killed["seen"]) >= 3
    assert all(len(s.grad_norm) == 4 for s in steps)
    lost = killed["running"] - steps[-1].t
    assert -0.5 < lost < MAX_LOST_SECONDS, f"the last {lost:.2f} s before the kill were lost"
    # While it ran, a follower never saw the file more than about a second behind.
    assert killed["staleness"] and max(killed["staleness"]) < MAX_LOST_SECONDS, (
        f"the file lagged up to {max(killed['staleness']):.2f} s behind the training"
    )


def test_sigterm_stops_the_run_and_closes_a_complete_recording(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    proc = _start(tmp_path, path)
    follower = Follower(proc, path)
    try:
        follower.follow(min_steps=3, seconds_after=0.5)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        follower.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (130, 143), stderr.decode()
    assert "Traceback" not in stderr.decode()
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert all(isinstance(json.loads(line), dict) for line in text.splitlines())
    result = read_recording(path)
    assert result.warning is None
    steps = [e for e in result.events if isinstance(e, StepMetrics)]
    assert [s.step for s in steps] == list(range(1, len(steps) + 1))
    assert len(steps) >= len(follower.steps) >= 3
    last = result.events[-1]  # the stopped run is recorded as ended: a replay ends FINISHED, not TRAINING
    assert isinstance(last, StateChanged) and last.state == "finished", last
    assert last.message == f"run 1 stopped after {len(steps)} steps"


def test_a_recording_cut_mid_line_replays_up_to_the_cut_with_a_warning(killed: dict, tmp_path: Path) -> None:
    data = killed["path"].read_bytes()
    lines = data[: data.rfind(b"\n")].split(b"\n")  # whole lines only (a kill may have cut the last)
    assert len(lines) >= 5
    cut_line = len(lines) - 2  # 1-based number of the line we cut in half
    path = tmp_path / "cut.jsonl"
    body = b"\n".join(lines[: cut_line - 1]) + b"\n" + lines[cut_line - 1][: len(lines[cut_line - 1]) // 2]
    path.write_bytes(body)
    result = read_recording(path)
    assert len(result.events) == cut_line - 2  # every line between the header and the cut
    assert result.warning is not None and f"line {cut_line} " in result.warning
    steps = [e for e in result.events if isinstance(e, StepMetrics)]
    assert [s.step for s in steps] == list(range(1, len(steps) + 1))
