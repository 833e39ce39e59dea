"""The networks of the five scenarios, each with switches for the remedies that apply to it.

No training code lives here. Importing this package does not import torch (the command line lists
presets without it); ``build_model`` imports the family's module when a model is built.

Every model built here offers ``layer_groups()``: ``[(name, [parameters...]), ...]`` from the input
side to the output side, which is how the gradient probe groups parameters into layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .configs import FAMILY_CONFIGS, Task

if TYPE_CHECKING:
    from torch import nn

__all__ = ["FAMILY_CONFIGS", "Task", "build_model"]


def build_model(family: str, config: Any, remedies: Mapping[str, Any], task: Task) -> nn.Module:
    """Build the ``family`` network from its config, the structural remedy values and the task."""
    if family == "mlp":
        from .mlp import DeepMLP

        return DeepMLP(config, task, **_pick(remedies, "activation", "init", "batchnorm", "skip"))
    if family == "sequence":
        from .sequence import SequenceRegressor

        return SequenceRegressor(config, task, **_pick(remedies, "cell", "init"))
    if family == "resnet":
        from .resnet import ResNet18

        return ResNet18(config, task, **_pick(remedies, "init", "batchnorm", "skip"))
    if family == "sentiment":
        from .sentiment import SentimentLSTM

        return SentimentLSTM(config, task, **_pick(remedies, "cell"))
    raise ValueError(f"unknown model family {family!r}")


def _pick(remedies: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """The structural remedies a family takes; those a preset does not list keep the model default."""
    return {n: remedies[n] for n in names if n in remedies}
