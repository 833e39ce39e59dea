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
So the callback measures at the very end of that backward: in the training forward of a micro-batch
that ends an optimizer step (accelerate's ``sync_gradients``), it hooks the model's outputs, and the
first of them that the backward reaches queues the measurement with the autograd engine
(``queue_callback``, as DistributedDataParallel finishes its all-reduce; queued once more from there,
so that it runs after DDP's own). The Trainer's clipping and its log are left as they are: the run
trains bit for bit as without the callback, at the cost of one measurement a step.

If a step's backward never reached the model's outputs (a loss computed from something else), the step
is measured in ``on_pre_optimizer_step``, after the clipping, with a warning; from then on the callback
holds the clipping back instead: from ``on_step_begin`` it sets ``args.max_grad_norm`` to 0 until
``on_pre_optimizer_step``, measures there, clips with the Trainer's own call
(``torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)``) and puts ``max_grad_norm`` back.
That also trains bit for bit the same, but the Trainer then computes its logged norm in a pass of its
own, and the gradient is read three times a step instead of once (done always, this cost 1.16 times a
step of the 20-layer MLP: docs/benchmarks.md, section 6).

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
from vgp_tui.integrations import check_recorder_options, for_another_trainer, missing, open_recorder, recording_path

try:
    from accelerate.state import GradientState
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise missing("transformers and accelerate", "huggingface", error) from error

__all__ = ["VgpTuiCallback"]


class VgpTuiCallback(TrainerCallback):
    """Records the run: one ``step`` record per optimizer step, measured before clipping.

    Args:
        path: the JSON-lines recording to write (replaced if it exists) when training starts; a later
            ``train()`` with this callback (resumed, or training on) is the recording's next run.
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
        self.path = recording_path(path)
        check_recorder_options(recorder_options)
        self.preset = preset
        self.flush_seconds = flush_seconds
        self.recorder_options = recorder_options
        self.recorder: Recorder | None = None
        self._previous: Recorder | None = None
        """The Recorder of the last training, closed: the next training's goes on with its recording."""
        self._model: nn.Module | None = None
        self._args: TrainingArguments | None = None
        self._optimizer: Any = None
        self._hook: torch.utils.hooks.RemovableHandle | None = None
        self._max_norm: float | None = None
        """The Trainer's clipping threshold (``max_grad_norm``), None where it does not clip."""
        self._hold_clipping = False
        """The fallback: measure in ``on_pre_optimizer_step``, with the Trainer's clipping held back."""
        self._clip: float | None = None
        """The Trainer's ``max_grad_norm`` while the callback holds it at 0; None when it does not hold it."""
        self._queued = False
        """The measurement of this step's backward is queued with the autograd engine."""
        self._measured = False
        """This optimizer step is measured (at the end of its last backward)."""
        self._losses: list[torch.Tensor] = []
        self._normalized = False
        """True when the step's micro-batch losses were divided by the step's items (they add up)."""
        self._warned = False
        self._warned_late = False

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
        self._args = args
        self._optimizer = optimizer
        self._clip = None
        self._hold_clipping = False
        self._queued = self._measured = False
        self._losses = []
        max_norm = float(args.max_grad_norm or 0.0)
        self._max_norm = max_norm if max_norm > 0 else None
        lr = float(optimizer.param_groups[0]["lr"]) if optimizer is not None else float(args.learning_rate)
        self.recorder = open_recorder(
            self.path, model, name=self.preset or type(model).__name__, lr=lr,
            clip=self._max_norm, accumulate=args.gradient_accumulation_steps,
            enabled=state.is_world_process_zero,
            scaler=getattr(optimizer, "scaler", None),  # accelerate's AcceleratedOptimizer, with fp16
            options={"flush_seconds": self.flush_seconds, **self.recorder_options},
            continues=self._previous, global_step=state.global_step,
        )
        if self.recorder.enabled:
            self._hook = model.register_forward_hook(self._on_forward, with_kwargs=True)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        self._give_back_clipping(args)
        self._close("finished", f"training finished after {state.global_step} optimizer steps")

    # -- given to lightning.pytorch.Trainer by mistake: none of these is read by transformers ----------
    @property
    def state_key(self) -> str:
        return type(self).__qualname__  # read by Lightning before each hook: missing, an AttributeError

    def setup(self, *args: Any, **kwargs: Any) -> None:
        raise for_another_trainer("lightning")  # (the first hook a Lightning Trainer calls, in fit())

    def on_exception(self, *args: Any, **kwargs: Any) -> None:
        pass  # called by Lightning on setup's error: missing, its AttributeError would end the traceback

    # -- every optimizer step -----------------------------------------------------------------------
    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                      **kwargs: Any) -> None:
        self._losses = []
        self._measured = self._queued = False  # (a backward that raised never ran what it had queued)
        if self._hold_clipping:
            self._take_clipping(args)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        # A pause follows (evaluation, a checkpoint, the end): its steps are on disk before it, not after.
        if self.recorder is not None and (control.should_evaluate or control.should_save or control.should_training_stop):
            self.recorder.flush()

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        if self.recorder is not None:
            self.recorder.flush()

    def on_substep_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        if self._hold_clipping:
            self._take_clipping(args)  # (already taken at on_step_begin: kept, whatever happened since)

    def on_pre_optimizer_step(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                              model: nn.Module | None = None, optimizer: Any = None, **kwargs: Any) -> None:
        recorder = self.recorder
        if recorder is not None and recorder.enabled and not self._measured:
            if not self._hold_clipping:
                # The backward never reached the model's outputs: this step's gradient is measured after
                # the Trainer clipped it; from the next step on the clipping waits for the measurement.
                self._hold_clipping = True
                if not self._warned_late:
                    self._warned_late = True
                    warnings.warn(f"vgp-tui: the backward of step {state.global_step + 1} did not pass through "
                                  "the model's outputs, so its norms were measured after clipping; later steps "
                                  "hold the Trainer's clipping back until they are measured", RuntimeWarning,
                                  stacklevel=2)
            self._measure(args, clip=self._clip)  # (None the first time: whether it clipped is unknown)
        self._losses = []
        self._measured = False
        clip = self._clip
        self._give_back_clipping(args)
        if clip is not None and model is not None:
            # The Trainer's own clipping (accelerator.clip_grad_norm_ without its unscale, done already),
            # on every rank alike, so the replicas stay identical.
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)

    # -- measuring ----------------------------------------------------------------------------------
    def _measure(self, args: TrainingArguments, clip: float | None) -> None:
        recorder = self.recorder
        if recorder is None or not recorder.enabled:
            return
        optimizer = self._optimizer
        lr = float(optimizer.param_groups[0]["lr"]) if optimizer is not None else recorder.lr
        recorder.step(self._step_loss(args), lr=lr, clip=clip)
        self._measured = True

    def _on_backward_end(self) -> None:
        """Queued by the first output hook of a step's last backward: runs when that backward is done,
        before the Trainer clips. Queued again once from here, behind DistributedDataParallel's own
        callback (queued later, when its last bucket is ready), so the gradients are the averaged ones."""
        torch.autograd.Variable._execution_engine.queue_callback(self._measure_backward)

    def _measure_backward(self) -> None:
        self._queued = False
        if self._measured or self._hold_clipping or self._args is None:
            return
        self._measure(self._args, clip=self._max_norm)

    def _on_output_gradient(self, grad: torch.Tensor) -> None:
        if not self._queued:
            self._queued = True
            torch.autograd.Variable._execution_engine.queue_callback(self._on_backward_end)

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
        if not self._hold_clipping and GradientState().sync_gradients:
            # This micro-batch ends the optimizer step: measure when its backward is done. Every output
            # the backward might start from is hooked (a custom loss may use the logits, not the loss).
            for value in _tensors(output):
                if value.requires_grad:
                    value.register_hook(self._on_output_gradient)

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
            self._previous = recorder


def _tensors(output: Any) -> list[torch.Tensor]:
    """The tensors among a model's outputs (a tensor, a dict or ``ModelOutput``, a tuple), one level deep."""
    if isinstance(output, torch.Tensor):
        return [output]
    values = output.values() if isinstance(output, dict) else output if isinstance(output, (tuple, list)) else ()
    return [v for v in values if isinstance(v, torch.Tensor)]
