"""Layers on screen: which layers share a row when there are more layers than rows, and their labels.

One grouping and one way of shortening names for every panel (the flow bars, the heatmap), so a
given number of rows groups the same layers everywhere and a layer has the same short name in both.
Plain Python and numpy, no Textual.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from vgp_tui.text import ELLIPSIS, clip_end


def layer_groups(count: int, rows: int) -> list[tuple[int, int]]:
    """``count`` layers in at most ``rows`` rows: (first, last) layer index of each row, input side first.

    Every layer gets its own row when there is room. Otherwise the first and the last layer keep
    theirs (the diagnosis compares exactly those two: the output-side layer is the reference every
    verdict reads) and the layers between are split evenly over the rows left.
    """
    if count <= 0:
        return []
    rows = max(1, min(rows, count))
    if rows == count:
        return [(i, i) for i in range(count)]
    if rows == 1:
        return [(0, count - 1)]
    if rows == 2:
        return [(0, count - 2), (count - 1, count - 1)]
    middle = count - 2
    starts = 1 + (np.arange(rows - 2) * middle) // (rows - 2)
    ends = [*(starts[1:] - 1).tolist(), count - 2]
    return [(0, 0), *zip(starts.tolist(), ends), (count - 1, count - 1)]


def group_rows(values: np.ndarray, groups: Sequence[tuple[int, int]]) -> np.ndarray:
    """Merge the columns (layers) of ``values`` into one column per group, each the group's maximum.

    NaN wins over everything and inf over numbers (``np.maximum`` propagates NaN), so a broken layer
    is never hidden by merging. Returns groups x rows of ``values`` (layers become rows).
    """
    values = np.asarray(values, dtype=np.float64)
    if not groups:
        return np.empty((0, values.shape[0]))
    starts = np.array([a for a, _ in groups])
    return np.maximum.reduceat(values, starts, axis=1).T


def merge_layers(logs: np.ndarray, names: Sequence[str], rows: int) -> tuple[np.ndarray, list[str]]:
    """Merge the layers (columns of ``logs``) into at most ``rows`` rows as :func:`layer_groups` does.

    Returns (rows x time, labels): a layer's name, or a range of names where a row merges layers.
    """
    groups = layer_groups(logs.shape[1], rows)
    return group_rows(logs, groups), group_labels(names, groups)


def group_labels(names: Sequence[str], groups: Sequence[tuple[int, int]]) -> list[str]:
    """A label per group: the layer's name, or ``fc0–3`` for a range."""
    return [names[a] if a == b else range_label(names[a], names[b]) for a, b in groups]


def range_label(first: str, last: str) -> str:
    """``fc0–3`` for fc0..fc3: the common prefix once, not split inside a number."""
    prefix = 0
    while prefix < min(len(first), len(last)) and first[prefix] == last[prefix]:
        prefix += 1
    while prefix and first[prefix - 1].isdigit():
        prefix -= 1
    return f"{first}–{last[prefix:]}"


_WORD = re.compile(r"^([A-Za-z_]+)(\d*)$")


def _abbreviate(part: str) -> str:
    """``layer2`` -> ``l2``, ``attention`` -> ``a``; numbers and short parts are kept."""
    match = _WORD.match(part)
    if not match or len(part) <= 2:
        return part
    word, digits = match.groups()
    return word[0] + digits


def short_name(name: str, width: int) -> str:
    """``name`` in at most ``width`` cells, readable: the tail that tells layers apart is kept.

    Dotted module names are shortened from the input side of the name: first each leading part is
    abbreviated (``layer2.0.shortcut`` -> ``l2.0.shortcut``,
    ``encoder.layers.11.attention.output.dense`` -> ``e.l.11.a.o.dense``), then leading parts are
    dropped behind an ellipsis (``…11.a.o.dense``); a name still too long is cut at the end
    (``l2.0.shor…``: the block stays readable). Whatever is cut shows an ellipsis. A range label
    (``a–b``) is shortened on both sides.
    """
    if width <= 0:
        return ""
    if len(name) <= width:
        return name
    if "–" in name:
        first, _, last = name.partition("–")
        for shorter in (_abbreviated(first) + "–" + last, _abbreviated(first, True) + "–" + _abbreviated(last, True)):
            if len(shorter) <= width:
                return shorter
        return _cut_middle(shorter, width)
    parts = name.split(".")
    for i in range(len(parts) - 1):
        parts[i] = _abbreviate(parts[i])
        text = ".".join(parts)
        if len(text) <= width:
            return text
    # Drop leading parts, but keep at least the last two (the block and the module inside it).
    for i in range(1, len(parts) - 1):
        text = ELLIPSIS + ".".join(parts[i:])
        if len(text) <= width:
            return text
    return clip_end(".".join(parts), width)


def _abbreviated(name: str, last_too: bool = False) -> str:
    """Every part but the last abbreviated (``l1.0.conv1``); with ``last_too``, the last as well (``l1.0.c1``)."""
    parts = name.split(".")
    return ".".join([*(_abbreviate(p) for p in parts[:-1]), _abbreviate(parts[-1]) if last_too else parts[-1]])


def _cut_middle(text: str, width: int) -> str:
    """``text`` cut in the middle with an ellipsis: more of the end kept (it tells layers apart)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    head = (width - 1) // 3
    return text[:head] + ELLIPSIS + text[len(text) - (width - 1 - head) :]
