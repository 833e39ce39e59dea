"""The public Recorder: a user's own training loop, recorded for ``vgp-tui replay --follow``."""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import vgp_tui
from vgp_tui.engine.events import RemedyChanged, RunStarted, StateChanged, StepMetrics
from vgp_tui.engine.instrument import NonFiniteGradientError, Recorder
from vgp_tui.engine.probe import GradientProbe, NoGradientError, default_layer_groups
from vgp_tui.engine.recording import RecordingError, RecordingReader, read_recording
from vgp_tui.errors import UserError
from vgp_tui.replay import StopReplay, ToEnd

from vanishing_models import deep_sigmoid

README = Path(__file__).resolve().parents[1] / "README.md"
# What the README example trains (the test below fails if the example and these drift apart).
README_LAYERS = ("fc0", "fc1", "fc2", "fc3", "fc4", "fc5", "fc6", "fc7", "head")
README_STEPS = 300


def _env() -> dict[str, str]:
    # One thread per subprocess: the test machines are small and shared.
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _steps(events: list) -> list[StepMetrics]:
    return [e for e in events if isinstance(e, StepMetrics)]


def _mlp(seed: int = 0, widths: tuple[int, ...] = (6, 8, 8, 3)) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b, bias=i != 1))  # one layer without a bias: groups of 1 and 2
        layers.append(nn.Tanh())
    return nn.Sequential(*layers[:-1])


def _batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(step)
    return torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)


# -- (a) the README example runs and writes a readable recording ------------------------------------
def _readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Watch your own training loop\n", 1)
    assert len(section) == 2, "README.md lacks the section '## Watch your own training loop'"
    body = section[1].split("\n## ", 1)[0]
    match = re.search(r"^```python\n(.*?)^```", body, flags=re.S | re.M)
    assert match, "the README section has no ```python block"
    return match.group(1)


def test_readme_example_runs_and_writes_a_recording(tmp_path: Path) -> None:
    (tmp_path / "example.py").write_text(_readme_example(), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=180, env=_env()
    )
    assert done.returncode == 0, done.stderr
    result = read_recording(tmp_path / "run.jsonl")
    assert result.warning is None
    assert result.header.format == "vgp-tui-recording" and result.header.device == "cpu"
    assert result.header.versions["torch"] == torch.__version__
    runs = [e for e in result.events if isinstance(e, RunStarted)]
    assert len(runs) == 1 and runs[0].layers == README_LAYERS and runs[0].run == 1
    assert runs[0].params == 16 * 32 + 32 + 7 * (32 * 32 + 32) + 32 * 2 + 2
    steps = _steps(result.events)
    assert [s.step for s in steps] == list(range(1, README_STEPS + 1))
    for s in steps:
        assert s.run == 1 and len(s.grad_norm) == len(README_LAYERS)
        assert all(math.isfinite(v) for v in (s.loss, s.total_norm, s.t, s.step_ms, s.probe_ms, *s.grad_norm))
        assert s.clipped is None and s.lr == 0.5
    assert all(a.t <= b.t for a, b in zip(steps, steps[1:]))
    # The lesson is visible: the first sigmoid layer gets orders of magnitude less than the head.
    assert steps[0].grad_norm[0] < 1e-3 * steps[0].grad_norm[-1]
    assert isinstance(result.events[-1], StateChanged) and result.events[-1].state == "finished"


# -- (b) the recorded norms are plain autograd's -----------------------------------------------------
def test_recorded_norms_equal_plain_autograd(tmp_path: Path) -> None:
    model = _mlp()
    groups = default_layer_groups(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    reference: list[tuple[float, list[float], float]] = []
    path = tmp_path / "r.jsonl"
    with Recorder(path, GradientProbe(model), lr=0.1, flush_seconds=0.0) as recorder:
        for step in range(1, 8):
            x, y = _batch(step)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            layers = [math.sqrt(sum(float(p.grad.double().norm()) ** 2 for p in ps)) for _, ps in groups]
            total = math.sqrt(sum(v * v for v in layers))
            reference.append((float(loss.detach()), layers, total))
            recorder.step(loss, lr=0.1 / step)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    result = read_recording(path)
    run = next(e for e in result.events if isinstance(e, RunStarted))
    assert run.layers == tuple(name for name, _ in groups) == ("0", "2", "4")
    steps = _steps(result.events)
    assert [s.step for s in steps] == list(range(1, 8))
    for s, (loss, layers, total) in zip(steps, reference):
        assert s.loss == pytest.approx(loss, rel=1e-6)
        assert s.grad_norm == pytest.approx(layers, rel=1e-5)
        assert s.total_norm == pytest.approx(total, rel=1e-5)
        assert s.lr == pytest.approx(0.1 / s.step)


CUDA = pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")])


@pytest.mark.parametrize("device", ["cpu", CUDA])
@pytest.mark.parametrize("path", ["per-tensor", "per-tensor, clip", "per-tensor, a layer without gradient", "flat buffer"])
def test_the_tiniest_vanishing_norms_are_recorded_as_autograd_computes_them(tmp_path: Path, path: str, device: str) -> None:
    # A 31-layer sigmoid MLP: its first layers' gradients are 4e-27 to 1e-22. Their elements' float32
    # squares are 0, and the first six layers were recorded as exactly 0 (the 9th off in its 6th digit),
    # on a CPU until the norms were float64 there, on CUDA until they were float64 everywhere. A layer
    # that gets no gradient sends the CPU to _foreach_norm, the per-tensor path CUDA always takes.
    model = deep_sigmoid()
    if path == "per-tensor, a layer without gradient":
        model.add_module("unused", nn.Linear(3, 3))  # (after the head: the forward never reaches it)
    model.to(device)
    forward = model[:-1] if path == "per-tensor, a layer without gradient" else model
    probe = GradientProbe(model)
    out = tmp_path / "r.jsonl"
    with Recorder(out, probe, flush_seconds=0.0) as recorder:
        if path == "flat buffer":
            recorder.zero_grad()
        x, y = torch.randn(128, 2, device=device), torch.randint(0, 3, (128,), device=device)
        nn.functional.cross_entropy(forward(x), y).backward()
        expected = [math.sqrt(sum(float(p.grad.double().norm()) ** 2 for p in params if p.grad is not None))
                    for _, params in default_layer_groups(model)]
        assert expected[0] < 1e-25 and expected[5] < 1e-21  # (what the model is here for)
        measured, total = probe.measure()
        assert measured.tolist() == pytest.approx(expected, rel=1e-6, abs=0)  # (approx has abs=1e-12 by default)
        recorder.step(1.0, clip=1e9 if path == "per-tensor, clip" else None)
    (step,) = _steps(read_recording(out).events)
    assert list(step.grad_norm) == pytest.approx(expected, rel=1e-6, abs=0)
    assert step.total_norm == pytest.approx(math.sqrt(sum(v * v for v in expected)), rel=1e-6)


@pytest.mark.parametrize("path", ["per-tensor", "flat buffer"])
def test_off_the_cpu_the_norms_are_measured_in_float64_too(path: str) -> None:
    # On CUDA the squares of a vanishing layer's float32 gradient underflow as they do on a CPU; the
    # probe measured there in float32 (its first layers read 0: the CUDA case of the test above). The
    # meta device is not the CPU and computes nothing: what is checked here is the dtypes of the work.
    model = _mlp().to("meta")
    probe = GradientProbe(model)
    if path == "flat buffer":
        assert probe.use_flat_grads()
    x = torch.zeros(16, 6, device="meta")
    model(x).sum().backward()
    norms, _ = probe.partial_norms()
    assert norms.dtype == torch.float64 and norms.device.type == "meta"
    assert probe.partial_squares().dtype == torch.float64
    assert probe.measure_packed().dtype == torch.float32  # (what is recorded: float32 values)
    if path == "flat buffer":
        assert probe.sample().values.dtype == torch.float64
        assert probe._scratch is not None and probe._scratch.device.type == "meta"  # (kept where the buffer is)


def test_a_recorder_told_no_learning_rate_records_none_not_zero(tmp_path: Path) -> None:
    # A Recorder built without lr= wrote "lr":0.0 at every step of a loop whose SGD ran at 0.5.
    model = _mlp()
    path = tmp_path / "r.jsonl"
    with Recorder(path, GradientProbe(model), flush_seconds=0.0) as recorder:
        for step in range(1, 4):
            x, y = _batch(step)
            nn.functional.cross_entropy(model(x), y).backward()
            recorder.step(float(step), lr=0.25 if step == 2 else None)  # one step says its own
            model.zero_grad(set_to_none=True)
    lines = [line for line in path.read_text().splitlines() if '"type":"step"' in line]
    assert ['"lr":null' in line for line in lines] == [True, False, True], lines
    assert [s.lr for s in _steps(read_recording(path).events)] == [None, 0.25, None]


def test_nan_gradients_are_recorded_not_dropped(tmp_path: Path) -> None:
    model = _mlp()
    path = tmp_path / "r.jsonl"
    with Recorder(path, GradientProbe(model)) as recorder:
        x, y = _batch(1)
        loss = nn.functional.cross_entropy(model(x), y) * float("nan")
        loss.backward()
        recorder.step(loss)
    (step,) = _steps(read_recording(path).events)
    assert math.isnan(step.loss) and math.isnan(step.total_norm) and all(math.isnan(v) for v in step.grad_norm)
    assert step.lr is None  # (not told)


# -- (c) clipping is clip_grad_norm_'s ----------------------------------------------------------------
def test_clipping_equals_clip_grad_norm(tmp_path: Path) -> None:
    model = _mlp()
    twin = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    twin_opt = torch.optim.SGD(twin.parameters(), lr=0.5)
    path = tmp_path / "r.jsonl"
    twin_totals = []
    with Recorder(path, GradientProbe(model), flush_seconds=0.0) as recorder:
        for step, max_norm in enumerate([0.05, 0.05, 100.0, 0.01], 1):
            x, y = _batch(step)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            nn.functional.cross_entropy(twin(x), y).backward()
            recorder.step(loss, clip=max_norm)
            twin_totals.append(float(nn.utils.clip_grad_norm_(twin.parameters(), max_norm)))
            for p, q in zip(model.parameters(), twin.parameters()):
                torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-8)
            opt.step()
            twin_opt.step()
            opt.zero_grad(set_to_none=True)
            twin_opt.zero_grad(set_to_none=True)
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    steps = _steps(read_recording(path).events)
    assert [s.clipped for s in steps] == [True, True, False, True]
    assert [s.total_norm for s in steps] == pytest.approx(twin_totals, rel=1e-5)


class _TiedLanguageModel(nn.Module):
    """An embedding whose weight is also the output head's, as GPT-2's ``wte`` and ``lm_head``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(11, 6)
        self.mix = nn.Linear(6, 6)
        self.head = nn.Linear(6, 11, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.mix(self.embed(tokens))))


@pytest.mark.parametrize("zeroing", ["optimizer", "recorder"])
def test_a_tied_weight_counts_once_in_its_last_layer(tmp_path: Path, zeroing: str) -> None:
    """Counted once, at the output side: its gradient is mostly the head's, and taken for the input
    side's (the embedding, layer 1) it made the flow look as if the head's gradient reached the input."""
    model, twin = _TiedLanguageModel(), _TiedLanguageModel()
    probe = GradientProbe(model)
    assert probe.layer_names == ("mix", "head")  # the embedding owns nothing but the tied weight
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    twin_opt = torch.optim.SGD(twin.parameters(), lr=0.5)
    path = tmp_path / "r.jsonl"
    twin_totals, embed_norms = [], []
    with Recorder(path, probe, flush_seconds=0.0) as recorder:
        for step in range(1, 4):
            tokens = torch.randint(0, 11, (8,), generator=torch.Generator().manual_seed(step))
            loss = nn.functional.cross_entropy(model(tokens), tokens)
            loss.backward()
            nn.functional.cross_entropy(twin(tokens), tokens).backward()
            embed_norms.append(float(twin.embed.weight.grad.norm()))
            recorder.step(loss, clip=0.5)  # clipping by the total counted once, as clip_grad_norm_ counts it
            twin_totals.append(float(nn.utils.clip_grad_norm_(twin.parameters(), 0.5)))
            for p, q in zip(model.parameters(), twin.parameters()):
                torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-8)
            opt.step()
            twin_opt.step()
            if zeroing == "recorder":
                recorder.zero_grad()
            else:
                opt.zero_grad(set_to_none=True)
            twin_opt.zero_grad(set_to_none=True)
    steps = _steps(read_recording(path).events)
    assert [s.total_norm for s in steps] == pytest.approx(twin_totals, rel=1e-5)
    assert [s.grad_norm[-1] for s in steps] == pytest.approx(embed_norms, rel=1e-5)


# -- (d) other ranks: no file, no measuring -----------------------------------------------------------
def _refuse_measure(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: GradientProbe) -> None:
        raise AssertionError("a disabled Recorder measured the gradients")

    for name in ("measure", "measure_packed", "partial_squares", "sample"):
        monkeypatch.setattr(GradientProbe, name, refuse)


def _one_step(recorder: Recorder, model: nn.Module, clip: float | None = None) -> None:
    x, y = _batch(1)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    recorder.step(loss, clip=clip)


@pytest.mark.parametrize("how", ["enabled=False", "RANK=1", "torch.distributed rank 1"])
def test_disabled_recorder_writes_nothing_and_does_not_measure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    model = _mlp()
    probe = GradientProbe(model)
    _refuse_measure(monkeypatch)
    enabled: bool | None = None
    if how == "enabled=False":
        enabled = False
        monkeypatch.delenv("RANK", raising=False)
    elif how == "RANK=1":
        monkeypatch.setenv("RANK", "1")
    else:  # an initialised process group wins over the environment
        monkeypatch.setenv("RANK", "0")
        monkeypatch.setattr(torch.distributed, "is_available", lambda: True)
        monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.distributed, "get_rank", lambda *a, **k: 1)
    path = tmp_path / "r.jsonl"
    recorder = Recorder(path, probe, enabled=enabled, lr=0.1)
    assert not recorder.enabled
    with recorder:
        _one_step(recorder, model)
        recorder.log_remedy("lr", 0.1, 0.05)
        recorder.flush()
    recorder.close()
    assert not path.exists()
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("how", ["enabled=False", "RANK=1"])
def test_a_recorder_that_records_nothing_still_clips_exactly_as_the_recording_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """step(loss, clip=...) on a rank that does not write returned without clipping: under DDP, where
    every rank holds the same gradient, rank 0 alone clipped it and the replicas parted; in one
    process, enabled=False trained another model than the recorded one."""
    monkeypatch.delenv("RANK", raising=False)
    writing, silent = _mlp(), _mlp()
    recorders = [Recorder(tmp_path / "w.jsonl", GradientProbe(writing))]
    if how == "RANK=1":
        monkeypatch.setenv("RANK", "1")
    recorders.append(Recorder(tmp_path / "s.jsonl", GradientProbe(silent), enabled=False if how == "enabled=False" else None))
    assert recorders[0].enabled and not recorders[1].enabled
    for model, recorder in zip((writing, silent), recorders):
        _one_step(recorder, model, clip=0.05)  # below the gradient's norm: it clips
        recorder.close()
    for p, q in zip(writing.parameters(), silent.parameters()):
        assert torch.equal(p.grad, q.grad)  # the same kernels: bit for bit
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in silent.parameters()]))
    assert float(total) == pytest.approx(0.05, rel=1e-5)
    assert not (tmp_path / "s.jsonl").exists()
    assert _steps(read_recording(tmp_path / "w.jsonl").events)[0].clipped


def test_a_wrong_lr_or_scaler_is_named_at_once(tmp_path: Path) -> None:
    """lr="fast" gave float()'s "could not convert string to float" without naming lr, lr=-1 was taken
    without a word, and scaler="yes" failed at the first step on "'str' object has no attribute"."""
    model = _mlp()
    probe = GradientProbe(model)
    for lr in (-1, math.nan, math.inf, torch.tensor(-0.5)):
        with pytest.raises(ValueError, match=r"^lr must be the optimizer's learning rate, a finite number >= 0, not "):
            Recorder(tmp_path / "r.jsonl", probe, lr=lr)  # type: ignore[arg-type]
    # As for clip: a string or a bool is no learning rate (float() took "0.1" and True).
    for lr, kind in (("fast", "str 'fast'"), ("0.1", "str '0.1'"), (True, "bool True"),
                     (torch.ones(2), "a tensor of shape (2,)")):
        with pytest.raises(TypeError, match=rf"^lr must be the optimizer's learning rate, a number >= 0, "
                                            rf"not {re.escape(kind)}$"):
            Recorder(tmp_path / "r.jsonl", probe, lr=lr)  # type: ignore[arg-type]
    assert Recorder(tmp_path / "r.jsonl", probe, lr=torch.tensor(0.5), enabled=False).lr == 0.5  # (an optimizer's may be)
    with pytest.raises(TypeError, match=r"^scaler must be the loop's torch.amp.GradScaler \(or None\), not str$"):
        Recorder(tmp_path / "r.jsonl", probe, scaler="yes")
    with Recorder(tmp_path / "r.jsonl", probe, lr=0.0) as recorder:  # (a warm-up may start at 0)
        x, y = _batch(1)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        with pytest.raises(TypeError, match=r"^lr must be .* not str 'fast'$"):
            recorder.step(loss, lr="fast")  # type: ignore[arg-type]
        recorder.step(loss, lr=0.25)
    assert _steps(read_recording(tmp_path / "r.jsonl").events)[0].lr == 0.25


@pytest.mark.parametrize("enabled", [True, False])
def test_a_wrong_clip_is_named_at_once(tmp_path: Path, enabled: bool) -> None:
    """clip="1.0" failed on "'>' not supported between instances of 'str' and 'int'", and clip=True was
    taken as a norm of 1. Checked on every rank (enabled=False: one that records nothing), so that a
    mistake stops all ranks alike."""
    model = _mlp()
    with Recorder(tmp_path / "r.jsonl", GradientProbe(model), enabled=enabled, flush_seconds=1e9) as recorder:
        x, y = _batch(1)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        for clip, kind in (("1.0", "str '1.0'"), (True, "bool True"), (torch.ones(2), "a tensor of shape (2,)")):
            with pytest.raises(TypeError, match=rf"^clip must be a positive number, the total norm to clip to "
                                                rf"\(or None for no clipping\), not {re.escape(kind)}$"):
                recorder.step(loss, clip=clip)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"^clip must be a positive total norm \(or None for no clipping\), not -1$"):
            recorder.step(loss, clip=-1)
        with pytest.raises(TypeError, match=r"^clip must be a positive number, .* not ndarray array\(\[1\., 2\.\]\)$"):
            recorder.step(loss, clip=np.array([1.0, 2.0]))  # type: ignore[arg-type]
        recorder.step(loss, clip=torch.tensor(1e6))  # a one-element tensor is a number
        assert recorder.step_count == (1 if enabled else 0)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        recorder.step(loss, clip=np.array(1e6))  # and so is a 0-d numpy array
    if enabled:
        assert [s.clipped for s in _steps(read_recording(tmp_path / "r.jsonl").events)] == [False, False]


@pytest.mark.parametrize("enabled", [True, False])
def test_a_wrong_loss_is_named_at_once(tmp_path: Path, enabled: bool) -> None:
    """A loss of "0.5" was recorded as 0.5, and a per-sample loss (reduction="none") was refused on the
    recording rank alone, after measuring. Checked on every rank, before anything is measured."""
    model = _mlp()
    with Recorder(tmp_path / "r.jsonl", GradientProbe(model), enabled=enabled, flush_seconds=1e9) as recorder:
        x, y = _batch(1)
        losses = nn.functional.cross_entropy(model(x), y, reduction="none")
        losses.mean().backward()
        with pytest.raises(ValueError, match=r"^loss must be the step's loss, a one-element tensor or a number, not a "
                                             r"tensor of shape \(16,\): reduce it first \(loss\.mean\(\), say\)$"):
            recorder.step(losses)
        for wrong, kind in (("0.5", "str '0.5'"), (True, "bool True"), (None, "NoneType None")):
            with pytest.raises(TypeError, match=rf"^loss must be the step's loss, a one-element tensor or a number, "
                                                rf"not {kind}$"):
                recorder.step(wrong)  # type: ignore[arg-type]
        recorder.step(torch.tensor([0.5]))  # (a shape (1,) tensor is one element)
        assert recorder.step_count == (1 if enabled else 0)
        recorder.step(np.array(0.25))  # a 0-d numpy array, or a numpy scalar, is a number
        recorder.step(np.float32(0.125))
    if enabled:
        assert [s.loss for s in _steps(read_recording(tmp_path / "r.jsonl").events)] == [0.5, 0.25, 0.125]


def test_a_parameter_in_two_of_the_users_groups_is_counted_once_and_said() -> None:
    """It was dropped from the second group without a word: that group's norm was not the one the
    user's list asked for."""
    model = _mlp()
    first, second = model[0], model[2]
    with pytest.warns(RuntimeWarning, match=r"a parameter of layer 'a' is also in layer 'b': it is counted in the "
                                            r"last layer that lists it only"):
        probe = GradientProbe(groups=[("a", first.parameters()), ("b", iter([first.weight, second.weight]))])
    assert probe.layer_names == ("a", "b") and len(probe.params) == 3
    # In the last, as a tied weight of the model's own layers is (the output side's): "a" keeps its bias.
    assert probe.params[0] is first.bias and {id(p) for p in probe.params[1:]} == {id(first.weight), id(second.weight)}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GradientProbe(model)  # the model's own layers: a tied weight is counted once as the README says


@pytest.mark.parametrize("rank", [None, "0"])
def test_rank_zero_or_no_rank_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rank: str | None) -> None:
    if rank is None:
        monkeypatch.delenv("RANK", raising=False)
    else:
        monkeypatch.setenv("RANK", rank)
    model = _mlp()
    path = tmp_path / "r.jsonl"
    with Recorder(path, GradientProbe(model)) as recorder:
        assert recorder.enabled
        _one_step(recorder, model)
    assert len(_steps(read_recording(path).events)) == 1


# -- (e) nothing leaves the device between flushes -----------------------------------------------------
@contextlib.contextmanager
def _no_host_copies(calls: dict[str, int] | None = None) -> Iterator[None]:
    """Make every tensor-to-host conversion raise (or, given ``calls``, count them)."""
    names = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__")
    saved = {name: getattr(torch.Tensor, name) for name in names}
    own = {name for name in names if name in vars(torch.Tensor)}

    def guard(name: str):  # noqa: ANN202
        original = saved[name]

        def wrapper(self, *args, **kwargs):  # noqa: ANN001, ANN202
            if calls is None:
                raise AssertionError(f"Tensor.{name}() called inside Recorder.step")
            calls[name] = calls.get(name, 0) + 1
            return original(self, *args, **kwargs)

        return wrapper

    try:
        for name in names:
            setattr(torch.Tensor, name, guard(name))
        yield
    finally:
        for name, original in saved.items():
            if name in own:
                setattr(torch.Tensor, name, original)
            else:
                delattr(torch.Tensor, name)  # it was inherited from the C base class


def test_step_copies_nothing_to_the_host_until_a_flush_which_copies_once(tmp_path: Path) -> None:
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "r.jsonl"
    recorder = Recorder(path, GradientProbe(model), flush_seconds=1e9)
    for step in range(1, 41):
        x, y = _batch(step)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        read: dict[str, int] = {}
        with _no_host_copies(read):
            recorder.step(loss, clip=1.0 if step % 2 else None)
        # On a CPU a step reads its loss, which waits for no device (as a tensor copy it cost 1.2 % of a
        # small MLP's step); nothing else: the norms and the clipping stay tensors until the flush.
        # Off the CPU the loss stays on the device too (the next test).
        assert read == {"item": 1}
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    assert len(_steps(read_recording(path).events)) == 0  # all 40 still on the device
    calls: dict[str, int] = {}
    with _no_host_copies(calls):
        recorder.flush()
    assert calls == {"tolist": 1}
    recorder.close()
    steps = _steps(read_recording(path).events)
    assert [s.step for s in steps] == list(range(1, 41))
    assert [s.clipped is None for s in steps] == [step % 2 == 0 for step in range(1, 41)]


def test_off_the_cpu_the_loss_stays_on_the_device_until_the_flush() -> None:
    from vgp_tui.engine.instrument import _loss_column, _loss_value

    meta = torch.device("meta")  # (a device that is not the CPU, whose values cannot be read at all)
    loss = torch.tensor([0.5], requires_grad=True) * 2
    with _no_host_copies():
        kept = [_loss_value(loss, meta), _loss_value(0.25, meta)]
    assert all(isinstance(v, torch.Tensor) and v.device == meta and v.dtype == torch.float32 and v.dim() == 0 for v in kept)
    with _no_host_copies():
        column = _loss_column(kept, torch.zeros(1, device=meta))
    assert column.shape == (2, 1) and column.device == meta
    # On the CPU the numbers themselves, as float32 at the flush.
    cpu = torch.zeros(1)
    column = _loss_column([_loss_value(torch.tensor(0.1, dtype=torch.float64), cpu.device), 1 / 3], cpu)
    assert column.dtype == torch.float32 and column.flatten().tolist() == [torch.tensor(0.1).item(), torch.tensor(1 / 3).item()]


# -- (f) a reader following the file sees steps within about a second; a crash keeps them ---------------
_WRITER = """
import sys, time
import torch
from torch import nn
import vgp_tui

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.Sigmoid(), nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
recorder = vgp_tui.Recorder(sys.argv[1], vgp_tui.GradientProbe(model), flush_seconds=0.2)
print(time.time(), flush=True)
for step in range(1, 100_000):
    x = torch.randn(8, 4)
    loss = model(x).square().mean()
    loss.backward()
    recorder.step(loss)
    opt.step()
    opt.zero_grad(set_to_none=True)
    time.sleep(0.1)  # a slow step: 10 short lines a second take seconds to fill an 8 KiB write buffer
"""


def test_steps_reach_a_following_reader_within_a_second_and_survive_a_kill(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(_WRITER), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    try:
        assert proc.stdout is not None
        started_line = proc.stdout.readline()
        assert started_line, proc.stderr.read() if proc.stderr else ""
        started = float(started_line)  # wall clock at the recorder's start (its t = 0)
        reader = None
        deadline = time.time() + 30
        while reader is None:
            assert time.time() < deadline, "the header never appeared"
            with contextlib.suppress(RecordingError):
                reader = RecordingReader(path)
            time.sleep(0.02)
        latencies: list[float] = []
        seen: list[int] = []
        first_seen = None
        while time.time() < deadline and (first_seen is None or time.time() - first_seen < 3.0):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            for event in reader.read_available():
                if isinstance(event, StepMetrics):
                    now = time.time()
                    first_seen = first_seen or now
                    seen.append(event.step)
                    latencies.append(now - (started + event.t))
            time.sleep(0.05)
        reader.close()
        assert len(seen) >= 10, f"only {len(seen)} steps reached the file in 3 s"
        assert seen == list(range(1, len(seen) + 1))
        # flush_seconds=0.2 and 0.1 s steps: each step reaches the file within ~0.3 s. Without the
        # recorder's flushing only the full write buffer would reach it, after about 3 s. (The median:
        # on a loaded machine one step may wait a moment longer; none may wait for the buffer.)
        latencies.sort()
        assert latencies[len(latencies) // 2] < 1.0 and latencies[-1] < 2.5, f"steps reached the reader late: {latencies}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    result = read_recording(path)  # what the kill left: every whole line, steps from 1 without gaps
    assert result.warning is None or "is cut off" in result.warning
    steps = [s.step for s in _steps(result.events)]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= len(seen)


# -- closing: with-block, atexit, errors ----------------------------------------------------------------
_EXITS = """
import sys
import torch
from torch import nn
import vgp_tui

model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
recorder = vgp_tui.Recorder(sys.argv[1], vgp_tui.GradientProbe(model), flush_seconds=1e9)
for step in range(25):
    loss = model(torch.randn(8, 4)).square().mean()
    loss.backward()
    recorder.step(loss)
    model.zero_grad(set_to_none=True)
if sys.argv[2] == "raise":
    raise RuntimeError("boom")
"""


@pytest.mark.parametrize("how", ["exit", "raise"])
def test_interpreter_exit_keeps_the_tail(tmp_path: Path, how: str) -> None:
    script = tmp_path / "exits.py"
    script.write_text(_EXITS, encoding="utf-8")
    path = tmp_path / "r.jsonl"
    done = subprocess.run([sys.executable, str(script), str(path), how], capture_output=True, text=True,
                          timeout=120, env=_env())
    assert done.returncode == (0 if how == "exit" else 1), done.stderr
    result = read_recording(path)
    assert result.warning is None
    assert [s.step for s in _steps(result.events)] == list(range(1, 26))
    end = result.events[-1]
    assert isinstance(end, StateChanged)
    assert (end.state, end.step) == (("finished", 25) if how == "exit" else ("error", 25))
    if how == "raise":
        assert end.message == "RuntimeError: boom"


def test_with_block_records_an_error_and_close_is_idempotent(tmp_path: Path) -> None:
    model = _mlp()
    path = tmp_path / "r.jsonl"
    with pytest.raises(ValueError, match="oops"), Recorder(path, GradientProbe(model)) as recorder:
        _one_step(recorder, model)
        raise ValueError("oops")
    assert recorder.closed
    recorder.close()
    with pytest.warns(RuntimeWarning, match=r"step\(\) after close\(\) is not recorded") as caught:
        recorder.step(torch.tensor(1.0))  # after close: not recorded, and said once (not an error:
        recorder.step(torch.tensor(2.0))  # a loop may run on for a moment after a handler closed it)
        recorder.log_remedy("lr", 0.1, 0.2)
    assert len(caught) == 1 and Path(caught[0].filename).name == "test_instrument.py"
    events = read_recording(path).events
    assert len(_steps(events)) == 1
    assert isinstance(events[-1], StateChanged) and events[-1].state == "error" and "oops" in events[-1].message
    assert len(path.read_text().splitlines()) == 4  # header, run, step, state: nothing after close


def test_mistakes_in_a_loop_are_named_not_recorded_as_numbers(tmp_path: Path) -> None:
    model = _mlp()
    path = tmp_path / "r.jsonl"
    with pytest.raises(TypeError, match=r"GradientProbe takes the model .* not generator"):
        GradientProbe(model.parameters())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Recorder takes a GradientProbe, not Sequential"):
        Recorder(path, model)  # type: ignore[arg-type]
    with Recorder(path, GradientProbe(model)) as recorder:
        x, y = _batch(1)
        loss = nn.functional.cross_entropy(model(x), y)
        # Before backward every gradient is None: zeros would read as a gradient that vanished.
        with pytest.raises(NoGradientError, match=r"measure after loss\.backward\(\)"):
            recorder.step(loss)
        loss.backward()
        with pytest.raises(ValueError, match="clip must be a positive total norm"):
            recorder.step(loss, clip=0.0)
        recorder.step(loss)
        with pytest.raises(RuntimeError, match="given the same loss twice"):
            recorder.step(loss)  # twice for one backward: the steps would be counted double
    assert [s.step for s in _steps(read_recording(path).events)] == [1]


@pytest.mark.parametrize("clip", [None, 1.0])
def test_zeroing_between_backward_and_step_is_named_not_recorded_as_a_vanished_gradient(
    tmp_path: Path, clip: float | None
) -> None:
    """recorder.zero_grad() between backward() and step() recorded an exact 0 for every layer, and the
    dashboard advised ReLU activations for a gradient that "vanished"."""
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "r.jsonl"
    with Recorder(path, GradientProbe(model)) as recorder:
        for _ in range(2):  # the documented order: zeroed before the forward
            recorder.zero_grad()
            _one_step(recorder, model, clip=clip)
            optimizer.step()
        assert recorder.probe.flat_active
        recorder.zero_grad()
        x, y = _batch(2)
        for _ in range(2):  # accumulated micro-batches, then the last one's backward and one measurement
            nn.functional.cross_entropy(model(x), y).backward()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        recorder.step(loss, clip=clip)
        recorder.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        recorder.zero_grad()  # the mistake: the gradient just computed is gone
        with pytest.raises(NoGradientError, match=r"^no gradient was written since the gradients were zeroed: "
                                                  r"measure after loss\.backward\(\), and zero the gradients after "
                                                  r"optimizer\.step\(\) or before the forward"):
            recorder.step(loss, clip=clip)
        with pytest.raises(NoGradientError, match="no gradient was written since the gradients were zeroed"):
            recorder.probe.measure()
    steps = _steps(read_recording(path).events)
    assert len(steps) == 3 and all(s.total_norm > 0 for s in steps)


def test_a_second_recorder_on_the_same_file_closes_the_first(tmp_path: Path) -> None:
    model = _mlp()
    path = tmp_path / "r.jsonl"
    first = Recorder(path, GradientProbe(model))  # never closed, as a notebook cell run twice leaves it
    _one_step(first, model)
    with pytest.warns(RuntimeWarning, match="a Recorder was still open on"):
        second = Recorder(path, GradientProbe(model))
    assert first.closed
    for _ in range(3):
        model.zero_grad(set_to_none=True)
        _one_step(second, model)
    first._close_at_exit()  # what the interpreter's exit would run: nothing, it is closed
    second.close()
    result = read_recording(path)
    assert result.warning is None
    assert [s.step for s in _steps(result.events)] == [1, 2, 3]


def test_log_remedy_marks_the_next_step_and_changes_the_recorded_lr(tmp_path: Path) -> None:
    model = _mlp()
    path = tmp_path / "r.jsonl"
    with Recorder(path, GradientProbe(model), lr=0.1, remedies={"activation": "tanh"}, preset="mine") as recorder:
        for step in range(1, 5):
            if step == 3:
                recorder.log_remedy("lr", 0.1, 0.01)
            _one_step(recorder, model)
            model.zero_grad(set_to_none=True)
        with pytest.raises(UserError, match="unknown remedy 'lrate'"):
            recorder.log_remedy("lrate", 0.1, 0.2)
    result = read_recording(path)
    assert result.header.preset == "mine"
    run = next(e for e in result.events if isinstance(e, RunStarted))
    assert run.remedies == {"lr": 0.1, "activation": "tanh"} and run.preset == "mine"
    kinds = [(type(e).__name__, getattr(e, "step", None)) for e in result.events]
    assert kinds[:6] == [("RunStarted", None), ("StepMetrics", 1), ("StepMetrics", 2), ("RemedyChanged", 3),
                         ("StepMetrics", 3), ("StepMetrics", 4)]
    change = next(e for e in result.events if isinstance(e, RemedyChanged))
    assert (change.name, change.old, change.new, change.structural) == ("lr", 0.1, 0.01, False)
    assert [s.lr for s in _steps(result.events)] == [0.1, 0.1, 0.01, 0.01]


def test_unknown_remedy_names_are_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown remedy 'weight_decay'"):
        Recorder(tmp_path / "r.jsonl", GradientProbe(_mlp()), remedies={"weight_decay": 0.1})


def test_package_exports_probe_and_recorder_lazily() -> None:
    code = (
        "import sys, vgp_tui; assert 'torch' not in sys.modules, 'import vgp_tui imported torch';"
        "assert {'GradientProbe', 'Recorder'} <= set(dir(vgp_tui));"
        "from vgp_tui import Recorder, GradientProbe;"
        "from vgp_tui.engine.instrument import Recorder as R; assert Recorder is R;"
        "assert 'torch' in sys.modules and 'textual' not in sys.modules;"
        "print(vgp_tui.__version__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == vgp_tui.__version__
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        vgp_tui.Nope  # noqa: B018


def test_zero_grad_through_the_recorder_takes_the_one_kernel_path(tmp_path: Path) -> None:
    import vgp_tui

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    probe = vgp_tui.GradientProbe(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    expected = []
    with vgp_tui.Recorder(tmp_path / "r.jsonl", probe, flush_seconds=1e9) as recorder:
        for _ in range(5):
            x = torch.randn(16, 4)
            model(x).pow(2).mean().backward()
            expected.append([math.sqrt(sum(p.grad.norm().item() ** 2 for p in m.parameters())) for m in (model[0], model[2])])
            recorder.step(torch.tensor(1.0))
            assert probe.flat_active == (len(expected) > 1)  # the buffer exists from the first zero_grad on
            optimizer.step()
            recorder.zero_grad()
    steps = [e for e in read_recording(tmp_path / "r.jsonl").events if e.type == "step"]
    for event, norms in zip(steps, expected):
        assert list(event.grad_norm) == pytest.approx(norms, rel=1e-5)


def test_zero_grad_through_the_recorder_clears_parameters_outside_the_probe(tmp_path: Path) -> None:
    """A probe of some layers of a model: recorder.zero_grad() must not leave the other parameters'
    gradients to pile up from step to step (the optimizer would apply their sum)."""
    import vgp_tui

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    probe = vgp_tui.GradientProbe(model, groups=[("first", list(model[0].parameters()))])
    assert [tuple(p.shape) for p in probe.unprobed] == [(2, 8), (2,)]
    assert vgp_tui.GradientProbe(groups=[("first", list(model[0].parameters()))]).unprobed == ()
    with vgp_tui.Recorder(tmp_path / "r.jsonl", probe, flush_seconds=1e9) as recorder:
        for _ in range(3):
            model(torch.randn(16, 4)).pow(2).mean().backward()
            recorder.step(torch.tensor(1.0))
            recorder.zero_grad()
            assert all(p.grad is None for p in model[2].parameters())
            assert all(not p.grad.any() for p in model[0].parameters())  # the flat buffer, zeroed


# -- a recording closed properly replays as finished --------------------------------------------------
def _replayed_until(path: Path, step: int | None) -> tuple[str, int]:
    """(state, last step) of the History a replay of ``path`` builds, up to ``step`` (as --screenshot-at
    does) or to its end."""
    from vgp_tui.engine.history import History
    from vgp_tui.replay import ReplaySource

    source = ReplaySource(path, speed=1024, until_step=step)
    history = History()
    source.sinks.append(history.extend)
    if step is None:
        source.send(ToEnd())
        source.send(StopReplay())  # after the commands before it: feed everything, then return
    source.run()
    source.close()
    assert history.current is not None and history.current.latest is not None
    return history.state, history.current.latest.step


@pytest.mark.parametrize("how", ["close()", "with block"])
def test_a_recording_closed_properly_replays_as_finished(tmp_path: Path, how: str) -> None:
    model = _mlp()
    path = tmp_path / "r.jsonl"
    if how == "close()":
        recorder = Recorder(path, GradientProbe(model))
        for _ in range(12):
            _one_step(recorder, model)
        recorder.close()
    else:
        with Recorder(path, GradientProbe(model)) as recorder:
            for _ in range(12):
                _one_step(recorder, model)
    assert _replayed_until(path, 12) == ("finished", 12)  # a screenshot of the last step
    assert _replayed_until(path, 11) == ("training", 11)
    assert _replayed_until(path, None) == ("finished", 12)  # the whole replay


def test_a_screenshot_of_the_last_step_of_a_users_loop_says_finished(tmp_path: Path) -> None:
    model = _mlp()
    path = tmp_path / "r.jsonl"
    with Recorder(path, GradientProbe(model), preset="mine") as recorder:
        for _ in range(12):
            _one_step(recorder, model)
    out = tmp_path / "shot.svg"
    done = subprocess.run([sys.executable, "-m", "vgp_tui", "replay", str(path), "--screenshot-at", "12", "-o", str(out)],
                          capture_output=True, text=True, timeout=120, env=_env())
    assert done.returncode == 0, done.stderr
    svg = out.read_text()
    assert "FINISHED" in svg and "TRAINING" not in svg


async def test_a_replay_of_ones_own_loop_says_what_to_try_in_the_model(tmp_path: Path) -> None:
    """The diagnosis of a user's own deep sigmoid net said "vanishing" and stopped there: the fixes
    are the dashboard's keys, which a model it does not build cannot take. It now names the lesson's
    remedies in words, as a replay of a preset names its fixes."""
    from vgp_tui.dashboard import make_replay_app
    from vgp_tui.diagnosis import ADVICE

    torch.manual_seed(0)
    model = nn.Sequential(*[m for i in range(8) for m in (nn.Linear(16, 16), nn.Sigmoid())], nn.Linear(16, 2))
    path = tmp_path / "own.jsonl"
    with Recorder(path, GradientProbe(model), lr=0.5) as recorder:
        for step in range(60):
            x = torch.randn(32, 16)
            loss = nn.functional.cross_entropy(model(x), (x[:, 0] > 0).long())
            loss.backward()
            recorder.step(loss)
            recorder.zero_grad()
    app = make_replay_app(str(path), speed=1024)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):
            await pilot.pause(0.05)
            if app.playback.ended:
                break
        await pilot.pause(1.2)  # the line's cadence
        app.refresh_panels()
        await pilot.pause()
        line = " ".join(str(app.query_one("#diagnosis").render()).split())
        assert "vanishing" in line and line.endswith(ADVICE["vanishing"]), line
        await pilot.press("q")


# -- on_nonfinite: an alarm for batch jobs -----------------------------------------------------------
def _train_with_a_nan(recorder: Recorder, model: nn.Module, optimizer: torch.optim.Optimizer | None, steps: int = 5,
                      bad: tuple[int, ...] = (3, 4)) -> None:
    """``steps`` steps; at the steps in ``bad`` the second layer's gradient gets a NaN (without an
    optimizer, the weights never change, so the NaN stays in those steps)."""
    for step in range(1, steps + 1):
        x, y = _batch(step)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if step in bad:
            model[2].weight.grad[0, 0] = math.nan
        recorder.step(loss)
        if optimizer is not None:
            optimizer.step()
        model.zero_grad(set_to_none=True)


def test_on_nonfinite_ignore_is_the_default_and_says_nothing(tmp_path: Path) -> None:
    import warnings

    model = _mlp()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Recorder(tmp_path / "r.jsonl", GradientProbe(model), flush_seconds=0.0) as recorder:
            assert recorder.on_nonfinite == "ignore"
            _train_with_a_nan(recorder, model, None)
    steps = _steps(read_recording(tmp_path / "r.jsonl").events)
    assert [math.isnan(s.grad_norm[1]) for s in steps] == [False, False, True, True, False]


def test_on_nonfinite_warn_warns_once_naming_step_and_layer(tmp_path: Path) -> None:
    model = _mlp()
    with pytest.warns(RuntimeWarning) as caught, \
            Recorder(tmp_path / "r.jsonl", GradientProbe(model), flush_seconds=0.0, on_nonfinite="warn") as recorder:
        _train_with_a_nan(recorder, model, None)
    warned = [w for w in caught if "non-finite" in str(w.message)]
    assert [str(w.message) for w in warned] == ["vgp-tui: non-finite gradient at step 3: layer '2' has norm nan "
                                                "(warned once; on_nonfinite='raise' stops the job)"]
    assert Path(warned[0].filename).name == "test_instrument.py"  # the user's line, not the Recorder's


@pytest.mark.parametrize("enabled", [True, False], ids=["writing rank", "other rank"])
def test_on_nonfinite_raise_stops_before_the_optimizer_step(tmp_path: Path, enabled: bool) -> None:
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "r.jsonl"
    with pytest.raises(NonFiniteGradientError) as raised, \
            Recorder(path, GradientProbe(model), flush_seconds=1e9, on_nonfinite="raise", enabled=enabled) as recorder:
        _train_with_a_nan(recorder, model, optimizer)
    error = raised.value
    assert (error.step, error.layer) == (3, "2") and math.isnan(error.norm)
    assert str(error) == "non-finite gradient at step 3: layer '2' has norm nan (stopped before optimizer.step())"
    assert all(torch.isfinite(p).all() for p in model.parameters())  # optimizer.step() never saw the NaN
    if not enabled:  # a rank that does not write still measures, so that every rank stops together
        assert not path.exists()
        return
    events = read_recording(path).events
    steps = _steps(events)
    assert [s.step for s in steps] == [1, 2, 3] and math.isnan(steps[-1].grad_norm[1])  # the bad step is kept
    assert isinstance(events[-1], StateChanged) and events[-1].state == "error"
    assert "non-finite gradient at step 3" in events[-1].message


def test_the_alarm_names_the_layer_the_diagnosis_names(tmp_path: Path) -> None:
    """The NaN born in a layer's backward reaches every layer before it: the alarm named the first
    layer (input side), where the dashboard's diagnosis names the one nearest the output."""
    from vgp_tui.diagnosis import diagnose
    from vgp_tui.engine.history import History

    model = _mlp()
    path = tmp_path / "r.jsonl"
    with pytest.raises(NonFiniteGradientError) as raised, \
            Recorder(path, GradientProbe(model), on_nonfinite="raise") as recorder:
        x, y = _batch(1)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        model[0].weight.grad[0, 0] = math.nan
        model[2].weight.grad[0, 0] = math.nan
        recorder.step(loss)
    error = raised.value
    assert (error.layer, error.layers) == ("2", 2)
    assert str(error) == ("non-finite gradient at step 1: layer '2' has norm nan (and 1 more layer) "
                          "(stopped before optimizer.step())")
    history = History()
    history.extend(read_recording(path).events)
    said = diagnose(history.current).text  # (what a replay shows at that step)
    assert "the gradient of layer 2 (2) first became NaN (and 1 more layer)" in said, said


def test_on_nonfinite_refuses_unknown_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on_nonfinite must be one of ignore, warn, raise"):
        Recorder(tmp_path / "r.jsonl", GradientProbe(_mlp()), on_nonfinite="stop")
    assert not (tmp_path / "r.jsonl").exists()


def test_package_exports_the_errors_a_loop_may_catch() -> None:
    assert vgp_tui.NonFiniteGradientError is NonFiniteGradientError
    assert vgp_tui.NoGradientError is NoGradientError


# -- (k) the CPU's per-tensor measurement: gradients packed into one block ------------------------------------
def _autograd_squares(groups) -> list[float]:
    return [sum(float(p.grad.double().norm()) ** 2 for p in ps if p.grad is not None) for _, ps in groups]


def test_packed_cpu_measurement_equals_autograd_whatever_the_layout() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3)
    big = nn.Linear(100, 100)  # 10 000 weights: too large to copy, measured on its own
    head = nn.Linear(100, 3)
    model = nn.ModuleList([conv, big, head])
    # One layer's parameters out of order and apart (the conv's bias joins the head), as groups= allows.
    groups = [("conv", [conv.weight]), ("big", [big.weight, big.bias]), ("head", [head.weight, conv.bias, head.bias])]
    probe = GradientProbe(model, groups=groups)
    x = torch.randn(2, 3, 12, 12).to(memory_format=torch.channels_last)
    out = conv(x).mean((2, 3)).repeat(1, 25)
    head(torch.tanh(big(out))).square().sum().backward()
    squares = probe.partial_squares()
    assert probe._packing is not None and [probe.params[i] for i in probe._packing.singles] == [big.weight]
    assert squares.tolist() == pytest.approx(_autograd_squares(groups), rel=1e-6)
    # A batch of steps folded at once gives the very numbers of one step at a time.
    norms, index = probe.partial_norms()
    folded = probe.fold_squares(torch.stack([norms, norms.clone()]), index)
    assert torch.equal(folded[0], squares) and torch.equal(folded[1], squares)


def test_packed_cpu_block_is_made_once_and_measures_every_step_afresh() -> None:
    """The block is kept from step to step (no third of a megabyte from malloc per step), and each
    step's numbers are that step's own: new gradients, smaller ones, the padding still zero."""
    torch.manual_seed(0)
    model = _mlp()
    groups = default_layer_groups(model)
    probe = GradientProbe(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.names: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            self.names.append(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    for scale in (1.0, 1e-3, 5.0):
        model(torch.randn(8, 6)).sum().mul(scale).backward()
        assert probe.partial_squares().tolist() == pytest.approx(_autograd_squares(groups), rel=1e-6)
        with Ops() as ops:
            probe.partial_norms()
        assert ops.names == ["_foreach_copy_", "linalg_vector_norm"]  # into the kept block: nothing allocated but the norms
        # ... a float64 block, so the copy is the conversion: the norm of a float32 one in float64
        # converted all of it again, into a fresh allocation, inside the norm (where no op shows it).
        assert probe._packing is not None and probe._packing.rows.dtype == torch.float64
        optimizer.zero_grad(set_to_none=True)


def test_recorder_folds_steps_whose_gradients_come_and_go(tmp_path: Path) -> None:
    model = _mlp()
    groups = default_layer_groups(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "r.jsonl"
    reference = []
    with Recorder(path, GradientProbe(model), flush_seconds=1e9) as recorder:
        for step in range(1, 10):
            x, y = _batch(step)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            if step % 3 == 0:  # a parameter without a gradient at this step: measured from the others
                model[0].bias.grad = None
            reference.append([math.sqrt(v) for v in _autograd_squares(groups)])
            recorder.step(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    steps = _steps(read_recording(path).events)
    assert [s.step for s in steps] == list(range(1, 10))
    for s, layers in zip(steps, reference):
        assert s.grad_norm == pytest.approx(layers, rel=1e-5)
        assert s.total_norm == pytest.approx(math.sqrt(sum(v * v for v in layers)), rel=1e-5)


def test_the_recorded_loss_is_the_value_at_step_time(tmp_path: Path) -> None:
    model = _mlp()
    path = tmp_path / "r.jsonl"
    with Recorder(path, GradientProbe(model), flush_seconds=1e9) as recorder:
        x, y = _batch(1)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        value = float(loss.detach())
        recorder.step(loss)
        with torch.no_grad():
            loss.mul_(0.0)  # an in-place change after step() (an all_reduce for logging, say)
    (step,) = _steps(read_recording(path).events)
    assert step.loss == pytest.approx(value, rel=1e-7)


@pytest.mark.parametrize("clip", [None, 1e9])
def test_the_recorded_norms_are_float32_values_written_exactly(tmp_path: Path, clip: float | None) -> None:
    # The format's promise (docs/recording-format.md): float32 values, rounded once, whose 9 digits
    # identify them. The float64 norms went to the file unrounded: their 9 digits named no float32
    # (0.123456789 where a float32 reads 0.123456791), and a reader's float32 of them could differ
    # from the value by a unit in the last place. Both ways of packing a flush (with per-step flags or without).
    model = _mlp()
    path = tmp_path / "r.jsonl"
    with Recorder(path, GradientProbe(model), flush_seconds=1e9) as recorder:
        for step in range(1, 9):
            x, y = _batch(step)
            nn.functional.cross_entropy(model(x), y).backward()
            recorder.step(float(step), clip=clip)
            model.zero_grad(set_to_none=True)
    lines = [json.loads(line) for line in path.read_text().splitlines() if '"type":"step"' in line]
    written = [text for record in lines for text in (*record["grad_norm"], record["total_norm"])]
    assert len(written) == 8 * 4
    raw = re.findall(r'"(?:grad_norm|total_norm)":(\[[^\]]*\]|[^,]*)', path.read_text())
    texts = [t for part in raw for t in part.strip("[]").split(",")]
    assert len(texts) == len(written)
    assert [t for t in texts if "%.9g" % np.float32(float(t)) != t] == []


def test_an_observed_threshold_decides_clipped_at_the_flush_as_the_device_would(tmp_path: Path) -> None:
    """With a probe that does not clip (a framework's callback: ObservedClipProbe), ``step(clip=)`` measures
    as a step without clipping (the pieces' norms, no per-step flags) and the flush writes "clipped" as
    ``total > clip`` compared in float32, ties included; the gradients are left as they are."""
    from vgp_tui.integrations import ObservedClipProbe

    weight = nn.Parameter(torch.zeros(1))
    tie = torch.tensor([0.1], dtype=torch.float32)  # 0.1 rounded to float32: above 0.1 itself
    above = torch.nextafter(tie, torch.tensor([1.0]))
    path = tmp_path / "run.jsonl"
    recorder = Recorder(path, ObservedClipProbe(groups=[("w", [weight])]), enabled=True, flush_seconds=1e9)
    for grad, clip in ((tie, 0.1), (above, 0.1), (tie * 3, 0.25), (tie, None)):
        weight.grad = grad.clone()
        recorder.step(1.0, clip=clip)
        assert torch.equal(weight.grad, grad)  # observed, never scaled
        assert recorder._pending.rows[-1][2] is not None and recorder._pending.rows[-1][3] is None  # cheap path
    recorder.close()
    steps = [e for e in read_recording(path).events if isinstance(e, StepMetrics)]
    totals = torch.tensor([s.total_norm for s in steps], dtype=torch.float32)  # (written with 9 digits)
    assert torch.equal(totals, torch.cat([tie, above, tie * 3, tie]))
    # A device comparison rounds 0.1 to float32 as well: the tie is not clipped, the next float32 is.
    assert [s.clipped for s in steps] == [False, True, True, None]
    assert [bool(torch.tensor([s.total_norm]) > c) for s, c in zip(steps[:3], (0.1, 0.1, 0.25))] == [False, True, True]


def test_a_recorder_continues_a_closed_ones_recording_as_its_next_run(tmp_path: Path) -> None:
    """continues= appends a run to the file of a closed Recorder, on its clock; first_step= numbers
    the steps on from a resumed training's (a framework's second fit() with one callback)."""
    model = _mlp()
    path = tmp_path / "r.jsonl"

    def train(recorder: Recorder, steps: int) -> None:
        for step in range(steps):
            x, y = _batch(step)
            nn.functional.cross_entropy(model(x), y).backward()
            recorder.step(nn.functional.cross_entropy(model(x), y).detach())
            model.zero_grad()

    first = Recorder(path, GradientProbe(model))
    with pytest.raises(TypeError, match=r"^continues must be a closed Recorder .* not an open Recorder$"):
        Recorder(tmp_path / "other.jsonl", GradientProbe(model), continues=first)
    train(first, 3)
    first.close()
    for bad in (0, True, 2.0):
        with pytest.raises(ValueError, match=r"^first_step must be a whole number >= 1"):
            Recorder(path, GradientProbe(model), continues=first, first_step=bad)  # type: ignore[arg-type]
    with Recorder(path, GradientProbe(model), continues=first, first_step=4) as second:
        train(second, 2)
    assert second.step_count == 5
    result = read_recording(path)
    assert result.warning is None and result.header is not None
    steps = [e for e in result.events if isinstance(e, StepMetrics)]
    assert [(s.run, s.step) for s in steps] == [(1, 1), (1, 2), (1, 3), (2, 4), (2, 5)]
    runs = [e for e in result.events if isinstance(e, RunStarted)]
    assert [(e.run, e.reason) for e in runs] == [(1, "start"), (2, "continued")]  # (not another try: resumed)
    times = [e.t for e in result.events if hasattr(e, "t")]
    assert times == sorted(times)
    # A new Recorder without continues= replaces the recording, as it always did.
    with Recorder(path, GradientProbe(model)) as fresh:
        train(fresh, 1)
    assert [(s.run, s.step) for s in read_recording(path).events if isinstance(s, StepMetrics)] == [(1, 1)]


def test_a_wrong_path_flush_interval_or_remedies_is_named_at_once(tmp_path: Path) -> None:
    """Recorder(123, probe) said pathlib's "expected str, bytes or os.PathLike object", remedies=["relu"]
    "'list' object has no attribute 'items'", and flush_seconds=-1 was taken without a word."""
    probe = GradientProbe(_mlp())
    with pytest.raises(TypeError, match=r"^path must be the recording's file name \(a str or Path\), not int 123$"):
        Recorder(123, probe)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^remedies must map remedy names to values, as \{'activation': 'relu'\}, "
                                        r"not list \['relu'\]$"):
        Recorder(tmp_path / "r.jsonl", probe, remedies=["relu"])  # type: ignore[arg-type]
    for wrong, error in ((-1, ValueError), (math.nan, ValueError), ("1", TypeError)):
        with pytest.raises(error, match=r"^flush_seconds must be a number of seconds"):
            Recorder(tmp_path / "r.jsonl", probe, flush_seconds=wrong)  # type: ignore[arg-type]
    assert not (tmp_path / "r.jsonl").exists()  # (checked before the file is opened)
    Recorder(tmp_path / "r.jsonl", probe, flush_seconds=0).close()  # 0: a flush every step


def test_the_first_steps_are_timed_from_the_first_step_not_from_the_construction(tmp_path: Path) -> None:
    """Whatever came between the Recorder and the first step (data loading, a compile) was counted
    in the first steps' step_ms: 660 ms a step where the loop took a few."""
    model = _mlp()
    path = tmp_path / "r.jsonl"
    with Recorder(path, GradientProbe(model), flush_seconds=1e9) as recorder:
        time.sleep(1.0)  # the set-up after the Recorder: counted, it made each of 5 steps 200 ms or more
        for step in range(5):
            x, y = _batch(step)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            recorder.step(loss)
            model.zero_grad()
    steps = _steps(read_recording(path).events)
    assert len(steps) == 5 and 0 < steps[0].step_ms < 150  # (a step of this MLP: a millisecond or two)
