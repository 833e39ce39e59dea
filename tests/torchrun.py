"""Launching a test's worker script on 2 CPU processes with ``torchrun`` (gloo), as the multi-process tests do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def launch(worker: Path, *args: str, timeout: float = 300, cwd: Path | None = None) -> None:
    """Run ``worker`` under ``torch.distributed.run --nproc-per-node 2`` (a free port, one thread per
    process: CI has two cores) and fail the test with its output's tail unless every process succeeds."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--rdzv-backend", "c10d",
         "--rdzv-endpoint", "localhost:0", str(worker), *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
