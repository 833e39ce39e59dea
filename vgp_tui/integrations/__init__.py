"""Record a run of another framework's trainer for ``vgp-tui replay --follow``, in its own callback shape.

* :mod:`vgp_tui.integrations.lightning`: ``VgpTuiCallback`` for ``lightning.pytorch.Trainer``
  (``pip install 'vgp-tui[lightning]'``).
* :mod:`vgp_tui.integrations.huggingface`: ``VgpTuiCallback`` for ``transformers.Trainer``
  (``pip install 'vgp-tui[huggingface]'``).

Each is an optional extra: this package imports neither framework, and ``import vgp_tui`` imports
none of it, so vgp-tui installs and runs without them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from vgp_tui.engine.instrument import Recorder, is_main_process
from vgp_tui.engine.probe import GradientProbe
from vgp_tui.engine.remedies import get_remedy
from vgp_tui.errors import UserError


def missing(framework: str, extra: str, error: ImportError) -> ImportError:
    """The ImportError to raise when ``framework`` is not installed: it names the extra that brings it."""
    return ImportError(
        f"vgp_tui.integrations.{extra} needs {framework}: pip install 'vgp-tui[{extra}]' ({error})"
    )


class ObservedClipProbe(GradientProbe):
    """A probe whose ``clip`` only says whether clipping will scale the gradient down, and scales nothing.

    With it ``Recorder.step(loss, clip=threshold)`` records the norm before clipping and the clipped
    flag, while the framework clips the gradient itself, with its own ``clip_grad_norm_`` call: clipping
    here too would scale the gradient a second time (by a factor within 1e-6 of 1), and the run would no
    longer train exactly as it does without vgp-tui.
    """

    clips_gradients = False  # so the Recorder decides "clipped" from the total at the flush, no kernel a step

    def clip(self, total_norm: torch.Tensor, max_norm: float) -> torch.Tensor:
        return total_norm > max_norm


def run_remedies(clip: float | None, accumulate: int) -> dict[str, object]:
    """The remedies the dashboard shows for the run: the clip threshold (None: off) and the accumulation."""
    remedies: dict[str, object] = {"clip": clip}
    limits = get_remedy("accumulate")
    if limits.minimum <= accumulate <= limits.maximum:  # the dashboard's range; beyond it, left out
        remedies["accumulate"] = accumulate
    return remedies


_SET_BY_THE_CALLBACK = ("path", "probe", "continues", "first_step")
"""Recorder arguments a callback decides itself: the others can be passed to it (``remedies=``, ...)."""


def recording_path(path: str | Path) -> Path:
    """``path`` checked where the callback is made, on the rank that will write it (another rank's
    disk may lack the folder): a folder that was not there failed only once the Trainer started,
    after its setup, in a traceback from inside the framework."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"VgpTuiCallback's path must be the recording's file name (a str or Path), not "
                        f"{type(path).__name__} {path!r}")
    target = Path(path)
    if is_main_process():
        if target.is_dir():
            raise UserError(f"VgpTuiCallback({str(path)!r}): that is a folder: give the name of a file in it")
        if not target.parent.is_dir():
            raise UserError(f"VgpTuiCallback({str(path)!r}): folder '{target.parent}' does not exist (create it first)")
    return target


def check_recorder_options(options: dict[str, Any]) -> None:
    """The Recorder options passed to a callback, checked by name where it is made: a misspelt one
    failed only once training started, after the framework's setup, as a TypeError of Recorder's."""
    import inspect

    own = ("path", "preset", "flush_seconds")  # (the callback's own arguments, before these)
    takes = [name for name in inspect.signature(Recorder).parameters if name not in (*_SET_BY_THE_CALLBACK, *own)]
    for name in options:
        if name not in takes:
            raise TypeError(f"VgpTuiCallback got an unexpected keyword argument {name!r}: it takes "
                            f"{', '.join(own)} and these of vgp_tui.Recorder: {', '.join(takes)}")


def for_another_trainer(given_to: str) -> TypeError:
    """The error of a callback given to the other framework's Trainer (``given_to``: "lightning" or
    "huggingface"): that Trainer called a hook the callback does not have, an AttributeError that
    named the hook and not the mistake."""
    trainers = {"lightning": "lightning.pytorch.Trainer", "huggingface": "transformers.Trainer"}
    made_for = next(name for name in trainers if name != given_to)
    return TypeError(f"vgp_tui.integrations.{made_for}.VgpTuiCallback is for {trainers[made_for]}: with "
                     f"{trainers[given_to]} use vgp_tui.integrations.{given_to}.VgpTuiCallback")


def open_recorder(path: Path, model: torch.nn.Module, *, name: str, lr: float | None, clip: float | None,
                  accumulate: int, enabled: bool, scaler: Any, options: dict[str, Any],
                  continues: Recorder | None, global_step: int) -> Recorder:
    """The Recorder of a framework's run: its clip threshold and accumulation shown as remedies (with
    any the user passed), its GradScaler known (the gradients measured are already unscaled), the
    framework's clipping observed, not repeated (:class:`ObservedClipProbe`).

    ``continues``: the callback's Recorder of its last training, if any: a second ``fit()`` or
    ``train()`` with the same callback (resumed, or trained on) is the recording's next run, appended,
    where it replaced the first without a word. ``global_step``: the optimizer steps the framework
    has made (a resumed training's): the steps are numbered on from there, as the framework counts."""
    extra = dict(options)  # the user's Recorder options win, as passed to the callback
    remedies = {**run_remedies(clip, accumulate), **extra.pop("remedies", {})}
    kwargs: dict[str, Any] = {"preset": name, "lr": lr, "enabled": enabled, "scaler": scaler, **extra}
    return Recorder(path, ObservedClipProbe(model), remedies=remedies, continues=continues,
                    first_step=global_step + 1, **kwargs)
