"""A torchrun worker for tests/test_torchrun.py: fails as told on its first launch, succeeds on the next."""

import os
import sys
from pathlib import Path

marker = Path(sys.argv[1]) / f"launched.{os.environ['RANK']}"
first = not marker.exists()
marker.touch()
if first and sys.argv[2] == "teardown-abort" and os.environ["RANK"] == "1":
    print("terminate called without an active exception", file=sys.stderr, flush=True)
    os.abort()
if first and sys.argv[2] == "error" and os.environ["RANK"] == "1":
    raise SystemExit("worker error")
