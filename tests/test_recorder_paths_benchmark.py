"""benchmarks/recorder_paths.py runs (``--quick``) and prints a row for every path; no timing is asserted."""

from __future__ import annotations

import os
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
    for row in ("plain loop (no Recorder)", "plain loop + Recorder", "plain loop + Recorder + recorder.zero_grad()",
                "DDP (1 process, gloo) (no Recorder)", "DDP (1 process, gloo) + Recorder",
                "AMP autocast + GradScaler (no Recorder)", "AMP autocast + GradScaler + Recorder",
                "torch.compile (no Recorder)", "torch.compile + Recorder", "targets"):
        assert row in out, row
    assert out.count("target <= 1.05") == 5  # one verdict per path with the Recorder
