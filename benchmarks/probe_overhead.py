#!/usr/bin/env python
"""What vgp-tui's gradient probe costs per training step, side by side with a plain loop and with peers.

    python benchmarks/probe_overhead.py                 # both models, about three minutes on 2 cores
    python benchmarks/probe_overhead.py --quick         # a smoke run, seconds
    python benchmarks/probe_overhead.py --models deep-sigmoid --rounds 40 --json out.json

Every variant trains its own copy of the same model from the same seed on the same batches, so
they all do the same arithmetic. They run in ONE process, interleaved: after a warm-up, each round
runs a block of ``--steps`` steps of every variant in a shuffled order, with a block of the plain loop
before the first, between every two, and after the last. A variant's ratio in a round is its time over
the mean of the two plain blocks around it, so drift of a shared or throttling machine cancels; the
table gives the median and interquartile range of those ratios over the rounds, by wall clock and by
CPU time of this process (``time.process_time()``; on a machine that other jobs share, CPU time is the
steadier of the two because time spent waiting for a core is not counted). The plain loop's own row is
the noise floor of the method: a plain block against the plain blocks two places away. Our variants
and the plain loop are built ``--replicas`` times (default 3) and the copies used in turn, round by
round: identical copies of one loop differ in speed by several percent, a bias that interleaving
alone cannot cancel.

Variants:

* plain loop: forward, backward, ``optimizer.step()``, ``zero_grad()`` (set_to_none); no statistics.
* plain loop with the flat gradient buffer: the same, but with the gradients in vgp-tui's flat buffer
  and zeroed by one ``zero_()``: separates what the buffer itself changes from what measuring costs.
* vgp-tui probe every step: the real ``Trainer.step()`` (per-layer and total norm every step, rows kept
  on the device) with ``Trainer.flush()`` (one ``.tolist()``, events built) at the end of every block,
  more often than the dashboard's 0.1 s, so its cost is counted in full. The optional extras
  (activation statistics, time view) are off: this is the figure the targets name.
* vgp-tui Trainer.step as shipped: the same with the preset's activation statistics every 10th step.
* probe, per-tensor path: ``GradientProbe`` without the flat buffer (``torch._foreach_norm`` over
  every gradient), the straightforward version, for comparison.
* with clipping: plain loop + ``torch.nn.utils.clip_grad_norm_`` against vgp-tui's probe + clip that
  reuses the measured total norm.
* peers, each added to the plain loop: ``wandb.watch(model, log="gradients", log_freq=1)`` (offline,
  system statistics off, one ``run.log`` of the loss per step, which commits the histograms),
  Lightning's ``grad_norm(model, 2)``, and TensorBoard's ``SummaryWriter.add_histogram`` of every
  parameter's gradient. A peer that is not installed (``pip install -e .[bench]``) is replaced by a
  faithful re-implementation, labelled "(re-implementation)" in the table.

Threads: ``torch.set_num_threads(1)`` by default (``--threads``), so a 2-core machine is not
oversubscribed and the figures do not depend on how many cores happen to be free.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from common import (
    PlainLoop,
    Setup,
    Variant,
    add_run_options,
    deep_sigmoid,
    distinct,
    loss_of,
    machine_line,
    report,
    resnet,
    run_rounds,
    summarize,
    synchronize,
)
from vgp_tui.engine.probe import GradientProbe
from vgp_tui.engine.trainer import Trainer

NEVER = 10**6
"""A sampling period that never comes round: the optional extras off."""

TARGETS = {"deep-sigmoid": 1.05, "resnet-cifar10": 1.02}
"""Most the probe every step may cost, as a ratio to the plain loop."""


# -- the variants ---------------------------------------------------------------------------------
class FlatPlainLoop(PlainLoop):
    label = "plain loop, gradients in the flat buffer (no statistics)"
    group = "reference"

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        self.probe = GradientProbe(self.model)
        if not self.probe.use_flat_grads():
            raise RuntimeError("this model's gradients do not fit a flat buffer")

    def zero_grad(self) -> None:
        self.probe.zero_grad()


class ClipLoop(PlainLoop):
    group = "clip"

    def __init__(self, setup: Setup, max_norm: float) -> None:
        super().__init__(setup)
        self.max_norm = max_norm
        self.label = f"plain loop + clip_grad_norm_({max_norm:g})"

    def after_backward(self, loss: torch.Tensor) -> None:
        torch.nn.utils.clip_grad_norm_(self.params, self.max_norm)


class PerTensorProbe(PlainLoop):
    """The probe without the flat buffer: _foreach_norm per gradient, rows kept, flushed with one tolist."""

    label = "probe every step, per-tensor path (_foreach_norm, no flat buffer)"
    group = "reference"

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        self.probe = GradientProbe(self.model)
        self.norms: list[torch.Tensor] = []
        self.losses: list[torch.Tensor] = []
        self.flushed: list[list[float]] = []

    def after_backward(self, loss: torch.Tensor) -> None:
        self.norms.append(self.probe.measure_packed())
        self.losses.append(loss.detach())
        if len(self.norms) >= self.setup.flush_every:
            self.end_block()

    def end_block(self) -> None:
        if self.norms:
            rows = torch.cat([torch.stack(self.losses).float().unsqueeze(1), torch.stack(self.norms)], dim=1)
            self.flushed = rows.tolist()
            self.norms.clear()
            self.losses.clear()


class TrainerLoop(Variant):
    """vgp-tui itself: ``Trainer.step()``, and ``Trainer.flush()`` every ``flush_every`` steps."""

    group = "vgp"

    def __init__(self, setup: Setup, *, stats: bool = False, clip: float | None = None) -> None:
        scenario = setup.scenario
        if not stats:
            scenario = dataclasses.replace(scenario, train=dataclasses.replace(scenario.train, stats_every=NEVER, time_every=NEVER))
        remedies = dict(setup.remedies)
        remedies["clip"] = clip
        self.trainer = Trainer(scenario, remedies, setup.data, setup.device, 1, scenario.seed)
        self.flush_every = setup.flush_every
        self.events: list[Any] = []
        if clip is not None:
            self.label = f"vgp-tui probe every step + probe.clip({clip:g}) (reuses the total)"
            self.group = "clip"
        elif stats:
            every = scenario.train.stats_every
            self.label = f"vgp-tui Trainer.step as shipped (+ activation stats every {every}th step)"
            self.group = "reference"
        else:
            self.label = "vgp-tui probe every step (Trainer.step + flush)"
        if not self.trainer.flat_grads:
            self.label += " [no flat buffer]"

    def step(self) -> None:
        self.trainer.step()
        if self.trainer.pending >= self.flush_every:
            self.events = self.trainer.flush()

    def end_block(self) -> None:
        if self.trainer.pending:
            self.events = self.trainer.flush()


# -- peers ----------------------------------------------------------------------------------------
def _have(module: str) -> bool:
    try:
        __import__(module)
    except Exception:  # noqa: BLE001 - any failure to import means "not usable here"
        return False
    return True


class WandbWatch(PlainLoop):
    """``wandb.watch(model, log="gradients", log_freq=1)`` in offline mode, loss logged every step."""

    group = "peer"

    def __init__(self, setup: Setup, real: bool, workdir: str) -> None:
        super().__init__(setup)
        self.real = real
        if real:
            import wandb

            os.environ.setdefault("WANDB_SILENT", "true")
            settings = wandb.Settings(console="off", x_disable_stats=True, silent=True, disable_git=True)
            with contextlib.redirect_stderr(io.StringIO()):
                self.run = wandb.init(mode="offline", dir=workdir, project="vgp-tui-bench", settings=settings)
            self.run.watch(self.model, log="gradients", log_freq=1)
            self.label = f"wandb.watch(log='gradients', log_freq=1), offline (wandb {wandb.__version__})"
        else:
            self.row: dict[str, Any] = {}
            self.history: list[dict[str, Any]] = []
            for name, p in self.model.named_parameters():
                if p.requires_grad:
                    p.register_hook(self._hook("gradients/" + name))
            self.label = "wandb.watch(log='gradients', log_freq=1) (re-implementation)"

    # The re-implementation follows wandb/integration/torch/wandb_torch.py (TorchHistory.log_tensor_stats).
    def _hook(self, name: str) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            flat = grad.detach().clone().reshape(-1)
            if flat.numel() == 0 or (~torch.isfinite(flat)).all().item():
                return
            if not torch.isfinite(flat).all().item():
                flat = flat[torch.isfinite(flat)]
            tmin, tmax = flat.min().item(), flat.max().item()
            if tmin > tmax:
                tmin, tmax = tmax, tmin
            if tmin == tmax:
                counts, bins = torch.Tensor([flat.numel()]), torch.Tensor([tmin, tmax])
            else:
                counts = flat.histc(bins=64, min=tmin, max=tmax).cpu().detach().clone()
                bins = torch.linspace(tmin, tmax, steps=65)
            self.row[name] = {"_type": "histogram", "values": counts.tolist(), "bins": bins.tolist()}

        return hook

    def after_backward(self, loss: torch.Tensor) -> None:
        if self.real:
            self.run.log({"loss": loss.item()})
        else:
            self.row["loss"] = loss.item()
            self.history.append(self.row)
            self.row = {}
            del self.history[:-10]

    def close(self) -> None:
        if self.real:
            with contextlib.redirect_stderr(io.StringIO()):
                self.run.finish()


class LightningGradNorm(PlainLoop):
    """Lightning's ``grad_norm(model, norm_type=2)`` every step (what ``on_before_optimizer_step`` logs)."""

    group = "peer"

    def __init__(self, setup: Setup, real: bool) -> None:
        super().__init__(setup)
        if real:
            import lightning
            from lightning.pytorch.utilities import grad_norm

            self.grad_norm = grad_norm
            self.label = f"Lightning grad_norm(model, 2) (lightning {lightning.__version__})"
        else:
            self.grad_norm = _grad_norm_reimplemented
            self.label = "Lightning grad_norm(model, 2) (re-implementation)"
        self.norms: dict[str, Any] = {}

    def after_backward(self, loss: torch.Tensor) -> None:
        self.norms = self.grad_norm(self.model, 2)


def _grad_norm_reimplemented(module: torch.nn.Module, norm_type: float, group_separator: str = "/") -> dict[str, Any]:
    """lightning/pytorch/utilities/grads.py: a norm per parameter, the total from Python floats."""
    norm_type = float(norm_type)
    norms = {
        f"grad_{norm_type}_norm{group_separator}{name}": p.grad.data.norm(norm_type)
        for name, p in module.named_parameters()
        if p.grad is not None
    }
    if norms:
        norms[f"grad_{norm_type}_norm_total"] = torch.tensor(list(norms.values())).norm(norm_type)
    return norms


class TensorBoardHistograms(PlainLoop):
    """``SummaryWriter.add_histogram(name, p.grad, step)`` for every parameter, every step."""

    group = "peer"

    def __init__(self, setup: Setup, real: bool, workdir: str) -> None:
        super().__init__(setup)
        self.names = [(name, p) for name, p in self.model.named_parameters() if p.requires_grad]
        self.real = real
        if real:
            import tensorboard
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=os.path.join(workdir, f"tb-{setup.key}"))
            self.label = f"TensorBoard add_histogram per parameter (tensorboard {tensorboard.__version__})"
        else:
            self.bins = _tensorboard_default_bins()
            self.summaries: list[Any] = []
            self.label = "TensorBoard add_histogram per parameter (re-implementation)"

    def after_backward(self, loss: torch.Tensor) -> None:
        for name, p in self.names:
            if self.real:
                self.writer.add_histogram(f"grad/{name}", p.grad, self.count)
            else:
                self.summaries.append(_histogram_reimplemented(p.grad, self.bins))
        if not self.real:
            del self.summaries[: -len(self.names)]

    def end_block(self) -> None:
        if self.real:
            self.writer.flush()  # its writer thread's work is charged to its own block

    def close(self) -> None:
        if self.real:
            self.writer.close()


def _tensorboard_default_bins() -> list[float]:
    """torch.utils.tensorboard.SummaryWriter.default_bins: exponential buckets, 1e-12 to 1e20."""
    v, buckets, neg = 1e-12, [], []
    while v < 1e20:
        buckets.append(v)
        neg.append(-v)
        v *= 1.1
    return neg[::-1] + [0] + buckets


def _histogram_reimplemented(values: torch.Tensor, bins: list[float]) -> dict[str, Any]:
    """torch.utils.tensorboard.summary.histogram/make_histogram: host copy, numpy histogram, stats."""
    array = values.detach().cpu().numpy().astype(float).reshape(-1)
    counts, limits = np.histogram(array, bins=bins)
    cum_counts = np.cumsum(np.greater(counts, 0))
    start, end = np.searchsorted(cum_counts, [0, cum_counts[-1] - 1], side="right")
    start, end = int(start), int(end) + 1
    counts = counts[start - 1 : end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start : end + 1]
    return {
        "min": float(array.min()),
        "max": float(array.max()),
        "num": int(array.size),
        "sum": float(array.sum()),
        "sum_squares": float(array.dot(array)),
        "bucket_limit": limits.tolist(),
        "bucket": counts.tolist(),
    }


# -- running and reporting ------------------------------------------------------------------------
def make_variants(setup: Setup, peers: str, workdir: str, clip: float) -> list[Variant]:
    variants: list[Variant] = [
        PlainLoop(setup),
        TrainerLoop(setup),
        FlatPlainLoop(setup),
        PerTensorProbe(setup),
    ]
    if getattr(variants[0].model, "stats_label", None):
        variants.append(TrainerLoop(setup, stats=True))
    variants += [ClipLoop(setup, clip), TrainerLoop(setup, clip=clip)]
    if peers != "none":
        real = peers == "real"
        for module, make in (
            ("wandb", lambda r: WandbWatch(setup, r, workdir)),
            ("lightning", lambda r: LightningGradNorm(setup, r)),
            ("tensorboard", lambda r: TensorBoardHistograms(setup, r, workdir)),
        ):
            use_real = real and _have(module)
            try:
                variants.append(make(use_real))
            except Exception as exc:  # noqa: BLE001 - an installed peer that fails to start
                if not use_real:
                    raise
                print(f"note: {module} is installed but failed ({type(exc).__name__}: {exc}); "
                      "using the re-implementation", file=sys.stderr)
                variants.append(make(False))
    return variants


def component_costs(variants: list[Variant], setup: Setup, calls: int) -> dict[str, float]:
    """Median µs per training step of each method's own gradient-statistics work, called directly.

    Low-noise companions to the end-to-end ratios: a median over many calls is hardly moved by other
    jobs on the machine. They leave out what only shows end to end (vgp-tui's in-place accumulation
    into the flat buffer: see the "plain loop, gradients in the flat buffer" row; wandb's hooks
    running inside backward and its service process). Runs after the rounds, on the variants' models.
    """
    trainer = next(v for v in variants if isinstance(v, TrainerLoop) and v.group == "vgp").trainer
    plain = variants[0]
    probe = trainer.probe
    flush = setup.flush_every

    def backward(model: torch.nn.Module) -> None:
        x, y = plain.batch()
        loss_of(setup, model(x), y).backward()

    def median_us(fn: Callable[[], Any], n: int = calls, per: int = 1) -> float:
        for _ in range(3):
            fn()
        times = []
        for _ in range(n):
            synchronize(setup.device)
            started = time.perf_counter()
            fn()
            synchronize(setup.device)
            times.append((time.perf_counter() - started) * 1e6 / per)
        return statistics.median(times)

    out: dict[str, float] = {}
    probe.zero_grad()
    backward(trainer.model)
    sample = probe.sample()
    samples = [sample] * flush
    out["vgp-tui probe.sample() (flat buffer: one vector_norm)"] = median_us(probe.sample)
    out[f"vgp-tui probe.fold() at a flush, per step ({flush} steps)"] = median_us(lambda: probe.fold(samples), per=flush)
    out["vgp-tui probe.total_of() + probe.clip() (one mul_)"] = median_us(lambda: probe.clip(probe.total_of(sample), 1e30))
    probe.zero_grad()
    backward(plain.model)
    per_tensor = GradientProbe(plain.model)
    out["per-tensor path: measure_packed() (_foreach_norm)"] = median_us(per_tensor.measure_packed)
    out["clip_grad_norm_"] = median_us(lambda: torch.nn.utils.clip_grad_norm_(plain.params, 1e30))
    few = max(5, calls // 10)
    for v in variants:
        if isinstance(v, LightningGradNorm):
            out[v.label] = median_us(lambda: v.grad_norm(plain.model, 2))
        elif isinstance(v, TensorBoardHistograms):
            grads = [(name, p.grad) for name, p in plain.model.named_parameters()]
            if v.real:
                out[v.label + ", one step's calls + flush"] = median_us(
                    lambda: ([v.writer.add_histogram(f"grad/{n}", g, 0) for n, g in grads], v.writer.flush()), few)
            else:
                out[v.label + ", one step's calls"] = median_us(
                    lambda: [_histogram_reimplemented(g, v.bins) for _, g in grads], few)
        elif isinstance(v, WandbWatch):
            grads = [("gradients/" + name, p.grad) for name, p in plain.model.named_parameters()]
            if v.real:
                torch_history = v.run._torch
                out[v.label + ", hook work of one step"] = median_us(
                    lambda: [torch_history.log_tensor_stats(g, n) for n, g in grads], few)
            else:
                hooks = [v._hook(n) for n, _ in grads]
                out[v.label + ", hook work of one step"] = median_us(
                    lambda: [h(g) for h, (_, g) in zip(hooks, grads)], few)
    plain.optimizer.zero_grad(set_to_none=True)
    return out


def print_table(setup: Setup, rows: list[dict[str, Any]], params: tuple[int, int, int], args: argparse.Namespace,
                steps: int, rounds: int) -> None:
    n_params, n_tensors, n_layers = params
    print()
    print(f"== {setup.key} ==")
    print(f"{setup.description}")
    print(f"{n_params:,} parameters in {n_tensors} tensors, {n_layers} layers; device {setup.device}, "
          f"{torch.get_num_threads()} thread(s); {rounds} rounds x {steps} steps per block (slow variants: fewer), variants shuffled "
          f"each round with a plain-loop block between every two; {args.replicas_used} replica(s) of our "
          f"variants and the plain loop, used in turn; warm-up {args.warmup} steps; "
          f"Trainer.flush() every {setup.flush_every} steps")
    width = max(len(r["variant"]) for r in rows) + 2
    header = (f"{'variant':<{width}}{'wall ms/step [IQR]':>26}{'x plain [IQR]':>25}{'x clip':>8}"
              f"{'CPU ms/step':>13}{'x plain [IQR]':>25}{'x clip':>8}")
    print(header)
    print("-" * len(header))
    for r in rows:
        cells = [f"{r['variant']:<{width}}"]
        for metric in ("wall", "cpu"):
            ms = f"{r[f'{metric}_ms']:.3f} [{r[f'{metric}_ms_q1']:.2f}-{r[f'{metric}_ms_q3']:.2f}]"
            if metric == "cpu":
                ms = f"{r['cpu_ms']:.3f}"
            ratio = f"{r[f'{metric}_ratio']:.3f} [{r[f'{metric}_ratio_q1']:.3f}-{r[f'{metric}_ratio_q3']:.3f}]"
            clip = f"{r[f'{metric}_clip_ratio']:.3f}" if f"{metric}_clip_ratio" in r else ""
            cells.append(f"{ms:>26}" if metric == "wall" else f"{ms:>13}")
            cells.append(f"{ratio:>25}{clip:>8}")
        print("".join(cells))
    short = [f"{r['variant'].split(' (')[0]}: {r['block_steps']}" for r in rows if r.get("block_steps") not in (None, steps)]
    if short:
        print(f"steps per block of the slow variants: {'; '.join(short)}")
    print("x plain: ratio to the mean of the two plain-loop blocks around it, per round (median [IQR]); the plain\n"
          "loop's own row is the noise floor (a plain block against the plain blocks two places away).\n"
          "x clip: ratio to plain + clip_grad_norm_. CPU: time.process_time() of this process (all its threads;\n"
          "not wandb's separate service process), robust to other jobs on a shared machine.")


def verdicts(setup: Setup, rows: list[dict[str, Any]]) -> list[str]:
    probe = next(r for r in rows if r["group"] == "vgp")
    peers = [r for r in rows if r["group"] == "peer"]
    lines = []
    target = TARGETS.get(setup.key)
    for metric, name in (("cpu", "CPU time"), ("wall", "wall clock")):
        ratio = probe[f"{metric}_ratio"]
        lo, hi = probe[f"{metric}_ratio_ci"]
        if target is not None:
            verdict = "MET" if ratio <= target else "NOT MET"
            if lo <= target < hi:
                verdict += " (the target is inside the 95% interval: not resolved on this machine)"
            lines.append(f"{setup.key}: probe every step / plain = {ratio:.3f} by {name} "
                         f"(95% CI of the median {lo:.3f}-{hi:.3f}; target <= {target}): {verdict}")
        if peers:
            cheapest = min(peers, key=lambda r: r[f"{metric}_ratio"])
            plo, phi = cheapest[f"{metric}_ratio_ci"]
            verdict = "MET" if ratio < cheapest[f"{metric}_ratio"] else "NOT MET"
            if plo <= hi and lo <= phi:
                verdict += " (intervals overlap: not resolved)"
            lines.append(f"{setup.key}: below every peer by {name}: cheapest peer {cheapest[f'{metric}_ratio']:.3f} "
                         f"(CI {plo:.3f}-{phi:.3f}), {cheapest['variant']}: {verdict}")
    clip_vgp = next((r for r in rows if r["group"] == "clip" and r["variant"].startswith("vgp") and "cpu_clip_ratio" in r), None)
    if clip_vgp is not None:
        lines.append(f"{setup.key}: (probe + clip) / (plain + clip_grad_norm_) = {clip_vgp['cpu_clip_ratio']:.3f} by CPU time, "
                     f"{clip_vgp['wall_clip_ratio']:.3f} by wall clock")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes and few rounds: proves it runs, measures little")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 80 MLP, 40 ResNet; quick 3)")
    p.add_argument("--steps", type=int, default=None,
                   help="steps per timed block (default 20 MLP, 2 ResNet; quick 5)")
    p.add_argument("--replicas", type=int, default=None,
                   help="copies of each of our variants and the plain loop, used in turn (default 3, quick 1)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per variant first (default 20, quick 2)")
    p.add_argument("--models", default="deep-sigmoid,resnet-cifar10", help="comma-separated: deep-sigmoid, resnet-cifar10")
    p.add_argument("--resnet-width", type=float, default=None, help="ResNet width factor (default 0.25, the preset's; quick 0.0625)")
    p.add_argument("--resnet-batch", type=int, default=None, help="ResNet batch size (default 16; quick 4)")
    p.add_argument("--flush-every", type=int, default=None,
                   help="steps between Trainer.flush() calls (default: the block length; blocks always end with one)")
    p.add_argument("--clip", type=float, default=1.0, help="max_norm of the clipping variants")
    p.add_argument("--peers", choices=("real", "reimpl", "none"), default="real",
                   help="real (re-implementation where not installed), reimpl (always), none")
    add_run_options(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 20)
    torch.set_num_threads(args.threads)
    print(f"probe overhead benchmark: {machine_line()}")
    results: dict[str, Any] = {"machine": machine_line(), "threads": args.threads, "models": {}}
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vgp-bench-") as workdir:
        for key in [k.strip() for k in args.models.split(",") if k.strip()]:
            if key == "deep-sigmoid":
                setup = deep_sigmoid(args.device, args.quick)
            elif key == "resnet-cifar10":
                width = args.resnet_width or (0.0625 if args.quick else 0.25)
                batch = args.resnet_batch or (4 if args.quick else 16)
                setup = resnet(args.device, args.quick, width, batch)
            else:
                print(f"unknown model {key!r}; known: deep-sigmoid, resnet-cifar10", file=sys.stderr)
                return 2
            steps = args.steps or (5 if args.quick else setup.steps)
            rounds = args.rounds or (3 if args.quick else setup.rounds)
            if args.flush_every:
                setup.flush_every = args.flush_every
            setup.flush_every = min(setup.flush_every, steps)
            variants = make_variants(setup, args.peers, workdir, args.clip)
            # Replicas of our own variants and the plain loops; the peers (several times slower, so
            # a few percent of bias does not matter) run as one copy shared by every replica set.
            replicas = args.replicas_used = args.replicas or (1 if args.quick else 3)
            sets = [variants]
            for _ in range(replicas - 1):
                again = make_variants(setup, "none", workdir, args.clip)
                sets.append(again + variants[len(again):])
            model = variants[0].model
            groups = GradientProbe(model)
            params = (sum(p.numel() for p in variants[0].params), len(variants[0].params), groups.num_layers)
            try:
                times = run_rounds(sets, setup, rounds, steps, args.warmup)
                costs = component_costs(variants, setup, 50 if args.quick else 300)
            finally:
                for v in distinct(sets):
                    v.close()
            rows = summarize(variants, times)
            print_table(setup, rows, params, args, steps, rounds)
            plain_us = rows[0]["cpu_ms"] * 1000.0
            print(f"direct cost of each method's own work per step, called alone (median; plain step {plain_us:.0f} us "
                  "by CPU time):")
            width = max(len(name) for name in costs) + 2
            for name, us in costs.items():
                print(f"  {name:<{width}}{us:10.1f} us  {100 * us / plain_us:7.2f} % of a plain step")
            lines += verdicts(setup, rows)
            results["models"][key] = {"description": setup.description, "rows": rows, "component_us": costs,
                                      "blocks": dataclasses.asdict(times)}
    report(lines, results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
