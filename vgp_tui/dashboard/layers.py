"""Layers on screen: which layers a panel's rows show, in which order, and their labels.

One arrangement and one way of shortening names for every panel (the flow bars, the heatmap), so a
given number of rows shows the same layers everywhere and a layer has the same short name in both.
A big model (a 24-block transformer has about 150 layers) is readable three ways (:class:`LayerView`):
every layer fitted to the rows, merged by block; one row per layer, scrolled; or the worst layers
first, scrolled. Plain Python and numpy, no Textual.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence

import numpy as np

from vgp_tui.engine.naming import block_of
from vgp_tui.health import VERDICTS, layer_verdicts, references
from vgp_tui.text import ELLIPSIS, clip_end

Rows = list[list[int]]
"""The layers of each row on screen, by index (several where a row merges layers)."""


@dataclasses.dataclass(frozen=True)
class LayerView:
    """How the layer panels lay their rows out (the app holds one, both panels read it).

    By default every layer is on screen: one row each where there is room, else merged by block.
    ``every_layer`` gives each layer its own row and shows ``rows`` of them from ``offset``;
    ``worst_first`` does the same with the layers ordered from the least healthy.
    """

    every_layer: bool = False
    worst_first: bool = False
    offset: int = 0

    @property
    def one_per_row(self) -> bool:
        return self.every_layer or self.worst_first

    def scrolled(self, by: int, count: int, rows: int) -> LayerView:
        """Moved ``by`` rows, kept inside ``count`` layers shown ``rows`` at a time."""
        return dataclasses.replace(self, offset=max(0, min(self.offset + by, count - rows)))


@dataclasses.dataclass(frozen=True)
class Arrangement:
    """What a panel with some number of rows shows: each row's layers and label, and which slice of
    all the rows that is (``first`` of ``total``: the rows above and below are scrolled away)."""

    rows: Rows
    labels: list[str]
    first: int
    total: int

    @property
    def windowed(self) -> bool:
        return len(self.rows) < self.total

    def caption(self, worst_first: bool) -> str:
        """``layers 31–60 of 150`` (``worst first · 1–30 of 150``) where not every row is on screen."""
        shown = f"{self.first + 1}–{self.first + len(self.rows)} of {self.total}" if self.windowed else ""
        if worst_first:
            return " · ".join(filter(None, ("worst first", shown)))
        return f"layers {shown}" if shown else ""


def arrange(names: Sequence[str], rows: int, view: LayerView = LayerView(),
            recent: Sequence[float] | np.ndarray | None = None, verdicts: Sequence[str] | None = None) -> Arrangement:
    """The layers ``names`` on at most ``rows`` rows, as ``view`` asks.

    ``recent``: each layer's recent median norm (:func:`vgp_tui.health.recent_norms`), which orders
    the layers for ``worst_first``, with their ``verdicts`` (read from ``recent`` where not given).
    """
    count = len(names)
    rows = max(1, min(rows, count)) if count else 0
    if not count:
        return Arrangement([], [], 0, 0)
    if not view.one_per_row:
        groups = block_groups(names, rows)
        return Arrangement([list(range(a, b + 1)) for a, b in groups], block_labels(names, groups), 0, len(groups))
    order = worst_order(recent, count, verdicts, names) if view.worst_first else list(range(count))
    first = max(0, min(view.offset, count - rows))
    shown = order[first : first + rows]
    return Arrangement([[i] for i in shown], [names[i] for i in shown], first, count)


def worst_order(recent: Sequence[float] | np.ndarray | None, count: int,
                verdicts: Sequence[str] | None = None, names: Sequence[str] | None = None) -> list[int]:
    """Layer indices from the least healthy: a layer with no finite norm first, then by verdict
    (vanishing and exploding before weakening and growing, healthy before unused: a layer that never
    got a gradient is no layer of the flow), then by how many whole decades its norm is from its
    reference's (the layer its verdict reads it against, :func:`vgp_tui.health.references`, by the
    layers' ``names``); depth breaks ties. ``verdicts``: the layers'
    (:func:`vgp_tui.health.run_verdicts`), else read from ``recent``.

    Whole decades, not the exact distance: healthy layers a few percent apart would trade places at
    every redraw, and the two panels, redrawn at different moments, would list different layers."""
    if recent is None or len(recent) != count:
        return list(range(count))
    values = np.asarray(recent, dtype=np.float64)
    if verdicts is None or len(verdicts) != count:
        verdicts = layer_verdicts(values, names=names)
    refs = references(values, names)
    severity = {v: i for i, v in enumerate(VERDICTS)}

    def badness(i: int) -> tuple[int, int, int, int]:
        value = float(values[i])
        if not math.isfinite(value):
            return (0, 0, 0, i)
        reference = float(values[refs[i]])
        exact = value > 0 and reference > 0 and math.isfinite(reference)
        decades = math.floor(abs(math.log10(value / reference))) if exact else 0
        return (1, -severity[verdicts[i]], -decades, i)

    return sorted(range(count), key=badness)


def block_groups(names: Sequence[str], rows: int) -> list[tuple[int, int]]:
    """``names`` in at most ``rows`` rows, (first, last) layer of each: one layer a row where they fit,
    else whole blocks (:func:`block_of`) a row, where even they do not fit the repeated blocks (``h.0``
    … ``h.23``) merged evenly and the others (an embedding, the head) a row each, or where not even
    those fit, the blocks merged as :func:`layer_groups` merges layers. A row never splits a block
    unless a single block is all there is."""
    count = len(names)
    if rows >= count:
        return [(i, i) for i in range(count)]
    starts = [i for i in range(count) if i == 0 or block_of(names[i]) != block_of(names[i - 1])]
    if len(starts) == 1:  # one block: nothing to keep together
        return layer_groups(count, rows)
    ends = [*(s - 1 for s in starts[1:]), count - 1]
    blocks = list(zip(starts, ends))
    repeated = [any(part.isdigit() for part in names[a].split(".")) for a, _ in blocks]
    repeated[0] = repeated[-1] = False  # (the diagnosis compares the first and the last: a row each)
    runs = _runs_of_repeated_blocks(repeated)
    alone = len(blocks) - sum(b - a for a, b in runs)  # blocks outside the runs, and one row per run
    if runs and alone <= rows:
        # The blocks that are not one of many (an embedding, the final norm, the head) keep a row each,
        # and only the repeated blocks merge: merged with its neighbour block, a position embedding's
        # 4e-2 hid behind h.0's 9e-5.
        return [(blocks[a][0], blocks[b][1]) for a, b in _merge_runs(len(blocks), runs, rows)]
    return [(blocks[a][0], blocks[b][1]) for a, b in layer_groups(len(blocks), rows)]


def _runs_of_repeated_blocks(repeated: Sequence[bool]) -> list[tuple[int, int]]:
    """(first, last) of each run of consecutive ``repeated`` blocks (``h.0`` … ``h.23``), two or more long."""
    runs, start = [], None
    for i, flag in enumerate([*repeated, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start >= 2:
                runs.append((start, i - 1))
            start = None
    return runs


def _merge_runs(count: int, runs: list[tuple[int, int]], rows: int) -> list[tuple[int, int]]:
    """``count`` blocks in ``rows`` rows: a row for each block outside ``runs``, and each run's blocks
    evenly over the rows left, shared between the runs by their length (one at least)."""
    spare = rows - (count - sum(b - a + 1 for a, b in runs))
    lengths = np.array([b - a + 1 for a, b in runs])
    share = np.minimum(lengths, np.maximum(1, spare * lengths // lengths.sum()))
    for i in np.argsort(-lengths):  # (what rounding down left, to the longest runs first)
        while share.sum() < spare and share[i] < lengths[i]:
            share[i] += 1
    groups: list[tuple[int, int]] = []
    at = 0
    for (a, b), rows_of_run in zip(runs, share.tolist()):
        groups += [(i, i) for i in range(at, a)]
        edges = a + (np.arange(rows_of_run + 1) * (b - a + 1)) // rows_of_run
        groups += [(int(lo), int(hi) - 1) for lo, hi in zip(edges[:-1], edges[1:])]
        at = b + 1
    return groups + [(i, i) for i in range(at, count)]


def block_labels(names: Sequence[str], groups: Sequence[tuple[int, int]]) -> list[str]:
    """A label per group: the layer's name, its block's (``h.3``) where a row is one whole block, or a
    range (``h.3–5`` of whole blocks, ``fc0–3`` of layers)."""
    labels = []
    for a, b in groups:
        first, last = block_of(names[a]), block_of(names[b])
        whole = (a == 0 or block_of(names[a - 1]) != first) and (b == len(names) - 1 or block_of(names[b + 1]) != last)
        if a == b:
            labels.append(names[a])
        elif not whole:
            labels.append(range_label(names[a], names[b]))
        else:
            labels.append(first if first == last else range_label(first, last))
    return labels


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


def group_rows(values: np.ndarray, rows: Rows, logs: bool = True, names: Sequence[str] | None = None) -> np.ndarray:
    """Merge the columns (layers) of ``values`` into one column per row: the history of the row's
    worst layer at the last time (the newest step shown), the one the most whole decades from its
    reference's there (:func:`~vgp_tui.health.references` by the layers' ``names``, as every verdict),
    so that a vanishing layer shows as surely as an exploding one; among those as many decades off,
    the farthest; where all are within a decade of theirs, the smallest. (The row's largest value hid
    a layer norm at 2e-5 among its block's 1e-3. The worst layer taken step by step made rows jump
    three decades when a block's worst went from a layer over the output layer's norm to one under
    it, though no layer had moved by one: a row is one layer's history. And where every layer is read
    against the same layer in the last block, the layers of a healthy block are all a little off
    theirs: the farthest was a LayerNorm in one row and an attention matrix, 100 times larger, in
    the next, stripes that looked like a problem; the smallest is the same kind in every row.)

    At any time a NaN in the row wins, then an Inf, then an exactly zero gradient: a broken layer is
    never hidden by merging. Where a layer's reference has no finite value at the last time there
    is no distance to read, and the row's layer is the one with the largest finite value there.
    ``logs``: the values are log10 norms (the heatmap's), else norms (the flow panel's, one time).
    Returns rows x times (layers become rows).
    """
    values = np.asarray(values, dtype=np.float64)
    if not rows:
        return np.empty((0, values.shape[0]))
    if all(len(r) == 1 for r in rows):
        return values[:, [r[0] for r in rows]].T
    with np.errstate(divide="ignore", invalid="ignore"):
        decades = values if logs else np.log10(values)  # (a norm of 0 is -inf, as in the heatmap's logs)
    reference = np.full(values.shape[1] if values.ndim == 2 else 0, np.nan)
    if len(decades):
        with np.errstate(over="ignore"):
            norms = values[-1] if not logs else 10.0 ** decades[-1]  # (a norm of 0: no gradient)
        reference = decades[-1, references(norms, names)]
    times = np.arange(values.shape[0])
    merged = []
    for r in rows:
        if len(r) == 1:
            merged.append(values[:, r[0]])
            continue
        block = decades[:, r]
        newest = block[-1] if len(block) else np.full(len(r), np.nan)
        with np.errstate(invalid="ignore"):
            exact = np.abs(newest - reference[r])
        distance = np.floor(exact)
        measured = np.flatnonzero(np.isfinite(distance))
        if measured.size:  # the most whole decades off, then the farthest; within a decade, the smallest
            within = np.where(distance >= 1, -exact, newest)[measured]
            worst = int(measured[np.lexsort((within, -distance[measured]))[0]])
        else:  # no distance to read: the largest finite norm
            worst = int(np.argmax(np.where(np.isfinite(newest), newest, -np.inf)))
        tier = np.select([np.isnan(block), block == np.inf, block == -np.inf], [3, 2, 1], 0)
        broken = values[:, r][times, np.argmax(tier, axis=1)]
        merged.append(np.where(tier.max(axis=1, initial=0) > 0, broken, values[:, r[worst]]))
    return np.stack(merged)


def merge_layers(logs: np.ndarray, names: Sequence[str], rows: int, view: LayerView = LayerView(),
                 recent: Sequence[float] | np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """The layers (columns of ``logs``) on at most ``rows`` rows as :func:`arrange` lays them out.

    Returns (rows x time, labels): a layer's name, a block's, or a range where a row merges layers.
    """
    shown = arrange(names, rows, view, recent)
    return group_rows(logs, shown.rows, names=names), shown.labels


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


def abbreviation_level(names: Sequence[tuple[str, int]]) -> int:
    """How many leading parts of the dotted names must be abbreviated for every (name, width) to fit,
    as :func:`short_name` abbreviates them: given to it for all of a panel's names, they read alike
    (the flow panel showed ``t.h.0.attn.c_attn`` beside ``transformer.h.0.ln_1``). Ranges are left
    to short_name."""
    level = 0
    for name, width in names:
        if len(name) <= width or "–" in name:
            continue
        parts = name.split(".")
        need = next((i for i in range(1, len(parts)) if len(_leading_abbreviated(parts, i)) <= width), len(parts) - 1)
        level = max(level, need)
    return level


def _leading_abbreviated(parts: Sequence[str], count: int) -> str:
    """The dotted name of ``parts`` with its first ``count`` parts abbreviated, never the last (a plain
    word such as the heatmap's "step" stays whole): each step of :func:`short_name`'s shortening."""
    count = min(count, max(len(parts) - 1, 0))
    return ".".join([*(_abbreviate(p) for p in parts[:count]), *parts[count:]])


def short_name(name: str, width: int, level: int = 0) -> str:
    """``name`` in at most ``width`` cells, readable: the tail that tells layers apart is kept.

    Dotted module names are shortened from the input side of the name: first each leading part is
    abbreviated (``layer2.0.shortcut`` -> ``l2.0.shortcut``,
    ``encoder.layers.11.attention.output.dense`` -> ``e.l.11.a.o.dense``), then leading parts are
    dropped behind an ellipsis (``…11.a.o.dense``); a name still too long is cut at the end
    (``l2.0.shor…``: the block stays readable). Whatever is cut shows an ellipsis. A range label
    (``a–b``) is shortened on both sides. ``level``: abbreviate at least that many leading parts,
    fitting or not (:func:`abbreviation_level`).
    """
    if width <= 0:
        return ""
    if level and "–" not in name:  # the panel's other names needed this much: read alike
        name = _leading_abbreviated(name.split("."), level)
    if len(name) <= width:
        return name
    if "–" in name:
        first, _, last = name.partition("–")
        for shorter in (_abbreviated(first) + "–" + last, _abbreviated(first, True) + "–" + _abbreviated(last, True)):
            if len(shorter) <= width:
                return shorter
        return _cut_middle(shorter, width)
    parts = name.split(".")
    for i in range(1, len(parts)):
        text = _leading_abbreviated(parts, i)
        if len(text) <= width:
            return text
    parts = _leading_abbreviated(parts, len(parts)).split(".")
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
