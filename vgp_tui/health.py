"""One scale of health for every layer: the thresholds and the verdict the diagnosis, the flow bars and
the heatmap all use.

A layer's gradient is judged relative to the output-side layer's, as the diagnosis judges the first
layer: an absolute norm says little (it depends on the loss and the width), but a layer that gets a
thousandth of what the head gets is starving. A layer of a repeated block (``h.3.attn``) is judged
against the same layer in the last of those blocks (``h.23.attn``) instead: like with like. A
transformer's head is a large matrix that the loss reaches first, and a LayerNorm's few weights have a
small norm by their size alone; read against the head, the LayerNorms of every block of a healthy
GPT-2 were called vanishing, and residual connections advised to a model made of them. What vanishing means is a
gradient that shrinks with depth, which the same layer block after block shows. Pure numpy, no
Textual, no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from vgp_tui.engine.history import FIRST_LAYER, Recent, RunHistory
from vgp_tui.engine.naming import block_of

RECENT = 50
"""Steps (at full resolution) whose median the verdicts read, so a single noisy step does not flip one."""
VANISHING = 1e-3
"""Layer / last-layer gradient ratio below which the gradient is said to vanish."""
EXPLODING = 1e3
"""Ratio above which it is said to explode."""
HEALTHY = (1e-2, 1e2)
"""Ratios inside this band are called healthy; between it and the thresholds above, weakening/growing."""

VERDICTS = ("unknown", "unused", "healthy", "weakening", "growing", "vanishing", "exploding")
"""Every verdict :func:`layer_verdicts` gives, least severe first (a merged group shows its worst).
"unused": the layer never got a gradient (:func:`never_used`), which is no ratio to its reference:
drawn as no problem of the flow, the diagnosis asking whether it is used in the forward."""
BAD = frozenset({"vanishing", "exploding"})
"""Verdicts the diagnosis calls a problem (drawn red); weakening and growing are a warning (yellow)."""
_SEVERITY = {v: i for i, v in enumerate(VERDICTS)}


def ratio_verdict(ratio: float) -> str:
    """The verdict on a layer that gets ``ratio`` times its reference's gradient (:func:`references`)."""
    if not ratio >= 0:  # NaN (or an impossible negative): nothing to compare
        return "unknown"
    if ratio < VANISHING:
        return "vanishing"
    if ratio > EXPLODING:
        return "exploding"
    if ratio < HEALTHY[0]:
        return "weakening"
    if ratio > HEALTHY[1]:
        return "growing"
    return "healthy"


def reference_layer(norms: Sequence[float] | np.ndarray) -> int:
    """The layer every verdict reads the others against: the output-side one, the last layer that
    gets a gradient. A module never used in the forward, registered last (an unused head, a pooler),
    records exactly 0 at every step: read as the reference it blinded every verdict for the whole
    run. A NaN or Inf is no such 0 (it stays the reference, and nothing can be compared). The last
    layer where none gets a gradient; -1 for no layers."""
    values = np.asarray(norms, dtype=np.float64)
    getting = np.flatnonzero(values != 0)
    return int(getting[-1]) if getting.size else values.size - 1


MIN_REPEATS = 3
"""Blocks a container must hold for its layers to be read against their counterparts in its last
block. Fewer say little about depth: a ResNet-18's stages hold two blocks each, and its layers are
read against the head, as the resnet preset's lesson reads them."""


@lru_cache(maxsize=32)
def counterparts(names: tuple[str, ...]) -> tuple[int, ...]:
    """For each layer, the same layer in the last block of its container (``h.23.attn.c_attn`` for
    ``h.3.attn.c_attn``), or -1 where it is in no container of :data:`MIN_REPEATS` blocks or more,
    or that block has no such layer (a first block's projection shortcut). A container is a block's
    name without its index (:func:`~vgp_tui.engine.naming.block_of`): ``h`` for ``h.3``."""
    parts: list[tuple[str, int, str] | None] = []
    for name in names:
        block = block_of(name)
        container, _, index = block.rpartition(".")
        parts.append((container, int(index), name[len(block):]) if index.isdigit() else None)
    last: dict[str, int] = {}
    blocks: dict[str, set[int]] = {}
    for part in parts:
        if part is not None:
            container, index, _ = part
            last[container] = max(last.get(container, index), index)
            blocks.setdefault(container, set()).add(index)
    where = {part: i for i, part in enumerate(parts) if part is not None}
    peers = []
    for part in parts:
        if part is None or len(blocks[part[0]]) < MIN_REPEATS:
            peers.append(-1)
            continue
        container, _, rest = part
        peers.append(where.get((container, last[container], rest), -1))
    return tuple(peers)


def references(norms: Sequence[float] | np.ndarray, names: Sequence[str] | None = None) -> np.ndarray:
    """The layer each layer of ``norms`` is read against: its counterpart in the last block of its
    repeated blocks (:func:`counterparts`) where that one has a positive finite norm, else the
    output-side layer (:func:`reference_layer`). Without ``names``, the output-side layer for all."""
    values = np.asarray(norms, dtype=np.float64)
    refs = np.full(values.size, reference_layer(values), dtype=np.int64)
    if names is None or len(names) != values.size:
        return refs
    peers = np.asarray(counterparts(tuple(names)), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        usable = (peers >= 0) & (values[np.maximum(peers, 0)] > 0) & np.isfinite(values[np.maximum(peers, 0)])
    refs[usable] = peers[usable]
    return refs


def never_used(run: RunHistory, median: np.ndarray) -> np.ndarray:
    """Which of ``run``'s layers never got a gradient: exactly 0 at every step so far (a module
    never used in the forward: an unused head, a pooler), when some layer did get one. ``median``:
    each layer's recent median (:func:`median_norms`).

    Not the 0s of the first layers where they lead to a vanishing gradient: those are its float32
    underflow (a deep sigmoid net's), a gradient too small to hold, and they are called vanishing."""
    got = run.series.ever_nonzero(slice(FIRST_LAYER, FIRST_LAYER + len(run.layers)))
    unused = ~got
    if not got.any():
        return np.zeros_like(got)
    first = int(np.argmax(got))
    end = float(median[reference_layer(np.where(got, median, 0.0))])
    if first > 0 and not (end > 0 and float(median[first]) / end >= VANISHING):
        unused[:first] = False
    return unused


def run_verdicts(run: RunHistory) -> tuple[np.ndarray, list[str]]:
    """``run``'s recent median norms (:func:`recent_norms`) and the verdict on each layer, as the
    flow bars and the heatmap show them and the diagnosis reads them."""
    recent = recent_norms(run)
    return recent, layer_verdicts(recent, never_used(run, recent), run.layers)


def layer_verdicts(norms: Sequence[float] | np.ndarray, unused: Sequence[bool] | np.ndarray | None = None,
                   names: Sequence[str] | None = None) -> list[str]:
    """The verdict on each layer of ``norms`` (input side first), relative to its reference
    (:func:`references`: with the layers' ``names``, a repeated block's layer is read against the same
    layer in the last block; else against the output-side layer, :func:`reference_layer`); the
    layers after the output-side one get no gradient and are "unknown". The layers ``unused``
    marks (:func:`never_used`) are "unused".

    Non-finite norms, or a reference whose norm is not a positive finite number, give "unknown":
    there is no ratio to read. (A NaN or Inf is shown as such by every panel; the diagnosis reads
    it as exploding by itself.)
    """
    values = np.asarray(norms, dtype=np.float64)
    if values.size == 0:
        return []
    last = reference_layer(values)
    reference = float(values[last])
    if not (np.isfinite(reference) and reference > 0):
        return ["unknown"] * values.size
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        ratios = np.where(np.isfinite(values), values / values[references(values, names)], np.nan)
    ratios[last + 1:] = np.nan  # (no gradient at all: the diagnosis says so; no ratio to colour)
    verdicts = [ratio_verdict(r) for r in ratios.tolist()]
    if unused is not None:
        verdicts = ["unused" if never else verdict for verdict, never in zip(verdicts, unused)]
    return verdicts


def worst(verdicts: Sequence[str]) -> str:
    """The most severe of ``verdicts`` (what a row that merges several layers shows)."""
    return max(verdicts, key=_SEVERITY.__getitem__, default="unknown")


def recent_norms(run: RunHistory, steps: int = RECENT) -> np.ndarray:
    """Each layer's median gradient norm over the run's last ``steps`` full-resolution steps.

    NaN and Inf are left out (a layer with no finite value gets NaN); this is the value the verdicts
    and the diagnosis read. One sort of a ``steps`` x layers array: cheap enough for every tick.
    """
    return median_norms(run.recent(steps))


def median_norms(recent: Recent) -> np.ndarray:
    """Each layer's median over ``recent`` steps, NaN and Inf left out: what :func:`recent_norms`
    gives, for a reader that already holds the steps (the diagnosis)."""
    rows = recent.layers
    return nan_median(np.where(np.isfinite(rows), rows, np.nan))


def nan_median(values: np.ndarray) -> np.ndarray:
    """Per-column median ignoring NaN; NaN for a column without a value (and no warning, unlike numpy's)."""
    values = np.sort(np.asarray(values, dtype=np.float64), axis=0)  # NaN sorts last
    if values.ndim != 2 or values.shape[0] == 0:
        return np.full(values.shape[-1] if values.ndim else 0, np.nan)
    n = (~np.isnan(values)).sum(axis=0)
    columns = np.arange(values.shape[1])
    low = values[np.maximum(n - 1, 0) // 2, columns]
    high = values[n // 2 - (n == 0), columns]
    return np.where(n > 0, (low + high) / 2, np.nan)
