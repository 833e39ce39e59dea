"""StepBuffer: measured steps that wait on the device until one transfer copies them to the host.

The Trainer and the Recorder both keep each step's measurement on the device (a packed row, or the
parts of one) with what the host knows about the step beside it (its number, time, learning rate).
Reading a device value costs a host-device synchronisation on CUDA, so nothing is read per step:
:meth:`StepBuffer.take` packs a batch of rows into one ``(steps, columns)`` tensor and copies it with
one ``.tolist()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import torch

Row = TypeVar("Row")
Info = TypeVar("Info")


class StepBuffer(Generic[Row, Info]):
    """Pending steps, oldest first: a device-side row per step and the step's host-side info.

    Args:
        pack: turns a batch of rows into one ``(steps, columns)`` device tensor (stacking, folding
            per-row norms into layers, ...): the work done once per batch rather than once per step.
    """

    def __init__(self, pack: Callable[[list[Row]], torch.Tensor]) -> None:
        self._pack = pack
        self.rows: list[Row] = []
        """Pending rows; the Recorder replaces a row here once its squares are summed over the ranks."""
        self.info: list[Info] = []
        """What the host knows of each pending step, in the order of ``rows``."""

    def __len__(self) -> int:
        return len(self.rows)

    def append(self, row: Row, info: Info) -> None:
        """Keep one step: two list appends, nothing read from the device."""
        self.rows.append(row)
        self.info.append(info)

    def take(self, count: int | None = None) -> list[tuple[list[float], Info]]:
        """Remove the oldest ``count`` steps (all by default) and return each one's row values on the
        host with its info; the rows are packed together and copied with ONE ``.tolist()``."""
        rows, info = self._split(count)
        if not rows:
            return []
        values = self._pack(rows).tolist()  # the one host transfer
        return list(zip(values, info))

    def drop(self, count: int | None = None) -> None:
        """Remove the oldest ``count`` steps (all by default) without copying them anywhere."""
        self._split(count)

    def _split(self, count: int | None) -> tuple[list[Row], list[Info]]:
        if count is None or count >= len(self.rows):
            rows, info = self.rows, self.info
            self.rows, self.info = [], []
        else:
            rows, self.rows = self.rows[:count], self.rows[count:]
            info, self.info = self.info[:count], self.info[count:]
        return rows, info
