"""torch.compile'd models: the same layer names and the same numbers as the eager model.

The ``aot_eager`` backend runs the same AOT-autograd graphs as inductor without needing a C compiler,
in about two seconds on a CPU (inductor takes over thirty here).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from vgp_tui.engine.events import RunStarted, StepMetrics
from vgp_tui.engine.instrument import Recorder
from vgp_tui.engine.probe import GradientProbe, default_layer_groups


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16, bias=False), nn.Tanh(), nn.Linear(16, 3))


def _batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(step)
    return torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)


@pytest.mark.parametrize("zero_grad", ["optimizer", "recorder (flat buffer)"])
def test_compiled_model_records_the_eager_names_and_numbers(tmp_path: Path, zero_grad: str) -> None:
    from vgp_tui.engine.recording import read_recording

    torch._dynamo.reset()
    eager = _mlp()
    model = copy.deepcopy(eager)
    compiled = torch.compile(model, backend="aot_eager")
    probe = GradientProbe(compiled)
    assert probe.layer_names == GradientProbe(eager).layer_names == ("0", "2", "4")  # no "_orig_mod."
    optimizer = torch.optim.SGD(compiled.parameters(), lr=0.5)
    eager_optimizer = torch.optim.SGD(eager.parameters(), lr=0.5)
    expected = []
    path = tmp_path / "compiled.jsonl"
    with Recorder(path, probe, flush_seconds=1e9) as recorder:
        for step in range(1, 5):
            x, y = _batch(step)
            loss = nn.functional.cross_entropy(compiled(x), y)
            loss.backward()
            nn.functional.cross_entropy(eager(x), y).backward()
            expected.append([math.sqrt(sum(float(p.grad.double().norm()) ** 2 for p in ps))
                             for _, ps in default_layer_groups(eager)])
            recorder.step(loss, clip=1.0)
            torch.nn.utils.clip_grad_norm_(eager.parameters(), 1.0)
            optimizer.step()
            eager_optimizer.step()
            if zero_grad == "optimizer":
                optimizer.zero_grad(set_to_none=True)
            else:
                recorder.zero_grad()
            eager_optimizer.zero_grad(set_to_none=True)
    if zero_grad != "optimizer":
        assert probe.flat_active  # the compiled backward accumulated into the flat buffer
    events = read_recording(path).events
    assert next(e for e in events if isinstance(e, RunStarted)).layers == ("0", "2", "4")
    steps = [e for e in events if isinstance(e, StepMetrics)]
    assert len(steps) == 4
    for s, layers in zip(steps, expected):
        assert s.grad_norm == pytest.approx(layers, rel=1e-5)
    for p, q in zip(model.parameters(), eager.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_a_compiled_submodule_keeps_its_plain_name() -> None:
    model = _mlp()
    model[2] = torch.compile(model[2], backend="eager")  # wrapping is lazy: nothing compiles here
    assert GradientProbe(model).layer_names == ("0", "2", "4")
