#!/usr/bin/env python
"""What ``vgp_tui.Recorder`` costs per training step on real training paths, against the same loop without it.

    python benchmarks/recorder_paths.py                  # every path, a few minutes on 2 cores
    python benchmarks/recorder_paths.py --quick          # a smoke run, seconds
    python benchmarks/recorder_paths.py --paths plain,amp --rounds 40 --json out.json

The model is the deep-sigmoid preset's MLP (20 x 64, batch 128), as in benchmarks/probe_overhead.py,
whose method and helpers this reuses: every loop trains its own copy from the same seed on the same
batches; the loops of one path run interleaved in one process, a block of the loop without the
Recorder between every two blocks of the others, shuffled each round; a loop's ratio in a round is its
time over the mean of the two blocks without the Recorder around it; the table gives the median,
interquartile range and a 95 % interval of the median of those ratios, by CPU time and by wall clock.
Each path is a user's loop as the README shows it, with the Recorder's ``step(loss)`` after backward and
a ``flush()`` at the end of every block. A block is, by default, as many steps of the plain loop as
fit in the Recorder's default ``flush_seconds`` (half a second), so the Recorder flushes exactly as
often as it does in a user's loop; ``--steps N`` makes blocks of N steps (a flush every N steps).
Every path is timed with the Recorder twice: the loop zeroing its gradients with
``optimizer.zero_grad()`` (the per-tensor path) and with ``recorder.zero_grad()`` (the flat gradient
buffer: one line changed, the README's recommendation):

* plain: forward, backward, ``optimizer.step()``, zero the gradients.
* ddp: the model in ``DistributedDataParallel`` (a one-process gloo group: the reducer and its
  all-reduce run, the collective has no peer).
* amp: ``torch.autocast`` (bfloat16 on the CPU, float16 on CUDA) with a ``torch.amp.GradScaler``:
  ``scaler.scale(loss).backward()``, ``scaler.step``, ``scaler.update``; the Recorder gets the scaler.
* compiled: ``torch.compile(model, backend=--compile-backend)`` (default ``aot_eager``, which needs no
  C compiler; ``inductor`` compiles for a minute per copy on 2 cores).
* fsdp2: every hidden layer, the head and the model under FSDP2's ``fully_shard`` (a one-process gloo
  group): the Recorder of a sharded probe, its squares summed over the ranks once a block. FSDP2 owns
  its gradients' storage, so this path has no flat-buffer row.
* lightning, huggingface: ``lightning.pytorch.Trainer`` and ``transformers.Trainer`` training the same
  model, with and without vgp-tui's ``VgpTuiCallback`` (benchmarks/framework_loops.py: each trainer runs
  in a thread of its own, held between blocks). The frameworks zero the gradients themselves: no
  flat-buffer row.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as po  # noqa: E402  (the methodology's helpers)

from vgp_tui.engine.instrument import DEFAULT_FLUSH_SECONDS, Recorder  # noqa: E402
from vgp_tui.engine.probe import GradientProbe  # noqa: E402

PATHS = ("plain", "ddp", "fsdp2", "amp", "compiled", "lightning", "huggingface")
DISTRIBUTED = ("ddp", "fsdp2")
"""The paths that need a process group."""
FRAMEWORKS = {"lightning": "lightning", "huggingface": "transformers"}
"""The paths whose loop a framework's trainer runs (benchmarks/framework_loops.py), and the package each needs."""
TARGET = 1.05
"""Most a step with the Recorder may cost, as a ratio to the same step without it."""
TITLES = {"plain": "plain loop", "ddp": "DDP (1 process, gloo)", "fsdp2": "FSDP2 (1 process, gloo)",
          "amp": "AMP autocast + GradScaler", "compiled": "torch.compile"}


class PathLoop(po.RecordedLoop):
    """One training path, with or without the Recorder."""

    def __init__(self, setup: po.Setup, path: str, *, record: bool, flat: bool = False, workdir: str = "",
                 backend: str = "aot_eager", packed: bool = False) -> None:
        super().__init__(setup)
        self.path = path
        self.flat = flat
        self.net: torch.nn.Module = self.model
        if path == "ddp":
            self.net = torch.nn.parallel.DistributedDataParallel(self.model)
        elif path == "fsdp2":
            from torch.distributed.fsdp import fully_shard

            for layer in (*self.model.layers, self.model.head):
                fully_shard(layer)
            fully_shard(self.model)
            # The parameters are DTensors now: the optimizer must hold those.
            self.optimizer = type(self.optimizer)(self.model.parameters(), **self.optimizer.defaults)
        elif path == "compiled":
            self.net = torch.compile(self.model, backend=backend)
        self.amp_dtype = torch.float16 if setup.device.startswith("cuda") else torch.bfloat16
        self.scaler = torch.amp.GradScaler(setup.device.split(":")[0]) if path == "amp" else None
        self.recorder: Recorder | None = None
        title = TITLES[path]
        if record:
            file = tempfile.NamedTemporaryFile(dir=workdir, suffix=".jsonl", delete=False).name
            probe = GradientProbe(self.net)
            if packed:
                # A question for the next GPU run, not a setting: on CUDA the per-tensor path measures
                # with one _foreach_norm and a stack of its 42 results (419 us of launches a step on
                # an H200, docs/benchmarks.md section 6); the CPU's plan copies the small gradients
                # into one block by one _foreach_copy_ and takes its row norms. Made to plan here.
                probe._packing_checked = False
            self.recorder = Recorder(file, probe, scaler=self.scaler, flush_seconds=1e9, enabled=True)
            self.label = f"{title} + Recorder" + (" + recorder.zero_grad()" if flat else "") + (
                ", small gradients packed" if packed else "")
            self.group = "vgp"
        else:
            self.label = f"{title} (no Recorder)"
            self.group = "plain"

    def step(self) -> None:
        self.count += 1
        x, y = self.batch()
        if self.scaler is not None:
            with torch.autocast(self.setup.device.split(":")[0], dtype=self.amp_dtype):
                loss = po.loss_of(self.setup, self.net(x), y)
            self.scaler.scale(loss).backward()
        else:
            loss = po.loss_of(self.setup, self.net(x), y)
            loss.backward()
        if self.recorder is not None:
            self.recorder.step(loss)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.flat and self.recorder is not None:
            self.recorder.zero_grad()
        else:
            self.optimizer.zero_grad(set_to_none=True)


def make_set(setup: po.Setup, path: str, workdir: str, backend: str) -> list[po.Variant]:
    if path in FRAMEWORKS:
        from framework_loops import FrameworkLoop

        return [FrameworkLoop(setup, path, record=False, workdir=workdir),
                FrameworkLoop(setup, path, record=True, workdir=workdir)]
    if path == "fsdp2":
        return [PathLoop(setup, path, record=False), PathLoop(setup, path, record=True, workdir=workdir)]
    loops = [PathLoop(setup, path, record=False, backend=backend),
             PathLoop(setup, path, record=True, workdir=workdir, backend=backend),
             PathLoop(setup, path, record=True, flat=True, workdir=workdir, backend=backend)]
    if path == "plain" and not setup.device.startswith("cpu"):  # (on a CPU the per-tensor row is this)
        loops.append(PathLoop(setup, path, record=True, workdir=workdir, packed=True))
    return loops


def steps_per_flush(setup: po.Setup, seconds: float) -> int:
    """How many steps of the plain loop take ``seconds`` (the Recorder's default flush interval) on
    this machine now: the block length at which a flush per block is the Recorder's own cadence."""
    loop = po.PlainLoop(setup)
    for _ in range(20):
        loop.step()
    po.synchronize(setup.device)
    started = time.perf_counter()
    for _ in range(50):
        loop.step()
    po.synchronize(setup.device)
    per_step = (time.perf_counter() - started) / 50
    return max(20, min(2000, round(seconds / per_step)))


def start_process_group(device: str) -> None:
    """A one-process group for DDP and FSDP2 (a free port on localhost, each time: a path's group is
    destroyed after it): NCCL on CUDA, as jobs there use, else gloo."""
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    os.environ.setdefault("MASTER_ADDR", "localhost")
    os.environ["MASTER_PORT"] = str(port)
    if device.startswith("cuda"):
        TITLES.update({"ddp": "DDP (1 process, nccl)", "fsdp2": "FSDP2 (1 process, nccl)"})
        dist.init_process_group("nccl", rank=0, world_size=1, device_id=torch.device("cuda", torch.device(device).index or 0))
    else:
        dist.init_process_group("gloo", rank=0, world_size=1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few short rounds, one copy: proves it runs, measures little")
    p.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated: {', '.join(PATHS)}")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds per path (default 30; quick 3)")
    p.add_argument("--steps", type=int, default=None,
                   help="steps per timed block, each ending with a flush (default: the steps of the Recorder's "
                        "default flush interval, half a second; quick 5)")
    p.add_argument("--replicas", type=int, default=None, help="copies of each loop, used in turn (default 3; quick 1)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per loop first (default 20; quick 3)")
    p.add_argument("--compile-backend", default=None, help="torch.compile backend (default aot_eager; quick eager)")
    po.add_run_options(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 30)
    replicas = args.replicas or (1 if args.quick else 3)
    warmup = args.warmup if args.warmup is not None else (3 if args.quick else 20)
    backend = args.compile_backend or ("eager" if args.quick else "aot_eager")
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        print(f"unknown path(s) {', '.join(unknown)}; known: {', '.join(PATHS)}", file=sys.stderr)
        return 2
    absent = [p for p in paths if p in FRAMEWORKS and importlib.util.find_spec(FRAMEWORKS[p]) is None]
    if absent:
        extras = ",".join(absent)
        print(f"the {', '.join(absent)} path(s) need their framework: pip install -e '.[{extras}]', or leave them "
              f"out with --paths", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    random.seed(0)
    setup = po.deep_sigmoid(args.device, args.quick)
    steps = args.steps or (5 if args.quick else steps_per_flush(setup, DEFAULT_FLUSH_SECONDS))
    setup.flush_every = steps
    print(f"Recorder on real training paths: {po.machine_line()}")
    print(f"{setup.description}; device {setup.device}, {torch.get_num_threads()} thread(s); {rounds} rounds x "
          f"{steps} steps per block, {replicas} replica(s) of each loop, warm-up {warmup} steps; "
          f"Recorder.flush() at the end of every block{'' if args.steps or args.quick else ' (the default flush interval)'}; "
          f"torch.compile backend {backend}")
    results: dict[str, Any] = {"machine": po.machine_line(), "threads": args.threads, "paths": {}}
    verdicts = []
    header = f"{'loop':<64}{'CPU ms/step':>12}{'x without [IQR]':>26}{'95% CI':>15}{'wall x without':>16}"
    print()
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="vgp-recorder-paths-") as workdir:
        for path in paths:
            # (a group only around the paths that need one: the frameworks' trainers would see it and
            # wrap the model for distributed training)
            if path in DISTRIBUTED:
                start_process_group(setup.device)
            try:
                sets = [make_set(setup, path, workdir, backend) for _ in range(replicas)]
                try:
                    times = po.run_rounds(sets, setup, rounds, steps, warmup)
                finally:
                    for v in po.distinct(sets):
                        v.close()
            finally:
                if path in DISTRIBUTED:
                    torch.distributed.destroy_process_group()
            rows = po.summarize(sets[0], times)
            for r in rows:
                lo, hi = r["cpu_ratio_ci"]
                ratio = f"{r['cpu_ratio']:.3f} [{r['cpu_ratio_q1']:.3f}-{r['cpu_ratio_q3']:.3f}]"
                ci, wall = f"{lo:.3f}-{hi:.3f}", f"{r['wall_ratio']:.3f}"
                if r["group"] == "plain" and len(rows) < 3:  # one loop beside it: no noise floor to measure
                    ratio, ci, wall = "(no floor: 1 loop)", "-", "-"
                print(f"{r['variant']:<64}{r['cpu_ms']:>12.3f}{ratio:>26}{ci:>15}{wall:>16}")
                if r["group"] == "vgp":
                    verdict = "MET" if r["cpu_ratio"] <= TARGET else "NOT MET"
                    if lo <= TARGET < hi:
                        verdict += " (the target is inside the 95% interval: not resolved on this machine)"
                    verdicts.append(f"{r['variant']}: {r['cpu_ratio']:.3f} x without by CPU time "
                                    f"(CI {lo:.3f}-{hi:.3f}), {r['wall_ratio']:.3f} by wall clock; "
                                    f"target <= {TARGET}: {verdict}")
            results["paths"][path] = {"rows": rows}
    print("x without: ratio to the mean of the two blocks of the same path without the Recorder around it, per\n"
          "round (median [IQR]); the '(no Recorder)' rows are the noise floor of the method.")
    po.report(verdicts, results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
