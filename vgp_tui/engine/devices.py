"""Which device to train on (``auto`` takes CUDA, then MPS, then the CPU), and with how many CPU threads."""

from __future__ import annotations

import os
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
            devices = "1 CUDA device (cuda:0)" if count == 1 else f"{count} CUDA devices (cuda:0 to cuda:{count - 1})"
            raise UserError(f"--device {name}: this machine has {devices}")
        return name
    if name == "mps" and not _mps_available():
        raise UserError("--device mps: Apple's MPS backend is not available here; use --device cpu or auto")
    return name


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def training_threads(device: str, requested: int | None = None) -> int | None:
    """How many intra-op threads training on ``device`` should use: on the CPU ``requested`` (the
    ``--threads`` option), else one fewer than the cores this process may run on (at least one);
    None elsewhere (torch's default is left alone).

    PyTorch's intra-op threads spin while they wait; when another thread (the dashboard's, another
    process's) needs a core they are on, every step stalls. Measured on two busy cores with the
    20x64 sigmoid MLP: 45 ms a step with two threads, 4.8 ms with one; 300 steps headless took 199 s
    with two threads and 15.8 s with one.
    """
    if device != "cpu":
        return None
    return requested or max(1, _usable_cores() - 1)


def shared_threads(sessions: int) -> int:
    """Threads for each of ``sessions`` processes training on this machine's CPU at once (``serve
    --demo``): the cores less one, shared; each taking :func:`training_threads`'s all would put
    twice as many spinning threads as cores on the machine, and every step of every session stalls."""
    return max(1, (_usable_cores() - 1) // max(sessions, 1))


def use_training_threads(device: str, requested: int | None = None) -> int | None:
    """Apply :func:`training_threads` to torch; returns the thread count set (None: left alone)."""
    threads = training_threads(device, requested)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return threads


def _usable_cores() -> int:
    # The affinity mask, not os.cpu_count(): a container or taskset may allow fewer cores than exist.
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1
