"""A model whose gradient vanishes far enough to test exactness: the first layers' norms are 1e-27 to
1e-22, whose elements' float32 squares are 0 (and, up to about 1e-19, subnormal)."""

from __future__ import annotations

import torch
from torch import nn


def deep_sigmoid(depth: int = 31) -> nn.Module:
    """``depth`` linear layers 64 wide with sigmoids between, 2 inputs and 3 outputs, seeded."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(2, 64), nn.Sigmoid()]
    for _ in range(depth - 2):
        layers += [nn.Linear(64, 64), nn.Sigmoid()]
    return nn.Sequential(*layers, nn.Linear(64, 3))
