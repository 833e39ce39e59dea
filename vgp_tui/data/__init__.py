"""Data for the scenarios: synthetic tasks made in-process, and the real CIFAR-10 and IMDB loaders.

Importing this package does not import torch; ``load_dataset`` and ``Dataset`` are looked up from
``vgp_tui.data.loading`` (which imports torch) the first time they are used, so listing presets and
validating them stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vgp_tui.data.specs import DATA_SPECS

if TYPE_CHECKING:
    from vgp_tui.data.loading import Dataset, load_dataset

__all__ = ["DATA_SPECS", "Dataset", "load_dataset"]

_LAZY = {"Dataset", "load_dataset"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from vgp_tui.data import loading

        return getattr(loading, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
