"""The multi-process tests' launcher runs a launch again only after gloo's teardown abort, and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from torchrun import launch

WORKER = Path(__file__).with_name("aborting_worker.py")


def test_a_launch_that_gloo_aborts_at_teardown_runs_again_with_a_warning(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="aborted in gloo's teardown"):
        launch(WORKER, str(tmp_path), "teardown-abort")


def test_any_other_failure_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="worker error"):
        launch(WORKER, str(tmp_path), "error")
