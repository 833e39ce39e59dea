"""vgp_tui.integrations.huggingface: a transformers Trainer run's recording holds what autograd computes.

Each test trains a tiny model, built in code from nothing downloaded, for a few optimizer steps on the
CPU with ``transformers.Trainer`` (accumulation 2, clipping on) and checks the recording against the
same micro-batches replayed in a plain PyTorch loop, and against what the Trainer itself logs.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing may be downloaded: every model here is built from a config
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from torch import nn  # noqa: E402

from vgp_tui.engine.events import RunStarted, StateChanged, StepMetrics  # noqa: E402
from vgp_tui.engine.probe import default_layer_groups  # noqa: E402
from vgp_tui.engine.recording import read_recording  # noqa: E402
from vgp_tui.integrations.huggingface import VgpTuiCallback  # noqa: E402

from reference_steps import assert_steps_match  # noqa: E402
from torchrun import launch  # noqa: E402

ACCUMULATE = 2
LR = 0.1
CLIP = 0.65  # between the steps' total norms: some steps clip and some do not (asserted below)
SAMPLES = 36  # batches of 4: nine micro-batches, four steps of two and a last one of one


class Tiny(nn.Module):
    """A plain module in the Trainer's shape: keyword inputs, a dict with the loss out."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8, bias=False), nn.Tanh(), nn.Linear(8, 3))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.net(x)
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


def _tiny_data() -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [{"x": torch.randn(6, generator=g) * 3, "labels": torch.randint(0, 3, (), generator=g)} for _ in range(SAMPLES)]


class _Inputs:
    """Keeps every training micro-batch the model saw, in order (the Trainer shuffles with its seed)."""

    def __init__(self, model: nn.Module) -> None:
        self.seen: list[dict[str, torch.Tensor]] = []
        model.register_forward_pre_hook(self._keep, with_kwargs=True)

    def _keep(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if module.training:
            self.seen.append({k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()})


def _train(model: nn.Module, data: list[dict[str, torch.Tensor]], tmp_path: Path, callbacks: list[Any],
           clip: float = CLIP, eval_dataset: Any = None, **options: Any) -> transformers.Trainer:
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, gradient_accumulation_steps=ACCUMULATE,
        max_grad_norm=clip, learning_rate=LR, optim="sgd", lr_scheduler_type="constant", weight_decay=0.0,
        num_train_epochs=1, logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True, dataloader_num_workers=0, seed=3, **options,
    )
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data, eval_dataset=eval_dataset,
                                   callbacks=callbacks)
    trainer.train()
    return trainer


def _replay(model: nn.Module, micro_batches: list[dict[str, torch.Tensor]], steps: int, clip: float | None
            ) -> list[tuple[float, list[float], float, bool | None]]:
    """The Trainer's step in a plain loop: each micro-batch's loss / the step's micro-batches, backward,
    norms (float64, per module that owns parameters), clip_grad_norm_, SGD.

    As the Trainer does (``Trainer.training_step``), a loss the model computed with ``num_items_in_batch``
    counts as normalised over the step already and is not divided (a transformers model takes the
    argument even where its loss ignores it, as BERT's sequence classification does: its steps' losses
    and gradients are then sums over the micro-batches, and the Trainer logs that loss).
    """
    groups = default_layer_groups(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    sizes = [ACCUMULATE] * (len(micro_batches) // ACCUMULATE) + [len(micro_batches) % ACCUMULATE] * bool(
        len(micro_batches) % ACCUMULATE)
    assert len(sizes) == steps
    out, start = [], 0
    for size in sizes:
        optimizer.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for inputs in micro_batches[start : start + size]:
            loss = model(**inputs)["loss"]
            if inputs.get("num_items_in_batch") is None:
                loss = loss / size
            loss.backward()
            loss_sum += float(loss.detach())
        start += size
        norms = [math.sqrt(sum(float(p.grad.double().norm()) ** 2 for p in ps)) for _, ps in groups]
        total = math.sqrt(sum(v * v for v in norms))
        out.append((loss_sum, norms, total, None if clip is None else total > clip))
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
    return out


def _steps(path: Path) -> list[StepMetrics]:
    result = read_recording(path)
    assert result.warning is None
    return [e for e in result.events if isinstance(e, StepMetrics)]


def _logged(trainer: transformers.Trainer, key: str) -> list[float]:
    return [entry[key] for entry in trainer.state.log_history if key in entry and "train_runtime" not in entry]


def test_records_autograds_norms_per_optimizer_step_with_accumulation_and_clipping(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    model = Tiny()
    inputs = _Inputs(model)
    trainer = _train(model, _tiny_data(), tmp_path, [VgpTuiCallback(path, flush_seconds=0.0)])
    assert trainer.args.max_grad_norm == CLIP  # given back
    steps = _steps(path)
    assert [s.step for s in steps] == [1, 2, 3, 4, 5] and len(inputs.seen) == 9
    reference_model = Tiny()
    reference = _replay(reference_model, inputs.seen, len(steps), CLIP)
    assert_steps_match(steps, reference, LR)
    # The Trainer's own log agrees: its grad_norm is the norm before clipping, its loss the step's.
    assert [s.total_norm for s in steps] == pytest.approx(_logged(trainer, "grad_norm"), rel=1e-5)
    assert [s.loss for s in steps] == pytest.approx(_logged(trainer, "loss"), abs=1e-4)  # logged to 4 digits
    result = read_recording(path)
    run = next(e for e in result.events if isinstance(e, RunStarted))
    assert run.layers == ("net.0", "net.2", "net.4") and run.preset == "Tiny"
    assert run.remedies == {"lr": LR, "clip": CLIP, "accumulate": ACCUMULATE}
    end = result.events[-1]
    assert isinstance(end, StateChanged) and end.state == "finished" and end.step == 5
    # The optimizer got clip_grad_norm_'s gradients: the plain loop ends with the same weights, and the
    # run without the callback with the very same ones (the callback moved the clipping, changed nothing).
    for p, q in zip(model.parameters(), reference_model.parameters()):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-5, atol=1e-6)
    untouched = Tiny()
    _train(untouched, _tiny_data(), tmp_path, [])
    for p, q in zip(model.parameters(), untouched.parameters()):
        assert torch.equal(p.detach(), q.detach())


class _SeesClipping(transformers.TrainerCallback):
    """Notes the ``max_grad_norm`` the Trainer will clip with, at every ``on_step_begin`` (after vgp-tui's)."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.seen.append(args.max_grad_norm)


def test_measures_at_the_end_of_the_backward_and_leaves_the_trainers_clipping_alone(tmp_path: Path) -> None:
    """The measurement runs when the step's last backward is done (queued with the autograd engine),
    before the Trainer clips: the Trainer keeps its max_grad_norm all along and clips (and logs) as it
    would without the callback, and the callback measures and clips nothing in on_pre_optimizer_step."""
    path = tmp_path / "run.jsonl"
    model = Tiny()
    inputs = _Inputs(model)
    callback = VgpTuiCallback(path, flush_seconds=0.0)
    measured_in_backward: list[bool] = []
    step: Any = None  # the Recorder's own step, once it exists

    class During(transformers.TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            nonlocal step
            recorder = callback.recorder
            assert recorder is not None
            step = recorder.step

            def noted(*a: Any, **k: Any) -> None:
                # Inside backward(): the engine runs queued callbacks with grad mode off, before returning.
                measured_in_backward.append(not torch.is_grad_enabled() and callback._queued is False)
                step(*a, **k)

            recorder.step = noted  # type: ignore[method-assign]

    sees = _SeesClipping()
    trainer = _train(model, _tiny_data(), tmp_path, [callback, During(), sees])
    assert sees.seen == [CLIP] * 5  # never held back at 0
    assert measured_in_backward == [True] * 5
    steps = _steps(path)
    assert_steps_match(steps, _replay(Tiny(), inputs.seen, len(steps), CLIP), LR)
    assert [s.total_norm for s in steps] == pytest.approx(_logged(trainer, "grad_norm"), rel=1e-5)


def test_under_ddp_the_measurement_waits_for_the_averaged_gradient(tmp_path: Path) -> None:
    """Two processes (torchrun, gloo): the measurement queued at the end of the backward runs after
    DistributedDataParallel's own finishing callback, so rank 0 records the gradient averaged over the
    ranks, the one the Trainer clips and logs (measured before DDP's callback, it was rank 0's own)."""
    launch(Path(__file__).with_name("huggingface_ddp_worker.py"), str(tmp_path))
    steps = _steps(tmp_path / "run.jsonl")
    logged = json.loads((tmp_path / "logged.json").read_text())
    assert [s.step for s in steps] == list(range(1, len(logged) + 1)) and len(logged) >= 4
    assert [s.total_norm for s in steps] == pytest.approx(logged, rel=1e-5)
    assert [s.clipped for s in steps] == [v > CLIP for v in logged]


class _LossBesideTheModel(transformers.Trainer):
    """A Trainer whose loss never passes through the model's outputs (it calls the inner network)."""

    def compute_loss(self, model: nn.Module, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        loss = nn.functional.cross_entropy(model.net(inputs["x"]), inputs["labels"])
        return (loss, None) if return_outputs else loss


def test_a_backward_that_misses_the_outputs_holds_the_clipping_back_from_the_next_step(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    model = Tiny()
    seen: list[torch.Tensor] = []
    model.net.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()) if m.training else None)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, gradient_accumulation_steps=ACCUMULATE,
        max_grad_norm=CLIP, learning_rate=LR, optim="sgd", lr_scheduler_type="constant", weight_decay=0.0,
        num_train_epochs=1, logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True, dataloader_num_workers=0, seed=3,
    )
    sees = _SeesClipping()
    trainer = _LossBesideTheModel(model=model, args=args, train_dataset=_tiny_data(),
                                  callbacks=[VgpTuiCallback(path, flush_seconds=0.0), sees])
    with pytest.warns(RuntimeWarning) as warned:
        trainer.train()
    messages = [str(w.message) for w in warned]
    assert sum("measured after clipping" in m for m in messages) == 1, messages
    assert trainer.args.max_grad_norm == CLIP  # given back
    assert sees.seen == [CLIP] + [0.0] * 4  # held back from the second step on
    steps = _steps(path)
    assert len(seen) == 9
    # The replay needs each micro-batch's inputs with its labels: the Trainer shuffled them with its
    # seed, so they are matched back by their x.
    by_x = {tuple(d["x"].tolist()): d["labels"] for d in _tiny_data()}
    micro = [{"x": x, "labels": torch.stack([by_x[tuple(row.tolist())] for row in x])} for x in seen]
    reference = _replay(Tiny(), micro, len(steps), CLIP)
    # Step 1 was measured after the Trainer's clipping: "clipped" unknown, and where it clipped the total
    # is the threshold's; from step 2 on, the gradient before clipping, as autograd computes it.
    assert steps[0].clipped is None
    assert steps[0].total_norm == pytest.approx(min(reference[0][2], CLIP), rel=1e-4)
    assert [s.total_norm for s in steps[1:]] == pytest.approx([r[2] for r in reference[1:]], rel=1e-5)
    assert [s.clipped for s in steps[1:]] == [r[3] for r in reference[1:]]
    # The run trained as without the callback.
    untouched = Tiny()
    plain = _LossBesideTheModel(model=untouched, args=args, train_dataset=_tiny_data())
    plain.train()
    for p, q in zip(model.parameters(), untouched.parameters()):
        assert torch.equal(p.detach(), q.detach())


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_records_the_norms_the_trainer_logs(tmp_path: Path, precision: str) -> None:
    # Autocast on the CPU (accelerate uses no GradScaler there): the recorded totals are the Trainer's
    # own unscaled pre-clip grad_norm, the losses its logged ones.
    path = tmp_path / "run.jsonl"
    trainer = _train(Tiny(), _tiny_data(), tmp_path, [VgpTuiCallback(path, flush_seconds=0.0)], **{precision: True})
    steps = _steps(path)
    assert [s.step for s in steps] == [1, 2, 3, 4, 5]
    assert [s.total_norm for s in steps] == pytest.approx(_logged(trainer, "grad_norm"), rel=1e-5)
    assert [s.loss for s in steps] == pytest.approx(_logged(trainer, "loss"), abs=1e-3)
    assert [s.clipped for s in steps] == [s.total_norm > CLIP for s in steps]
    assert all(math.isfinite(v) for s in steps for v in s.grad_norm)


def test_a_grad_scaler_is_measured_before_it_unscales_and_its_skipped_steps_are_marked(tmp_path: Path) -> None:
    """float16 with accelerate's GradScaler, as on a GPU (on the CPU accelerate makes none, so the test
    gives the Trainer's accelerator one): the callback measures at the end of the backward, before the
    Trainer unscales, and still records the unscaled norms the Trainer logs; the first steps overflow
    float16 at a scale of 2**20 and are recorded as skipped, not as values."""
    path = tmp_path / "run.jsonl"
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, gradient_accumulation_steps=ACCUMULATE,
        max_grad_norm=CLIP, learning_rate=LR, optim="sgd", lr_scheduler_type="constant", weight_decay=0.0,
        num_train_epochs=1, logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True, dataloader_num_workers=0, seed=3, fp16=True,
    )
    trainer = transformers.Trainer(model=Tiny(), args=args, train_dataset=_tiny_data(),
                                   callbacks=[VgpTuiCallback(path, flush_seconds=0.0)])
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**20, growth_interval=1000)
    trainer.accelerator.scaler, trainer.accelerator.native_amp = scaler, True
    trainer.train()
    steps = _steps(path)
    logged = _logged(trainer, "grad_norm")
    assert [s.step for s in steps] == [1, 2, 3, 4, 5] and len(logged) == 5
    skipped = [not math.isfinite(v) for v in logged]
    assert any(skipped) and not all(skipped), logged  # the scale halves until the steps fit
    assert [s.skipped for s in steps] == skipped
    kept = [(s.total_norm, v) for s, v in zip(steps, logged) if math.isfinite(v)]
    assert [a for a, _ in kept] == pytest.approx([b for _, b in kept], rel=1e-5)
    assert [s.clipped for s in steps if not s.skipped] == [v > CLIP for v in logged if math.isfinite(v)]


def _tiny_bert() -> transformers.BertForSequenceClassification:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=40, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
        max_position_embeddings=16, num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    return transformers.BertForSequenceClassification(config)


def test_a_transformers_model_records_every_parameter_owning_module(tmp_path: Path) -> None:
    # A real transformers model (built from a config: no download), clipping off: the layers are its
    # modules, and each step's norms are those a plain loop gets from the same micro-batches.
    g = torch.Generator().manual_seed(2)
    data = [{"input_ids": torch.randint(0, 40, (10,), generator=g), "labels": torch.randint(0, 3, (), generator=g)}
            for _ in range(16)]
    path = tmp_path / "bert.jsonl"
    model = _tiny_bert()
    inputs = _Inputs(model)
    trainer = _train(model, data, tmp_path, [VgpTuiCallback(path, flush_seconds=0.0)], clip=0.0)
    run = next(e for e in read_recording(path).events if isinstance(e, RunStarted))
    assert run.layers == tuple(name for name, _ in default_layer_groups(model))
    assert run.layers[0] == "bert.embeddings.word_embeddings" and run.layers[-1] == "classifier"
    assert run.remedies["clip"] is None and run.preset == "BertForSequenceClassification"
    steps = _steps(path)
    assert [s.step for s in steps] == [1, 2] and len(inputs.seen) == 4
    reference = _replay(_tiny_bert(), inputs.seen, len(steps), None)
    for s, (loss, norms, total, _) in zip(steps, reference):
        assert s.loss == pytest.approx(loss, rel=1e-5)
        assert list(s.grad_norm) == pytest.approx(norms, rel=1e-5, abs=1e-12)
        assert s.total_norm == pytest.approx(total, rel=1e-5)
        assert s.clipped is None
    assert [s.loss for s in steps] == pytest.approx(_logged(trainer, "loss"), abs=1e-4)


def test_only_the_world_process_zero_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transformers.Trainer, "is_world_process_zero", lambda self: False)
    path = tmp_path / "run.jsonl"
    model = Tiny()
    _train(model, _tiny_data(), tmp_path, [VgpTuiCallback(path)])
    assert not path.exists()
    untouched = Tiny()  # the clipping moved on the other ranks too, and stayed the same
    _train(untouched, _tiny_data(), tmp_path, [])
    for p, q in zip(model.parameters(), untouched.parameters()):
        assert torch.equal(p.detach(), q.detach())


class _StepsOnDisk(transformers.TrainerCallback):
    """Counts, after each evaluation, the steps the recording held on disk (written before it began)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[tuple[int, int]] = []  # (optimizer steps taken, steps on disk)

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        on_disk = sum('"type":"step"' in line for line in self.path.read_text().splitlines())
        self.seen.append((state.global_step, on_disk))


def test_the_steps_before_an_evaluation_are_on_disk(tmp_path: Path) -> None:
    # An evaluation is a pause with no step to flush: without a flush before it, the last steps would
    # wait, off the --follow screen and lost to a kill, until training went on.
    path = tmp_path / "run.jsonl"
    probe = _StepsOnDisk(path)
    data = _tiny_data()
    _train(Tiny(), data, tmp_path, [VgpTuiCallback(path, flush_seconds=1e9), probe],
           eval_strategy="steps", eval_steps=2, eval_dataset=data[:4])
    assert probe.seen == [(2, 2), (4, 4), (5, 5)]  # (and the last step, as the training ends)


def test_a_second_train_with_the_callback_is_the_recordings_next_run(tmp_path: Path) -> None:
    """trainer.train() again (more epochs, or a resumed checkpoint) replaced the first training's
    recording without a word: it is the next run, numbered on from the Trainer's global step."""
    path = tmp_path / "run.jsonl"
    model = Tiny()
    trainer = _train(model, _tiny_data(), tmp_path, [VgpTuiCallback(path, flush_seconds=0.0)])
    trainer.train()  # a second training of the same Trainer: its state starts again at step 0
    result = read_recording(path)
    assert result.warning is None
    assert [(s.run, s.step) for s in _steps(path)] == [(1, n) for n in range(1, 6)] + [(2, n) for n in range(1, 6)]
    assert [e.run for e in result.events if isinstance(e, RunStarted)] == [1, 2]
    assert [(e.run, e.step) for e in result.events if isinstance(e, StateChanged)] == [(1, 5), (2, 5)]
    times = [e.t for e in result.events if hasattr(e, "t")]
    assert times == sorted(times)
