"""One entry point for every data kind: :func:`load_dataset` returns a whole data set as tensors.

The trainer samples random batches by index from ``Dataset.x`` and ``Dataset.y`` (no DataLoader), so
every loader materialises its data in memory. The real loaders (CIFAR-10, IMDB) read the official file
formats from a folder; where there is none they try one download with a socket timeout, and offline
they raise a one-line :class:`~vgp_tui.errors.UserError` that says how to get the data or to pass
``--synthetic`` for the labelled stand-in. Nothing here imports textual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import vgp_tui.data.synthetic as generated
from vgp_tui.data.dataset import Dataset
from vgp_tui.data.imdb import load_imdb
from vgp_tui.data.specs import DATA_SPECS
from vgp_tui.errors import UserError, closest


def load_dataset(
    kind: str,
    spec: Any = None,
    *,
    data_dir: str | Path | None = None,
    synthetic: bool = False,
    seed: int = 0,
) -> Dataset:
    """Load or generate the data set of ``kind`` (a key of ``DATA_SPECS``) with settings ``spec``.

    Args:
        kind: ``spirals``, ``adding``, ``cifar10`` or ``imdb``.
        spec: that kind's settings dataclass (``vgp_tui.data.specs``); None takes its defaults.
        data_dir: where the real data set lies (``--data-dir``); None uses the cache folder
            (:func:`~vgp_tui.data.download.cache_dir`) and downloads into it where there is a network.
        synthetic: use the labelled synthetic stand-in for cifar10 or imdb (``--synthetic``);
            spirals and adding are always generated.
        seed: seeds generation and the IMDB shuffle; the same seed gives the same tensors.

    Raises:
        UserError: unknown kind, a missing ``--data-dir``, or no copy of a real data set and no way
            to download it.
    """
    spec_type = DATA_SPECS.get(kind)
    if spec_type is None:
        raise UserError(f"unknown data kind '{kind}'; known: {', '.join(DATA_SPECS)}" + closest(kind, DATA_SPECS))
    if spec is None:
        spec = spec_type()
    elif not isinstance(spec, spec_type):
        raise TypeError(f"data kind '{kind}' needs a {spec_type.__name__}, got {type(spec).__name__}")

    if kind == "spirals":
        return generated.spirals(spec, seed)
    if kind == "adding":
        return generated.adding_problem(spec, seed)
    if kind == "cifar10":
        if synthetic:
            return generated.cifar_standin(spec, seed)
        # Imported here, not above: torchvision is slow to import and only CIFAR-10 needs it.
        from vgp_tui.data.cifar import load_cifar10

        return load_cifar10(spec, data_dir=data_dir)
    if kind == "imdb":
        if synthetic:
            return generated.long_range_sentiment(spec, seed)
        return load_imdb(spec, data_dir=data_dir, seed=seed)
    raise AssertionError(f"DATA_SPECS has '{kind}' but load_dataset does not handle it")  # pragma: no cover
