"""Data for the scenarios: synthetic tasks made in-process, and the real CIFAR-10 and IMDB loaders.

Importing this package does not import torch; ``load_dataset`` does, when data is needed.
"""

from vgp_tui.data.specs import DATA_SPECS

__all__ = ["DATA_SPECS"]
