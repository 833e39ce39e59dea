"""On a CUDA machine: the Recorder on each real training path adds no host-device sync, and records
exactly what float64 autograd says. Run by ``benchmarks/gpu_check.py`` (section 3); alone:

    python benchmarks/recorder_cuda.py            # every path, under a minute on one GPU

For each path (plain, clipping, the flat buffer, float16 autocast with a GradScaler and a forced
overflow, the same with ``unscale_`` and clipping, bfloat16 autocast, bfloat16 parameters,
``torch.compile`` with inductor, DDP and FSDP2 in a one-process NCCL group) a 12-layer sigmoid MLP
trains ``STEPS`` steps; on the two ``vanishing`` paths (per-tensor and the flat buffer) a 31-layer one,
whose first layers' norms are 2e-27 to 7e-22 (their gradient elements' float32 squares are 0).
Before each ``recorder.step`` the reference per-layer norms are computed in float64 from the
gradients as they are (divided by the scaler's scale where the gradients are scaled); then
``recorder.step`` (and ``recorder.zero_grad`` for the flat paths) runs under
``torch.cuda.set_sync_debug_mode("error")``, so any synchronisation it makes raises. After a flush,
the recording must equal the reference to float32 tolerance, and the overflowed step must be marked
skipped. The one-process groups prove the collectives' code paths, not a multi-GPU speed.
"""

from __future__ import annotations

import math
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from vgp_tui.engine.events import StepMetrics
from vgp_tui.engine.instrument import Recorder
from vgp_tui.engine.probe import GradientProbe, default_layer_groups
from vgp_tui.engine.recording import read_recording

STEPS = 12
WARMUP = 2
"""The first steps run outside the sync check: lazy CUDA initialisation may synchronise once."""
DEVICE = "cuda"
"""Where to run; ``--device cpu`` is a dry run of the same code (no sync check, gloo for the groups)."""
OVERFLOW_AT = 5
"""The step whose gradient gets an Inf under the GradScaler, which must be recorded as skipped."""
REDUCTIONS: dict[str, list[int]] = {}
"""The steps at which a sharded path's Recorder summed over the ranks (and so synchronised once)."""
PATHS = ("plain", "clip", "flat", "vanishing", "vanishing-flat", "fp16-scaler", "fp16-unscale-clip",
         "bf16-autocast", "bf16-params", "compiled", "ddp", "fsdp2")


def _mlp(dtype: torch.dtype = torch.float32, depth: int = 12) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    width = 64
    for i in range(depth):
        layers += [nn.Linear(32 if i == 0 else width, width), nn.Sigmoid()]
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers).to(DEVICE, dtype)


def _batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator(device=DEVICE).manual_seed(step)
    return torch.randn(128, 32, device=DEVICE, generator=g), torch.randint(0, 10, (128,), device=DEVICE, generator=g)


def _grad64(p: torch.Tensor) -> torch.Tensor:
    g = p.grad
    if hasattr(g, "full_tensor"):  # an FSDP2 DTensor gradient: its whole value
        g = g.full_tensor()
    return g.double()


def _reference(model: nn.Module, scale: float) -> list[float]:
    """Per-layer norms in float64 of the gradients as they are now, divided by the loss scale."""
    return [math.sqrt(sum(float(_grad64(p).norm() / scale) ** 2 for p in ps)) for _, ps in default_layer_groups(model)]


def _process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        return
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="localhost", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    if DEVICE == "cuda":
        dist.init_process_group("nccl", rank=0, world_size=1, device_id=torch.device("cuda", 0))
    else:
        dist.init_process_group("gloo", rank=0, world_size=1)


def check(path: str, workdir: str) -> str | None:
    """None if ``path`` ran sync-free and recorded autograd's numbers, else what went wrong."""
    params_dtype = torch.bfloat16 if path == "bf16-params" else torch.float32
    model = _mlp(params_dtype, depth=31 if path.startswith("vanishing") else 12)
    net: nn.Module = model
    if path == "compiled":
        # inductor, as users run it on a GPU; the dry run on a CPU needs no C compiler
        net = torch.compile(model, backend="inductor" if DEVICE == "cuda" else "aot_eager")
    elif path == "ddp":
        _process_group()
        net = nn.parallel.DistributedDataParallel(model)
    elif path == "fsdp2":
        _process_group()
        from torch.distributed.fsdp import fully_shard

        for i in range(0, 24, 2):
            fully_shard(model[i])
        net = fully_shard(model)
    scaler = torch.amp.GradScaler(DEVICE, init_scale=2.0**14) if path.startswith("fp16") else None
    autocast = {"fp16-scaler": torch.float16, "fp16-unscale-clip": torch.float16, "bf16-autocast": torch.bfloat16}
    clip = 1.0 if path in ("clip", "fp16-unscale-clip") else None
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    file = Path(workdir) / f"{path}.jsonl"
    expected: list[list[float]] = []
    skipped: list[bool] = []
    reductions: list[int] = []
    recorder = Recorder(file, GradientProbe(net), scaler=scaler, flush_seconds=1e9)
    try:
        for step in range(1, STEPS + 1):
            x, y = _batch(step)
            if path in autocast:
                with torch.autocast(DEVICE, dtype=autocast[path]):
                    loss = nn.functional.cross_entropy(net(x.to(params_dtype)), y)
            else:
                loss = nn.functional.cross_entropy(net(x.to(params_dtype)), y)
            (scaler.scale(loss) if scaler else loss).backward()
            overflow = scaler is not None and step == OVERFLOW_AT
            if overflow:
                with torch.no_grad():
                    next(model.parameters()).grad.view(-1)[0] = float("inf")
            scale = 1.0
            if scaler is not None:
                if path == "fp16-unscale-clip":
                    scaler.unscale_(optimizer)
                else:
                    scale = float(scaler.get_scale())
            expected.append(_reference(model, scale))
            skipped.append(overflow)
            # A sharded Recorder sums its pending squares over the ranks at growing intervals: that
            # reduction is its one intended sync (one host read of the agreed next interval), not per step.
            reduces = recorder._sharded and recorder.step_count + 1 >= recorder._reduce_at
            if reduces:
                reductions.append(step)
            checked = step > WARMUP and not reduces
            problem = _sync_free(lambda: recorder.step(loss, clip=clip), checked)
            if problem:
                return f"recorder.step at step {step}: {problem}"
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if path in ("flat", "vanishing-flat"):
                problem = _sync_free(recorder.zero_grad, checked)
                if problem:
                    return f"recorder.zero_grad at step {step}: {problem}"
            else:
                optimizer.zero_grad(set_to_none=True)
        recorder.flush()
    finally:
        recorder.close()
    steps = [e for e in read_recording(file).events if isinstance(e, StepMetrics)]
    if len(steps) != STEPS:
        return f"{len(steps)} step records for {STEPS} steps"
    for record, want, was_skipped in zip(steps, expected, skipped):
        if record.skipped != was_skipped:
            return f"step {record.step}: skipped {record.skipped}, expected {was_skipped}"
        for i, (got, ref) in enumerate(zip(record.grad_norm, want)):
            if math.isinf(ref) and math.isinf(got):
                continue
            # (no absolute tolerance: one of 1e-12 passed vanishing layers recorded as 0)
            if not math.isclose(got, ref, rel_tol=2e-3 if path == "bf16-params" else 1e-4):
                return f"step {record.step} layer {i}: recorded {got!r}, float64 autograd {ref!r}"
    if reductions:
        REDUCTIONS[path] = reductions
    return None


def _sync_free(call: Callable[[], object], checked: bool) -> str | None:
    """Runs ``call``; where ``checked`` (and on CUDA), any host-device sync in it is returned as a problem."""
    if not checked or DEVICE != "cuda":
        call()
        return None
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        call()
    except RuntimeError as exc:
        return str(exc).splitlines()[0]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return None


def main(paths: tuple[str, ...] = PATHS) -> list[str]:
    """Prints one line per path; returns the paths that failed."""
    failures = []
    with tempfile.TemporaryDirectory(prefix="vgp-recorder-cuda-") as workdir:
        for path in paths:
            try:
                problem = check(path, workdir)
            except Exception as exc:  # a path that cannot even run is a failure to report, not a crash
                problem = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            verdict = "OK" if problem is None else "FAILED: " + problem
            if problem is None and path in REDUCTIONS:
                verdict += f" (one sync per reduction over the ranks, at steps {REDUCTIONS[path]}; none between)"
            print(f"   {path:<32} {verdict}", flush=True)
            if problem is not None:
                failures.append(path)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return failures


if __name__ == "__main__":
    if "--device" in sys.argv:
        DEVICE = sys.argv[sys.argv.index("--device") + 1]
    elif not torch.cuda.is_available():
        print("recorder_cuda.py needs a CUDA device. Nothing was run.", file=sys.stderr)
        sys.exit(2)
    sys.exit(1 if main() else 0)
