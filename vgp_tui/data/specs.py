"""Settings of each data kind, as the ``[data]`` table of a preset gives them (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

from vgp_tui.models.configs import bounded


@dataclass(frozen=True)
class SpiralsSpec:
    """Interleaved 2-D spirals, one arm per class: easy to plot, hard for a starved first layer."""

    samples: int = bounded(4096, 2, 10_000_000)  # type: ignore[assignment]
    classes: int = bounded(3, 2, 100)  # type: ignore[assignment]
    noise: float = bounded(0.1, 0.0, 10.0)  # type: ignore[assignment]


@dataclass(frozen=True)
class AddingSpec:
    """The adding problem (Hochreiter & Schmidhuber 1997): sum the two marked numbers of a sequence."""

    samples: int = bounded(4096, 2, 10_000_000)  # type: ignore[assignment]
    length: int = bounded(100, 2, 100_000)  # type: ignore[assignment]


@dataclass(frozen=True)
class Cifar10Spec:
    """CIFAR-10 through torchvision; ``samples`` = 0 keeps all 50 000 training images."""

    samples: int = bounded(0, 0, 50_000)  # type: ignore[assignment]


@dataclass(frozen=True)
class ImdbSpec:
    """IMDB reviews from the aclImdb folder layout, as token ids of a ``vocab``-word vocabulary."""

    samples: int = bounded(0, 0, 50_000)  # type: ignore[assignment]
    length: int = bounded(200, 2, 100_000)  # type: ignore[assignment]
    vocab: int = bounded(10_000, 10, 1_000_000)  # type: ignore[assignment]


DATA_SPECS: dict[str, type] = {
    "spirals": SpiralsSpec,
    "adding": AddingSpec,
    "cifar10": Cifar10Spec,
    "imdb": ImdbSpec,
}
"""Data kinds by name. cifar10 and imdb fall back to a labelled synthetic stand-in with --synthetic."""
