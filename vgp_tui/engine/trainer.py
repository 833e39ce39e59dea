"""Trainer: one run of one scenario, stepped by whoever owns it.

A step is nanoGPT's order: forward, backward (once per accumulated micro-batch), measure the gradient
the optimizer is about to use, clip, optimizer step, ``zero_grad(set_to_none=True)``. Measurements
stay on the device as one small tensor per step; :meth:`Trainer.flush` copies all steps since the
last flush to the host in one transfer and turns them into :class:`StepMetrics` events.

The trainer knows nothing about threads, screens or files: the session drives it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vgp_tui.engine.events import StepMetrics
from vgp_tui.engine.probe import GradientProbe
from vgp_tui.engine.remedies import REMEDIES, RemedyValue
from vgp_tui.models import build_model

# Layout of the per-step row kept on the device: loss, total norm, clipped flag, then layer norms.
_LOSS, _TOTAL, _CLIPPED, _LAYERS = 0, 1, 2, 3

STRUCTURAL = tuple(name for name, r in REMEDIES.items() if r.structural)


def make_optimizer(name: str, params: Any, lr: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}")


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
        self.optimizer = make_optimizer(str(self.remedies["optimizer"]), self.model.parameters(), self.lr)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.batch_size = min(scenario.train.batch_size, len(data.x))
        self.step_count = 0
        self._rows: list[torch.Tensor] = []
        self._row_steps: list[int] = []
        self._lrs: list[float] = []
        self._time_grads: dict[int, torch.Tensor] = {}
        self._layer_stats: dict[int, torch.Tensor] = {}
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
        return getattr(self.model, "time_view", None)

    @property
    def stats_label(self) -> str | None:
        return getattr(self.model, "stats_label", None)

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
        model = self.model
        train = self.scenario.train
        step = self.step_count + 1
        sample_time = self.time_view is not None and step % train.time_every == 0
        sample_stats = self.stats_label is not None and step % train.stats_every == 0
        micro = self.accumulate
        loss_sum = None
        for i in range(micro):
            last = i == micro - 1
            # The costlier views are measured on the last micro-batch of sampled steps only.
            model.track_time = sample_time and last  # type: ignore[assignment]
            model.track_stats = sample_stats and last  # type: ignore[assignment]
            x, y = self._batch()
            loss = self._loss(model(x), y) / micro
            loss.backward()
            loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
        assert loss_sum is not None
        started = time.perf_counter()
        layer_norms, total = self.probe.measure()
        self._probe_seconds += time.perf_counter() - started
        clip = self.clip
        # The clipped flag is 1 or 0, or -1 when clipping is off (the event says None then).
        clipped = self.probe.clip(total, clip).float() if clip is not None else self._clip_off
        if sample_time:
            self._time_grads[step] = model.time_gradient_norms()  # type: ignore[operator]
        if sample_stats:
            self._layer_stats[step] = model.activation_stats()  # type: ignore[operator]
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        model.track_time = False  # type: ignore[assignment]
        model.track_stats = False  # type: ignore[assignment]
        self._rows.append(torch.cat([loss_sum.reshape(1).float(), total.reshape(1), clipped.reshape(1), layer_norms]))
        self._row_steps.append(step)
        self._lrs.append(self.lr)
        self.step_count = step

    @property
    def pending(self) -> int:
        return len(self._rows)

    def flush(self) -> list[StepMetrics]:
        """Events for every step since the last flush; one host transfer for all of them."""
        if not self._rows:
            return []
        now = time.perf_counter()
        n = len(self._rows)
        rows = torch.stack(self._rows).tolist()
        time_grads = self._host(self._time_grads)
        stats = self._host(self._layer_stats)
        step_ms = (now - self._flush_started) * 1000.0 / n
        probe_ms = self._probe_seconds * 1000.0 / n
        t = now - self.t0
        events = [
            StepMetrics(
                run=self.run,
                step=step,
                t=t,
                loss=row[_LOSS],
                grad_norm=tuple(row[_LAYERS:]),
                total_norm=row[_TOTAL],
                clipped=None if row[_CLIPPED] < 0 else bool(row[_CLIPPED]),
                lr=lr,
                step_ms=step_ms,
                probe_ms=probe_ms,
                time_grad=time_grads.get(step),
                layer_stats=stats.get(step),
            )
            for step, row, lr in zip(self._row_steps, rows, self._lrs)
        ]
        self._rows.clear()
        self._row_steps.clear()
        self._lrs.clear()
        self._time_grads.clear()
        self._layer_stats.clear()
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
