"""A big model stays readable: a 24-block transformer's ~150 layers are merged by block to fit, both
layer panels show the same rows, ``z`` gives each layer a row (scrolled with the arrow keys and page
keys) and ``w`` puts the least healthy layers first, as the recording's own numbers say."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from big_model import BLOCKS, Transformer, record
from vgp_tui.dashboard import make_replay_app
from vgp_tui.dashboard.flow import GradientFlow
from vgp_tui.dashboard.heatmap import GradientHeatmap
from vgp_tui.dashboard.layers import LayerView, arrange, block_groups, block_labels, worst_order
from vgp_tui.engine.events import RunStarted, StepMetrics
from vgp_tui.engine.naming import block_of
from vgp_tui.engine.probe import block_layer_groups, default_layer_groups
from vgp_tui.engine.recording import read_recording
from vgp_tui.health import VERDICTS, layer_verdicts, references

SIZE = (120, 40)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "transformer.jsonl"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # beside a busy CI core, two threads' waits once made this 4 minutes, not 5 s
    try:
        record(path, steps=40)
    finally:
        torch.set_num_threads(threads)
    return path


def _names_and_medians(path: Path) -> tuple[list[str], np.ndarray]:
    rec = read_recording(path)
    steps = [e for e in rec.events if isinstance(e, StepMetrics)]
    norms = np.array([s.grad_norm for s in steps[-50:]], dtype=float)
    run = next(e for e in rec.events if isinstance(e, RunStarted))
    return list(run.layers), np.median(norms, axis=0)


async def _wait(pilot: Any, condition: Callable[[], bool], seconds: float = 30.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("timed out waiting")


def _flow_labels(flow: GradientFlow) -> list[str]:
    width, height = flow.size
    return [row[0].text.strip() for row in flow.lines(width, height)]


def test_the_model_has_hundreds_of_parameter_tensors_and_blocks_group_them_all() -> None:
    model = Transformer()
    tensors = list(model.parameters())
    assert len(tensors) >= 250
    layers = default_layer_groups(model)
    blocks = block_layer_groups(model)
    assert [name for name, _ in blocks] == ["wte", "wpe", *(f"h.{i}" for i in range(BLOCKS)), "ln_f", "lm_head"]
    grouped = [p for _, ps in blocks for p in ps]
    assert len(grouped) == len(tensors) and {id(p) for p in grouped} == {id(p) for p in tensors}
    assert len(layers) > 140


def test_blocks_stay_whole_on_every_row_count() -> None:
    names = [name for name, _ in default_layer_groups(Transformer())]
    for rows in range(3, len(names)):
        groups = block_groups(names, rows)
        assert len(groups) <= rows and groups[0][0] == 0 and groups[-1][1] == len(names) - 1
        assert [a for a, _ in groups[1:]] == [b + 1 for _, b in groups[:-1]]  # contiguous, all covered
        if len(groups) < len(names):
            for (_, b), (a, _) in zip(groups[:-1], groups[1:]):
                assert block_of(names[b]) != block_of(names[a]), (rows, names[b], names[a])  # no block split
        labels = block_labels(names, groups)
        assert all("attn" not in label and "mlp" not in label for label in labels) or len(groups) == len(names)


def test_the_layers_outside_the_repeated_blocks_keep_a_row_of_their_own() -> None:
    """Merged with its neighbour block, the position embedding's 4e-2 hid behind h.0's 9e-5 (a row
    shows its worst layer), and the final norm behind h.22's: the embeddings, the final norm and the
    head keep a row each wherever they fit, and the blocks share the rows left evenly."""
    names = [name for name, _ in default_layer_groups(Transformer())]
    single = ["wte", "wpe", "ln_f", "lm_head"]
    for rows in range(len(single) + 1, BLOCKS + len(single)):
        groups = block_groups(names, rows)
        labels = block_labels(names, groups)
        assert len(groups) == rows and [label for label in labels if not label.startswith("h.")] == single, labels
        sizes = [b - a + 1 for (a, b), label in zip(groups, labels) if label.startswith("h.")]
        assert max(sizes) - min(sizes) <= len(names) // BLOCKS  # (whole blocks: at most one block apart)


def test_worst_order_puts_a_broken_layer_first_then_the_farthest_from_the_head() -> None:
    recent = np.array([1e-9, 5e-3, math.nan, 1e-6, 2e3, 1.0])
    # layer 2 has no finite norm; then exploding (4: 2e3) before vanishing (0: 1e-9, then 3: 1e-6).
    assert worst_order(recent, 6)[:4] == [2, 4, 0, 3]
    view = LayerView(worst_first=True)
    shown = arrange(["a", "b", "c", "d", "e", "head"], 2, view.scrolled(1, 6, 2), recent)
    assert shown.rows == [[4], [0]] and shown.first == 1 and shown.caption(True) == "worst first · 2–3 of 6"
    assert LayerView(every_layer=True).scrolled(100, 6, 2).offset == 4  # clamped to the last page


def test_worst_order_holds_still_while_the_norms_only_wobble() -> None:
    # Healthy layers a few percent apart: ordered by their exact distance from the head they traded
    # places at every redraw, and the flow panel and the heatmap listed different layers.
    rng = np.random.default_rng(0)
    healthy = np.array([0.3, 0.5, 0.4, 0.6, 0.8, 1.0])
    for _ in range(20):
        assert worst_order(healthy * rng.uniform(0.9, 1.1, 6), 6) == [0, 1, 2, 3, 4, 5]
    weak = np.array([2e-3, 0.5, 3e-3, 0.6, 0.8, 1.0])  # two weakened layers, 2.4-2.7 decades down: depth
    for _ in range(20):
        assert worst_order(weak * rng.uniform(0.9, 1.1, 6), 6)[:2] == [0, 2]


async def test_a_24_block_transformer_replayed_at_120x40_is_readable(recording: Path) -> None:
    names, medians = _names_and_medians(recording)
    app = make_replay_app(str(recording), speed=64.0)
    async with app.run_test(size=SIZE) as pilot:
        await _wait(pilot, lambda: app.playback.ended)
        flow, heatmap = app.query_one(GradientFlow), app.query_one(GradientHeatmap)
        # Laid out: the rows shared are those of the panels' present sizes (under load a tick can share
        # them from the sizes before the layout that the last run's layers bring; the layout's resize
        # shares them again).
        await _wait(pilot, lambda: heatmap.row_limit is not None and bool(heatmap.border_subtitle)
                    and heatmap.row_limit == min(flow.size.height, heatmap.layer_rows()))
        rows = heatmap.row_limit
        assert rows is not None and 8 <= rows < len(names)

        # Fitted: every layer on screen, whole blocks a row, the same rows in both panels.
        shown = heatmap.arrangement(rows)
        assert [i for row in shown.rows for i in row] == list(range(len(names)))
        assert shown.rows[0] == [0] and shown.rows[-1] == [len(names) - 1]
        blocks_per_row = [{block_of(names[i]) for i in row} for row in shown.rows]
        for earlier, later in zip(blocks_per_row[:-1], blocks_per_row[1:]):
            assert not earlier & later  # no block is split over two rows
        assert _flow_labels(flow) == [label for label in _short(flow, shown.labels)]
        assert f"{len(names)} layers merged by block" in str(heatmap.border_subtitle)

        # z: one row per layer from the input side; the arrow and page keys scroll both panels.
        await pilot.press("z")
        await pilot.pause(0.1)
        assert [names[r[0]] for r in heatmap.arrangement(rows).rows] == names[:rows]
        await pilot.press("down", "down", "down")
        await pilot.pause(0.1)
        assert [names[r[0]] for r in heatmap.arrangement(rows).rows] == names[3 : 3 + rows]
        assert [names[r[0]] for r in flow.arrangement(flow.size.height).rows] == names[3 : 3 + rows]
        await _wait(pilot, lambda: f"layers 4–{3 + rows} of {len(names)}" in str(heatmap.border_subtitle))
        await pilot.press("pagedown")
        await pilot.pause(0.1)
        assert heatmap.arrangement(rows).first == 3 + rows
        for _ in range(len(names) // rows + 1):
            await pilot.press("pagedown")
        await pilot.pause(0.1)
        assert heatmap.arrangement(rows).rows[-1] == [len(names) - 1]  # the last page ends at the head

        # w: the least healthy first, by the recording's own recent medians.
        await pilot.press("w")
        await pilot.pause(0.1)
        order = [r[0] for r in heatmap.arrangement(rows).rows]
        top = order[0]
        # Each layer read against its reference (a block's layer against the same layer in the last
        # block, the others against the head): the first blocks vanish. By verdict, then the most whole
        # decades from the reference, depth within a decade.
        refs = references(medians, names)
        verdicts = layer_verdicts(medians, names=names)
        assert {verdicts[i] for i, name in enumerate(names) if block_of(name) == "h.0"} == {"vanishing"}
        decades = np.floor(np.abs(np.log10(medians[order] / medians[refs[order]])))
        key = [(-VERDICTS.index(verdicts[i]), -d, i) for i, d in zip(order, decades)]
        assert key == sorted(key) and verdicts[top] == "vanishing"
        assert _flow_labels(flow)[0] == _short(flow, [names[top]])[0]
        await _wait(pilot, lambda: str(heatmap.border_subtitle).startswith("worst first"))
        await pilot.press("z")  # back to every layer fitted
        await pilot.pause(0.1)
        assert not heatmap.layer_view.one_per_row and heatmap.arrangement(rows).rows[0] == [0]
        await pilot.press("q")


def _short(flow: GradientFlow, labels: list[str]) -> list[str]:
    """The labels as the flow panel shortens them to its label column."""
    from vgp_tui.dashboard.layers import short_name

    shown = _flow_labels(flow)
    width = max(len(s) for s in shown)
    return [short_name(label, width) for label in labels]


def test_recording_by_block_keeps_every_parameter(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Transformer()
    from vgp_tui import GradientProbe

    probe = GradientProbe(model, groups=block_layer_groups(model))
    assert probe.num_layers == BLOCKS + 4


async def test_layers_without_blocks_are_said_to_be_merged_to_fit() -> None:
    fixture = Path(__file__).parent / "fixtures" / "deep-sigmoid.jsonl"
    app = make_replay_app(str(fixture), speed=64.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await _wait(pilot, lambda: app.playback.ended)
        heatmap = app.query_one(GradientHeatmap)
        await _wait(pilot, lambda: bool(heatmap.border_subtitle))
        # (at 80 columns the words on what a merged row shows give way to the keys)
        assert str(heatmap.border_subtitle) == f"{len(heatmap.layers)} layers merged to fit · z: one row per layer · w: worst first"
        await pilot.press("q")


def test_a_merged_row_shows_its_layer_most_decades_off_else_its_smallest() -> None:
    from vgp_tui.dashboard.layers import group_rows

    names = [f"h.{i}.{part}" for i in range(3) for part in ("ln_1", "attn")] + ["head"]
    # Healthy blocks: each layer within a decade of the same layer in the last block. The attention
    # matrices wobble more than the LayerNorms, by a different amount in each block; every row must
    # still show the same kind of layer (the smallest), not a LayerNorm here and a matrix there.
    healthy = np.log10([[2e-4, 3.1e-2, 2.1e-4, 1.4e-2, 2e-4, 2e-2, 0.7]])
    rows = [[0, 1], [2, 3], [4, 5], [6]]
    shown = group_rows(healthy, rows, names=names)[:, 0]
    assert np.allclose(shown[:3], healthy[0, [0, 2, 4]])
    # Decades off: the most whole decades first, then the farthest within them (2.8 before 2.1 above).
    off = np.log10([[2e-4 * 10**2.1, 2e-2 * 10**2.8, 2e-4, 2e-2 * 10**-1.5, 2e-4, 2e-2, 0.7]])
    shown = group_rows(off, rows, names=names)[:, 0]
    assert np.allclose(shown[:2], off[0, [1, 3]])
