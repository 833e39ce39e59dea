"""How a layer is named in sentences: one rule for the diagnosis, divergence messages and summaries."""

from __future__ import annotations

import re

_NUMBERED = re.compile(r"layer[ _]?(\d+)", re.IGNORECASE)


def layer_name(index: int, name: str) -> str:
    """``layer 3 (fc2)``: 1-based, input side first, with the module's name; just ``layer 3`` when
    the name already says that number (``layer3``), so it is not said twice."""
    number = f"layer {index + 1}"
    match = _NUMBERED.fullmatch(name)
    if match and int(match.group(1)) == index + 1:
        return number
    return f"{number} ({name})"


def possessive(named: str) -> str:
    """``layer 21's (head)`` for ``layer 21 (head)``; ``layer 3's`` for ``layer 3``."""
    number, paren, rest = named.partition(" (")
    return f"{number}'s{' (' + rest if paren else ''}"


def block_of(name: str) -> str:
    """The block a layer belongs to: its module name up to the first index (``h.3.attn.c_attn`` ->
    ``h.3``, ``layer2.0.conv1`` -> ``layer2.0``); a name without an index is a block of its own.

    Repeated blocks live in ``nn.ModuleList``/``nn.Sequential`` containers, whose children are named
    by their index: that is what every model with blocks (transformers, ResNets) has in common."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[: i + 1])
    return name
