"""Settings of each model family, as the ``[model]`` table of a preset gives them (no torch here).

Each field's ``metadata`` holds the bounds the preset loader checks, so the model code and the
validation cannot disagree about what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def bounded(default: object, low: float, high: float) -> object:
    """A dataclass field whose value must lie in [low, high]."""
    return field(default=default, metadata={"min": low, "max": high})


@dataclass(frozen=True)
class MLPConfig:
    """A deep fully connected net: ``depth`` hidden layers of ``width`` units, then a linear head."""

    depth: int = bounded(20, 1, 500)  # type: ignore[assignment]
    width: int = bounded(64, 1, 8192)  # type: ignore[assignment]


@dataclass(frozen=True)
class SequenceConfig:
    """A recurrent net read out from its last hidden state (the adding problem's regressor)."""

    hidden: int = bounded(64, 1, 4096)  # type: ignore[assignment]


@dataclass(frozen=True)
class ResNetConfig:
    """ResNet-18 for 32x32 images; ``width`` scales the 64-128-256-512 channels."""

    width: float = bounded(0.25, 0.03125, 4.0)  # type: ignore[assignment]


@dataclass(frozen=True)
class SentimentConfig:
    """Embedding, a stacked (bi)directional recurrent layer, dropout and a linear head."""

    embed: int = bounded(64, 1, 4096)  # type: ignore[assignment]
    hidden: int = bounded(64, 1, 4096)  # type: ignore[assignment]
    layers: int = bounded(2, 1, 8)  # type: ignore[assignment]
    bidirectional: bool = True
    dropout: float = bounded(0.2, 0.0, 0.9)  # type: ignore[assignment]


FAMILY_CONFIGS: dict[str, type] = {
    "mlp": MLPConfig,
    "sequence": SequenceConfig,
    "resnet": ResNetConfig,
    "sentiment": SentimentConfig,
}


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
