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

Each ``step`` measures the per-layer gradient norms with the probe's one fused norm and keeps them on
the device as one small row; every ``flush_seconds`` all pending rows are copied to the host with one
transfer and written as ``step`` records (docs/recording-format.md), and the file is flushed, so a
reader following it sees a step within about ``flush_seconds`` and a crash loses at most that much.
There is no ``.item()`` and, on CUDA, no host-device synchronisation between flushes.
"""

from __future__ import annotations

import atexit
import os
import platform
import sys
import time
import warnings
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

import torch

from vgp_tui.engine.events import Event, RemedyChanged, RunStarted, SessionHeader, StateChanged, step_from_row
from vgp_tui.engine.probe import GradientProbe
from vgp_tui.engine.recording import RecordingWriter
from vgp_tui.engine.remedies import RemedyValue, get_remedy


def is_main_process() -> bool:
    """Rank 0 of a ``torch.distributed`` job (or of a ``torchrun`` launch not yet initialised)."""
    dist = getattr(torch, "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return bool(dist.get_rank() == 0)
    return os.environ.get("RANK", "0").strip() in ("", "0")


class Recorder:
    """Writes a vgp-tui recording of your training loop: call :meth:`step` after every ``backward()``.

    Args:
        path: the JSON-lines file to write (replaced if it exists).
        probe: a :class:`GradientProbe` of the model; its layer names go into the ``run`` record.
        preset: the name shown as the preset in the dashboard.
        lr: the learning rate, recorded with every step that does not pass its own ``lr``.
        remedies: remedy values to show, e.g. ``{"activation": "relu", "init": "he"}`` (names and values
            as ``vgp-tui --remedy`` takes them).
        flush_seconds: how often pending steps are copied to the host, written and flushed to the file.
        enabled: ``None`` (the default) records on the main process only: rank 0 of an initialised
            ``torch.distributed`` group, else where the ``RANK`` environment variable is absent or 0
            (``torchrun`` sets it). A disabled Recorder opens no file and its :meth:`step` returns at
            once without measuring anything, so it costs nothing on the other ranks.

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
        flush_seconds: float = 0.5,
        enabled: bool | None = None,
    ) -> None:
        self.path = Path(path)
        self.probe = probe
        self._flat_tried = False
        self.enabled = is_main_process() if enabled is None else bool(enabled)
        self.lr = float(lr) if lr is not None else 0.0
        self.flush_seconds = flush_seconds
        self.step_count = 0
        self.run = 1
        self._writer: RecordingWriter | None = None
        if not self.enabled:
            return
        values: dict[str, RemedyValue] = {}
        if lr is not None and 0.0 < lr <= get_remedy("lr").maximum:  # (a warm-up may start at 0)
            values["lr"] = float(lr)
        for name, raw in (remedies or {}).items():
            values[name] = get_remedy(name, "Recorder").parse(raw, "Recorder")
        device = probe.params[0].device
        self._t0 = time.perf_counter()
        self._rows: list[torch.Tensor] = []
        self._meta: list[tuple[int, float, float, float]] = []  # step, its start time, lr, probe seconds
        self._last_flush = self._t0
        self._last_step_time = self._t0  # time of the last step already written (for step_ms)
        self._clip_off = torch.full((), -1.0, device=device)
        header = SessionHeader(
            preset=preset,
            device=str(device),
            started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            versions={"vgp_tui": _version(), "torch": torch.__version__, "python": platform.python_version()},
        )
        self._writer = RecordingWriter(self.path, header, flush_seconds=flush_seconds)
        run = RunStarted(
            run=self.run,
            t=self._now(),
            preset=preset,
            layers=probe.layer_names,
            remedies=values,
            seed=torch.initial_seed(),
            params=sum(p.numel() for p in probe.params),
        )
        self._write([run])
        atexit.register(self._close_at_exit)

    # -- the hot path -------------------------------------------------------------------------------
    def step(self, loss: torch.Tensor | float, lr: float | None = None, clip: float | None = None) -> None:
        """Measure this step's gradients (after ``backward()``, before ``optimizer.step()``).

        Args:
            loss: the step's loss, a one-element tensor (kept on the device) or a number.
            lr: the learning rate of this step (default: the constructor's ``lr``, or 0).
            clip: clip the gradients to this total norm, as ``clip_grad_norm_`` would, reusing the
                measured norm (no second pass); the record says whether it clipped. None: no clipping.
        """
        if self._writer is None:  # another rank's recorder, or a closed one: nothing to do
            return
        started = time.perf_counter()
        layer_norms, total = self.probe.measure()
        probe_seconds = time.perf_counter() - started
        clipped = self.probe.clip(total, float(clip)).float() if clip is not None else self._clip_off
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:
                raise ValueError(f"Recorder.step expects a one-element loss, got shape {tuple(loss.shape)}")
            value = loss.detach().reshape(1).to(device=total.device, dtype=total.dtype)
        else:
            value = torch.full((1,), float(loss), device=total.device, dtype=total.dtype)
        self._rows.append(torch.cat([value, clipped.reshape(1), total.reshape(1), layer_norms]))  # ROW_* order
        self.step_count += 1
        self._meta.append((self.step_count, started, self.lr if lr is None else float(lr), probe_seconds))
        if started - self._last_flush >= self.flush_seconds:
            self.flush()

    # -- writing ------------------------------------------------------------------------------------
    def zero_grad(self) -> None:
        """Zero the gradients in place (instead of ``optimizer.zero_grad()``): the fast path.

        The first call moves every gradient into one flat buffer, as the built-in trainer keeps them,
        so each later :meth:`step` measures with one kernel whatever the number of parameter tensors.
        With ``optimizer.zero_grad()`` (which sets gradients to None) the recorder still works, on the
        per-tensor path; the buffer is only made for those who call this, so nobody else pays for its
        memory.
        """
        if not self.enabled:
            return
        if not self._flat_tried:
            self._flat_tried = True
            self.probe.use_flat_grads()
        if not self.probe.zero_grad():
            for p in self.probe.params:
                p.grad = None

    def flush(self) -> None:
        """Copy every pending step to the host (one transfer), write them and flush the file."""
        if self._writer is None:
            return
        self._last_flush = time.perf_counter()
        if not self._rows:
            self._writer.flush()
            return
        rows = torch.stack(self._rows).tolist()
        meta = self._meta
        n = len(meta)
        last_time = meta[-1][1]
        step_ms = (last_time - self._last_step_time) * 1000.0 / n
        probe_ms = sum(m[3] for m in meta) * 1000.0 / n
        events = [
            step_from_row(self.run, step, started - self._t0, row, lr, step_ms, probe_ms)
            for (step, started, lr, _), row in zip(meta, rows)
        ]
        self._rows = []
        self._meta = []
        self._last_step_time = last_time
        self._write(events)

    def log_remedy(self, name: str, old: RemedyValue, new: RemedyValue) -> None:
        """Mark a live change (``"lr"``, ``"clip"``, ...) at the next step, as the dashboard marks a key.

        A change of ``"lr"`` also becomes the learning rate recorded for later steps.
        """
        remedy = get_remedy(name, "Recorder.log_remedy")
        if name == "lr" and new is not None:
            self.lr = float(new)  # type: ignore[arg-type]
        if self._writer is None:
            return
        self.flush()  # keep the records in order: earlier steps first
        event = RemedyChanged(
            run=self.run,
            step=self.step_count + 1,
            t=self._now(),
            name=name,
            old=_plain(old),
            new=_plain(new),
            structural=remedy.structural,
        )
        self._write([event])

    def close(self, state: str = "finished", message: str = "") -> None:
        """Write the pending steps and a final state record, and close the file (idempotent)."""
        if self._writer is None:
            return
        atexit.unregister(self._close_at_exit)
        self.flush()
        end = StateChanged(
            run=self.run,
            step=self.step_count,
            t=self._now(),
            state=state,
            message=message or f"training loop finished after {self.step_count} steps",
        )
        self._write([end])
        writer, self._writer = self._writer, None
        writer.close()
        if writer.error:
            warnings.warn(f"vgp-tui: {writer.error}", RuntimeWarning, stacklevel=2)

    @property
    def closed(self) -> bool:
        return self._writer is None

    @property
    def error(self) -> str | None:
        """Why writing stopped (disk full, file gone), or None; the training loop is never interrupted."""
        return self._writer.error if self._writer is not None else None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            self.close()
        elif isinstance(exc, KeyboardInterrupt):
            self.close("finished", f"interrupted after {self.step_count} steps")
        else:
            self.close("error", _describe(exc))

    def _close_at_exit(self) -> None:
        # The interpreter is exiting without close(): keep the tail, and say so if it died of an error
        # (sys.last_value is set for an uncaught exception before the atexit hooks run).
        failure = getattr(sys, "last_value", None)
        if failure is not None and not isinstance(failure, (KeyboardInterrupt, SystemExit)):
            self.close("error", _describe(failure))
        else:
            self.close("finished", f"process exited after {self.step_count} steps")

    # -- helpers ------------------------------------------------------------------------------------
    def _now(self) -> float:
        return time.perf_counter() - self._t0

    def _write(self, events: list[Event]) -> None:
        assert self._writer is not None
        self._writer.write(events)
        self._writer.flush()


def _plain(value: object) -> RemedyValue:
    """A remedy value the recording can hold (a tensor or numpy scalar becomes a float)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return float(value)  # type: ignore[arg-type]


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return (text.splitlines() or [type(exc).__name__])[0][:200]


def _version() -> str:
    from vgp_tui import __version__

    return __version__
