#!/usr/bin/env python
"""Where the Recorder's time goes, inside a training loop: the pieces of ``benchmarks/recorder_paths.py``.

    python benchmarks/recorder_profile.py                 # phases and operator counts, CPU, 20 s
    python benchmarks/recorder_profile.py --device cuda   # the same on a GPU
    python benchmarks/recorder_profile.py --parts         # what each piece of work adds, interleaved

recorder_paths.py says how much longer a step is with the Recorder; this says why. The model is the
same deep-sigmoid MLP (20 x 64, batch 128, 1 thread), trained by a plain loop that zeroes its
gradients either with ``optimizer.zero_grad()`` (the per-tensor path) or ``recorder.zero_grad()`` (the
flat buffer), flushing every ``flush_seconds`` as by default.

* **Phases** (default): the time the training thread spends in each phase of a step (forward and
  backward, ``recorder.step``, the optimizer, zeroing, and the flush per step), median over the
  steps, by ``time.perf_counter`` without synchronising the device inside the step. On CUDA that is the
  time to *launch* each phase, which is what a launch-bound step is made of. Then the number of
  operators (each at least one kernel launch on a GPU) that ``recorder.step`` and a flush dispatch,
  counted with a ``TorchDispatchMode``, and torch.profiler's table of a few steps of ``recorder.step``
  and one flush.
* **Parts** (``--parts``): the method of section 1 of docs/benchmarks.md (interleaved blocks, ratio to
  the loop without anything around it) for single pieces of the Recorder's work done after backward:
  copying the loss (as the Recorder does: on a CPU ``.item()``), the per-tensor path's gathering copy
  alone, the gathering with its row norms (``GradientProbe.partial_norms``, float64 on a CPU), the
  same gathering into a float32 block with float32 row norms (not exact where a vanishing layer's
  squares are subnormal: what float64 costs, and the floor of any float32 measurement),
  ``torch._foreach_norm`` (float32) instead, and the whole Recorder on both paths.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as po  # noqa: E402  (the methodology's helpers)

from vgp_tui.engine.instrument import DEFAULT_FLUSH_SECONDS, Recorder, _loss_value  # noqa: E402
from vgp_tui.engine.probe import GradientProbe  # noqa: E402

PHASES = ("forward+backward", "recorder.step", "optimizer.step", "zero_grad", "flush per step")


class CountOps(TorchDispatchMode):
    """Counts the ATen operators dispatched inside it (each is at least one kernel launch on a GPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.ops[str(func.overloadpacket.__name__)] += 1
        return func(*args, **(kwargs or {}))


class Loop(po.PlainLoop):
    """The plain loop with a Recorder, timing its phases; ``flat``: zeroing with recorder.zero_grad()."""

    def __init__(self, setup: po.Setup, flat: bool, workdir: str) -> None:
        super().__init__(setup)
        self.flat = flat
        file = tempfile.NamedTemporaryFile(dir=workdir, suffix=".jsonl", delete=False).name
        self.recorder = Recorder(file, GradientProbe(self.model), enabled=True)
        self.times: dict[str, list[float]] = {phase: [] for phase in PHASES}
        self.flush_seconds = 0.0
        self.steps = 0

    def timed_step(self) -> None:
        clock = time.perf_counter
        x, y = self.batch()
        a = clock()
        loss = po.loss_of(self.setup, self.model(x), y)
        loss.backward()
        b = clock()
        last_flush = self.recorder._last_flush
        self.recorder.step(loss)
        c = clock()
        flushed = self.recorder._last_flush != last_flush
        self.optimizer.step()
        d = clock()
        if self.flat:
            self.recorder.zero_grad()
        else:
            self.optimizer.zero_grad(set_to_none=True)
        e = clock()
        self.steps += 1
        for phase, seconds in zip(PHASES, (b - a, c - b, d - c, e - d)):
            if phase == "recorder.step" and flushed:  # this step() also flushed: the flush's time, apart
                self.flush_seconds += seconds
            else:
                self.times[phase].append(seconds)


def phases(setup: po.Setup, steps: int) -> None:
    print(f"{'loop':<34}" + "".join(f"{p:>18}" for p in PHASES) + f"{'total':>10}")
    with tempfile.TemporaryDirectory(prefix="vgp-recorder-profile-") as workdir:
        loops = {"optimizer.zero_grad()": Loop(setup, False, workdir), "recorder.zero_grad()": Loop(setup, True, workdir)}
        for loop in loops.values():  # warm-up: the flat buffer exists from the first recorder.zero_grad()
            for _ in range(30):
                loop.timed_step()
            loop.times = {phase: [] for phase in PHASES}
            loop.flush_seconds = 0.0
            loop.steps = 0
        for _ in range(steps // 50):  # the two loops in turns of 50 steps, so drift hits both alike
            for loop in loops.values():
                for _ in range(50):
                    loop.timed_step()
        po.synchronize(setup.device)
        for name, loop in loops.items():
            loop.times["flush per step"] = [loop.flush_seconds / max(loop.steps, 1)]
            medians = [statistics.median(loop.times[p]) * 1e6 for p in PHASES]
            print(f"{'+ Recorder, ' + name:<34}" + "".join(f"{m:>15.1f} us" for m in medians) + f"{sum(medians):>7.0f} us")
        print("(medians over the steps of each phase's time on the training thread; the flush per step is its total\n"
              f" over the steps, at the default flush_seconds={DEFAULT_FLUSH_SECONDS}; without device synchronisation)")
        print()
        for name, loop in loops.items():
            operators(loop, name)
        profile(loops["optimizer.zero_grad()"], setup.device)
        for loop in loops.values():
            loop.recorder.close()


def operators(loop: Loop, name: str) -> None:
    """The operators one recorder.step and one flush of 20 steps dispatch."""
    loop.recorder.flush()
    x, y = loop.batch()
    loss = po.loss_of(loop.setup, loop.model(x), y)
    loss.backward()
    losses = [loss.detach() for _ in range(20)]  # one tensor a step, as a loop's forwards make (the
    with CountOps() as step_ops:                 # Recorder refuses the same loss twice)
        loop.recorder.step(losses[0])
    for again in losses[1:]:
        loop.recorder.step(again)
    with CountOps() as flush_ops:
        loop.recorder.flush()
    loop.optimizer.zero_grad(set_to_none=not loop.flat)
    for label, ops in (("recorder.step", step_ops.ops), ("flush of 20 steps", flush_ops.ops)):
        listed = ", ".join(f"{op} {n}" if n > 1 else op for op, n in ops.most_common())
        print(f"{name}: {label}: {sum(ops.values())} operators ({listed})")


def profile(loop: Loop, device: str) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    x, y = loop.batch()
    loss = po.loss_of(loop.setup, loop.model(x), y)
    loss.backward()
    losses = [loss.detach() for _ in range(20)]  # one tensor a step: the Recorder refuses the same loss twice
    with torch_profile(activities=activities) as prof:
        for again in losses:
            loop.recorder.step(again)
        loop.recorder.flush()
        po.synchronize(device)
    loop.optimizer.zero_grad(set_to_none=True)
    print()
    print("torch.profiler, 20 x recorder.step (per-tensor path) and one flush:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


# -- parts: the interleaved method -------------------------------------------------------------------
class Part(po.RecordedLoop):
    """The plain loop doing one piece of the Recorder's work after backward, its results kept as the
    Recorder keeps them until the block's end."""

    KINDS = ("loss copy", "gathering copy only", "gathering + row norms", "gathering + float32 row norms",
             "torch._foreach_norm (float32)", "Recorder", "Recorder + recorder.zero_grad()")

    def __init__(self, setup: po.Setup, kind: str, workdir: str) -> None:
        super().__init__(setup)
        self.kind = kind
        self.label = kind
        self.group = "vgp"
        self.probe = GradientProbe(self.model)
        self.kept: list[Any] = []
        self.recorder: Recorder | None = None
        self.block32: tuple[torch.Tensor, list[torch.Tensor]] | None = None
        if kind.startswith("Recorder"):
            file = tempfile.NamedTemporaryFile(dir=workdir, suffix=".jsonl", delete=False).name
            self.recorder = Recorder(file, self.probe, flush_seconds=1e9, enabled=True)

    def after_backward(self, loss: torch.Tensor) -> None:
        kind = self.kind
        if self.recorder is not None:
            self.recorder.step(loss)
        elif kind == "loss copy":  # (as the Recorder keeps it: on a CPU the number, elsewhere a tensor)
            self.kept.append(_loss_value(loss, loss.device))
        elif kind == "gathering copy only":
            grads = [p.grad for p in self.params]
            plan = self.probe._packing_plan(grads)
            if plan is not None:  # (None off the CPU: there is no gathering copy to time)
                torch._foreach_copy_(plan.views, [grads[i] for i in plan.packed])
        elif kind == "gathering + row norms":
            self.kept.append(self.probe.partial_norms()[0])
        elif kind == "gathering + float32 row norms":
            grads = [p.grad for p in self.params]
            plan = self.probe._packing_plan(grads)
            if plan is not None:
                if self.block32 is None:  # the plan's layout, in float32 (the probe's block is float64)
                    block = torch.zeros(plan.rows.shape, dtype=torch.float32, device=plan.rows.device)
                    line = block.view(-1)
                    views = [line[v.storage_offset() : v.storage_offset() + v.numel()].view(v.shape) for v in plan.views]
                    self.block32 = (block, views)
                block, views = self.block32
                torch._foreach_copy_(views, [grads[i] for i in plan.packed])
                self.kept.append(torch.linalg.vector_norm(block, dim=1))
        elif kind == "torch._foreach_norm (float32)":
            self.kept.append(torch.stack(torch._foreach_norm([p.grad for p in self.params], 2)))

    def zero_grad(self) -> None:
        if self.kind == "Recorder + recorder.zero_grad()":
            assert self.recorder is not None
            self.recorder.zero_grad()
        else:
            self.optimizer.zero_grad(set_to_none=True)

    def end_block(self) -> None:
        super().end_block()
        self.kept = []


def parts(setup: po.Setup, rounds: int, steps: int, replicas: int, warmup: int) -> None:
    with tempfile.TemporaryDirectory(prefix="vgp-recorder-parts-") as workdir:
        sets: list[list[po.Variant]] = [
            [po.PlainLoop(setup)] + [Part(setup, kind, workdir) for kind in Part.KINDS] for _ in range(replicas)
        ]
        try:
            times = po.run_rounds(sets, setup, rounds, steps, warmup)
        finally:
            for v in po.distinct(sets):
                v.close()
        print(f"{'work after backward':<36}{'CPU ms/step':>12}{'x without [IQR]':>26}{'95% CI':>15}")
        for r in po.summarize(sets[0], times):
            lo, hi = r["cpu_ratio_ci"]
            ratio = f"{r['cpu_ratio']:.3f} [{r['cpu_ratio_q1']:.3f}-{r['cpu_ratio_q3']:.3f}]"
            print(f"{r['variant']:<36}{r['cpu_ms']:>12.3f}{ratio:>26}{f'{lo:.3f}-{hi:.3f}':>15}")
        print("(the Recorder rows flush at the end of every block; the plain row is the method's noise floor)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few steps: proves it runs, measures little")
    p.add_argument("--parts", action="store_true", help="the interleaved A/B of single pieces of work")
    p.add_argument("--steps", type=int, default=None,
                   help="phases: steps per loop (default 3000; quick 100); parts: steps per block (default 20)")
    p.add_argument("--rounds", type=int, default=None, help="parts: interleaved rounds (default 80; quick 2)")
    p.add_argument("--replicas", type=int, default=None, help="parts: copies of each loop (default 2; quick 1)")
    po.add_run_options(p)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    setup = po.deep_sigmoid(args.device, args.quick)
    print(f"Recorder profile: {po.machine_line()}")
    print(f"{setup.description}; device {setup.device}, {torch.get_num_threads()} thread(s)")
    print()
    if args.parts:
        parts(setup, args.rounds or (2 if args.quick else 80), args.steps or (3 if args.quick else 20),
              args.replicas or (1 if args.quick else 2), warmup=2 if args.quick else 20)
    else:
        phases(setup, args.steps or (100 if args.quick else 3000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
