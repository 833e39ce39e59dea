"""The gradient heatmap: colour mapping on a log scale, and what the widget draws inside a real App."""

from __future__ import annotations

import math

import numpy as np
import pytest
from textual.app import App, ComposeResult

from vgp_tui.dashboard.colors import (
    INF,
    LEVELS,
    NAN,
    VIRIDIS_STOPS,
    ZERO,
    cell_codes,
    colormap,
    decade_ticks,
    format_decade,
    log_norms,
    scale_range,
)
from vgp_tui.dashboard.heatmap import (
    INF_GLYPH,
    NAN_GLYPH,
    SHADES,
    ZERO_GLYPH,
    GradientHeatmap,
    merge_layers,
    resample,
)
from vgp_tui.engine.history import FIRST_LAYER, Marker, MultiResolutionSeries, SeriesView

# -- pure mapping -------------------------------------------------------------------------------------


def test_norms_map_to_levels_on_a_log_scale_with_special_codes() -> None:
    logs = log_norms(np.array([1e-12, 1e-6, 1.0, 0.0, math.nan, math.inf, -1.0]))
    codes = cell_codes(logs, -12.0, 0.0)
    assert codes.tolist() == [0, LEVELS // 2, LEVELS - 1, ZERO, NAN, INF, NAN]
    # Out-of-range values clamp to the ends rather than wrapping or failing.
    assert cell_codes(np.array([-20.0, 5.0]), -12.0, 0.0).tolist() == [0, LEVELS - 1]


def test_colormap_runs_from_dark_to_light_through_its_stops() -> None:
    ends = colormap(np.array([0.0, 1.0]))
    np.testing.assert_allclose(ends, VIRIDIS_STOPS[[0, -1]])
    lightness = colormap(np.linspace(0, 1, 32)) @ np.array([0.299, 0.587, 0.114])
    assert np.all(np.diff(lightness) > 0)  # monotonic: reads in grey too


def test_scale_range_is_whole_decades_and_at_least_two_wide() -> None:
    assert scale_range(log_norms(np.array([1e-12, 3e-5, 0.1]))) == (-12.0, -1.0)
    low, high = scale_range(np.array([-3.4, -3.2]))
    assert high - low >= 2 and low <= -3.4 and high >= -3.2
    assert scale_range(np.array([math.nan, -math.inf, math.inf])) == (-2.0, 0.0)
    # Rounding noise in a logarithm does not push the scale a decade further out.
    assert scale_range(np.array([-12.000000000000002, -0.9999999999999998])) == (-12.0, -1.0)


def test_decade_ticks_label_both_ends_with_at_most_five() -> None:
    assert decade_ticks(-12, -1)[0] == -12 and decade_ticks(-12, -1)[-1] == -1
    assert 3 <= len(decade_ticks(-12, -1)) <= 5
    assert decade_ticks(-2, 0) == [-2, -1, 0]
    assert format_decade(-12) == "1e-12" and format_decade(0) == "1e+0"


def _view(values: np.ndarray, steps: np.ndarray | None = None) -> SeriesView:
    """A SeriesView of single-step buckets with per-layer ``values`` (steps x layers)."""
    n = len(values)
    steps = np.arange(1, n + 1) if steps is None else steps
    rows = np.concatenate([np.ones((n, FIRST_LAYER)), values], axis=1) if n else np.empty((0, FIRST_LAYER + values.shape[1]))
    return SeriesView(steps, steps.copy(), rows, rows, rows)


def test_resample_merges_a_long_view_by_step_span_and_stretches_a_short_one() -> None:
    values = np.arange(1000, dtype=float)[:, None]
    merged, first, last = resample(_view(values), values, 10)
    assert merged.shape == (10, 1)
    assert first[0] == 1 and last[-1] == 1000
    np.testing.assert_allclose(merged[:, 0], np.arange(10) * 100 + 49.5)  # bucket means
    short = np.array([[1.0], [2.0]])
    stretched, first, _ = resample(_view(short), short, 6)
    assert stretched[:, 0].tolist() == [1, 1, 1, 2, 2, 2] and first.tolist() == [1, 1, 1, 2, 2, 2]


def test_a_merged_row_shows_its_worst_layer_and_never_hides_nan() -> None:
    """A row showed its largest norm: a vanishing layer among healthy ones vanished from the picture.
    It shows the history of the layer furthest in decades from the output layer's at the newest step."""
    names = ("fc0", "fc1", "fc2", "head")
    logs = np.array([[3.0, -2.0, -1.5, -1.0],  # fc0 explodes here, 4 decades over the head...
                     [1.0, -5.0, -1.2, -1.0],
                     [-1.5, -9.0, -1.1, -1.0]])  # ...but now fc1 is the worst: 8 decades under it
    merged, labels = merge_layers(logs, names, 2)
    assert labels == ["fc0–2", "head"]  # the output-side layer keeps its own row: every verdict reads it
    assert merged[0].tolist() == [-2.0, -5.0, -9.0]  # fc1's history
    # Broken layers win at their own step, whichever layer the row follows: NaN, then Inf, then zero.
    logs = np.array([[-2.0, -math.inf, 5.0, -1.0],
                     [math.inf, -math.inf, -3.0, -1.0],
                     [-2.0, math.inf, math.nan, -1.0],
                     [-2.0, -4.0, -3.0, -1.0]])  # (the newest step: fc1 is the worst)
    merged, _ = merge_layers(logs, names, 2)
    assert merged[0, :2].tolist() == [-math.inf, math.inf] and math.isnan(merged[0, 2]) and merged[0, 3] == -4.0
    # No finite reference at the newest step: the layer with the largest finite value there.
    merged, _ = merge_layers(np.array([[-1.0, -1.0, -1.0, -1.0], [-5.0, -3.0, -4.0, math.nan]]), names, 2)
    assert merged[0].tolist() == [-1.0, -3.0]
    # The flow panel's norms (not logs, one time) merge alike.
    from vgp_tui.dashboard.layers import group_rows

    assert group_rows(10.0 ** logs[3:], [[0, 1, 2], [3]], logs=False)[0].tolist() == pytest.approx([1e-4])
    logs = np.array([[-5.0, -3.0, math.nan, -2.0, -7.0]])
    merged, labels = merge_layers(logs, ("fc0", "fc1", "fc2", "fc3", "head"), 3)
    assert merged[0, 0] == -5.0 and math.isnan(merged[1, 0]) and merged[2, 0] == -7.0
    assert labels == ["fc0", "fc1–3", "head"]


def test_a_merged_row_does_not_jump_when_its_worst_layer_crosses_the_output_layers_norm() -> None:
    """A GPT-2 block of a healthy run: its projection starts a decade and a half over the output
    layer's norm, its LayerNorm one under it, and each moves by less than one decade. Taken step by
    step, the row's worst layer went from the one to the other and the row dropped 3.3 decades."""
    from vgp_tui.dashboard.layers import group_rows

    c_proj = np.geomspace(0.89, 0.13, 12)
    ln_1 = np.geomspace(1.7e-3, 4.9e-4, 12)
    head = np.full(12, 2e-2)
    merged = group_rows(np.log10(np.stack([c_proj, ln_1, head], axis=1)), [[0, 1], [2]])
    assert merged[0] == pytest.approx(np.log10(ln_1))  # one layer's history: 0.55 decades, not 3.3
    assert np.ptp(merged[0]) < 0.6


# -- the widget in an app -------------------------------------------------------------------------------


class HeatmapApp(App[None]):
    CSS = "GradientHeatmap { height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield GradientHeatmap()


def _lines(heatmap: GradientHeatmap) -> list[str]:
    return [heatmap.render_line(y).text for y in range(heatmap.size.height)]


def _step_axis(heatmap: GradientHeatmap) -> str:
    """The heatmap's step axis line (its markers' line)."""
    return next(line for line in _lines(heatmap) if "step" in line)


def _grid(line: str, label: str) -> str:
    """The cells right of a row's label."""
    return line[line.index(label) + len(label) + 1 :]


def _row(lines: list[str], label: str) -> str:
    """The first line labelled ``label`` (a layer may span several lines; the first has the label)."""
    return next(line for line in lines if f" {label} " in f" {line} ")


LAYERS = ("fc0", "fc1", "fc2", "head")


async def test_labels_mark_the_input_and_output_sides() -> None:
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        heatmap = app.query_one(GradientHeatmap)
        heatmap.show(LAYERS, _view(np.full((50, 4), 0.1)))
        await pilot.pause()
        lines = _lines(heatmap)
        assert lines[0].lstrip().startswith("in") and "fc0" in lines[0]
        order = [lines.index(_row(lines, name)) for name in LAYERS]
        assert order == sorted(order)  # input side at the top
        assert _row(lines, "head").lstrip().startswith("out")
        assert heatmap.border_title == "Gradient heatmap · log10 |g| per layer"
        assert "fc0" in app.export_screenshot()


async def test_nan_inf_and_zero_cells_are_marked_where_they_happened() -> None:
    n = 40
    values = np.full((n, 4), 0.01)
    values[0, 1] = math.nan  # first step, fc1
    values[n // 2, 1] = math.nan  # middle step, fc1
    values[n - 1, 2] = math.inf  # last step, fc2
    values[:, 3] = 0.0  # head: a dead layer
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        heatmap = app.query_one(GradientHeatmap)
        heatmap.show(LAYERS, _view(values))
        await pilot.pause()
        lines = _lines(heatmap)
        fc1 = _grid(_row(lines, "fc1"), "fc1")
        columns = len(fc1)
        expected = {c for c in range(columns) if (c * n) // columns in (0, n // 2)}
        assert {c for c, ch in enumerate(fc1) if ch == NAN_GLYPH} == expected
        fc2 = _grid(_row(lines, "fc2"), "fc2")
        assert fc2.rstrip().endswith(INF_GLYPH) and fc2.count(INF_GLYPH) == len([c for c in range(columns) if (c * n) // columns == n - 1])
        assert set(_grid(_row(lines, "head"), "head")) == {ZERO_GLYPH}
        assert NAN_GLYPH not in _row(lines, "fc0") + _row(lines, "fc2") + _row(lines, "head")
        assert "NaN" in lines[-1] or any("NaN" in line for line in lines)  # the legend names it


@pytest.mark.parametrize("bar", [20, 33, 47, 60])
@pytest.mark.parametrize(("low", "high"), [(-2.0, 1.0), (-12.0, 0.0), (-6.0, 1.0), (-1.0, 1.0)])
def test_each_scale_label_is_one_colour(bar: int, low: float, high: float) -> None:
    """Each character took the ink of its own cell: "1e+0" read as a white "1e" and a black "+0"."""
    from vgp_tui.dashboard.heatmap import _Painter, _Styles

    segments = _Painter(bar + 10, _Styles.plain(), False)._colour_bar(bar, low, high)
    text = "".join(s.text for s in segments)
    for label in text.split():
        start = text.index(label)
        inks = {segments[i].style.color for i in range(start, start + len(label))}
        assert len(inks) == 1, (label, inks)


async def test_scale_numbers_match_the_data_range_in_decades() -> None:
    values = np.tile(np.geomspace(1e-12, 1e-1, 4), (30, 1))
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        heatmap = app.query_one(GradientHeatmap)
        heatmap.show(LAYERS, _view(values))
        await pilot.pause()
        scale = next(line for line in _lines(heatmap) if "|g|" in line)
        assert "1e-12" in scale and "1e-1" in scale
        assert "1e-13" not in scale and "1e+0" not in scale
        labels = [word for word in scale.split() if word.startswith("1e")]
        assert 3 <= len(labels) <= 5


async def test_the_colour_scale_is_the_same_at_every_width() -> None:
    """It spanned the means of the panel's columns, so a narrow panel, merging more steps a column,
    had a shorter scale than a wide one for the same run: the same colour meant another norm."""
    series = MultiResolutionSeries(FIRST_LAYER + 4, window=64)
    for step in range(1, 151):
        head = 1.5 if step == 75 else 0.1  # one step's spike: a column of its own only in a wide panel
        series.append(step, [1.0, 1.0, 2e-6, 1e-4, 1e-2, head])
    scales = []
    for width in (60, 200):
        app = HeatmapApp()
        async with app.run_test(size=(width, 12)) as pilot:
            heatmap = app.query_one(GradientHeatmap)
            heatmap.show(LAYERS, series.view(width))
            await pilot.pause()
            scale = next(line for line in _lines(heatmap) if "|g|" in line)
            labels = [word for word in scale.split() if word.startswith("1e")]
            scales.append((labels[0], labels[-1]))
    assert scales[0] == scales[1] == ("1e-6", "1e+1"), scales


async def test_a_long_view_is_downsampled_to_fit_and_the_step_axis_spans_it() -> None:
    series = MultiResolutionSeries(FIRST_LAYER + 4, window=64)
    for step in range(1, 5001):
        series.append(step, [1.0, 1.0, 1e-6, 1e-4, 1e-2, 1.0])
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        heatmap = app.query_one(GradientHeatmap)
        heatmap.show(LAYERS, series.view())  # every bucket: far more than the width
        await pilot.pause()
        lines = _lines(heatmap)
        assert all(len(line) == heatmap.size.width for line in lines)
        axis = next(line for line in lines if "step" in line)
        assert axis.split()[1] == "1" and axis.rstrip().endswith("5 000")
        # Quietest layer at the top in the darkest level, loudest at the bottom in the brightest.
        top = heatmap.render_line(lines.index(_row(lines, "fc0")))
        bottom = heatmap.render_line(lines.index(_row(lines, "head")))
        assert top._segments[-1].style.bgcolor != bottom._segments[-1].style.bgcolor


async def test_many_layers_merge_into_labelled_ranges() -> None:
    layers = tuple(f"fc{i}" for i in range(40))
    values = np.tile(np.geomspace(1e-9, 1.0, 40), (20, 1))
    app = HeatmapApp()
    async with app.run_test(size=(80, 12)) as pilot:
        heatmap = app.query_one(GradientHeatmap)
        heatmap.show(layers, _view(values))
        await pilot.pause()
        lines = _lines(heatmap)
        # The first and the last layer keep their rows; the layers between share the rest in ranges.
        assert "fc0 " in lines[0] and "fc39" in lines[heatmap.size.height - 3]
        assert sum("–" in line for line in lines) == heatmap.size.height - 4


@pytest.mark.parametrize("steps", [40, 1000])
async def test_markers_sit_at_their_steps(steps: int) -> None:
    values = np.full((steps, 4), 0.5)
    marker = steps // 2
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        heatmap = app.query_one(GradientHeatmap)
        heatmap.show(LAYERS, _view(values), markers=[Marker(marker, "remedy", "clip 1"), Marker(5000, "remedy", "later")])
        await pilot.pause()
        axis = _step_axis(heatmap)
        grid = _grid(axis, "step")
        columns = len(grid)
        if steps < columns:  # stretched: each step spans a few columns; the marker is on the first
            expected = next(c for c in range(columns) if (c * steps) // columns == marker - 1)
        else:  # merged: the column whose share of the steps holds the marker's step
            expected = int((marker - 1) / steps * columns)
        assert grid.index("↑clip 1") == expected
        assert "later" not in axis  # outside the view: not drawn


async def test_a_marker_on_a_step_number_takes_its_place_instead_of_a_digit() -> None:
    """A change at the last steps put its glyph inside the last step's number: "3 1↑8"."""
    values = np.full((3118, 4), 0.5)
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        heatmap = app.query_one(GradientHeatmap)
        heatmap.show(LAYERS, _view(values), markers=[Marker(3117, "remedy", "lr 100")])
        await pilot.pause()
        axis = _step_axis(heatmap)
        assert "↑" in axis and "3 1" not in axis and axis.split("step", 1)[1].lstrip().startswith("1 "), axis
        heatmap.show(LAYERS, _view(values), markers=[Marker(1, "remedy", "lr 0.2")])
        await pilot.pause()
        axis = _step_axis(heatmap)
        assert "↑lr 0.2" in axis and axis.rstrip(" │").endswith("3 118"), axis


async def test_a_divergence_marker_says_its_step_whole_where_there_is_room() -> None:
    values = np.full((3, 4), 0.5)
    app = HeatmapApp()
    async with app.run_test(size=(120, 24)) as pilot:
        heatmap = app.query_one(GradientHeatmap)
        heatmap.show(LAYERS, _view(values), markers=[Marker(3, "diverged", "diverged at step 12 345")])
        await pilot.pause()
        axis = _step_axis(heatmap)
        assert "↑diverged at step 12 345" in axis, axis
        # The dashboard's marker is the whole message: cut at its first clause, not in mid-word.
        text = "diverged at step 3: the loss became NaN in the forward pass"
        heatmap.show(LAYERS, _view(values), markers=[Marker(3, "diverged", text)])
        await pilot.pause()
        axis = _step_axis(heatmap)
        assert "↑diverged at step 3 " in axis + " " and "the" not in axis, axis


async def test_no_color_shades_cells_with_glyphs() -> None:
    values = np.tile(np.geomspace(1e-8, 1.0, 4), (30, 1))
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        app.no_color = True
        heatmap = app.query_one(GradientHeatmap)
        heatmap.show(LAYERS, _view(values))
        await pilot.pause()
        lines = _lines(heatmap)
        assert set(_grid(_row(lines, "head"), "head")) == {SHADES[-1]}
        assert set(_grid(_row(lines, "fc0"), "fc0")) == {SHADES[0]}
        scale = next(line for line in lines if "|g|" in line)
        assert "1e-8 ▕" in scale and "▏ 1e+0" in scale


@pytest.mark.parametrize(
    ("layers", "values"),
    [
        (LAYERS, np.empty((0, 4))),  # no step yet
        (LAYERS, np.full((1, 4), 0.5)),  # one step
        (("only",), np.full((10, 1), 0.5)),  # one layer
        (LAYERS, np.full((10, 4), math.nan)),  # nothing finite
        ((), np.empty((10, 0))),  # no layers
    ],
)
@pytest.mark.parametrize("size", [(80, 24), (12, 5), (3, 3), (80, 3)])
async def test_edge_cases_render_without_crashing(layers: tuple[str, ...], values: np.ndarray, size: tuple[int, int]) -> None:
    app = HeatmapApp()
    async with app.run_test(size=size) as pilot:
        heatmap = app.query_one(GradientHeatmap)
        heatmap.show(layers, _view(values))
        await pilot.pause()
        lines = _lines(heatmap)
        assert all(len(line) == heatmap.size.width for line in lines)
        if size == (80, 24) and len(values) == 0 and layers:
            assert any("waiting" in line for line in lines)
        if size == (80, 24) and layers and np.isnan(values).all() and len(values):
            assert any(NAN_GLYPH in line for line in lines)


def test_before_the_first_run_it_says_waiting() -> None:
    heatmap = GradientHeatmap()  # the session is still starting: no run, so no layers yet
    assert any("waiting for the first step" in strip.text for strip in heatmap.render_strips(80, 6))
    heatmap.show((), _view(np.empty((0, 0))))  # a run that truly has no layers
    assert any("no layers to show" in strip.text for strip in heatmap.render_strips(80, 6))


@pytest.mark.parametrize(("width", "height"), [(1, 1), (5, 1), (30, 1), (30, 2), (8, 30), (200, 60)])
def test_render_fits_any_size(width: int, height: int) -> None:
    heatmap = GradientHeatmap()
    heatmap.show(tuple(f"layer{i}.conv" for i in range(30)), _view(np.geomspace(1e-6, 1, 30)[None, :].repeat(7, 0)))
    strips = heatmap.render_strips(width, height)
    assert len(strips) == height
    assert all(strip.cell_length == width for strip in strips)


# -- one scale of health, rows that fill the panel ----------------------------------------------------------


async def test_a_vanishing_layer_has_a_red_label_and_the_legend_says_why() -> None:
    values = np.tile([1e-6, 9e-2, 1.0, 1.0], (30, 1))  # fc0 vanishing; fc1 at 9e-2 of the head: healthy
    app = HeatmapApp()
    async with app.run_test(size=(100, 24)) as pilot:
        heatmap = app.query_one(GradientHeatmap)
        heatmap.show(LAYERS, _view(values))
        await pilot.pause()
        strips = [heatmap.render_line(y) for y in range(heatmap.size.height)]
        alert = heatmap.get_component_rich_style("gradient-heatmap--alert", partial=True).color

        def label_colour(name: str) -> object:
            strip = next(s for s in strips if f" {name} " in f" {s.text} ")
            return next(seg.style.color for seg in strip if seg.text == name)

        assert label_colour("fc0") == alert
        assert label_colour("fc1") != alert and label_colour("head") != alert
        assert any(s.text.lstrip().startswith("|g|") and "vanishing/exploding" in s.text for s in strips)


async def test_a_layer_that_never_got_a_gradient_has_a_muted_label_not_a_red_one() -> None:
    """Its row is dots (0) and the diagnosis asks whether it is used in the forward: "vanishing" in
    red said otherwise. The verdicts are the dashboard's own (``draw_from``: health.run_verdicts)."""
    from test_diagnosis import feed

    history = feed([[1e-2, 0.0, 0.05, 0.1]] * 30, layers=("fc0", "unused_mid", "fc1", "head"))
    app = HeatmapApp()
    async with app.run_test(size=(100, 24)) as pilot:
        heatmap = app.query_one(GradientHeatmap)
        heatmap.draw_from(history)
        await pilot.pause()
        strips = [heatmap.render_line(y) for y in range(heatmap.size.height)]
        alert = heatmap.get_component_rich_style("gradient-heatmap--alert", partial=True).color
        muted = heatmap.get_component_rich_style("gradient-heatmap--muted", partial=True).color
        strip = next(s for s in strips if "unused_mid" in s.text)
        colour = next(seg.style.color for seg in strip if seg.text == "unused_mid")
        assert colour == muted and colour != alert
        assert not any("vanishing/exploding" in s.text for s in strips)


def test_rows_share_the_height_evenly_up_to_the_cap() -> None:
    """Every row as tall as the others (rows of 2 and 3 lines read as unlabelled layers between the
    labelled ones), up to the cap; the step axis and the scale right under them, what is left below."""
    heatmap = GradientHeatmap()
    heatmap.show(LAYERS, _view(np.full((20, 4), 0.1)))
    for height in (4 + 2, 4 * 2 + 2, 4 * 2 + 2 + 3, 4 * 3 + 2, 40):
        lines = [s.text for s in heatmap.render_strips(60, height)]
        starts = [i for i, line in enumerate(lines) if any(f" {n} " in f" {line} " for n in LAYERS)]
        each = min((height - 2) // 4, 3)
        assert starts == [0, each, 2 * each, 3 * each], (height, lines)
        assert lines[4 * each + 1].lstrip().startswith("|g|")  # no band between the picture and the scale
        if height in (4 + 2, 4 * 2 + 2, 4 * 3 + 2):
            assert lines[height - 1].lstrip().startswith("|g|")  # where the lines divide evenly: all of them


def test_merged_rows_are_all_of_one_height_and_the_panel_no_taller_than_they_need() -> None:
    """resnet-cifar10's 18 layers in 13 lines at 120x40: merged by block into 10 rows, three of
    them two lines tall with an unlabelled second line. Now 10 rows of one line, the panel 12 tall."""
    from textual.geometry import Size

    names = ("stem", *(f"layer{b}.{i}.conv{c}" for b in range(1, 5) for i in range(2) for c in (1, 2)), "fc")
    heatmap = GradientHeatmap()
    heatmap.show(names, _view(np.full((20, len(names)), 0.1)))
    heatmap.styles.max_height = None
    assert heatmap.get_content_height(Size(116, 15), Size(120, 40), 116) == 10 + 2
    assert heatmap.get_content_height(Size(116, 19), Size(120, 40), 116) == 10 + 2  # (17 lines: still merged)
    assert heatmap.get_content_height(Size(116, 40), Size(120, 40), 116) == 18 * 2 + 2  # (each its own rows)
    lines = [s.text for s in heatmap.render_strips(116, 15)]
    assert all(line[:12].strip() for line in lines[:10]), lines  # every line of the picture labelled
    assert "step" in lines[10] and lines[11].lstrip().startswith("|g|"), lines
