"""Bounded settings: the dataclass fields whose range the preset loader checks.

Model configs and data specs both declare their fields with :func:`bounded`, and
:mod:`vgp_tui.scenario` reads the bounds back from each field's ``metadata``, so the code that uses a
setting and the validation of a preset cannot disagree about what is allowed. Plain Python.
"""

from __future__ import annotations

from dataclasses import field
from typing import TypeVar

T = TypeVar("T")


def bounded(default: T, low: float, high: float) -> T:
    """A dataclass field whose value must lie in [low, high] (``metadata`` keys ``min`` and ``max``).

    Typed as its default, as ``dataclasses.field`` is, so ``depth: int = bounded(20, 1, 500)`` checks.
    """
    return field(default=default, metadata={"min": low, "max": high})
