"""The data set every loader returns: the whole of it in memory, as tensors, with its Task."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vgp_tui.data.specs import Task


@dataclass(frozen=True, eq=False)
class Dataset:
    """A whole data set in memory. ``eq=False``: two data sets are compared by identity, because
    field-wise ``==`` on tensors has no single truth value."""

    x: torch.Tensor
    """Inputs, one example per row: float features/images/sequences, or long token ids."""
    y: torch.Tensor
    """Targets: long class ids (``task.kind == "classify"``) or float values of shape (N,) (``regress``)."""
    task: Task
    label: str
    """What the screen shows, e.g. ``CIFAR-10 (50000 images)`` or ``synthetic stand-in for CIFAR-10``."""
    synthetic: bool
    """True where the data was generated in-process (spirals, adding problem, the stand-ins)."""
    stand_in: bool = False
    """True for a synthetic stand-in of a real data set (``--synthetic``): its runs say so
    (``RunStarted.stand_in``), and the status line marks the preset "(synthetic)"."""

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} examples but y has {self.y.shape[0]}")
        if tuple(self.x.shape[1:]) != tuple(self.task.input_shape):
            raise ValueError(f"x examples have shape {tuple(self.x.shape[1:])}, task says {self.task.input_shape}")

    def __len__(self) -> int:
        return int(self.x.shape[0])
