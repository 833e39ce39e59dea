"""GradientProbe: its numbers equal plain autograd's, clipping equals clip_grad_norm_, NaN is kept."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vgp_tui.engine.probe import GradientProbe, default_layer_groups

from vanishing_models import deep_sigmoid


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 7), nn.BatchNorm1d(7), nn.Linear(7, 3))


def _backward(model: nn.Module) -> None:
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(1))
    model(x).pow(2).mean().backward()


def test_layer_norms_equal_plain_autograd_per_module() -> None:
    model = _net()
    _backward(model)
    probe = GradientProbe(model)
    layer, total = probe.measure()
    groups = default_layer_groups(model)
    assert probe.layer_names == tuple(name for name, _ in groups) == ("0", "2", "3", "4")
    for value, (_, params) in zip(layer.tolist(), groups):
        expected = math.sqrt(sum(p.grad.norm().item() ** 2 for p in params))
        assert value == pytest.approx(expected, rel=1e-5)
    all_grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert total.item() == pytest.approx(all_grads.norm().item(), rel=1e-5)


def test_explicit_groups_and_missing_gradients_count_as_zero() -> None:
    model = _net()
    unused = nn.Linear(2, 2)  # never in the forward pass: its parameters get no gradient
    _backward(model)
    groups = [("first", list(model[0].parameters())), ("unused", list(unused.parameters()))]
    layer, total = GradientProbe(groups=groups).measure()
    assert layer[1].item() == 0.0
    assert layer[0].item() == pytest.approx(math.hypot(model[0].weight.grad.norm().item(), model[0].bias.grad.norm().item()), rel=1e-5)
    assert total.item() == pytest.approx(layer[0].item(), rel=1e-6)


def test_a_tensor_where_a_groups_list_belongs_is_named_at_construction() -> None:
    """("a", tensor) was read row by row: the rows, computed from the tensor, never get a .grad, and the
    mistake surfaced at the first step as NoGradientError, with PyTorch's "non-leaf Tensor" warning."""
    model = _net()
    weight = model[0].weight
    for given, kind in ((weight.detach().clone().requires_grad_(), "Tensor"), (weight, "Parameter"), (model[0], "Linear")):
        with pytest.raises(TypeError, match=rf"^groups must give layer 'a' a list of parameters, not a {kind}: "
                                            r"\('a', \[tensor\]\) or \('a', list\(module\.parameters\(\)\)\)$"):
            GradientProbe(model, groups=[("first", [model[0].bias]), ("a", given)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"^groups must give layer 'a' a list of parameters, not a list holding a Linear: "):
        GradientProbe(groups=[("a", [model[0]])])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"^groups must give layer 'a' the parameters themselves, not a tensor computed "
                                         r"from them \(it gets no \.grad\)"):
        GradientProbe(groups=[("a", [weight * 2])])
    assert GradientProbe(groups=[("a", [weight]), ("b", model[2].parameters())]).layer_names == ("a", "b")
    listed = nn.ParameterList([nn.Parameter(torch.ones(2))])  # a module, and a list of parameters
    assert GradientProbe(groups=[("a", listed)]).params == [listed[0]]


def test_a_frozen_layer_is_measured_once_it_is_unfrozen() -> None:
    """Progressive unfreezing (Lightning's BaseFinetuning, a fine-tuning schedule): the backbone's
    parameters are frozen when the probe is built. A probe that refused them stopped the training."""
    model = _net()
    model[0].requires_grad_(False)
    probe = GradientProbe(groups=[("backbone", list(model[0].parameters())), ("head", list(model[2].parameters()))])
    _backward(model)
    layer, _ = probe.measure()
    assert layer[0].item() == 0.0 and layer[1].item() > 0  # frozen: no gradient yet
    model[0].requires_grad_(True)
    model.zero_grad()
    _backward(model)
    layer, _ = probe.measure()
    expected = math.hypot(model[0].weight.grad.norm().item(), model[0].bias.grad.norm().item())
    assert layer[0].item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("max_norm", [1e-3, 0.05, 1e6])
def test_clip_matches_clip_grad_norm(max_norm: float) -> None:
    a, b = _net(), _net()
    _backward(a)
    _backward(b)
    probe = GradientProbe(a)
    _, total = probe.measure()
    clipped = probe.clip(total, max_norm)
    reference_total = torch.nn.utils.clip_grad_norm_(b.parameters(), max_norm)
    assert total.item() == pytest.approx(reference_total.item(), rel=1e-5)
    assert bool(clipped) == (reference_total.item() > max_norm)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad)
    after = torch.cat([p.grad.flatten() for p in a.parameters()]).norm().item()
    assert after <= max_norm * (1 + 1e-5) or max_norm > reference_total.item()


def test_non_finite_gradients_are_kept() -> None:
    model = _net()
    _backward(model)
    model[2].weight.grad[0, 0] = float("nan")
    model[4].bias.grad[0] = float("inf")
    layer, total = GradientProbe(model).measure()
    values = layer.tolist()
    assert math.isfinite(values[0])
    assert math.isnan(values[1])
    assert math.isinf(values[3])
    assert math.isnan(total.item())


def test_measure_does_not_read_back_to_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe returns device tensors: no .item()/.tolist() per layer inside measure()."""
    model = _net()
    _backward(model)
    probe = GradientProbe(model)

    def forbidden(*_: object, **__: object) -> None:
        raise AssertionError("measure() copied a value to the host")

    monkeypatch.setattr(torch.Tensor, "item", forbidden)
    monkeypatch.setattr(torch.Tensor, "tolist", forbidden)
    layer, total = probe.measure()
    probe.clip(total, 0.1)
    assert isinstance(layer, torch.Tensor) and layer.shape == (4,)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_probe_and_clip_do_not_synchronise_on_cuda() -> None:
    model = _net().cuda()
    x = torch.randn(16, 5, device="cuda")
    model(x).pow(2).mean().backward()
    probe = GradientProbe(model)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        layer, total = probe.measure()
        probe.clip(total, 0.5)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert layer.is_cuda


@pytest.mark.parametrize("scratch", ["whole buffer", "rows at a time", "rows too long: the norm converts"])
def test_a_cpu_flat_buffer_measured_in_its_float64_scratch_equals_autograd(monkeypatch: pytest.MonkeyPatch, scratch: str) -> None:
    # The float32 flat buffer is copied into a kept float64 block to be measured; a buffer larger than
    # the block goes through it rows at a time, one whose rows are longer than it by the norm itself.
    # Each way the first layers' 1e-26 norms are autograd's (in float32 their squares are 0).
    import vgp_tui.engine.probe as probe_module

    model = deep_sigmoid()
    probe = GradientProbe(model)
    assert probe.use_flat_grads()
    flat = probe._flat
    assert flat is not None
    row = flat.shape[1]
    limit = {"whole buffer": flat.numel(), "rows at a time": 3 * row + 1, "rows too long: the norm converts": row - 1}[scratch]
    monkeypatch.setattr(probe_module, "_SCRATCH_MAX", limit)
    for step in range(2):  # the kept block measures each step afresh
        probe.zero_grad()
        x = torch.randn(64, 2, generator=torch.Generator().manual_seed(step))
        nn.functional.cross_entropy(model(x), torch.arange(64) % 3).backward()
        expected = [math.sqrt(sum(float(p.grad.double().norm()) ** 2 for p in params))
                    for _, params in default_layer_groups(model)]
        assert expected[0] < 1e-20  # (what the model is here for)
        layers, total = probe.measure()
        assert layers.tolist() == pytest.approx(expected, rel=1e-6, abs=0)
        assert total.item() == pytest.approx(math.sqrt(sum(v * v for v in expected)), rel=1e-6)
    kept = probe._scratch
    if scratch == "rows too long: the norm converts":
        assert kept is None
    else:
        assert kept is not None and kept.dtype == torch.float64
        assert len(kept) == (len(flat) if scratch == "whole buffer" else 3)
