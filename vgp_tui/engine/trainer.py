"""Trainer: one run of one scenario, stepped by whoever owns it.

A step is nanoGPT's order: forward, backward (once per accumulated micro-batch), measure the gradient
the optimizer is about to use, clip, optimizer step, zero the gradients. Measurements stay on the
device as a few small tensors per step; :meth:`Trainer.flush` folds them into per-layer norms, copies
all steps since the last flush to the host in one transfer and turns them into :class:`StepMetrics`
events.

The gradients live in the probe's flat buffer (:meth:`GradientProbe.use_flat_grads`), so measuring is
one kernel per step (and clipping one more) however many parameter tensors the model has. That is why
the gradients are zeroed in place with one ``zero_()`` on the buffer instead of
``optimizer.zero_grad(set_to_none=True)``: setting them to ``None`` would drop the views into the
buffer. Every parameter of the built-in models takes part in every step, so a zero gradient and no
gradient mean the same to the optimizer here. Where the buffer cannot be used (a model whose
parameters the layer groups do not all cover, mixed dtypes) the trainer falls back to
``zero_grad(set_to_none=True)`` and the probe's per-tensor path. See docs/benchmarks.md for what
this buys.

A step whose loss or total gradient norm is not finite ends the run: :meth:`Trainer.flush` returns
the events up to and including it, drops the steps taken after it before the flush saw it (they
trained on non-finite weights and mean nothing), and winds ``step_count`` back to it, so the step
count, the events and the divergence step agree. Seeing it per step would cost a host-device
synchronisation per step; a flush is the first moment the values are on the host anyway.

The trainer knows nothing about threads, screens or files: the session drives it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vgp_tui.engine.events import StepMetrics, step_from_row
from vgp_tui.engine.probe import GradientProbe, Sample
from vgp_tui.engine.remedies import REMEDIES, RemedyValue
from vgp_tui.engine.step_buffer import StepBuffer
from vgp_tui.models import build_model


def make_optimizer(name: str, params: Any, lr: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}")


# Plain tuples, not NamedTuples: building one of those costs about 0.4 us, every step.
_Measured = tuple[Sample, torch.Tensor | None, torch.Tensor, torch.Tensor]
"""One step's device tensors: the probe's sample (folded at the flush), the total norm clipping used
(None when clipping was off), the loss, the clipped flag."""
_StepInfo = tuple[int, float, torch.Tensor | None, torch.Tensor | None]
"""One step's number and lr, and the views sampled at that step (time gradient, layer statistics; None
where not sampled), copied at the flush with one transfer each."""


class Trainer:
    """Trains one run: a model built from the scenario and remedies, on data already on the device.

    Args:
        scenario: the validated preset.
        remedies: every remedy value that applies (structural ones fixed for this run).
        data: a ``vgp_tui.data.Dataset`` whose tensors are on ``device``.
        device: torch device string.
        run: run number, carried into the events.
        seed: seeds the weights and the batch order, so runs differ only in their remedies.
    """

    def __init__(
        self,
        scenario: Any,
        remedies: Mapping[str, RemedyValue],
        data: Any,
        device: str,
        run: int,
        seed: int,
        t0: float | None = None,
    ) -> None:
        self.scenario = scenario
        self.remedies = dict(remedies)
        self.data = data
        self.device = torch.device(device)
        self.run = run
        self.seed = seed
        self.t0 = time.perf_counter() if t0 is None else t0
        torch.manual_seed(seed)
        self.model: nn.Module = build_model(scenario.family, scenario.model, self.remedies, data.task).to(self.device)
        self.model.train()
        self.probe = GradientProbe(self.model)
        trainable = {id(p) for p in self.model.parameters() if p.requires_grad}
        # The flat buffer only where it holds every gradient the optimizer uses (zeroing covers all).
        self.flat_grads = trainable == {id(p) for p in self.probe.params} and self.probe.use_flat_grads()
        self.optimizer = make_optimizer(str(self.remedies["optimizer"]), self.model.parameters(), self.lr)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.batch_size = min(scenario.train.batch_size, len(data.x))
        self.step_count = 0
        self.diverged: StepMetrics | None = None
        """The first step whose loss or total norm was not finite; the run ends there."""
        self.last_finite: StepMetrics | None = None
        """The latest finite step flushed (the one before the divergence, once there is one)."""
        self._time_view: str | None = getattr(self.model, "time_view", None)
        self._stats_label: str | None = getattr(self.model, "stats_label", None)
        self._pending: StepBuffer[_Measured, _StepInfo] = StepBuffer(self._pack)
        self._probe_seconds = 0.0
        self._flush_started = time.perf_counter()
        self._clip_off = torch.full((), -1.0, device=self.device)
        self.params = sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    # -- remedies ---------------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return float(self.remedies["lr"])  # type: ignore[arg-type]

    @property
    def clip(self) -> float | None:
        value = self.remedies.get("clip")
        return None if value is None else float(value)  # type: ignore[arg-type]

    @property
    def accumulate(self) -> int:
        return int(self.remedies.get("accumulate") or 1)  # type: ignore[arg-type]

    def set_live(self, name: str, value: RemedyValue) -> None:
        """Apply a live remedy; it takes effect at the next step."""
        if REMEDIES[name].structural:
            raise ValueError(f"{name} is structural: start a new run instead")
        self.remedies[name] = value
        if name == "lr":
            for group in self.optimizer.param_groups:
                group["lr"] = float(value)  # type: ignore[arg-type]
        elif name == "optimizer":
            self.optimizer = make_optimizer(str(value), self.model.parameters(), self.lr)

    @property
    def time_view(self) -> str | None:
        return self._time_view

    @property
    def stats_label(self) -> str | None:
        return self._stats_label

    # -- stepping ---------------------------------------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(0, len(self.data.x), (self.batch_size,), device=self.device, generator=self.generator)
        return self.data.x[index], self.data.y[index]

    def _loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.data.task.kind == "regress":
            return F.mse_loss(output.reshape(target.shape), target)
        return F.cross_entropy(output, target)

    def step(self) -> None:
        """One optimizer step (``accumulate`` micro-batches), measured; nothing leaves the device."""
        if self.diverged is not None:
            raise RuntimeError(f"run {self.run} diverged at step {self.diverged.step}: start a new run")
        model = self.model
        train = self.scenario.train
        step = self.step_count + 1
        sample_time = self._time_view is not None and step % train.time_every == 0
        sample_stats = self._stats_label is not None and step % train.stats_every == 0
        micro = self.accumulate
        loss_sum = None
        time_grad = layer_stats = None
        try:
            for i in range(micro):
                if i == micro - 1:
                    # The costlier views are measured on the last micro-batch of sampled steps only
                    # (setting a Module attribute is not free, so only when one is sampled).
                    if sample_time:
                        model.track_time = True  # type: ignore[assignment]
                    if sample_stats:
                        model.track_stats = True  # type: ignore[assignment]
                x, y = self._batch()
                loss = self._loss(model(x), y)
                if micro > 1:
                    loss = loss / micro
                loss.backward()
                loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
            assert loss_sum is not None
            started = time.perf_counter()
            sample = self.probe.sample()  # one kernel with the flat buffer
            clip = self.clip
            # The clipped flag is 1 or 0, or -1 when clipping is off (the event says None then).
            if clip is None:
                total, clipped = None, self._clip_off
            else:
                total = self.probe.total_of(sample)
                clipped = self.probe.clip(total, clip)
            self._probe_seconds += time.perf_counter() - started
            if sample_time:
                time_grad = model.time_gradient_norms()  # type: ignore[operator]
            if sample_stats:
                layer_stats = model.activation_stats()  # type: ignore[operator]
        finally:
            if sample_time:
                model.track_time = False  # type: ignore[assignment]
            if sample_stats:
                model.track_stats = False  # type: ignore[assignment]
        self.optimizer.step()
        if not (self.flat_grads and self.probe.zero_grad()):
            self.optimizer.zero_grad(set_to_none=True)
        self._pending.append((sample, total, loss_sum, clipped), (step, self.lr, time_grad, layer_stats))
        self.step_count = step

    @property
    def pending(self) -> int:
        return len(self._pending)

    def restart_clock(self) -> None:
        """Time the next steps from now (``step_ms`` is the time since the last flush over the steps
        in it): after a pause, the time the user waited or thought is not the steps' time."""
        if not self._pending:
            self._flush_started = time.perf_counter()

    def _pack(self, measured: list[_Measured]) -> torch.Tensor:
        """``(steps, ROW_LAYERS + layers)`` rows on the device: folding and stacking here, once per
        flush, keeps each step to one kernel and list appends."""
        samples, totals, losses, clipped = zip(*measured)
        started = time.perf_counter()
        norms = self.probe.fold(samples, totals)  # (n, 1 + layers): total, layers
        self._probe_seconds += time.perf_counter() - started
        head = torch.stack([torch.stack(losses).float(), torch.stack(clipped).float()], dim=1)
        return torch.cat([head, norms], dim=1)

    def flush(self) -> list[StepMetrics]:
        """Events for every step since the last flush, up to a divergence; one host transfer for all."""
        if not self._pending:
            return []
        now = time.perf_counter()
        n = len(self._pending)
        taken = self._pending.take()
        time_grads = self._host({step: time_grad for _, (step, _, time_grad, _) in taken})
        stats = self._host({step: layer_stats for _, (step, _, _, layer_stats) in taken})
        step_ms = (now - self._flush_started) * 1000.0 / n
        probe_ms = self._probe_seconds * 1000.0 / n
        t = now - self.t0
        events = [
            step_from_row(self.run, step, t, row, lr, step_ms, probe_ms, time_grads.get(step), stats.get(step))
            for row, (step, lr, _, _) in taken
        ]
        for i, event in enumerate(events):
            if not event.finite:
                self.diverged = event
                self.step_count = event.step
                del events[i + 1 :]
                break
            self.last_finite = event
        self._probe_seconds = 0.0
        self._flush_started = now
        return events

    @staticmethod
    def _host(samples: dict[int, torch.Tensor | None]) -> dict[int, tuple[float, ...]]:
        present = {k: v for k, v in samples.items() if v is not None}
        if not present:
            return {}
        values = torch.stack([v.float() for v in present.values()]).tolist()
        return {k: tuple(v) for k, v in zip(present, values)}
