"""Launching a test's worker script on 2 CPU processes with ``torchrun`` (gloo), as the multi-process tests do."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

# What a process prints when C++ destroys a thread still running. gloo's teardown did it twice here, on
# a loaded two-core machine, after the worker's last line (in barrier(), destroy_process_group() or at
# exit), and not in 40 launches in a row: no thread of vgp-tui's is involved (the Recorder starts none).
GLOO_TEARDOWN_ABORT = "terminate called without an active exception"


def launch(worker: Path, *args: str, timeout: float = 300, cwd: Path | None = None) -> None:
    """Run ``worker`` under ``torch.distributed.run --nproc-per-node 2`` (a free port, one thread per
    process: CI has two cores) and fail the test with its output's tail unless every process succeeds.

    A launch that fails with gloo's teardown abort is run once more, with a warning in pytest's summary
    that says so: a second failure of any kind fails the test. The tests read what the second launch
    wrote (each worker writes its files afresh), so a fault of ours shows either way."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--rdzv-backend", "c10d",
               "--rdzv-endpoint", "localhost:0", str(worker), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    if done.returncode != 0 and GLOO_TEARDOWN_ABORT in done.stdout + done.stderr:
        warnings.warn(f"{worker.name}: a process aborted in gloo's teardown ({GLOO_TEARDOWN_ABORT!r}); launched again",
                      stacklevel=2)
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
