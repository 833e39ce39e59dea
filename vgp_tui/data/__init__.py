"""Data for the scenarios: synthetic tasks made in-process, and the real CIFAR-10 and IMDB loaders.

Importing this package does not import torch; ``load_dataset`` (from ``vgp_tui.data.loading``) and
``Dataset`` (from ``vgp_tui.data.dataset``), which import torch, are looked up the first time they are
used, so listing presets and validating them stays fast.

The modules import one way only: ``loading`` picks the loader of a kind (``synthetic``, ``cifar``,
``imdb``); the loaders build a ``dataset.Dataset`` and share ``download`` (the cache folder and the
one download); ``specs`` (settings and ``Task``) is under all of them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from vgp_tui.data.specs import DATA_SPECS

if TYPE_CHECKING:
    from vgp_tui.data.dataset import Dataset
    from vgp_tui.data.loading import load_dataset

__all__ = ["DATA_SPECS", "Dataset", "load_dataset"]

_LAZY = {"Dataset": "vgp_tui.data.dataset", "load_dataset": "vgp_tui.data.loading"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
