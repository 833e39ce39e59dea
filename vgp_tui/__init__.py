"""vgp-tui: watch gradients vanish or explode, layer by layer, live in the terminal.

The public API for your own training loop is :class:`GradientProbe` and :class:`Recorder` (see the
README, "Watch your own training loop"). They are imported on first use, so ``import vgp_tui`` and the
command line's fast paths do not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from vgp_tui._version import __version__

__all__ = ["GradientProbe", "NoGradientError", "NonFiniteGradientError", "Recorder", "__version__"]

_LAZY = {
    "GradientProbe": "vgp_tui.engine.probe",
    "NoGradientError": "vgp_tui.engine.probe",
    "Recorder": "vgp_tui.engine.instrument",
    "NonFiniteGradientError": "vgp_tui.engine.instrument",
}

if TYPE_CHECKING:
    from vgp_tui.engine.instrument import NonFiniteGradientError, Recorder
    from vgp_tui.engine.probe import GradientProbe, NoGradientError


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vgp_tui' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
