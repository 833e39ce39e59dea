"""What the benchmarks share: the models they time, the plain loop, and the interleaved-rounds method.

``probe_overhead.py`` defines the method (docs/benchmarks.md, section 1); ``gpu_check.py``,
``dashboard_cost.py`` and ``recorder_paths.py`` reuse it from here. The benchmarks run as scripts, so
each imports this module as ``common`` from its own folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import random
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

from vgp_tui.data import load_dataset
from vgp_tui.data.specs import Cifar10Spec
from vgp_tui.engine.remedies import apply_overrides
from vgp_tui.engine.trainer import make_optimizer
from vgp_tui.models import build_model
from vgp_tui.models.configs import ResNetConfig
from vgp_tui.scenario import load_preset


# -- the models -----------------------------------------------------------------------------------
@dataclasses.dataclass
class Setup:
    """One model to benchmark: the scenario (as the Trainer takes it), its data and a description."""

    key: str
    scenario: Any
    remedies: dict[str, Any]
    data: Any
    device: str
    description: str
    flush_every: int
    """Steps between ``Trainer.flush()`` calls; every block of steps also ends with one."""
    steps: int
    """Steps per timed block."""
    rounds: int

    def build(self) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.Generator]:
        """Model, optimizer and batch generator exactly as ``Trainer.__init__`` makes them."""
        torch.manual_seed(self.scenario.seed)
        model = build_model(self.scenario.family, self.scenario.model, self.remedies, self.data.task).to(self.device)
        model.train()
        optimizer = make_optimizer(str(self.remedies["optimizer"]), model.parameters(), float(self.remedies["lr"]))
        generator = torch.Generator(device=self.device)
        generator.manual_seed(self.scenario.seed)
        return model, optimizer, generator


def deep_sigmoid(device: str, quick: bool) -> Setup:
    scenario = load_preset("deep-sigmoid")
    data = load_dataset(scenario.data_kind, scenario.data, seed=scenario.seed)
    data = dataclasses.replace(data, x=data.x.to(device), y=data.y.to(device))
    cfg = scenario.model
    return Setup(
        key="deep-sigmoid",
        scenario=scenario,
        remedies=apply_overrides(scenario.remedies, {}, scenario.name),
        data=data,
        device=device,
        description=(
            f"deep-sigmoid preset: DeepMLP {cfg.depth}x{cfg.width} sigmoid, batch {scenario.train.batch_size}, "
            f"{data.label}, {scenario.remedies['optimizer']} lr {scenario.remedies['lr']}"
        ),
        flush_every=20,
        steps=20,
        rounds=80,
    )


def resnet(device: str, quick: bool, width: float, batch: int) -> Setup:
    base = load_preset("resnet-cifar10")
    scenario = dataclasses.replace(
        base,
        model=ResNetConfig(width=width),
        data=Cifar10Spec(samples=max(4 * batch, 256)),
        train=dataclasses.replace(base.train, batch_size=batch),
        synthetic=True,
    )
    data = load_dataset("cifar10", scenario.data, synthetic=True, seed=scenario.seed)
    data = dataclasses.replace(data, x=data.x.to(device), y=data.y.to(device))
    r = scenario.remedies
    return Setup(
        key="resnet-cifar10",
        scenario=scenario,
        remedies=apply_overrides(r, {}, scenario.name),
        data=data,
        device=device,
        description=(
            f"resnet-cifar10 preset: ResNet-18 (CIFAR stem) width {width}, batch norm {'on' if r['batchnorm'] else 'off'}, "
            f"skips {'on' if r['skip'] else 'off'}, batch {batch} of synthetic 3x32x32 images, "
            f"{r['optimizer']} lr {r['lr']}"
        ),
        flush_every=2,
        steps=2,
        rounds=40,
    )


def loss_of(setup: Setup, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The Trainer's loss."""
    if setup.data.task.kind == "regress":
        return F.mse_loss(output.reshape(target.shape), target)
    return F.cross_entropy(output, target)


# -- the plain loop -------------------------------------------------------------------------------
class Variant:
    """A training loop that can be stepped; ``end_block`` runs (timed) after each block of steps."""

    label = ""
    group = ""
    """plain, vgp, clip or peer: how the table groups and compares it."""

    def step(self) -> None:
        raise NotImplementedError

    def end_block(self) -> None:
        pass

    def close(self) -> None:
        pass


class PlainLoop(Variant):
    """forward, backward, [extra work on the gradients], optimizer step, zero_grad."""

    label = "plain loop (no statistics)"
    group = "plain"

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.model, self.optimizer, self.generator = setup.build()
        self.x, self.y = setup.data.x, setup.data.y
        self.batch_size = min(setup.scenario.train.batch_size, len(self.x))
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.count = 0

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(0, len(self.x), (self.batch_size,), device=self.x.device, generator=self.generator)
        return self.x[index], self.y[index]

    def after_backward(self, loss: torch.Tensor) -> None:
        pass

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        self.count += 1
        x, y = self.batch()
        loss = loss_of(self.setup, self.model(x), y)
        loss.backward()
        self.after_backward(loss)
        self.optimizer.step()
        self.zero_grad()


class RecordedLoop(PlainLoop):
    """A plain loop that may carry a ``vgp_tui.Recorder``: each block ends with its flush (timed, as a
    user's loop pays it), the run with its close."""

    recorder: Any = None

    def end_block(self) -> None:
        if self.recorder is not None:
            self.recorder.flush()

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()


# -- interleaved rounds ---------------------------------------------------------------------------
def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@dataclasses.dataclass
class Timings:
    """Per round and variant: wall and CPU ms/step, and the ratios to the neighbouring plain blocks."""

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]
    wall_ratio: dict[str, list[float]]
    cpu_ratio: dict[str, list[float]]
    block_steps: dict[str, int] = dataclasses.field(default_factory=dict)


def _block(v: Variant, steps: int, device: str) -> tuple[float, float]:
    """(wall ms/step, CPU ms/step of this process) of ``steps`` steps and the block's end."""
    synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        v.step()
    v.end_block()
    synchronize(device)
    return (time.perf_counter() - wall) * 1000.0 / steps, (time.process_time() - cpu) * 1000.0 / steps


def distinct(sets: list[list[Variant]]) -> list[Variant]:
    """Every variant object of the replica sets once (the peers are shared between sets)."""
    return list({id(v): v for variants in sets for v in variants}.values())


def run_rounds(sets: list[list[Variant]], setup: Setup, rounds: int, steps: int, warmup: int, seed: int = 0) -> Timings:
    """Interleaved rounds: every variant once per round in a shuffled order, a plain block between.

    A round is ``P V1 P V2 P ... Vn P`` (P the plain loop): each variant's ratio in that round is its
    time over the mean of the two plain blocks around it, so drift of the machine cancels to first
    order. The plain loop's own "ratio" (each inner plain block over the mean of the plain blocks two
    places before and after it, or one with only two variants) is the noise floor of the method.

    ``sets`` are replicas: the same variants built again, used in turn, round by round. Identical
    copies of one training loop run at different speeds (measured: four copies of Trainer.step,
    interleaved, 2.37-2.56 ms a step), presumably from where their tensors landed in memory, and
    interleaving cannot cancel a bias that belongs to one object. Spread over replicas, it enters the
    rounds' spread and the confidence interval instead of shifting every ratio the same way.
    """
    for v in distinct(sets):
        for _ in range(warmup):
            v.step()
        v.end_block()
    synchronize(setup.device)
    # Blocks of the slow variants (the peers) are shortened to about a plain block's duration, so a
    # round stays short and its plain blocks close together in time; ratios are per step either way.
    variants = sets[0]
    plain = variants[0]
    first = {v.label: _block(v, steps, setup.device)[1] for v in variants}
    block = {v.label: steps if first[v.label] < 1.5 * first[plain.label]
             else max(1, round(steps * first[plain.label] / first[v.label])) for v in variants}
    labels = [v.label for v in variants]
    t = Timings({k: [] for k in labels}, {k: [] for k in labels}, {k: [] for k in labels}, {k: [] for k in labels})
    t.block_steps = block
    rng = random.Random(seed)
    for number in range(rounds):
        plain, *others = sets[number % len(sets)]
        order = others[:]
        rng.shuffle(order)
        plain_times = [_block(plain, steps, setup.device)]
        for v in order:
            wall, cpu = _block(v, block[v.label], setup.device)
            plain_times.append(_block(plain, steps, setup.device))
            before, after = plain_times[-2], plain_times[-1]
            t.wall[v.label].append(wall)
            t.cpu[v.label].append(cpu)
            t.wall_ratio[v.label].append(wall / ((before[0] + after[0]) / 2))
            t.cpu_ratio[v.label].append(cpu / ((before[1] + after[1]) / 2))
        # (two places apart, as far as the variants' blocks are; one place where a round has only
        # three plain blocks, two variants)
        gap = 2 if len(plain_times) >= 5 else 1
        for i, (wall, cpu) in enumerate(plain_times):
            t.wall[plain.label].append(wall)
            t.cpu[plain.label].append(cpu)
            if gap <= i <= len(plain_times) - 1 - gap:
                around = (plain_times[i - gap], plain_times[i + gap])
                t.wall_ratio[plain.label].append(wall / ((around[0][0] + around[1][0]) / 2))
                t.cpu_ratio[plain.label].append(cpu / ((around[0][1] + around[1][1]) / 2))
    for key in (labels[0],):
        if not t.wall_ratio[key]:  # too few variants for a noise floor
            t.wall_ratio[key] = [1.0]
            t.cpu_ratio[key] = [1.0]
    return t


# -- statistics and reports -----------------------------------------------------------------------
def quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def median_ci(values: list[float]) -> tuple[float, float]:
    """About 95 % confidence interval of the median, from order statistics (no distribution assumed)."""
    xs = sorted(values)
    n = len(xs)
    if n < 6:
        return xs[0], xs[-1]
    half = 0.98 * math.sqrt(n)
    lo, hi = max(0, math.floor(n / 2 - half)), min(n - 1, math.ceil(n / 2 + half))
    return xs[lo], xs[hi]


def summarize(variants: list[Variant], t: Timings) -> list[dict[str, Any]]:
    """One row per variant: quartiles of its ms/step and of its ratios, and the 95 % interval of the
    median ratio, by wall clock and by CPU time."""
    # The "x clip" column compares each clipping variant with the plain loop that clips.
    clip_plain = next((v.label for v in variants if v.group == "clip" and isinstance(v, PlainLoop)), None)
    rows = []
    for v in variants:
        row: dict[str, Any] = {"variant": v.label, "group": v.group, "blocks": len(t.wall[v.label]),
                               "block_steps": t.block_steps.get(v.label)}
        for metric, times, ratios in (("wall", t.wall, t.wall_ratio), ("cpu", t.cpu, t.cpu_ratio)):
            q = quartiles(times[v.label])
            r = quartiles(ratios[v.label])
            ci = median_ci(ratios[v.label])
            row.update({f"{metric}_ms_q1": q[0], f"{metric}_ms": q[1], f"{metric}_ms_q3": q[2],
                        f"{metric}_ratio_q1": r[0], f"{metric}_ratio": r[1], f"{metric}_ratio_q3": r[2],
                        f"{metric}_ratio_ci": ci})
            if v.group == "clip" and clip_plain is not None:
                c = quartiles([a / b for a, b in zip(ratios[v.label], ratios[clip_plain])])
                row.update({f"{metric}_clip_ratio": c[1]})
        rows.append(row)
    return rows


def machine_line() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    return (f"python {platform.python_version()}, torch {torch.__version__}, {platform.machine()}, "
            f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in load)}")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options every interleaved benchmark takes: threads (1 by default, so a 2-core machine is not
    oversubscribed), device and a JSON file for the results."""
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")


def report(verdicts: list[str], results: dict[str, Any], json_path: str | None) -> None:
    """Print the verdicts under the machine they were measured on and, with ``--json``, write
    ``results`` with them."""
    print()
    print(f"targets ({machine_line()}):")
    for line in verdicts:
        print(f"  {line}")
    if json_path:
        results["verdicts"] = verdicts
        with open(json_path, "w") as f:
            json.dump(results, f, indent=1)
