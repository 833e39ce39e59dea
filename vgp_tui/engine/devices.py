"""Which device to train on: ``auto`` takes CUDA, then MPS, then the CPU."""

from __future__ import annotations

import re

from vgp_tui.errors import UserError

_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(name: str) -> str:
    """A torch device string for ``name``, or a UserError if that device is not on this machine."""
    import torch

    name = name.strip().lower()
    if not _PATTERN.match(name):
        raise UserError(f"--device must be auto, cpu, cuda, cuda:N or mps, got '{name}'")
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if _mps_available():
            return "mps"
        return "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: no CUDA device is available here; use --device cpu or auto")
        index = int(name.split(":")[1]) if ":" in name else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise UserError(f"--device {name}: this machine has {count} CUDA device(s) (cuda:0 to cuda:{count - 1})")
        return name
    if name == "mps" and not _mps_available():
        raise UserError("--device mps: Apple's MPS backend is not available here; use --device cpu or auto")
    return name


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())
