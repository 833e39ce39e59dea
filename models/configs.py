"""Settings of each model family, as the ``[model]`` table of a preset gives them (no torch here).

Each field is :func:`~vgp_tui.fields.bounded`: its ``metadata`` holds the bounds the preset loader
checks, so the model code and the validation cannot disagree about what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from vgp_tui.fields import bounded

__all__ = ["FAMILY_CONFIGS", "MLPConfig", "ResNetConfig", "SentimentConfig", "SequenceConfig"]


@dataclass(frozen=True)
class MLPConfig:
    """A deep fully connected net: ``depth`` hidden layers of ``width`` units, then a linear head."""

    depth: int = bounded(20, 1, 500)
    width: int = bounded(64, 1, 8192)


@dataclass(frozen=True)
class SequenceConfig:
    """A recurrent net read out from its last hidden state (the adding problem's regressor)."""

    hidden: int = bounded(64, 1, 4096)


@dataclass(frozen=True)
class ResNetConfig:
    """ResNet-18 for 32x32 images; ``width`` scales the 64-128-256-512 channels."""

    ACTIVATION: ClassVar[str] = "relu"
    """Its nonlinearity, fixed (no remedy changes it): what the help plots."""

    width: float = bounded(0.25, 0.03125, 4.0)


@dataclass(frozen=True)
class SentimentConfig:
    """Embedding, a stacked (bi)directional recurrent layer, dropout and a linear head."""

    embed: int = bounded(64, 1, 4096)
    hidden: int = bounded(64, 1, 4096)
    layers: int = bounded(2, 1, 8)
    bidirectional: bool = True
    dropout: float = bounded(0.2, 0.0, 0.9)


FAMILY_CONFIGS: dict[str, type] = {
    "mlp": MLPConfig,
    "sequence": SequenceConfig,
    "resnet": ResNetConfig,
    "sentiment": SentimentConfig,
}
