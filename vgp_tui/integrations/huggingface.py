"""A ``transformers.TrainerCallback`` that records a ``Trainer`` run for ``vgp-tui replay --follow``.

::

    from vgp_tui.integrations.huggingface import VgpTuiCallback

    trainer = transformers.Trainer(model=model, args=args, train_dataset=data, callbacks=[VgpTuiCallback("run.jsonl")])
    trainer.train()

The Trainer's order (``Trainer._run_epoch``, transformers 5.x): after the last micro-batch's backward
it clips with ``max_grad_norm`` (``accelerator.clip_grad_norm_``: unscale, then ``clip_grad_norm_``),
measures the norm for its log, calls ``on_pre_optimizer_step``, then ``optimizer.step()``. No callback
runs between the backward and the clipping, but every vgp-tui recording holds the gradient before
clipping (docs/recording-format.md: clipped norms would sit at the threshold and hide an explosion).
So the callback moves the clipping by one call, and keeps it the same: from ``on_step_begin`` it sets
``args.max_grad_norm`` to 0 until ``on_pre_optimizer_step``, where the Trainer has unscaled the gradient
(its log's norm, ``clip_grad_norm_(..., inf)``, does that, and changes nothing else); there the callback
measures, and then clips with ``torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)``,
the Trainer's own call, and puts ``max_grad_norm`` back before the Trainer logs or saves a checkpoint.
The run trains bit for bit as without the callback, and the Trainer logs the same ``grad_norm``.

Each step record holds, one per optimizer step (numbered in optimizer steps):

* the per-layer and total norms of the unscaled gradient of the step's micro-batches, before clipping;
* ``clipped``: whether clipping scaled it down (the run's ``clip`` remedy is ``max_grad_norm``);
* ``loss``: the model's own loss (``outputs["loss"]``, or the first output) over the step's micro-batches,
  as the Trainer reports it: their mean, or their sum where the Trainer passed ``num_items_in_batch``
  (the model then divides by the items of the whole step). Where the model returns no loss (the Trainer
  computes it: label smoothing, ``compute_loss_func``) the loss is NaN, with a warning;
* ``lr``: the optimizer's first parameter group's learning rate at the step.

Only the world process zero writes. DeepSpeed and FSDP shard the gradients, so they are refused.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vgp_tui.engine.instrument import Recorder
from vgp_tui.integrations import missing, open_recorder

try:
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise missing("transformers", "huggingface", error) from error

__all__ = ["VgpTuiCallback"]


class VgpTuiCallback(TrainerCallback):
    """Records the run: one ``step`` record per optimizer step, measured before clipping.

    Args:
        path: the JSON-lines recording to write (replaced if it exists) when training starts.
        preset: the name the dashboard shows for the run (default: the model's class name).
        flush_seconds: how often pending steps are written and flushed (see :class:`vgp_tui.Recorder`).
        **recorder_options: further keyword arguments for :class:`vgp_tui.Recorder` (``remedies=``, ...).

    The layers are the model's ``layer_groups()`` if it has one, else one per submodule that owns
    parameters (as :class:`vgp_tui.GradientProbe`): for a transformer, its embeddings, each attention
    and feed-forward projection, each layer norm and the head.
    """

    def __init__(
        self, path: str | Path = "run.jsonl", preset: str | None = None, flush_seconds: float = 0.5,
        **recorder_options: Any,
    ) -> None:
        self.path = Path(path)
        self.preset = preset
        self.flush_seconds = flush_seconds
        self.recorder_options = recorder_options
        self.recorder: Recorder | None = None
        self._model: nn.Module | None = None
        self._hook: torch.utils.hooks.RemovableHandle | None = None
        self._clip: float | None = None
        """The Trainer's ``max_grad_norm`` while the callback holds it at 0; None when it does not clip."""
        self._losses: list[torch.Tensor] = []
        self._normalized = False
        """True when the step's micro-batch losses were divided by the step's items (they add up)."""
        self._warned = False

    # -- lifecycle ----------------------------------------------------------------------------------
    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       model: nn.Module | None = None, optimizer: Any = None, **kwargs: Any) -> None:
        if getattr(args, "deepspeed", None) or getattr(args, "fsdp", None):
            raise ValueError("VgpTuiCallback reads each parameter's gradient, which DeepSpeed and FSDP shard: "
                             "train with one process or DistributedDataParallel to record a run")
        if model is None:
            raise ValueError("VgpTuiCallback needs the Trainer's model")
        self._close("finished", "a new training started")
        self._model = model
        self._clip = None
        self._losses = []
        max_norm = float(args.max_grad_norm or 0.0)
        lr = float(optimizer.param_groups[0]["lr"]) if optimizer is not None else float(args.learning_rate)
        self.recorder = open_recorder(
            self.path, model, name=self.preset or type(model).__name__, lr=lr,
            clip=max_norm if max_norm > 0 else None, accumulate=args.gradient_accumulation_steps,
            enabled=state.is_world_process_zero,
            scaler=getattr(optimizer, "scaler", None),  # accelerate's AcceleratedOptimizer, with fp16
            options={"flush_seconds": self.flush_seconds, **self.recorder_options},
        )
        if self.recorder.enabled:
            self._hook = model.register_forward_hook(self._on_forward, with_kwargs=True)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        self._give_back_clipping(args)
        self._close("finished", f"training finished after {state.global_step} optimizer steps")

    # -- every optimizer step -----------------------------------------------------------------------
    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                      **kwargs: Any) -> None:
        self._losses = []
        self._take_clipping(args)

    def on_substep_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        self._take_clipping(args)  # (already taken at on_step_begin: kept, whatever happened since)

    def on_pre_optimizer_step(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                              model: nn.Module | None = None, optimizer: Any = None, **kwargs: Any) -> None:
        clip = self._clip
        recorder = self.recorder
        if recorder is not None and recorder.enabled:
            lr = float(optimizer.param_groups[0]["lr"]) if optimizer is not None else recorder.lr
            recorder.step(self._step_loss(args), lr=lr, clip=clip)
        self._losses = []
        self._give_back_clipping(args)
        if clip is not None and model is not None:
            # The Trainer's own clipping (accelerator.clip_grad_norm_ without its unscale, done already),
            # on every rank alike, so the replicas stay identical.
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)

    # -- helpers ------------------------------------------------------------------------------------
    def _take_clipping(self, args: TrainingArguments) -> None:
        if self._clip is None and args.max_grad_norm and args.max_grad_norm > 0:
            self._clip = float(args.max_grad_norm)
            args.max_grad_norm = 0.0

    def _give_back_clipping(self, args: TrainingArguments) -> None:
        if self._clip is not None:
            args.max_grad_norm, self._clip = self._clip, None

    def _on_forward(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        if not (module.training and torch.is_grad_enabled()):  # evaluation, generation: not a training step
            return
        # Where the Trainer finds the loss (Trainer.compute_loss): outputs["loss"], or the first output.
        loss = output.get("loss") if isinstance(output, dict) else None
        if loss is None and isinstance(output, (tuple, list)) and output:
            loss = output[0]
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            self._losses.append(loss.detach().reshape(()).float())  # on the device: no synchronisation
        self._normalized = kwargs.get("num_items_in_batch") is not None

    def _step_loss(self, args: TrainingArguments) -> torch.Tensor | float:
        if not self._losses:
            if not self._warned:
                self._warned = True
                warnings.warn("vgp-tui: the model returned no loss (the Trainer computes it itself); "
                              "the recording's loss is NaN", RuntimeWarning, stacklevel=2)
            return math.nan
        total = torch.stack(self._losses).sum()
        if not self._normalized:
            return total / len(self._losses)  # each micro-batch's mean loss: the step's is their mean
        if getattr(args, "average_tokens_across_devices", False) and args.world_size > 1:
            total = total * args.world_size  # the Trainer scales each rank's share up the same way
        return total

    def _close(self, state: str, message: str) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.close(state, message)
