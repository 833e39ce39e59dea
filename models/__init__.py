"""The networks of the five scenarios, each with switches for the remedies that apply to it.

No training code lives here. Importing this package does not import torch (the command line lists
presets without it); ``build_model`` imports the family's module when a model is built.

Every model built here offers ``layer_groups()``: ``[(name, [parameters...]), ...]`` from the input
side to the output side, which is how the gradient probe groups parameters into layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vgp_tui.engine.remedies import structural_for

from vgp_tui.data.specs import Task

from .configs import FAMILY_CONFIGS

if TYPE_CHECKING:
    from torch import nn

__all__ = ["FAMILY_CONFIGS", "Task", "build_model"]


def build_model(family: str, config: Any, remedies: Mapping[str, Any], task: Task) -> nn.Module:
    """Build the ``family`` network from its config, the structural remedy values and the task."""
    # The registry says which structural remedies each family takes; those a preset does not list
    # keep the model's default.
    switches = {n: remedies[n] for n in structural_for(family) if n in remedies}
    if family == "mlp":
        from .mlp import DeepMLP

        return DeepMLP(config, task, **switches)
    if family == "sequence":
        from .sequence import SequenceRegressor

        return SequenceRegressor(config, task, **switches)
    if family == "resnet":
        from .resnet import ResNet18

        return ResNet18(config, task, **switches)
    if family == "sentiment":
        from .sentiment import SentimentLSTM

        return SentimentLSTM(config, task, **switches)
    raise ValueError(f"unknown model family {family!r}")
