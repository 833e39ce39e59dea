"""Whether a model runs under float16 autocast while its Recorder was given no GradScaler.

float16 autocast nearly always goes with a ``torch.amp.GradScaler``, which multiplies the loss (by
65 536 at its start) before ``backward()``. A Recorder not given that scaler records the scaled
gradients' norms, and each step the scaler skips as an Inf: the dashboard then shows gradients
thousands of times too large and an explosion that is not there. Nothing in a gradient tells a scaled
one from a plain one, so the model's forward is watched instead: a forward pre-hook on the module the
probe was made from, removed at the first step, so that it costs nothing after it. bfloat16 needs no
scaler and is not watched for.
"""

from __future__ import annotations

import torch
from torch import nn

FORGOTTEN_SCALER = (
    "vgp-tui: the model ran under float16 autocast and the Recorder was given no scaler: if a "
    "torch.amp.GradScaler scales the loss, pass it as Recorder(..., scaler=scaler), or the norms "
    "recorded are those of the scaled gradients (65536 times too large at the scaler's start) and "
    "the steps it skips read as Inf"
)


class AutocastWatch:
    """Notes whether the module's forward ran under float16 autocast, until :meth:`remove`."""

    def __init__(self, module: nn.Module, device_type: str) -> None:
        self.device_type = device_type
        self.seen = False
        """A forward ran since the watch began."""
        self.float16 = False
        """One of them ran under float16 autocast on the parameters' device type."""
        self._handle = module.register_forward_pre_hook(self._check)

    def _check(self, module: nn.Module, args: object) -> None:
        self.seen = True
        kind = self.device_type
        if torch.is_autocast_enabled(kind) and torch.get_autocast_dtype(kind) == torch.float16:
            self.float16 = True

    def remove(self) -> None:
        self._handle.remove()
