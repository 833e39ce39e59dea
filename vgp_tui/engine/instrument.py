"""Recorder: instrument your own training loop and watch it live with ``vgp-tui replay --follow``.

::

    probe = vgp_tui.GradientProbe(model)
    with vgp_tui.Recorder("run.jsonl", probe, lr=0.1) as recorder:
        for x, y in loader:
            loss = loss_fn(model(x), y)
            loss.backward()
            recorder.step(loss)          # after backward, before optimizer.step()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

Each ``step`` measures the gradient with the probe's fewest kernels and keeps the result on the device
(:meth:`GradientProbe.partial_norms`: the norms of its pieces); the first ``step`` ``flush_seconds``
after the last write folds all pending steps into per-layer norms together, copies them to the host
with one transfer, writes them as ``step`` records (docs/recording-format.md) and flushes the file, so
while the loop runs a reader following it sees a step within about ``flush_seconds`` and a crash loses
at most that much (:meth:`Recorder.flush` writes them before a pause that has no step). There is no
``.item()`` per layer and, on CUDA, no host-device synchronisation between flushes (``on_nonfinite="raise"``
is the one exception, by design); on a CPU, where nothing waits for a device, a step reads its loss.
"""

from __future__ import annotations

import atexit
import math
import os
import sys
import time
import warnings
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import torch
from torch.amp.grad_scaler import OptState  # (imported by torch itself: free)

from vgp_tui.engine.autocast_watch import FORGOTTEN_SCALER, AutocastWatch
from vgp_tui.engine.events import (
    ROW_CLIPPED,
    ROW_LAYERS,
    ROW_LOSS,
    ROW_TOTAL,
    CONTINUED,
    Event,
    RemedyChanged,
    RunStarted,
    SessionHeader,
    StateChanged,
)
from vgp_tui.engine.history import more_layers, nonfinite_origin
from vgp_tui.engine.probe import GradientProbe
from vgp_tui.engine.recording import RecordingWriter, encode_event, step_line
from vgp_tui.engine.remedies import RemedyValue, get_remedy
from vgp_tui.engine.step_buffer import StepBuffer

ON_NONFINITE = ("ignore", "warn", "raise")

# Columns of a pending step's flags on the device: clipped flag (1, 0, -1 off), the scaler's verdict
# (_NOT_SKIPPED, _SKIPPED, or _SCALED: decided at the flush from the total), the squared total where
# a step computed it (NaN: sum the layers at the flush). A step without clipping or a scaler has no
# flags of its own (None): those are the defaults, and leaving them out saves it a concatenation.
_CLIPPED, _SKIP, _TOTAL_SQ = range(3)
_NOT_SKIPPED, _SKIPPED, _SCALED = 0.0, 1.0, 2.0
_MAX_INTERVAL = 4096
"""Most steps between two reductions of a sharded probe (bounds the rows kept on the device)."""
DEFAULT_FLUSH_SECONDS = 0.5
"""How often a Recorder writes its pending steps unless told otherwise."""

_OPEN: weakref.WeakValueDictionary[Path, Recorder] = weakref.WeakValueDictionary()
"""The writing Recorders of this process by their file: a second one on the same file closes the first
(a notebook cell run again), whose exit hook would otherwise write its tail into the new recording."""


_Row = tuple["torch.Tensor | float", torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"]
"""A pending step on the device: its loss (a copy: on a CPU the number itself, elsewhere a 0-d float32
device tensor; :func:`_loss_value`); its measurement, either the norms of
the gradient's pieces with the layer index of :meth:`GradientProbe.partial_norms`, or (index None) the
per-layer squared norms, summed over the ranks once its info says so; and its flags (None: the
defaults). The flush stacks these column by column, a few kernels for all its steps, so that a step
does no more than measure: squaring, folding into layers and packing wait for the flush."""

_StepInfo = tuple[int, float, "float | None", float, "float | None", bool]
"""What the host knows of a pending step: its number, ``time.perf_counter()`` when :meth:`Recorder.step`
began, its lr, the seconds the probe took, the clipping threshold that only decides "clipped" (a
framework's, with a probe that does not clip: None otherwise), and whether the row's squares are whole
(summed over the ranks, or never sharded). A plain tuple: a NamedTuple costs about 0.4 us to build, every step."""


def is_main_process() -> bool:
    """Rank 0 of a ``torch.distributed`` job (or of a ``torchrun`` launch not yet initialised)."""
    dist = getattr(torch, "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return bool(dist.get_rank() == 0)
    return os.environ.get("RANK", "0").strip() in ("", "0")


def _learning_rate(value: object) -> float:
    """``value`` as a learning rate: a finite number, 0 or more (a warm-up may start at 0). A
    one-element tensor is one (an optimizer's ``lr`` may be); a bool or a string is not, as for
    ``clip`` (``float("0.1")`` would take the string)."""
    lr = _scalar(value, _LR)
    if not (math.isfinite(lr) and lr >= 0):
        raise ValueError(f"lr must be the optimizer's learning rate, a finite number >= 0, not {value!r}")
    return lr


def _scalar(value: object, wanted: str) -> float:
    """``value``, a number or a one-element tensor, as a float (:func:`_number`'s TypeError otherwise)."""
    if type(value) is float:  # (the usual case: nothing to check but the range, by the caller)
        return value
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"{wanted}, not a tensor of shape {tuple(value.shape)}")
        return float(value)
    return _number(value, wanted)


def _number(value: object, wanted: str) -> float:
    """``value`` (not a tensor) as a float, or a TypeError that says ``wanted`` ("clip must be ...").
    Whatever Python can take as a number is (numpy scalars and 0-d arrays, fractions); a bool or a
    string is not (float("1.0") would take the string)."""
    if isinstance(value, (bool, str, bytes)) or not hasattr(value, "__float__"):
        raise TypeError(f"{wanted}, not {type(value).__name__} {value!r}")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # a numpy array of several values, say
        raise TypeError(f"{wanted}, not {type(value).__name__} {value!r}") from None


_LR = "lr must be the optimizer's learning rate, a number >= 0"
_CLIP = "clip must be a positive number, the total norm to clip to (or None for no clipping)"
_LOSS = "loss must be the step's loss, a one-element tensor or a number"


def _clip_norm(value: object) -> float:
    """``value`` as a clipping threshold: a positive number (a bool or a string is not a norm)."""
    norm = _scalar(value, _CLIP)
    if not norm > 0:
        raise ValueError(f"clip must be a positive total norm (or None for no clipping), not {value!r}")
    return norm


def _distributed_ready() -> bool:
    dist = getattr(torch, "distributed", None)
    return bool(dist is not None and dist.is_available() and dist.is_initialized())


def _alarm_layer(norms: list[float]) -> tuple[int, int]:
    """(the layer the non-finite alarm names, how many layers are non-finite): the diagnosis's
    (:func:`nonfinite_origin`); where only the total overflowed, the largest layer, as one."""
    return nonfinite_origin(norms) or (max(range(len(norms)), key=norms.__getitem__), 1)


class NonFiniteGradientError(FloatingPointError):
    """Raised by ``Recorder.step`` with ``on_nonfinite="raise"``: a gradient is NaN or infinite.

    ``step`` is the recorder's step number, ``layer`` the non-finite layer nearest the output (where
    back-propagation met the NaN or Inf first: the layers before it got theirs from it, as the
    dashboard's diagnosis says too), ``norm`` its norm (NaN or Inf), ``layers`` how many layers are
    non-finite.
    """

    def __init__(self, step: int, layer: str, norm: float, layers: int = 1) -> None:
        super().__init__(f"non-finite gradient at step {step}: layer {layer!r} has norm {norm}{more_layers(layers)} "
                         "(stopped before optimizer.step())")
        self.step = step
        self.layer = layer
        self.norm = norm
        self.layers = layers


class Recorder:
    """Writes a vgp-tui recording of your training loop: call :meth:`step` after every ``backward()``.

    Args:
        path: the JSON-lines file to write (replaced if it exists).
        probe: a :class:`GradientProbe` of the model; its layer names go into the ``run`` record.
        preset: the name shown as the preset in the dashboard.
        lr: the learning rate, recorded with every step that does not pass its own ``lr`` (without
            either, a step's ``lr`` is written ``null``: not known).
        remedies: remedy values to show, e.g. ``{"activation": "relu", "init": "he"}`` (names and values
            as ``vgp-tui --remedy`` takes them).
        flush_seconds: how often pending steps are copied to the host, written and flushed to the file.
        enabled: ``None`` (the default) records on the main process only: rank 0 of an initialised
            ``torch.distributed`` group, else where the ``RANK`` environment variable is absent or 0
            (``torchrun`` sets it). A disabled Recorder opens no file and (unless the probe is sharded
            or ``on_nonfinite="raise"``, below) its :meth:`step` returns at once without measuring
            anything, so it costs nothing on the other ranks.
        scaler: the ``torch.amp.GradScaler`` of a mixed-precision loop. The recorded norms are then
            those of the unscaled gradients, whether or not ``scaler.unscale_(optimizer)`` was called
            before :meth:`step` (the scale is read on the device, no sync), ``clip`` clips the unscaled
            gradients, and a step the scaler will skip (an Inf or NaN gradient) is recorded with
            ``skipped: true`` (see below). Left out where the model's forward runs under float16
            autocast, the first :meth:`step` warns that the norms may be the scaled ones.
        continues: a closed Recorder of the same file whose recording this one goes on with, as its
            next run (the run number after its, its clock): a framework's second ``fit()``, a resumed
            training. Appended to the file instead of replacing it.
        first_step: the number of the first step recorded (a resumed training's, to go on counting
            where it stopped); :attr:`step_count` is the number of the last.
        on_nonfinite: what a NaN or Inf gradient does. ``"ignore"`` (the default): it is recorded, as
            every step is. ``"warn"``: one ``RuntimeWarning`` naming the step and the non-finite layer
            nearest the output (where back-propagation met it first),
            when the step is flushed (no extra cost). ``"raise"``: :class:`NonFiniteGradientError` from
            that very :meth:`step`, before ``optimizer.step()`` can spread it into the weights, after
            the step is written. That check reads one flag on the host every step: on CUDA a host-device
            synchronisation per step, the price of stopping in time (a batch job's alarm, not a
            dashboard's default). A step that the scaler skips is its business and does not
            trigger the alarm, unless its scale is down to 1 already: then the gradient itself is
            not finite (a NaN halves the scale at every step, for ever). Use the same setting on every rank: under ``torch.distributed`` every rank
            measures in ``"raise"`` mode, so that all of them raise at the same step instead of the
            others waiting for rank 0 in the next collective.

    A step the scaler skips: its ``grad_norm`` and ``total_norm`` are the unscaled norms as measured,
    so the layers that overflowed show ``Infinity`` (or ``NaN``), which tells where float16 ran out of
    range; its ``skipped`` is ``true``. The weights did not change at that step, so it is not a
    divergence: a reader recognises it by ``skipped`` alone (``StepMetrics.skipped``).

    **Under torch.distributed.** With DDP (``no_sync`` included) the gradients are averaged over the
    ranks by the time :meth:`step` runs, so rank 0 alone measures and writes; the other ranks' recorders
    do nothing. With **sharded parameters** (FSDP2's ``fully_shard``, tensor parallelism: the probe is
    ``sharded``) each rank holds a piece of every gradient, so every rank must measure and take part in
    summing the pieces, whichever rank writes:

    * construct the Recorder on every rank (the constructor counts the writing ranks with one
      ``all_reduce``; if none writes, nobody measures), and call :meth:`step` on every rank at the same
      steps with the same ``clip``;
    * each :meth:`step` keeps its rank's squared shard norms on the device, no collective; every so
      many steps all ranks sum the pending squares with ONE ``all_reduce`` (steps stacked), and the
      writing rank writes them. How many steps that is, rank 0 decides from its own step time (so that
      a flush comes about every ``flush_seconds``) and sends in the same collective, so all ranks agree
      without a collective of their own. A step with ``clip`` (which needs its total) or in
      ``on_nonfinite="raise"`` mode is reduced at once, one collective per step, as
      ``clip_grad_norm_`` of FSDP2 does;
    * :meth:`flush` and :meth:`close` are then collective too: call them on every rank, and close the
      Recorder (or leave its ``with`` block) before ``destroy_process_group()``. An exception leaving
      the ``with`` block, or a process group already gone, closes without a collective: steps not yet
      summed are not written (the final record says how many);
    * :meth:`log_remedy` does not flush early: its record is written with the next flush, in order;
    * the loss recorded is the writing rank's own (pass an all-reduced loss to record the mean).

    The recording is closed by :meth:`close`, by leaving a ``with`` block, or at the latest when the
    interpreter exits (``atexit``), so the last steps are kept.
    """

    def __init__(
        self,
        path: str | Path,
        probe: GradientProbe,
        *,
        preset: str = "custom",
        lr: float | None = None,
        remedies: Mapping[str, object] | None = None,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        enabled: bool | None = None,
        scaler: torch.amp.GradScaler | None = None,
        on_nonfinite: str = "ignore",
        continues: Recorder | None = None,
        first_step: int = 1,
    ) -> None:
        if on_nonfinite not in ON_NONFINITE:
            raise ValueError(f"on_nonfinite must be one of {', '.join(ON_NONFINITE)}, not {on_nonfinite!r}")
        if not isinstance(probe, GradientProbe):
            raise TypeError(f"Recorder takes a GradientProbe, not {type(probe).__name__}: "
                            "Recorder(path, vgp_tui.GradientProbe(model))")
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be the recording's file name (a str or Path), not {type(path).__name__} {path!r}")
        if remedies is not None and not isinstance(remedies, Mapping):
            raise TypeError("remedies must map remedy names to values, as {'activation': 'relu'}, not "
                            f"{type(remedies).__name__} {remedies!r}")
        flush_seconds = _number(flush_seconds, "flush_seconds must be a number of seconds")
        if not flush_seconds >= 0:
            raise ValueError(f"flush_seconds must be a number of seconds >= 0 (0: every step), not {flush_seconds!r}")
        self.path = Path(path)
        if continues is not None and not (isinstance(continues, Recorder) and continues.closed):
            raise TypeError("continues must be a closed Recorder whose recording this one goes on with, not "
                            f"{'an open Recorder' if isinstance(continues, Recorder) else type(continues).__name__}")
        if type(first_step) is not int or first_step < 1:  # (a bool is no step number)
            raise ValueError(f"first_step must be a whole number >= 1, the first step's number, not {first_step!r}")
        if scaler is not None and not isinstance(scaler, torch.amp.GradScaler):
            raise TypeError(f"scaler must be the loop's torch.amp.GradScaler (or None), not {type(scaler).__name__}")
        self.probe = probe
        self.scaler = scaler
        self.on_nonfinite = on_nonfinite
        self._flat_tried = False
        self.enabled = is_main_process() if enabled is None else bool(enabled)
        self.lr: float | None = _learning_rate(lr) if lr is not None else None  # (unknown: written null)
        self.flush_seconds = flush_seconds
        self.step_count = first_step - 1
        self._stepped = False  # step() ran
        self.run = continues.run + 1 if continues is not None else 1
        self._wrote = False  # the file was opened (continued files are appended to only if they were)
        self._writer: RecordingWriter | None = None
        self._warned = False
        self._ended = False  # close() ran: a later step() is a mistake, not another rank's no-op
        self._warned_closed = False
        self._last_loss: weakref.ref[torch.Tensor] | None = None  # the loss of the last step()
        values: dict[str, RemedyValue] = {}
        # Checked on every rank, before any collective, so that a mistake stops all ranks alike.
        if lr is not None and 0.0 < lr <= get_remedy("lr").maximum:  # (a warm-up may start at 0)
            values["lr"] = float(lr)
        for name, raw in (remedies or {}).items():
            values[name] = get_remedy(name, "Recorder").parse(raw, "Recorder")
        device = probe.params[0].device
        self._sharded = probe.sharded and _distributed_ready()
        self._writers = 1
        if self._sharded:
            # Every rank constructs its Recorder; count those that write, so that no rank measures
            # (and joins collectives) for nobody, and the flush interval can be averaged over writers.
            count = torch.tensor([1.0 if self.enabled else 0.0], device=device)
            probe.all_reduce(count)
            self._writers = round(float(count.item()))
            self._measuring = self._writers > 0
        else:
            self._measuring = self.enabled or on_nonfinite == "raise"
        self._keep_rows = self.enabled or self._sharded  # a sharded rank's squares are needed to sum
        self._t0 = continues._t0 if continues is not None else time.perf_counter()  # (one clock: a replay's)
        self._pending: StepBuffer[_Row, _StepInfo] = StepBuffer(self._pack)
        self._queued: list[tuple[int, Event]] = []  # (pending steps before it, event): sharded log_remedy
        self._last_flush = time.perf_counter()
        self._last_step_time: float | None = None  # the start of the last step written (for step_ms)
        self._reduce_at = 1  # sharded: the step at which all ranks next sum their pending squares
        self._interval = 1
        self._last_reduce = (self.step_count, self._last_flush)  # (step, time) of the last sum over ranks
        self._clip_off = torch.full((1,), -1.0, device=device)
        self._nan = torch.full((1,), math.nan, device=device)
        self._verdicts = {v: torch.full((1,), v, device=device) for v in (_NOT_SKIPPED, _SKIPPED, _SCALED)}
        self._one = torch.ones(1, device=device)
        self._default_flags = torch.tensor([-1.0, _NOT_SKIPPED, math.nan], device=device)  # _CLIPPED.. order
        self._zero = torch.zeros(1, device=device)
        self._observed: tuple[float, float] | None = None  # (a framework's clip threshold, as float32)
        self._scale_view: tuple[torch.Tensor, torch.Tensor] | None = None  # (scaler._scale, its (1,) float32 view)
        self._autocast: AutocastWatch | None = None  # (the writing rank's: one warning is enough)
        if self._measuring:
            atexit.register(self._close_at_exit)
        if not self.enabled:
            return
        if scaler is None and probe.module is not None:
            self._autocast = AutocastWatch(probe.module, device.type)
        key = self.path.resolve()
        earlier = _OPEN.get(key)
        if earlier is not None and not earlier.closed:
            warnings.warn(f"vgp-tui: a Recorder was still open on {self.path}: closed it before starting "
                          "a new recording there", RuntimeWarning, stacklevel=2)
            earlier.close("finished", "closed: a new Recorder opened the same file")
        _OPEN[key] = self
        append = continues is not None and continues._wrote and continues.path.resolve() == key and self.path.exists()
        header = None if append else SessionHeader.now(preset, str(device))
        self._writer = RecordingWriter(self.path, header, flush_seconds=flush_seconds, append=append)
        self._wrote = True
        run = RunStarted(
            run=self.run,
            t=self._now(),
            preset=preset,
            layers=probe.layer_names,
            remedies=values,
            seed=torch.initial_seed(),
            reason=CONTINUED if continues is not None else "start",
            params=sum(p.numel() for p in probe.params),
        )
        self._write([run])

    # -- the hot path -------------------------------------------------------------------------------
    def step(self, loss: torch.Tensor | float, lr: float | None = None, clip: float | None = None) -> None:
        """Measure this step's gradients (after ``backward()``, before ``optimizer.step()``).

        Args:
            loss: the step's loss, a one-element tensor (kept on the device) or a number.
            lr: the learning rate of this step (default: the constructor's ``lr``, or ``null``).
            clip: clip the gradients to this total norm, as ``clip_grad_norm_`` would, reusing the
                measured norm (no second pass); the record says whether it clipped. None: no clipping.

        Raises:
            NonFiniteGradientError: with ``on_nonfinite="raise"``, if a gradient is NaN or Inf.
        """
        # (on every rank: a mistake stops all ranks alike, before any collective)
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:
                raise ValueError(f"{_LOSS}, not a tensor of shape {tuple(loss.shape)}: reduce it first (loss.mean(), say)")
        elif type(loss) is not float:
            loss = _number(loss, _LOSS)
        if clip is not None:
            clip = _clip_norm(clip)
        if lr is not None:
            lr = _learning_rate(lr)
        if not self._measuring:  # another rank's recorder: nothing to record
            if self._ended:
                self._warn_closed("step")
            elif clip is not None:
                self._clip_unrecorded(clip)
            return
        # A forward makes a new loss tensor: the same one again means step() ran twice for one backward.
        if self._last_loss is not None and self._last_loss() is loss:
            raise RuntimeError("Recorder.step() was given the same loss twice: call it once per "
                               "optimizer step, after loss.backward()")
        started = time.perf_counter()
        probe = self.probe
        alarm = self.on_nonfinite == "raise"
        index: torch.Tensor | None = None
        observed = None
        if clip is not None and not probe.clips_gradients and not self._sharded and not alarm:
            # A framework clips, the probe only says whether it will: that is the total against the
            # threshold, which the flush has anyway, so this step measures as one without clipping.
            observed, clip = self._threshold32(clip), None
        # Gradients still scaled by a GradScaler are measured unscaled before anything squares them: a
        # bfloat16 loop's scale, never lowered by an overflow, grows without end, and the squares of
        # the scaled norms overflowed float32 once it passed 2**64 (every step recorded Inf, and skipped).
        if not self._stepped:
            self._stepped = True
            self._end_autocast_watch(warn=True)
        verdict, unscale = self._scaler_state(self._one.device)
        if self._sharded or clip is not None or alarm:
            measured = probe.partial_squares(unscale)  # (layers,): the ranks' sum or this step's total needs them
        else:  # the norms of the gradient's pieces: squared and folded into layers at the flush, all steps at once
            measured, index = probe.partial_norms(unscale)
        reduced = not self._sharded
        total_sq = self._nan
        if clip is not None or alarm:
            if not reduced:
                probe.all_reduce(measured)  # this step's total is needed now: one collective
                reduced = True
            total_sq = measured.sum().reshape(1)
        probe_seconds = time.perf_counter() - started
        clipped = self._clip_off
        if clip is not None:
            clipped = self._clip(total_sq, clip).float().reshape(1)
        self.step_count += 1
        self._last_loss = weakref.ref(loss) if isinstance(loss, torch.Tensor) else None
        if self._keep_rows:
            flags = None
            if clipped is not self._clip_off or verdict is not self._verdicts[_NOT_SKIPPED] or total_sq is not self._nan:
                flags = torch.cat([clipped, verdict, total_sq])  # _CLIPPED.. order
            # Only the writing rank records the lr (a rank that only sums squares never reads it).
            step_lr = self.lr if lr is None or self._writer is None else lr
            row = (_loss_value(loss, measured.device), measured, index, flags)
            self._pending.append(row, (self.step_count, started, step_lr, probe_seconds, observed, reduced))
        if alarm:
            self._check_finite(measured, total_sq, verdict)
        if self._sharded:
            if self.step_count >= self._reduce_at:
                self._flush(collective=True)
        elif self._writer is not None and started - self._last_flush >= self.flush_seconds:
            self.flush()

    def _end_autocast_watch(self, warn: bool) -> None:
        watch, self._autocast = self._autocast, None
        if watch is None:
            return
        watch.remove()
        if warn and watch.float16:
            warnings.warn(FORGOTTEN_SCALER, RuntimeWarning, stacklevel=3)

    def _clip_unrecorded(self, clip: float) -> None:
        """Clip as the recording rank's step() does (partial_squares, the sum, _clip), recording
        nothing. Under DDP every rank holds the same averaged gradient: a rank that did not clip it
        (only rank 0 did) trained another model from the first clipped step on, and so did
        ``enabled=False`` in one process. (A framework that clips itself is left to do so.)"""
        probe = self.probe
        if not probe.clips_gradients:
            return
        measured = probe.partial_squares(self._scaler_state(self._one.device)[1])
        if self._sharded:  # (no rank writes: all of them sum, as the writers' steps do)
            probe.all_reduce(measured)
        self._clip(measured.sum().reshape(1), clip)

    def _clip(self, total_sq: torch.Tensor, clip: float) -> torch.Tensor:
        """Clip the gradients to ``clip`` by their total (squared, of the unscaled gradient); whether
        it clipped. One piece of code for every rank: DDP's replicas stay one model only if each
        scales its gradient by the very same factor. (Still scaled, the gradient is scaled by the
        same factor as an unscaled one would be: clipping is a ratio of the norms.)"""
        return self.probe.clip(total_sq.sqrt().reshape(()), float(clip))

    def _threshold32(self, clip: float) -> float:
        """``clip`` rounded to float32, as a device comparison with a float32 norm rounds it (kept for
        the next step: a framework's threshold seldom changes)."""
        last = self._observed
        if last is None or last[0] != clip:
            self._observed = last = (clip, torch.tensor(float(clip), dtype=torch.float32).item())
        return last[1]

    def _scaler_state(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(the scaler's verdict on this step, as a (1,) device tensor; the scale the gradients still
        carry, a (1,) float32 device tensor, or None where they carry none)."""
        scaler = self.scaler
        if scaler is None or not scaler.is_enabled() or scaler._scale is None:
            return self._verdicts[_NOT_SKIPPED], None
        unscaled = [s for s in scaler._per_optimizer_states.values() if s["stage"] is OptState.UNSCALED]
        if unscaled:
            # unscale_(optimizer) ran: the gradients are plain, and the scaler has already found out
            # whether step() will skip (its found_inf flags, summed over optimizers and devices).
            found = [f.to(device) for s in unscaled for f in s["found_inf_per_device"].values()]
            if not found:
                return self._verdicts[_NOT_SKIPPED], None
            flag = torch.stack(found).sum().clamp(max=1.0).reshape(1).float()
            return flag, None
        # Still scaled: step() divides the norms by the scale at once; the scaler's step() will skip
        # iff a gradient is not finite, which the flush reads from the total it has anyway.
        scale = scaler._scale
        kept = self._scale_view
        if kept is None or kept[0] is not scale:
            # A (1,) float32 view of the scaler's own tensor, made once: update() changes it in place.
            view = scale.reshape(1).to(device=device, dtype=torch.float32)
            if view.data_ptr() != scale.data_ptr():  # another device or dtype: a copy, made anew each step
                return self._verdicts[_SCALED], view
            self._scale_view = kept = (scale, view)
        return self._verdicts[_SCALED], kept[1]

    def _check_finite(self, squares: torch.Tensor, total_sq: torch.Tensor, verdict: torch.Tensor) -> None:
        """on_nonfinite="raise": the host read per step that this mode costs (on CUDA a synchronisation)."""
        bad = ~torch.isfinite(total_sq)
        if verdict is not self._verdicts[_NOT_SKIPPED]:
            # The scaler skips the step and lowers its scale, its business: unless the scale is down
            # to 1 already, where the gradient itself is not finite (a NaN halves the scale at every
            # step, for ever, and nothing else would stop the job).
            bad &= (verdict == _NOT_SKIPPED) | self._scale_spent(bad.device)
        if not bool(bad):
            return
        norms = squares.sqrt().tolist()  # the exceptional path: which layer
        origin, count = _alarm_layer(norms)
        self._flush(collective=False)  # every pending row is reduced in this mode: write them all
        raise NonFiniteGradientError(self.step_count, self.probe.layer_names[origin], norms[origin], count)

    # -- writing ------------------------------------------------------------------------------------
    def zero_grad(self) -> None:
        """Zero the gradients (instead of ``optimizer.zero_grad()``): the path with the fewest kernels.

        The first call moves every gradient into one flat buffer, as the built-in trainer keeps them,
        so each later :meth:`step` measures the buffer's rows whatever the number of parameter tensors,
        where the per-tensor path first gathers the separate gradients. The norms are float64, so the
        float32 buffer is converted as the gathering would have been, and on a CPU the two paths
        cost about the same (docs/benchmarks.md, section 6: 1.087 and 1.085 times a plain step of a
        small MLP, side by side). The buffer is zeroed in place, as
        ``optimizer.zero_grad(set_to_none=False)`` does: a parameter that gets no gradient in a step
        keeps zeros rather than None. With ``optimizer.zero_grad()`` (which sets gradients to None) the
        recorder still works, on the per-tensor path; the buffer is only made for those who call this,
        so nobody else pays for its memory. On a rank that does not measure, the gradients are set to
        None. The model's parameters that no layer of the probe holds
        (:attr:`GradientProbe.unprobed`) get None too; a probe made from ``groups`` alone knows no
        others: zero those yourself.
        """
        if self._measuring and not self._flat_tried:
            self._flat_tried = True
            self.probe.use_flat_grads()
        if not self.probe.zero_grad():
            for p in self.probe.params:
                p.grad = None
        for p in self.probe.unprobed:
            p.grad = None

    def flush(self) -> None:
        """Copy every pending step to the host (one transfer), write them and flush the file.

        With a sharded probe this sums the pending squares over the ranks: call it on every rank.
        """
        self._flush(collective=self._sharded)

    def _flush(self, collective: bool) -> int:
        """Write the pending rows that can be written; returns how many could not (not summed yet)."""
        if not self._measuring:
            return 0
        now = time.perf_counter()
        self._last_flush = now
        pending = self._pending
        if collective:
            self._reduce(now)
            ready = len(pending)
        else:  # without the other ranks only the steps already summed can be written, in order
            ready = next((i for i, (*_, reduced) in enumerate(pending.info) if not reduced), len(pending))
        if self._writer is None:
            pending.drop(ready)
            return len(pending)
        if not ready:
            if self._queued and not pending:
                self._write([e for _, e in self._queued])
                self._queued = []
            self._writer.flush()
            return len(pending)
        taken = pending.take(ready)
        n = len(taken)
        _, (_, last_time, *_) = taken[-1]
        if self._last_step_time is None:  # the first steps: timed from the first's start, not from the
            first_time = taken[0][1][1]   # construction (a model built or data loaded in between)
            step_ms = (last_time - first_time) * 1000.0 / (n - 1) if n > 1 else 0.0
        else:
            step_ms = (last_time - self._last_step_time) * 1000.0 / n
        probe_ms = sum(info[3] for _, info in taken) * 1000.0 / n
        self._last_step_time = last_time
        self._write_steps(taken, step_ms, probe_ms, remaining=len(pending))
        if self.on_nonfinite == "warn" and not self._warned:
            self._warn_nonfinite(taken)
        return len(pending)

    def _write_steps(
        self, taken: list[tuple[list[float], _StepInfo]], step_ms: float, probe_ms: float, remaining: int
    ) -> None:
        """Write the step records of ``taken`` (rows from :meth:`_pack`), with the queued remedy
        records in their places, and flush the file.

        Each step goes straight from its row to its line of JSON (:func:`step_line`), without an event
        object in between: at one step a line this is most of what a flush costs per step. The row's
        numbers are float32 (:meth:`_pack`), written with the 9 digits that identify them exactly."""
        assert self._writer is not None
        lines: list[str] = []
        queued = self._queued
        run, t0 = self.run, self._t0
        for i, (row, (step, started, lr, _, observed, _)) in enumerate(taken):
            while queued and queued[0][0] <= i:
                lines.append(encode_event(queued.pop(0)[1]))
            flag = row[ROW_CLIPPED]
            # (both float32 values: the comparison the device would have made)
            clipped = row[ROW_TOTAL] > observed if observed is not None else None if flag < 0 else bool(flag)
            lines.append(step_line(
                run, step, started - t0, row[ROW_LOSS], row[ROW_LAYERS:-1], row[ROW_TOTAL],
                clipped, lr, step_ms, probe_ms, skipped=bool(row[-1]), float32=True,
            ))
        if not remaining:  # remedies marked after the last written step
            lines += [encode_event(e) for _, e in queued]
            queued.clear()
        n = len(taken)
        self._queued = [(at - n, e) for at, e in queued]
        self._writer.write_lines(lines)
        self._writer.flush()

    def _reduce(self, now: float) -> None:
        """Sum the pending rows' squares over the ranks where not yet done, and agree on the next
        reduction, in ONE collective."""
        interval = 0.0
        if self.enabled:
            # Enough steps for about flush_seconds at this rank's pace, at most double the last (a slow
            # first step must not make the next wait long), averaged over the writers by the sum.
            step, when = self._last_reduce
            pace = (self.step_count - step) / max(now - when, 1e-9)
            want = max(1, min(round(self.flush_seconds * pace), 2 * self._interval, _MAX_INTERVAL))
            interval = want / self._writers
        self._last_reduce = (self.step_count, now)
        rows, info = self._pending.rows, self._pending.info
        todo = [i for i, (*_, reduced) in enumerate(info) if not reduced]
        device = self._one.device
        parts = [torch.full((1,), interval, device=device)]
        if todo:  # (a sharded probe's rows hold squares: partial_squares)
            parts.append(torch.stack([rows[i][1] for i in todo]).reshape(-1))
        payload = self.probe.all_reduce(torch.cat(parts))
        if todo:
            summed = payload[1:].reshape(len(todo), -1)
            for k, i in enumerate(todo):
                loss, _, index, flags = rows[i]
                rows[i] = (loss, summed[k], index, flags)
                info[i] = (*info[i][:-1], True)
        # Every rank reads the agreed interval: one host read per reduction, not per step.
        self._interval = max(1, min(round(float(payload[0].item())), _MAX_INTERVAL))
        self._reduce_at = self.step_count + self._interval

    def _pack(self, rows: list[_Row]) -> torch.Tensor:
        """The pending rows as one float32 block (what :meth:`StepBuffer.take` copies to the host):
        ``(steps, 3 + layers + 1)``, loss, clipped, total, layers (ROW_* order), then skipped (0 or 1).

        The norms, measured in float64, are rounded to float32 here, once: the recording's numbers are
        float32 values, written with the 9 digits that identify them (unrounded, their 9 digits named
        no float32), and the total compared with an observed clipping threshold as the device would."""
        n = len(rows)
        losses = _loss_column([row[0] for row in rows], self._one)
        squares = self._layer_squares(rows)
        if all(row[3] is None for row in rows):  # no clipping, no scaler: nothing to decide per step
            norms = self.probe.norms_of(squares).float()
            return torch.cat([losses, self._clip_off.expand(n, 1), norms, self._zero.expand(n, 1)], dim=1)
        default = self._default_flags
        flags = torch.stack([default if row[3] is None else row[3] for row in rows])
        total_sq = torch.where(torch.isnan(flags[:, _TOTAL_SQ]), squares.sum(1), flags[:, _TOTAL_SQ])
        norms = torch.cat([total_sq.unsqueeze(1), squares], dim=1).sqrt_()
        verdict = flags[:, _SKIP]
        skipped = (verdict == _SKIPPED) | ((verdict == _SCALED) & ~torch.isfinite(norms[:, 0]))
        return torch.cat([losses, flags[:, _CLIPPED : _CLIPPED + 1].float(), norms.float(), skipped.float().unsqueeze(1)], dim=1)

    def _layer_squares(self, rows: list[_Row]) -> torch.Tensor:
        """``(steps, layers)`` squared layer norms of the rows: the pieces' norms of each run of steps
        that share a layer index folded together (usually all of them: one stack, one fold)."""
        blocks = []
        start = 0
        while start < len(rows):
            index = rows[start][2]
            end = start + 1
            while end < len(rows) and rows[end][2] is index:
                end += 1
            block = torch.stack([row[1] for row in rows[start:end]])
            blocks.append(block if index is None else self.probe.fold_squares(block, index))
            start = end
        return blocks[0] if len(blocks) == 1 else torch.cat(blocks)

    def _scale_spent(self, device: torch.device) -> torch.Tensor:
        """Whether the scaler's scale is down to 1 or less, as a (1,) bool device tensor: a step it
        skips there is no overflow of the scaling but a gradient that is not finite by itself."""
        scale = self.scaler._scale  # type: ignore[union-attr]  # (set: the scaler has scaled a loss)
        return scale.reshape(1).to(device) <= 1.0

    def _warn_nonfinite(self, taken: list[tuple[list[float], _StepInfo]]) -> None:
        spent = (self.scaler is not None and self.scaler.is_enabled() and self.scaler._scale is not None
                 and any(row[-1] for row, _ in taken) and float(self.scaler._scale) <= 1.0)  # (read at the flush)
        for row, (step, *_) in taken:
            # A step the scaler skips is not news, unless its scale is spent (see _check_finite).
            if (not row[-1] or spent) and not math.isfinite(row[ROW_TOTAL]):
                norms = row[ROW_LAYERS:-1]
                origin, count = _alarm_layer(norms)
                self._warned = True
                warnings.warn(
                    f"vgp-tui: non-finite gradient at step {step}: layer {self.probe.layer_names[origin]!r} "
                    f"has norm {norms[origin]}{more_layers(count)} (warned once; on_nonfinite='raise' stops the job)",
                    RuntimeWarning,
                    stacklevel=_outside_level(),  # step(), close() or a callback: the line that called it
                )
                return

    def log_remedy(self, name: str, old: RemedyValue, new: RemedyValue) -> None:
        """Mark a live change (``"lr"``, ``"clip"``, ...) at the next step, as the dashboard marks a key.

        A change of ``"lr"`` also becomes the learning rate recorded for later steps.
        """
        remedy = get_remedy(name, "Recorder.log_remedy")
        if self._ended:
            self._warn_closed("log_remedy")
            return
        if name == "lr" and new is not None:
            self.lr = float(new)  # type: ignore[arg-type]
        if self._writer is None:
            return
        event = RemedyChanged(
            run=self.run,
            step=self.step_count + 1,
            t=self._now(),
            name=name,
            old=_plain(old),
            new=_plain(new),
            structural=remedy.structural,
        )
        if self._sharded:  # flushing is collective there: the record waits for the next flush, in order
            self._queued.append((len(self._pending), event))
            return
        self.flush()  # keep the records in order: earlier steps first
        self._write([event])

    def close(self, state: str = "finished", message: str = "") -> None:
        """Write the pending steps and a final state record, and close the file (idempotent).

        With a sharded probe this is collective: call it on every rank.
        """
        self._close(state, message, collective=self._sharded)

    def _close(self, state: str, message: str, collective: bool) -> None:
        if not self._measuring and self._writer is None:
            return
        atexit.unregister(self._close_at_exit)
        self._ended = True
        self._end_autocast_watch(warn=False)
        lost = self._flush(collective=collective and _distributed_ready())
        self._measuring = False
        self._pending.drop()
        if self._writer is None:
            return
        if self._queued:
            self._write([e for _, e in self._queued])
            self._queued = []
        end = StateChanged(
            run=self.run,
            step=self.step_count,
            t=self._now(),
            state=state,
            message=(message or f"training loop finished after {self.step_count} steps")
            + (f" ({lost} last steps not written: their norms needed every rank)" if lost else ""),
        )
        self._write([end])
        writer, self._writer = self._writer, None
        writer.close()
        if writer.error:
            warnings.warn(f"vgp-tui: {writer.error}", RuntimeWarning, stacklevel=3)

    @property
    def closed(self) -> bool:
        return self._writer is None and not self._measuring

    @property
    def error(self) -> str | None:
        """Why writing stopped (disk full, file gone), or None; the training loop is never interrupted."""
        return self._writer.error if self._writer is not None else None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        # On an exception the other ranks may not be here: no collective (it could wait forever).
        if exc is None:
            self.close()
        elif isinstance(exc, KeyboardInterrupt):
            self._close("finished", f"interrupted after {self.step_count} steps", collective=False)
        else:
            self._close("error", _describe(exc), collective=False)

    def _warn_closed(self, method: str) -> None:
        # A warning, not an error: a loop may go on for a moment after a signal handler closed the
        # recording, and that must not turn a clean stop into a traceback.
        if not self._warned_closed:
            self._warned_closed = True
            warnings.warn(f"vgp-tui: Recorder.{method}() after close() is not recorded: open a new Recorder "
                          "to record more (warned once)", RuntimeWarning, stacklevel=3)

    def _close_at_exit(self) -> None:
        # The interpreter is exiting without close(): keep the tail, and say so if it died of an error
        # (sys.last_value is set for an uncaught exception before the atexit hooks run).
        failure = getattr(sys, "last_value", None)
        if failure is not None and not isinstance(failure, (KeyboardInterrupt, SystemExit)):
            self._close("error", _describe(failure), collective=False)
        else:
            self.close("finished", f"process exited after {self.step_count} steps")

    # -- helpers ------------------------------------------------------------------------------------
    def _now(self) -> float:
        return time.perf_counter() - self._t0

    def _write(self, events: list[Event]) -> None:
        assert self._writer is not None
        self._writer.write(events)
        self._writer.flush()


def _outside_level() -> int:
    """The ``stacklevel`` that makes a warning of the calling function name the first line outside
    vgp-tui: the user's ``recorder.step()`` however deep inside the Recorder the warning is raised."""
    frame = sys._getframe(2)  # the caller of the function that warns: stacklevel 2
    level = 2
    while frame is not None and frame.f_globals.get("__name__", "").startswith("vgp_tui."):
        frame, level = frame.f_back, level + 1
    return level


def _loss_value(loss: torch.Tensor | float, device: torch.device) -> torch.Tensor | float:
    """The step's loss, copied, since the caller's tensor may be changed in place before the flush
    reads it (an ``all_reduce`` for logging, say). On a CPU the number itself: reading a CPU tensor
    waits for no device, and in a plain loop of the deep-sigmoid MLP the copy as a tensor cost 1.2 %
    of the step where ``.item()`` cost nothing measurable (docs/benchmarks.md, section 6). Elsewhere
    a 0-d float32 tensor on ``device``: reading it would be a host-device synchronisation per step."""
    if isinstance(loss, torch.Tensor):  # (one element: step() checked it)
        if device.type == "cpu" and loss.device.type == "cpu":
            return loss.item()
        value = loss.detach().to(device=device, dtype=torch.float32, copy=True)
        return value if value.dim() == 0 else value.reshape(())
    if device.type == "cpu":
        return loss  # (a float: step() made it one)
    return torch.tensor(loss, device=device, dtype=torch.float32)


def _loss_column(losses: list[torch.Tensor | float], like: torch.Tensor) -> torch.Tensor:
    """``(steps, 1)`` float32 on ``like``'s device: the pending steps' losses (:func:`_loss_value`)."""
    if all(type(v) is float for v in losses):
        return torch.tensor(losses, dtype=torch.float32, device=like.device).unsqueeze(1)
    values = [v if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=torch.float32, device=like.device)
              for v in losses]
    return torch.stack(values).unsqueeze(1)


def _plain(value: object) -> RemedyValue:
    """A remedy value the recording can hold (a tensor or numpy scalar becomes a float)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return float(value)  # type: ignore[arg-type]


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return (text.splitlines() or [type(exc).__name__])[0][:200]
