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


# -- the README's torchrun example runs as printed ----------------------------------------------------
def _readme_ddp_example() -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    body = readme.split("* Under `torchrun`", 1)[1]
    start = body.index("```python\n") + len("```python\n")
    block = body[start : body.index("```", start)]
    return "\n".join(line[2:] if line.startswith("  ") else line for line in block.splitlines()) + "\n"


def test_the_readme_ddp_example_records_the_gradient_ddp_averages(tmp_path: Path) -> None:
    """Pasted alone into a file and run under torchrun, the example trains, only rank 0 writes, and its
    recording holds the norms of the mean of the two ranks' gradients (each rank its own batches)."""
    source = _readme_ddp_example()
    script = tmp_path / "ddp.py"
    script.write_text(source, encoding="utf-8")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    launch(script, timeout=240, cwd=run_dir)  # the example writes run.jsonl where it is started
    assert sorted(p.name for p in run_dir.iterdir()) == ["run.jsonl"]
    steps = [e for e in read_recording(run_dir / "run.jsonl").events if isinstance(e, StepMetrics)]
    assert [s.step for s in steps] == list(range(1, 301))

    # The same training on one process: the example's own lines up to DDP, then the mean loss of both
    # ranks' batches (what DDP's averaged gradient is the gradient of).
    namespace: dict[str, object] = {}
    setup = source[source.index("torch.manual_seed(0)") : source.index("model = nn.parallel")]
    exec("import torch\nfrom torch import nn\n" + setup, namespace)  # noqa: S102 - the README's own lines
    model, x, y = namespace["model"], namespace["x"], namespace["y"]
    assert isinstance(model, torch.nn.Module) and isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    generators = [torch.Generator().manual_seed(rank) for rank in (0, 1)]
    layers = [m for m in model if any(True for _ in m.parameters())]
    for s in steps:
        batches = [torch.randint(0, len(x), (64,), generator=g) for g in generators]
        losses = [F.cross_entropy(model(x[b]), y[b]) for b in batches]
        ((losses[0] + losses[1]) / 2).backward()
        expected = [math.sqrt(sum(float(p.grad.double().norm()) ** 2 for p in m.parameters())) for m in layers]
        assert s.grad_norm == pytest.approx(expected, rel=1e-4, abs=1e-10), s.step
        assert s.loss == pytest.approx(losses[0].item(), rel=1e-5)  # rank 0's
        optimizer.step()
        optimizer.zero_grad()
