"""What the data is, without torch: the settings of each data kind, as the ``[data]`` table of a
preset gives them, and the :class:`Task` each data set poses to a model."""

from __future__ import annotations

from dataclasses import dataclass

from vgp_tui.fields import bounded


@dataclass(frozen=True)
class Task:
    """What the data asks of a model: the shape of one input and the kind of output."""

    kind: str
    """One of: classify (cross-entropy over ``classes``), regress (mean squared error, one output)."""
    input_shape: tuple[int, ...]
    """Shape of one example: (features,), (time, features), (channels, height, width) or (time,) tokens."""
    classes: int = 1
    vocab: int = 0
    """Vocabulary size for token inputs, 0 otherwise."""


@dataclass(frozen=True)
class SpiralsSpec:
    """Interleaved 2-D spirals, one arm per class: easy to plot, hard for a starved first layer."""

    samples: int = bounded(4096, 2, 10_000_000)
    classes: int = bounded(3, 2, 100)
    noise: float = bounded(0.1, 0.0, 10.0)


@dataclass(frozen=True)
class AddingSpec:
    """The adding problem (Hochreiter & Schmidhuber 1997): sum the two marked numbers of a sequence."""

    samples: int = bounded(4096, 2, 10_000_000)
    length: int = bounded(100, 2, 100_000)


@dataclass(frozen=True)
class Cifar10Spec:
    """CIFAR-10 through torchvision; ``samples`` = 0 keeps all 50 000 training images."""

    samples: int = bounded(0, 0, 50_000)


@dataclass(frozen=True)
class ImdbSpec:
    """IMDB reviews from the aclImdb folder layout, as token ids of a ``vocab``-word vocabulary."""

    samples: int = bounded(0, 0, 50_000)
    length: int = bounded(200, 2, 100_000)
    vocab: int = bounded(10_000, 10, 1_000_000)


DATA_SPECS: dict[str, type] = {
    "spirals": SpiralsSpec,
    "adding": AddingSpec,
    "cifar10": Cifar10Spec,
    "imdb": ImdbSpec,
}
"""Data kinds by name. cifar10 and imdb fall back to a labelled synthetic stand-in with --synthetic."""
