"""The Recorder under torch.distributed: DDP, DDP with no_sync, FSDP2 (with and without clipping) and
tensor parallelism record the same per-layer norms as the full batch on one process.

One ``torchrun`` launch of 2 CPU processes (gloo) runs every scenario of tests/distributed_worker.py in
sequence (about 10 s on 2 cores); each writes a recording on rank 0, compared here with a single-process
float32 reference of the same batches.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vgp_tui.engine.events import RemedyChanged, RunStarted, StateChanged, StepMetrics
from vgp_tui.engine.recording import read_recording

from torchrun import launch

WORKER = Path(__file__).with_name("distributed_worker.py")
_spec = importlib.util.spec_from_file_location("distributed_worker", WORKER)
assert _spec is not None and _spec.loader is not None
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("distributed")
    launch(WORKER, str(out))
    return out


def reference(scenario: str) -> list[tuple[float, list[float], float]]:
    """(rank 0's loss, layer norms, total norm) per step: the full batch on one process, in float32."""
    model = worker.model()
    optimizer = torch.optim.SGD(model.parameters(), lr=worker.lr_at(1))
    groups = [model[0], model[2], model[4]]
    out = []
    for step in range(1, worker.STEPS + 1):
        for group in optimizer.param_groups:
            group["lr"] = worker.lr_at(step)
        x, y = worker.batch(step)
        with torch.no_grad():  # what rank 0 saw: its half of the batch, or all of it (tensor parallel)
            half = len(x) // 2 if worker.DATA_PARALLEL[scenario] else len(x)
            rank0_loss = float(F.cross_entropy(model(x[:half]), y[:half]))
        F.cross_entropy(model(x), y).backward()
        layers = [math.sqrt(sum(float(p.grad.double().norm()) ** 2 for p in m.parameters())) for m in groups]
        out.append((rank0_loss, layers, math.sqrt(sum(v * v for v in layers))))
        if worker.uses_clip(scenario):
            torch.nn.utils.clip_grad_norm_(model.parameters(), worker.CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return out


@pytest.mark.parametrize("scenario", [s for s in worker.SCENARIOS if not s.endswith("_raise")])
def test_distributed_norms_equal_the_full_batch_on_one_process(recordings: Path, scenario: str) -> None:
    result = read_recording(recordings / f"{scenario}.jsonl")
    assert result.warning is None
    run = next(e for e in result.events if isinstance(e, RunStarted))
    assert run.layers == ("0", "2", "4")  # DDP's "module." prefix is not the user's
    assert run.params == 6 * 8 + 8 + 8 * 8 + 8 * 3 + 3  # global sizes, not one rank's shards
    steps = [e for e in result.events if isinstance(e, StepMetrics)]
    assert [s.step for s in steps] == list(range(1, worker.STEPS + 1))
    for s, (loss, layers, total) in zip(steps, reference(scenario)):
        assert s.grad_norm == pytest.approx(layers, rel=1e-5), s.step
        assert s.total_norm == pytest.approx(total, rel=1e-5), s.step
        assert s.loss == pytest.approx(loss, rel=1e-5), s.step
        assert s.lr == worker.lr_at(s.step)
        assert s.clipped is (True if worker.uses_clip(scenario) else None)
        assert not s.skipped
    # The lr change is recorded before step 3, even where flushing waits for a sum over the ranks.
    kinds = [(type(e).__name__, getattr(e, "step", None)) for e in result.events[1:]]
    assert kinds.index(("RemedyChanged", 3)) == kinds.index(("StepMetrics", 3)) - 1
    change = next(e for e in result.events if isinstance(e, RemedyChanged))
    assert (change.old, change.new) == (0.1, 0.05)
    end = result.events[-1]
    assert isinstance(end, StateChanged) and (end.state, end.step) == ("finished", worker.STEPS)
    assert "not written" not in end.message


def test_only_rank_zero_writes(recordings: Path) -> None:
    assert sorted(p.name for p in recordings.iterdir()) == sorted(f"{s}.jsonl" for s in worker.SCENARIOS)


def test_a_nan_in_one_ranks_shard_stops_every_rank_at_that_step(recordings: Path) -> None:
    """on_nonfinite="raise" under FSDP2: rank 1 alone holds the NaN, both ranks raise at step NAN_AT (the
    worker asserts it on each rank; a rank that went on would hang the launch), rank 0 records it."""
    result = read_recording(recordings / "fsdp2_raise.jsonl")
    steps = [e for e in result.events if isinstance(e, StepMetrics)]
    assert [s.step for s in steps] == list(range(1, worker.NAN_AT + 1))
    for s, (_, layers, _) in zip(steps[:-1], reference("fsdp2_raise")):
        assert s.grad_norm == pytest.approx(layers, rel=1e-5)
    assert math.isnan(steps[-1].grad_norm[1]) and math.isfinite(steps[-1].grad_norm[0])
    end = result.events[-1]
    assert isinstance(end, StateChanged) and end.state == "error"
    assert end.message.startswith(f"NonFiniteGradientError: non-finite gradient at step {worker.NAN_AT}: layer '2'")
    assert "not written" not in end.message
