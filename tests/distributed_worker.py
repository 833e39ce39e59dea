"""One rank of tests/test_distributed.py: trains a small MLP under DDP, DDP with no_sync, FSDP2 and tensor
parallelism, in sequence, and records each with ``vgp_tui.Recorder`` (rank 0 writes ``OUT/<scenario>.jsonl``).

    python -m torch.distributed.run --nproc-per-node 2 tests/distributed_worker.py OUT [scenario ...]

The test builds a single-process reference from ``model``, ``batch``, ``lr_at`` and ``CLIP`` below: the
full batch on one process, so every scenario must give the same gradients as that, step by step.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

STEPS = 6
BATCH = 8
"""The global batch: each of the 2 data-parallel ranks takes half, tensor parallelism all of it."""
CLIP = 0.05
"""max_norm of the clipping scenario: below the gradients' norms, so every step clips."""
NAN_AT = 4
"""fsdp2_raise: the step at which rank 1 alone puts a NaN into its shard of layer "2"'s gradient."""
SCENARIOS = ("ddp", "ddp_no_sync", "ddp_clip", "fsdp2", "fsdp2_clip", "fsdp2_raise", "tp")
DATA_PARALLEL = {"ddp": True, "ddp_no_sync": True, "ddp_clip": True, "fsdp2": True, "fsdp2_clip": True,
                 "fsdp2_raise": True, "tp": False}


def model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8, bias=False), nn.Tanh(), nn.Linear(8, 3))


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)
    return torch.randn(BATCH, 6, generator=g), torch.randint(0, 3, (BATCH,), generator=g)


def lr_at(step: int) -> float:
    """0.1, then 0.05 from step 3 on (the change is marked with Recorder.log_remedy)."""
    return 0.1 if step < 3 else 0.05


def uses_clip(scenario: str) -> bool:
    return scenario.endswith("_clip")


def main(out: Path, scenarios: list[str]) -> None:
    from torch.distributed.fsdp import fully_shard
    from torch.nn.parallel import DistributedDataParallel

    import vgp_tui

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    assert world == 2, world
    for scenario in scenarios:
        net = model()
        if scenario.startswith("ddp"):
            trained: nn.Module = DistributedDataParallel(net)
        elif scenario.startswith("fsdp2"):
            for block in (net[0], net[2], net[4]):
                fully_shard(block)
            trained = fully_shard(net)
        elif scenario == "tp":
            from torch.distributed.device_mesh import init_device_mesh
            from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

            mesh = init_device_mesh("cpu", (world,))
            # Sharded weights, a replicated DTensor (the row-wise layer's bias) and a plain layer (net[0]).
            trained = parallelize_module(net, mesh, {"2": ColwiseParallel(), "4": RowwiseParallel()})
        else:
            raise SystemExit(f"unknown scenario {scenario}")
        optimizer = torch.optim.SGD(trained.parameters(), lr=lr_at(1))
        probe = vgp_tui.GradientProbe(trained)
        assert probe.sharded == (scenario.startswith("fsdp2") or scenario == "tp"), scenario
        alarm = "raise" if scenario.endswith("_raise") else "ignore"
        try:
            train(scenario, trained, optimizer, probe, out, rank, world, alarm)
        except vgp_tui.NonFiniteGradientError as error:
            # Every rank stops at the same step, naming the same layer, though only rank 1 saw the NaN.
            assert alarm == "raise" and (error.step, error.layer) == (NAN_AT, "2"), (rank, error)
        else:
            assert alarm == "ignore", f"rank {rank} did not raise"
        dist.barrier()
    dist.destroy_process_group()


def train(scenario: str, trained: nn.Module, optimizer: torch.optim.Optimizer, probe: object, out: Path,
          rank: int, world: int, alarm: str) -> None:
    import vgp_tui

    # flush_seconds=60: a sharded probe sums steps 1, 2-3 and 4-6 (at close) in one collective each.
    with vgp_tui.Recorder(out / f"{scenario}.jsonl", probe, lr=lr_at(1), flush_seconds=60.0,  # type: ignore[arg-type]
                          on_nonfinite=alarm) as recorder:
        for step in range(1, STEPS + 1):
            if lr_at(step) != lr_at(step - 1) and step > 1:
                recorder.log_remedy("lr", lr_at(step - 1), lr_at(step))
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step)
            x, y = batch(step)
            if DATA_PARALLEL[scenario]:
                x, y = x.chunk(world)[rank], y.chunk(world)[rank]
            if scenario == "ddp_no_sync":  # two micro-batches, gradients synchronised on the second
                (x1, x2), (y1, y2) = x.chunk(2), y.chunk(2)
                with trained.no_sync():  # type: ignore[operator]
                    first = F.cross_entropy(trained(x1), y1) / 2
                    first.backward()
                second = F.cross_entropy(trained(x2), y2) / 2
                second.backward()
                loss = first.detach() + second.detach()
            else:
                loss = F.cross_entropy(trained(x), y)
                loss.backward()
            if alarm == "raise" and step == NAN_AT and rank == 1:
                trained[2].weight.grad.to_local()[0, 0] = math.nan  # type: ignore[index]
            recorder.step(loss, clip=CLIP if uses_clip(scenario) else None)
            optimizer.step()
            if scenario == "ddp":
                recorder.zero_grad()  # the flat buffer under DDP
            else:
                optimizer.zero_grad(set_to_none=True)
    if scenario.startswith("ddp"):
        # DDP's replicas stay one model: every rank clipped as rank 0 did (only rank 0 did, and the
        # ranks' weights parted from the first clipped step on).
        for p in trained.parameters():
            theirs = p.detach().clone()
            dist.broadcast(theirs, 0)
            assert torch.equal(theirs, p.detach()), f"rank {rank}: {scenario}'s parameters differ from rank 0's"


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:] or list(SCENARIOS))
    # Every recording is closed and the process group destroyed. Leave without running C++ static
    # destructors: on a loaded machine torch's teardown of its distributed threads sometimes aborts
    # ("terminate called without an active exception", no Python frame left; 2 of 14 launches of the
    # code before this line under a CPU hog), failing the launch after all the work is done.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
