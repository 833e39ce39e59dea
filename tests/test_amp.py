"""Mixed precision: with a GradScaler the Recorder records the unscaled gradients' norms, clips the
unscaled gradients, and marks the steps the scaler skips; autocast and bfloat16 parameters are
measured in float32. Every number is checked against plain float32 (or float64) autograd."""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from vgp_tui.engine.events import StepMetrics, to_record
from vgp_tui.engine.instrument import NonFiniteGradientError, Recorder
from vgp_tui.engine.probe import GradientProbe, default_layer_groups
from vgp_tui.engine.recording import read_recording

SKIP_AT = 3
"""The step whose gradient gets an Inf, which the scaler must skip."""


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))


def _batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(step)
    return torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)


def _norms(model: nn.Module, divide: float = 1.0) -> list[float]:
    """Per-layer norms of the gradients as they are, in float64 (divided by ``divide``: a loss scale)."""
    return [math.sqrt(sum(float(p.grad.double().norm() / divide) ** 2 for p in ps)) for _, ps in default_layer_groups(model)]


def _steps(path: Path) -> list[StepMetrics]:
    return [e for e in read_recording(path).events if isinstance(e, StepMetrics)]


@pytest.mark.parametrize(("unscale_first", "clip"), [(False, None), (False, 0.5), (True, 0.5)],
                         ids=["scaled", "scaled+clip", "unscale_+clip"])
def test_scaler_records_unscaled_norms_clips_them_and_marks_skipped_steps(
    tmp_path: Path, unscale_first: bool, clip: float | None
) -> None:
    model = _mlp()
    twin = copy.deepcopy(model)  # plain float32, no scaler: the reference
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    twin_optimizer = torch.optim.SGD(twin.parameters(), lr=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    expected = []
    path = tmp_path / "amp.jsonl"
    # "raise" where clipping: a step the scaler skips is its business, never the alarm's.
    alarm = "ignore" if clip is None else "raise"
    with Recorder(path, GradientProbe(model), scaler=scaler, flush_seconds=1e9, on_nonfinite=alarm) as recorder:
        for step in range(1, 7):
            x, y = _batch(step)
            loss = nn.functional.cross_entropy(model(x), y)
            scaler.scale(loss).backward()
            twin_loss = nn.functional.cross_entropy(twin(x), y)
            twin_loss.backward()
            if step == SKIP_AT:  # an overflow in one layer: the scaler will skip this step
                model[2].weight.grad[0, 0] = math.inf
                twin[2].weight.grad[0, 0] = math.inf
            expected.append(_norms(twin))
            if unscale_first:
                scaler.unscale_(optimizer)
            recorder.step(loss, clip=clip)
            scale_before = scaler.get_scale()
            scaler.step(optimizer)
            scaler.update()
            assert (scaler.get_scale() < scale_before) == (step == SKIP_AT)  # the scaler did skip it
            if step != SKIP_AT:
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(twin.parameters(), clip)
                twin_optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            twin_optimizer.zero_grad(set_to_none=True)
    for p, q in zip(model.parameters(), twin.parameters()):  # clipping acted on the unscaled gradients
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    steps = _steps(path)
    assert [s.skipped for s in steps] == [s.step == SKIP_AT for s in steps]
    for s, layers in zip(steps, expected):
        if s.step == SKIP_AT:
            # The unscaled norms as measured: the overflowed layer is Inf, the others are finite and right.
            assert math.isinf(s.grad_norm[1]) and math.isinf(s.total_norm)
            assert [s.grad_norm[0], s.grad_norm[2]] == pytest.approx([layers[0], layers[2]], rel=1e-5)
            assert to_record(s)["skipped"] is True
        else:
            assert s.grad_norm == pytest.approx(layers, rel=1e-5)
            assert s.total_norm == pytest.approx(math.sqrt(sum(v * v for v in layers)), rel=1e-5)
            assert "skipped" not in to_record(s)  # written only when true: old files are unchanged
            assert s.clipped is (None if clip is None else s.total_norm > clip)


@pytest.mark.parametrize(("clip", "flat"), [(None, False), (1e3, False), (None, True)], ids=["norms", "clip", "flat"])
@pytest.mark.parametrize("init_scale", [2.0**30, 2.0**100], ids=["growing", "loaded-high"])
def test_a_scale_grown_past_float32s_norms_still_records_the_unscaled_gradient(
    tmp_path: Path, init_scale: float, clip: float | None, flat: bool
) -> None:
    """Under bfloat16 nothing overflows, so a GradScaler's scale grows without end (here: doubling at
    every step). Past 2**64 the float32 norms of the scaled gradients were Inf: every step was
    recorded Inf and skipped though the scaler skipped none. The scaler's own skips (its scale going
    down) must be the recorded ones, and every other step's norms those of autograd, unscaled."""
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=1)
    expected, skipped, scales = [], [], []
    path = tmp_path / "grown.jsonl"
    with Recorder(path, GradientProbe(model), scaler=scaler, flush_seconds=0.0) as recorder:  # (a flush a step)
        for step in range(1, 121):  # the scale reaches 2**127, the most float32 holds, by step 98
            x, y = _batch(step)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = nn.functional.cross_entropy(model(x), y)
            scaler.scale(loss).backward()
            if step in (100, 110):  # an overflow of the scaled gradient: the scaler skips these two
                model[2].weight.grad[0, 0] = math.inf
            scale = scaler.get_scale()
            scales.append(scale)
            expected.append(_norms(model, divide=scale))
            recorder.step(loss, clip=clip)
            scaler.step(optimizer)
            scaler.update()
            skipped.append(scaler.get_scale() < scale)
            recorder.zero_grad() if flat else optimizer.zero_grad(set_to_none=True)
    assert max(scales) > 2.0**70  # (far past where float32 norms of the scaled gradient overflow)
    steps = _steps(path)
    assert [s.skipped for s in steps] == skipped == [s.step in (100, 110) for s in steps]
    for s, layers in zip(steps, expected):
        if not s.skipped:
            assert s.grad_norm == pytest.approx(layers, rel=1e-5), s.step


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_is_measured_in_float32(tmp_path: Path, dtype: torch.dtype) -> None:
    model = _mlp()
    twin = copy.deepcopy(model)  # eager float32, no autocast
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8) if dtype == torch.float16 else None
    path = tmp_path / "autocast.jsonl"
    with Recorder(path, GradientProbe(model), scaler=scaler, flush_seconds=1e9) as recorder:
        x, y = _batch(1)
        with torch.autocast("cpu", dtype=dtype):
            loss = nn.functional.cross_entropy(model(x), y)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        actual = _norms(model, divide=scaler.get_scale() if scaler is not None else 1.0)
        recorder.step(loss)
    nn.functional.cross_entropy(twin(x), y).backward()
    (step,) = _steps(path)
    assert not step.skipped
    assert step.grad_norm == pytest.approx(actual, rel=1e-5)  # exactly what autograd computed
    assert step.grad_norm == pytest.approx(_norms(twin), rel=5e-2)  # and float32's, to half precision
    assert step.loss == pytest.approx(float(loss.detach().float()), rel=1e-6)


@pytest.mark.parametrize("zero_grad", ["optimizer", "recorder (flat buffer)"])
def test_bfloat16_parameters_are_measured_in_float32(tmp_path: Path, zero_grad: str) -> None:
    model = _mlp().to(torch.bfloat16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    expected = []
    path = tmp_path / "bf16.jsonl"
    with Recorder(path, GradientProbe(model), flush_seconds=1e9) as recorder:
        for step in range(1, 4):
            x, y = _batch(step)
            loss = nn.functional.cross_entropy(model(x.to(torch.bfloat16)), y)
            loss.backward()
            expected.append(_norms(model))
            recorder.step(loss)
            optimizer.step()
            if zero_grad == "optimizer":
                optimizer.zero_grad(set_to_none=True)
            else:
                recorder.zero_grad()
    steps = _steps(path)
    assert len(steps) == 3
    for s, layers in zip(steps, expected):
        # bfloat16 keeps 3 significant digits: a norm taken in bfloat16 would miss this by ~1e-3.
        assert s.grad_norm == pytest.approx(layers, rel=1e-5)


@pytest.mark.parametrize("unscale_first", [False, True], ids=["scaled", "unscale_"])
def test_the_alarm_stops_a_scaler_that_skips_at_a_spent_scale(tmp_path: Path, unscale_first: bool) -> None:
    """A NaN in every gradient from step 3: the scaler skips and halves its scale at every step, for
    ever, and on_nonfinite="raise" never fired (a skipped step is the scaler's business). Down at a
    scale of 1 nothing is left to lower: the gradient itself is not finite, and the job stops there,
    before optimizer.step(); "warn" warns then."""
    for mode in ("raise", "warn"):
        model = _mlp()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler("cpu", init_scale=16.0)
        path = tmp_path / f"{mode}.jsonl"
        raised = None
        with pytest.warns(RuntimeWarning, match=r"non-finite gradient at step \d+: layer '2' has norm nan") \
                if mode == "warn" else contextlib.nullcontext():
            with Recorder(path, GradientProbe(model), scaler=scaler, flush_seconds=0.0, on_nonfinite=mode) as recorder:
                for step in range(1, 12):
                    x, y = _batch(step)
                    loss = nn.functional.cross_entropy(model(x), y)
                    scaler.scale(loss).backward()
                    if step >= 3:
                        model[2].weight.grad[0, 0] = math.nan
                    if unscale_first:
                        scaler.unscale_(optimizer)
                    try:
                        recorder.step(loss)
                    except NonFiniteGradientError as error:
                        raised = (error.step, scaler.get_scale())
                        break
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
        if mode == "raise":
            assert raised == (7, 1.0)  # skipped at scales 16, 8, 4 and 2 (steps 3 to 6)
        else:
            assert raised is None
        steps = _steps(path)
        assert [s.step for s in steps if s.skipped][:4] == [3, 4, 5, 6]


@pytest.mark.parametrize("wrap", ["plain", "compiled"])
def test_float16_autocast_without_the_scaler_says_to_pass_it_once(tmp_path: Path, wrap: str) -> None:
    # The scaled gradients' norms would be recorded as the gradient's, 2**8 times too large here: the
    # one line says how to get the unscaled ones. The watch ends at the first step (no hook left).
    model = _mlp()
    watched = torch.compile(model, backend="eager") if wrap == "compiled" else model
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(tmp_path / "fp16.jsonl", GradientProbe(watched), flush_seconds=1e9) as recorder:
        for step in range(1, 4):
            x, y = _batch(step)
            with torch.autocast("cpu", dtype=torch.float16):
                loss = nn.functional.cross_entropy(watched(x), y)
            scaler.scale(loss).backward()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                recorder.step(loss)
            said = [str(w.message) for w in caught if "scaler=scaler" in str(w.message)]
            assert len(said) == (1 if step == 1 else 0), said
            if step == 1:
                assert said[0].startswith("vgp-tui: the model ran under float16 autocast and the Recorder "
                                          "was given no scaler: if a torch.amp.GradScaler scales the loss, "
                                          "pass it as Recorder(..., scaler=scaler)")
            assert not watched._forward_pre_hooks
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)


@pytest.mark.parametrize("case", ["scaler given", "bfloat16", "float32"])
def test_no_scaler_warning_where_none_is_missing(tmp_path: Path, case: str) -> None:
    model = _mlp()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8) if case == "scaler given" else None
    dtype = {"bfloat16": torch.bfloat16}.get(case, torch.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Recorder(tmp_path / "run.jsonl", GradientProbe(model), scaler=scaler, flush_seconds=1e9) as recorder:
            x, y = _batch(1)
            with torch.autocast("cpu", dtype=dtype, enabled=case != "float32"):
                loss = nn.functional.cross_entropy(model(x), y)
            (scaler.scale(loss) if scaler is not None else loss).backward()
            recorder.step(loss)
    assert not model._forward_pre_hooks
