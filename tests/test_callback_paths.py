"""Both frameworks' VgpTuiCallback check what they are given where it is given: the recording's path and
options where the callback is made, the Trainer where it first calls the callback."""

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


def test_a_callback_given_to_the_other_frameworks_trainer_names_the_one_to_use(tmp_path: Path) -> None:
    """Each failed with an AttributeError naming a hook ('state_key', 'on_init_end'), not the mistake."""
    import lightning.pytorch as pl
    import torch
    import transformers

    from vgp_tui.integrations import huggingface, lightning

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch: list[torch.Tensor], index: int) -> torch.Tensor:
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=4)
    trainer = pl.Trainer(callbacks=[huggingface.VgpTuiCallback(tmp_path / "a.jsonl")], max_steps=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path)
    with pytest.raises(TypeError, match=re.escape(
        "vgp_tui.integrations.huggingface.VgpTuiCallback is for transformers.Trainer: with "
        "lightning.pytorch.Trainer use vgp_tui.integrations.lightning.VgpTuiCallback"
    )):
        trainer.fit(Module(), loader)
    assert not (tmp_path / "a.jsonl").exists()

    args = transformers.TrainingArguments(output_dir=str(tmp_path / "hf"), max_steps=1, report_to=[], use_cpu=True)
    with pytest.raises(TypeError, match=re.escape(
        "vgp_tui.integrations.lightning.VgpTuiCallback is for lightning.pytorch.Trainer: with "
        "transformers.Trainer use vgp_tui.integrations.huggingface.VgpTuiCallback"
    )):
        transformers.Trainer(model=torch.nn.Linear(2, 1), args=args,
                             callbacks=[lightning.VgpTuiCallback(tmp_path / "b.jsonl")])
