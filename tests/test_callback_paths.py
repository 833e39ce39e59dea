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


@pytest.mark.parametrize("framework", ["lightning", "huggingface"])
def test_a_misspelt_option_or_a_path_that_is_no_name_fails_where_the_callback_is_made(
    tmp_path: Path, framework: str
) -> None:
    """flush_second=1 failed once training started, after the framework's setup, as a TypeError of
    Recorder's inside a framework traceback; a number for the path with pathlib's own words."""
    callback = importlib.import_module(f"vgp_tui.integrations.{framework}").VgpTuiCallback
    path = tmp_path / "run.jsonl"
    for wrong in ("flush_second", "clip", "first_step"):  # (the callback decides first_step itself)
        with pytest.raises(TypeError, match=rf"^VgpTuiCallback got an unexpected keyword argument '{wrong}': it "
                                            r"takes path, preset, flush_seconds and these of vgp_tui.Recorder: "
                                            r"lr, remedies, enabled, scaler, on_nonfinite$"):
            callback(path, **{wrong: 1})
    with pytest.raises(TypeError, match=r"^VgpTuiCallback's path must be the recording's file name \(a str or "
                                        r"Path\), not float 1.0$"):
        callback(1.0)
    assert callback(str(path), on_nonfinite="warn", remedies={"activation": "relu"}).path == path
