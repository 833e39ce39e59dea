"""vgp_tui.integrations.lightning: a Lightning run's recording holds what autograd computes.

Each test trains a tiny MLP for a few optimizer steps on the CPU with ``lightning.pytorch.Trainer`` and
compares the recording with the same batches replayed in a plain PyTorch loop (same seed, same
weights): per-layer norms before clipping, the clipped flag, the loss of the accumulated micro-batches.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch import nn

from vgp_tui.engine.events import RunStarted, SessionHeader, StateChanged, StepMetrics
from vgp_tui.engine.recording import read_recording
from vgp_tui.integrations.lightning import VgpTuiCallback

from reference_steps import Reference, assert_steps_match

BATCHES = 9  # with accumulation 2: four steps of two micro-batches and a last one of one
ACCUMULATE = 2
LR = 0.1
CLIP = 0.65  # between the steps' total norms: some steps clip and some do not (asserted below)


def _data() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(4, 6, generator=g) * 3, torch.randint(0, 3, (4,), generator=g)) for _ in range(BATCHES)]


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    # One layer without a bias: layers of one and of two parameter tensors.
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8, bias=False), nn.Tanh(), nn.Linear(8, 3))


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = _net()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=LR)


def _fit(callbacks: list[pl.Callback], **trainer_options: object) -> Tiny:
    model = Tiny()
    options: dict[str, object] = {
        "accelerator": "cpu", "devices": 1, "max_epochs": 1, "accumulate_grad_batches": ACCUMULATE,
        "gradient_clip_val": CLIP, "logger": False, "enable_checkpointing": False,
        "enable_progress_bar": False, "enable_model_summary": False, "num_sanity_val_steps": 0,
        **trainer_options,
    }
    loader = torch.utils.data.DataLoader(_data(), batch_size=None)  # each item is already a batch
    pl.Trainer(callbacks=callbacks, **options).fit(model, loader)  # type: ignore[arg-type]
    return model


def _reference(
    autocast: torch.dtype | None = None, scaler: torch.amp.GradScaler | None = None
) -> tuple[list[tuple[float, list[float], float, bool]], nn.Module]:
    """The same run in a plain loop: (loss, layer norms, total, clipped) per optimizer step, and the net.

    As Lightning does: each micro-batch's loss is divided by ``accumulate_grad_batches`` (the short last
    step too), the gradient is unscaled before it is measured and clipped with ``clip_grad_norm_``. The
    loss recorded is the mean of the step's micro-batch losses, the short last step's too.
    """
    net = _net()
    optimizer = torch.optim.SGD(net.parameters(), lr=LR)
    layers = [list(net[i].parameters()) for i in (0, 2, 4)]
    data = _data()
    steps = []
    for start in range(0, len(data), ACCUMULATE):
        optimizer.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for x, y in data[start : start + ACCUMULATE]:
            with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
                loss = nn.functional.cross_entropy(net(x), y) / ACCUMULATE
            loss_sum += float(loss.detach())
            (scaler.scale(loss) if scaler is not None else loss).backward()
        if scaler is not None:
            scaler.unscale_(optimizer)
        norms = [math.sqrt(sum(float(p.grad.double().norm()) ** 2 for p in ps)) for ps in layers]
        total = math.sqrt(sum(v * v for v in norms))
        window = len(data[start : start + ACCUMULATE])
        steps.append((loss_sum * ACCUMULATE / window, norms, total, total > CLIP))
        nn.utils.clip_grad_norm_(net.parameters(), CLIP)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
    return steps, net


def _steps(path: Path) -> list[StepMetrics]:
    result = read_recording(path)
    assert result.warning is None
    return [e for e in result.events if isinstance(e, StepMetrics)]


def _assert_matches(steps: list[StepMetrics], reference: Reference) -> None:
    assert len(steps) == 5
    assert_steps_match(steps, reference, LR)


def _assert_same_weights(a: nn.Module, b: nn.Module, exact: bool) -> None:
    for p, q in zip(a.parameters(), b.parameters()):
        if exact:
            assert torch.equal(p.detach(), q.detach())
        else:
            torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-5, atol=1e-6)


def test_records_autograds_norms_per_optimizer_step_with_accumulation_and_clipping(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    model = _fit([VgpTuiCallback(path, flush_seconds=0.0)])
    reference, reference_net = _reference()
    result = read_recording(path)
    run = next(e for e in result.events if isinstance(e, RunStarted))
    assert run.layers == ("net.0", "net.2", "net.4") and run.preset == "Tiny"
    assert run.remedies == {"lr": LR, "clip": CLIP, "accumulate": ACCUMULATE}
    _assert_matches(_steps(path), reference)
    end = result.events[-1]
    assert isinstance(end, StateChanged) and end.state == "finished" and end.step == 5
    # The optimizer got clip_grad_norm_'s gradients: the plain loop ends with the same weights ...
    _assert_same_weights(model.net, reference_net, exact=False)
    # ... and the callback changed nothing: bit for bit the run without it.
    _assert_same_weights(model, _fit([]), exact=True)


def test_bf16_mixed_records_the_float32_gradients(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    model = _fit([VgpTuiCallback(path, flush_seconds=0.0)], precision="bf16-mixed")
    reference, reference_net = _reference(autocast=torch.bfloat16)
    _assert_matches(_steps(path), reference)
    _assert_same_weights(model.net, reference_net, exact=False)


def test_fp16_with_a_grad_scaler_records_unscaled_norms_and_loss(tmp_path: Path) -> None:
    # Lightning turns precision="16-mixed" into bf16 on the CPU; a plugin given explicitly keeps fp16
    # autocast and a real GradScaler, as on a GPU. A scale of 1024 would show as a 1024-fold norm or loss.
    path = tmp_path / "run.jsonl"
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    model = _fit([VgpTuiCallback(path, flush_seconds=0.0)], plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)])
    reference, reference_net = _reference(autocast=torch.float16, scaler=torch.amp.GradScaler("cpu", init_scale=1024.0))
    _assert_matches(_steps(path), reference)
    _assert_same_weights(model.net, reference_net, exact=False)


def test_only_global_rank_zero_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pl.Trainer, "is_global_zero", property(lambda self: False))
    path = tmp_path / "run.jsonl"
    callback = VgpTuiCallback(path)
    _fit([callback])
    assert not path.exists()


class _TinyWithValidation(Tiny):
    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))


class _StepsOnDisk(pl.Callback):
    """Counts, when a validation starts, the steps the recording already holds on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[tuple[int, int]] = []  # (optimizer steps taken, steps on disk)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        on_disk = sum('"type":"step"' in line for line in self.path.read_text().splitlines())
        self.seen.append((trainer.global_step, on_disk))


def test_the_steps_before_a_validation_are_on_disk_during_it(tmp_path: Path) -> None:
    # A validation (or an epoch's end) is a pause with no step() to flush: without a flush there, the
    # last steps would wait, off the --follow screen and lost to a kill, until training went on.
    path = tmp_path / "run.jsonl"
    probe = _StepsOnDisk(path)
    loader = torch.utils.data.DataLoader(_data(), batch_size=None)
    trainer = pl.Trainer(
        callbacks=[VgpTuiCallback(path, flush_seconds=1e9), probe], accelerator="cpu", devices=1, max_epochs=1,
        accumulate_grad_batches=ACCUMULATE, val_check_interval=4, limit_val_batches=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )
    trainer.fit(_TinyWithValidation(), loader, loader)  # type: ignore[arg-type]
    assert probe.seen == [(2, 2), (4, 4)]


def test_a_second_fit_with_the_callback_is_the_recordings_next_run_numbered_on(tmp_path: Path) -> None:
    """A second fit() replaced the first's recording without a word, and a fit resumed at global step 5
    was numbered from 1 under a message that said 10 steps."""
    path = tmp_path / "run.jsonl"
    callback = VgpTuiCallback(path, flush_seconds=0.0)
    model = Tiny()
    options: dict[str, object] = {
        "accelerator": "cpu", "devices": 1, "max_epochs": 1, "accumulate_grad_batches": ACCUMULATE,
        "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
        "enable_model_summary": False, "num_sanity_val_steps": 0,
    }
    loader = torch.utils.data.DataLoader(_data(), batch_size=None)
    trainer = pl.Trainer(callbacks=[callback], **options)  # type: ignore[arg-type]
    trainer.fit(model, loader)
    first = [(s.run, s.step) for s in _steps(path)]
    trainer.fit_loop.max_epochs = 2  # the same trainer trains on: its global step goes on from 5
    trainer.fit(model, loader)
    pl.Trainer(callbacks=[callback], **options).fit(model, loader)  # type: ignore[arg-type]  # a new one: from 1
    result = read_recording(path)
    assert sum(isinstance(e, SessionHeader) for e in result.events) == 0 and result.header is not None  # one header
    assert [(s.run, s.step) for s in _steps(path)] == first + [(2, n) for n in range(6, 11)] + [(3, n) for n in range(1, 6)]
    assert first == [(1, n) for n in range(1, 6)]
    assert [e.run for e in result.events if isinstance(e, RunStarted)] == [1, 2, 3]
    ends = [e for e in result.events if isinstance(e, StateChanged)]
    assert [(e.run, e.step, e.message) for e in ends] == [
        (1, 5, "training finished after 5 optimizer steps"), (2, 10, "training finished after 10 optimizer steps"),
        (3, 5, "training finished after 5 optimizer steps")]
    times = [e.t for e in result.events if hasattr(e, "t")]
    assert times == sorted(times)  # one clock: a replay plays the runs in turn
