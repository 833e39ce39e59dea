"""Both frameworks' VgpTuiCallback check the recording's path where the callback is made."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # (importing transformers looks at nothing online)


@pytest.mark.parametrize("framework", ["lightning", "huggingface"])
@pytest.mark.parametrize("where", ["missing folder", "a folder"])
def test_a_path_that_cannot_be_written_fails_where_the_callback_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, framework: str, where: str
) -> None:
    """It failed once the Trainer started, after its setup, in a traceback from inside the framework."""
    from vgp_tui.errors import UserError

    callback = importlib.import_module(f"vgp_tui.integrations.{framework}").VgpTuiCallback
    monkeypatch.delenv("RANK", raising=False)
    path = tmp_path / "no" / "run.jsonl" if where == "missing folder" else tmp_path
    said = f"folder '{tmp_path / 'no'}' does not exist" if where == "missing folder" else "that is a folder"
    with pytest.raises(UserError, match=re.escape(said)):
        callback(path)
    monkeypatch.setenv("RANK", "1")  # another rank's disk may lack the folder: only the writer checks
    assert callback(path).path == path
