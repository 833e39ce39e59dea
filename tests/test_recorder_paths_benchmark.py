"""benchmarks/recorder_paths.py runs (``--quick``) and prints a row for every path; no timing is asserted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_recorder_paths_runs_quick() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "recorder_paths.py"), "--quick", "--rounds", "2", "--steps", "2",
         "--warmup", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "CPU ms/step" in out and "x without [IQR]" in out
    for title in ("plain loop", "DDP (1 process, gloo)", "AMP autocast + GradScaler", "torch.compile"):
        for row in (f"{title} (no Recorder)", f"{title} + Recorder ", f"{title} + Recorder + recorder.zero_grad() "):
            assert row in out, row
    # FSDP2 owns its gradients and the frameworks zero theirs: one loop with vgp-tui each.
    for row in ("FSDP2 (1 process, gloo) (no Recorder)", "FSDP2 (1 process, gloo) + Recorder ",
                "Lightning Trainer (no Recorder)", "Lightning Trainer + VgpTuiCallback ",
                "Hugging Face Trainer (no Recorder)", "Hugging Face Trainer + VgpTuiCallback "):
        assert row in out, row
    assert "FSDP2 (1 process, gloo) + Recorder + recorder.zero_grad()" not in out
    assert "targets" in out
    assert out.count("target <= 1.05") == 11  # one verdict per loop with vgp-tui


def test_recorder_paths_blocks_default_to_the_flush_interval() -> None:
    """Without --steps a block is the steps of the Recorder's default flush interval (half a second),
    so the one flush per block is the cadence a user's loop gets."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "recorder_paths.py"), "--paths", "plain", "--rounds", "1",
         "--replicas", "1", "--warmup", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    match = re.search(r"(\d+) steps per block", done.stdout)
    assert match and 20 <= int(match.group(1)) <= 2000, done.stdout[:600]
    assert "(the default flush interval)" in done.stdout
