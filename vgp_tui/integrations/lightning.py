"""A Lightning ``Callback`` that records a ``lightning.pytorch.Trainer`` run for ``vgp-tui replay --follow``.

::

    from vgp_tui.integrations.lightning import VgpTuiCallback

    trainer = lightning.pytorch.Trainer(callbacks=[VgpTuiCallback("run.jsonl")], gradient_clip_val=1.0)
    trainer.fit(model, loader)

What is recorded, read from Lightning's own order (``Precision._after_closure`` and
``MixedPrecision.optimizer_step``, lightning 2.x): the last micro-batch's backward, then (with a
``GradScaler``, ``precision="16-mixed"``) ``scaler.unscale_``, then the ``on_before_optimizer_step``
hooks, then ``configure_gradient_clipping`` (``clip_grad_norm_`` by default), then ``optimizer.step``.
The callback measures in ``on_before_optimizer_step``, so each step record holds, as every vgp-tui
recording does (docs/recording-format.md):

* the per-layer and total norms of the unscaled gradient summed over the accumulated micro-batches,
  before clipping: one record per optimizer step, numbered in optimizer steps;
* ``clipped``: whether Lightning's clipping scales that gradient down (``total > gradient_clip_val``,
  the rule of ``clip_grad_norm_``); the optimizer then uses the recorded gradient times
  ``gradient_clip_val / (total + 1e-6)``. The threshold is the run's ``clip`` remedy. Norms measured
  after clipping would be flat at the threshold and hide an explosion, and the rest of vgp-tui records
  before clipping;
* ``loss``: the mean of the micro-batches' losses (the sum of the ``loss / accumulate_grad_batches``
  that Lightning backpropagates), unscaled;
* ``lr``: the optimizer's first parameter group's learning rate at that step.

The callback never changes a gradient: the run trains exactly as without it. Only global rank 0 writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vgp_tui.engine.instrument import Recorder
from vgp_tui.integrations import check_recorder_options, for_another_trainer, missing, open_recorder, recording_path

try:
    import lightning.pytorch as pl
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise missing("lightning", "lightning", error) from error

__all__ = ["VgpTuiCallback"]


class VgpTuiCallback(pl.Callback):
    """Records the run: one ``step`` record per optimizer step, measured in ``on_before_optimizer_step``.

    Args:
        path: the JSON-lines recording to write (replaced if it exists) when training starts; a later
            ``fit()`` with this callback (resumed, or training on) is the recording's next run.
        preset: the name the dashboard shows for the run (default: the LightningModule's class name).
        flush_seconds: how often pending steps are written and flushed (see :class:`vgp_tui.Recorder`).
        **recorder_options: further keyword arguments for :class:`vgp_tui.Recorder` (``remedies=``, ...).

    The layers are the module's ``layer_groups()`` if it has one, else one per submodule that owns
    parameters (as :class:`vgp_tui.GradientProbe`). Meant for automatic optimization with one optimizer;
    value clipping (``gradient_clip_algorithm="value"``) is recorded as no clipping (``clipped`` null).
    """

    def __init__(
        self, path: str | Path = "run.jsonl", preset: str | None = None, flush_seconds: float = 0.5,
        **recorder_options: Any,
    ) -> None:
        super().__init__()
        self.path = recording_path(path)
        check_recorder_options(recorder_options)
        self.preset = preset
        self.flush_seconds = flush_seconds
        self.recorder_options = recorder_options
        self.recorder: Recorder | None = None
        self._previous: Recorder | None = None
        """The Recorder of the last fit, closed: the next fit's goes on with its recording."""
        self._loss: torch.Tensor | None = None
        """Sum of the losses backpropagated since the last optimizer step (each already / accumulate)."""
        self._backwards = 0
        """How many there were: fewer than ``accumulate_grad_batches`` in an epoch's last, short window."""
        self._clip: float | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Here, not in __init__ or setup: the module is on its device and the optimizers exist.
        self._close("finished", "a new fit started")
        self._loss, self._backwards = None, 0
        self._clip = _norm_clip(trainer)
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        lr = float(optimizer.param_groups[0]["lr"]) if optimizer is not None else None
        self.recorder = open_recorder(
            self.path, pl_module, name=self.preset or type(pl_module).__name__, lr=lr, clip=self._clip,
            accumulate=trainer.accumulate_grad_batches, enabled=trainer.is_global_zero,
            scaler=getattr(trainer.precision_plugin, "scaler", None),  # MixedPrecision unscales before the hook
            options={"flush_seconds": self.flush_seconds, **self.recorder_options},
            continues=self._previous, global_step=trainer.global_step,
        )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close("finished", f"training finished after {trainer.global_step} optimizer steps")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            self._close("finished", f"interrupted after {trainer.global_step} optimizer steps")
        else:
            self._close("error", f"{type(exception).__name__}: {exception}".splitlines()[0][:200])

    def on_init_end(self, *args: Any, **kwargs: Any) -> None:
        # Not a Lightning hook: transformers.Trainer's first call to its callbacks, from its __init__.
        raise for_another_trainer("huggingface")

    # -- pauses: validation and the end of an epoch -------------------------------------------------
    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._flush()  # the steps before a long pause are on disk (and on a --follow screen) during it

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._flush()

    # -- every micro-batch and every optimizer step -------------------------------------------------
    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        if self.recorder is None or not self.recorder.enabled:
            return
        loss = loss.detach()  # stays on the device: no host synchronisation per micro-batch
        self._loss = loss if self._loss is None else self._loss + loss
        self._backwards += 1

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        recorder = self.recorder
        if recorder is None or not recorder.enabled:
            return
        loss: torch.Tensor | float = float("nan") if self._loss is None else self._loss  # no backward ran
        accumulate, backwards = trainer.accumulate_grad_batches, self._backwards
        if backwards and backwards != accumulate:
            # Lightning divides every micro-batch's loss by accumulate_grad_batches, also in an epoch's
            # last window when fewer remain: the sum is then not their mean until scaled back.
            loss = loss * (accumulate / backwards)
        self._loss, self._backwards = None, 0
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        if scaler is not None and isinstance(loss, torch.Tensor):
            # on_before_backward saw the loss multiplied by the scale (MixedPrecision.pre_backward
            # scales before the hook); the scale is unchanged until scaler.update() after this step.
            # get_scale() costs a host synchronisation, as scaler.step() itself does every step.
            loss = loss / scaler.get_scale()
        recorder.step(loss, lr=float(optimizer.param_groups[0]["lr"]), clip=self._clip)

    # -- helpers ------------------------------------------------------------------------------------
    def _flush(self) -> None:
        # (on every rank: with sharded parameters a flush sums the ranks' squares, a collective)
        if self.recorder is not None:
            self.recorder.flush()

    def _close(self, state: str, message: str) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.close(state, message)
            self._previous = recorder


def _norm_clip(trainer: pl.Trainer) -> float | None:
    """The total-norm threshold Lightning clips to, or None (no clipping, or clipping by value)."""
    value = trainer.gradient_clip_val
    algorithm = trainer.gradient_clip_algorithm
    by_norm = algorithm is None or str(getattr(algorithm, "value", algorithm)).lower() == "norm"
    return float(value) if value and value > 0 and by_norm else None
