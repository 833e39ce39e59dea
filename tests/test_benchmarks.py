"""The benchmark scripts run (at tiny sizes) and print their tables; no timing is asserted.

Also checks the fast path the probe-overhead benchmark measures (the flat gradient buffer) against
plain autograd, the same way tests/test_probe.py checks the per-tensor path.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from vgp_tui.engine.probe import GradientProbe, choose_row_length, default_layer_groups

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def run_script(name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WANDB_SILENT": "true", "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, str(BENCH / name), *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env,
    )


def test_probe_overhead_runs_at_a_tiny_size() -> None:
    done = run_script("probe_overhead.py", "--quick", "--rounds", "2", "--steps", "2", "--warmup", "1", "--peers", "reimpl",
                      "--replicas", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "wall ms/step [IQR]" in out and "x plain [IQR]" in out
    assert "2 replica(s) of our variants" in out
    for name in ("== deep-sigmoid ==", "== resnet-cifar10 ==", "plain loop (no statistics)",
                 "vgp-tui probe every step (Trainer.step + flush)", "plain loop + clip_grad_norm_(1)",
                 "wandb.watch(log='gradients', log_freq=1) (re-implementation)",
                 "Lightning grad_norm(model, 2) (re-implementation)",
                 "TensorBoard add_histogram per parameter (re-implementation)", "targets"):
        assert name in out, name
    assert "[no flat buffer]" not in out  # the trainer took the fast path on both models


def test_dashboard_cost_runs_quick() -> None:
    done = run_script("dashboard_cost.py", "--quick", timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    for row in ("dashboard / headless", "UI thread CPU while attached", "UI tick at 120x40", "every panel redrawn",
                "frame on screen", "first data", "terminal output at 120x40", "in that terminal: UI thread CPU"):
        assert row in done.stdout, row
    for row in ("frame on screen", "first data"):
        assert "nan" not in done.stdout.split(row)[1].split("\n")[0], row  # both moments were seen


def test_gif_render_runs_quick() -> None:
    done = run_script("gif_render.py", "--quick", timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    for row in ("(a) svg + resvg, system fonts", "(a) svg + resvg, Cascadia Mono only", "(b) pty + pyte + cell painter"):
        assert done.stdout.count(row) == 2, row  # a timing row and a fidelity row each
    fidelity = done.stdout.split("(b) pty + pyte + cell painter")[-1].split()
    assert fidelity[:4] == ["0.000", "1.000", "1.000", "1.00"]  # the chosen path draws every cell edge to edge


def test_recorder_profile_runs_quick_in_both_modes() -> None:
    """benchmarks/recorder_profile.py: the phases of a step with the Recorder, the operators that
    recorder.step and a flush dispatch, and the interleaved parts; no timing is asserted."""
    done = run_script("recorder_profile.py", "--quick")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for text in ("forward+backward", "recorder.step", "flush per step", "+ Recorder, optimizer.zero_grad()",
                 "+ Recorder, recorder.zero_grad()", "torch.profiler"):
        assert text in out, text
    # On a CPU each path copies its gradients into float64 rows once (the per-tensor path gathers them
    # into its block, the flat path converts its buffer into its scratch), takes their norms with one
    # operator and reads the loss: nothing converted again, into a fresh allocation (_to_copy).
    ops = {name: m.group(1) for name in ("optimizer.zero_grad()", "recorder.zero_grad()")
           for m in [re.search(re.escape(name) + r": recorder.step: \d+ operators \(([^)]*)\)", out)] if m}
    assert ops == {"optimizer.zero_grad()": "_foreach_copy_, linalg_vector_norm, _local_scalar_dense",
                   "recorder.zero_grad()": "copy_, linalg_vector_norm, _local_scalar_dense"}, out[-2000:]
    done = run_script("recorder_profile.py", "--quick", "--parts")
    assert done.returncode == 0, done.stderr[-3000:]
    for kind in ("loss copy", "gathering copy only", "gathering + row norms", "gathering + float32 row norms",
                 "torch._foreach_norm (float32)", "Recorder + recorder.zero_grad()"):
        assert kind in done.stdout, kind


def test_history_memory_runs_quick() -> None:
    done = run_script("history_memory.py", "--quick", "--view-runs", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MB (nbytes)" in done.stdout and "series.view(120)" in done.stdout
    assert "100,000" in done.stdout


def test_startup_runs_and_help_does_not_import_torch() -> None:
    done = run_script("startup.py", "--runs", "1", "--top", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "median s" in done.stdout
    assert "vgp-tui --help imports torch: no (MET)" in done.stdout, done.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="this checks the message on a machine without CUDA")
def test_gpu_check_exits_2_without_cuda() -> None:
    done = run_script("gpu_check.py", timeout=60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "needs a CUDA device" in done.stderr
    assert "Traceback" not in done.stderr


# -- the flat gradient buffer gives plain autograd's numbers ----------------------------------------
def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 7), nn.BatchNorm1d(7), nn.Linear(7, 3))


def _backward(model: nn.Module, seed: int = 1) -> None:
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(seed))
    model(x).pow(2).mean().backward()


def _reference(model: nn.Module) -> tuple[list[float], float]:
    """Per-layer norms from ``p.grad.norm()`` combined in Python, and the norm of all gradients."""
    groups = [ps for _, ps in default_layer_groups(model)]
    layers = [math.sqrt(sum(p.grad.norm().item() ** 2 for p in ps)) for ps in groups]
    return layers, torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item()


def test_flat_buffer_equals_autograd_and_the_per_tensor_path() -> None:
    plain, flat = _net(), _net()
    reference_probe, probe = GradientProbe(plain), GradientProbe(flat)
    assert probe.use_flat_grads() and probe.flat_active
    for seed in (1, 2):  # two micro-batches accumulate into the buffer
        _backward(plain, seed)
        _backward(flat, seed)
    for p, q in zip(plain.parameters(), flat.parameters()):
        assert torch.equal(p.grad, q.grad)  # the same gradient bits: accumulation in place is exact
    layers, total = probe.measure()
    expected_layers, expected_total = _reference(plain)
    assert layers.tolist() == pytest.approx(expected_layers, rel=1e-5)
    assert total.item() == pytest.approx(expected_total, rel=1e-5)
    assert probe.measure_packed().tolist() == pytest.approx(reference_probe.measure_packed().tolist(), rel=1e-5)


def test_flat_buffer_clip_matches_clip_grad_norm_and_keeps_nan() -> None:
    a, b = _net(), _net()
    probe = GradientProbe(a)
    probe.use_flat_grads()
    _backward(a)
    _backward(b)
    _, total = probe.measure()
    clipped = probe.clip(total, 0.05)
    reference = torch.nn.utils.clip_grad_norm_(b.parameters(), 0.05)
    assert bool(clipped) and total.item() == pytest.approx(reference.item(), rel=1e-5)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad)
    a[2].weight.grad[0, 0] = float("nan")
    a[4].bias.grad[0] = float("inf")
    values = probe.measure()[0].tolist()
    assert math.isfinite(values[0]) and math.isnan(values[1]) and math.isinf(values[3])


def test_flat_buffer_survives_grads_set_to_none() -> None:
    model = _net()
    probe = GradientProbe(model)
    probe.use_flat_grads()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    _backward(model)
    optimizer.zero_grad(set_to_none=True)  # drops the views: the probe falls back, still correct
    _backward(model)
    assert not probe.flat_active
    fallback = probe.measure_packed()
    assert probe.zero_grad() and probe.flat_active  # views restored, zeroed
    assert all(float(p.grad.abs().sum()) == 0.0 for p in model.parameters())
    _backward(model)
    torch.testing.assert_close(probe.measure_packed(), fallback)


def test_flat_buffer_is_refused_where_it_cannot_hold_the_gradients() -> None:
    model = _net()
    shared = model[0].weight  # (a parameter listed in two layers is held once, by the last: no refusal)
    with pytest.warns(RuntimeWarning, match="counted in the last layer that lists it only"):
        tied = GradientProbe(groups=[("a", [shared]), ("b", [shared])])
    assert tied.layer_names == ("b",) and tied.use_flat_grads()
    mixed = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2).double())
    assert not GradientProbe(mixed).use_flat_grads()


def test_row_length_keeps_padding_small() -> None:
    sizes = [192] + [4160] * 19 + [195]  # the deep-sigmoid MLP's layers
    row = choose_row_length(sizes)
    padded = sum(math.ceil(n / row) * row for n in sizes)
    assert padded <= 1.1 * sum(sizes)
    assert choose_row_length([3]) >= 3
