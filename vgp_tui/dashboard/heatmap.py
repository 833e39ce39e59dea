"""The gradient heatmap: one row per layer, time to the right, colour = log10 of the gradient norm.

It is the picture the whole tool is about: a vanishing gradient is a dark band on the input side, an
exploding one a bright band, a NaN a red cross at the step where training broke.

Drawn with Rich segments through Textual's line API rather than with plotext (which draws the other
plots), because plotext's matrix plot cannot do this job well:

* its ``matrix_plot`` (plotext 5.x ``Monitor.draw_matrix``) takes a grey level or an RGB triple per
  cell but one marker per *column*, so a NaN or Inf cell cannot carry its own glyph; the moment of
  explosion is the lesson, so those cells must stand out, not be dropped or coloured like a number;
* it has no colour scale: the log10 mapping, whole-decade labels, a perceptual map that leaves red
  free for NaN, and glyph shading under NO_COLOR would all be ours anyway;
* every refresh rebuilds a whole figure, one ``draw`` call per row of cells with axes and ticks
  recomputed; here a refresh quantises the grid with numpy and emits one segment per run of equal
  cells, with one cached Style per colour level, so a redraw costs little beside Textual's own work
  (timings in docs/benchmarks.md, "The heatmap's drawing cost").

Layout, top to bottom: the layer rows (input side at the top, marked ``in``; output at the bottom,
marked ``out``; with more layers than rows, adjacent layers merged by their maximum as
:mod:`vgp_tui.dashboard.layers` groups them for every panel; a label is red where the layer is vanishing
or exploding on the diagnosis's scale of health, :mod:`vgp_tui.health`), a row
of step numbers with markers where a live remedy changed or training diverged, and the colour scale
with its decade labels. Rows are dropped from the bottom up when the widget is short.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from vgp_tui.dashboard.colors import (
    INF,
    INF_RGB,
    LEVELS,
    NAN,
    NAN_RGB,
    ZERO,
    ZERO_RGB,
    cell_codes,
    colormap,
    decade_ticks,
    format_decade,
    level_rgb,
    log_norms,
    scale_range,
)
from vgp_tui.dashboard.layers import (
    Arrangement,
    LayerView,
    abbreviation_level,
    arrange,
    block_groups,
    group_rows,
    merge_layers,
    short_name,
)
from vgp_tui.dashboard.panels import Panel, PanelResized
from vgp_tui.engine.history import FIRST_LAYER, History, Marker, SeriesView
from vgp_tui.health import BAD, layer_verdicts, nan_median, run_verdicts, worst
from vgp_tui.text import clip_end, thousands

__all__ = ["GradientHeatmap", "HeatGrid", "merge_layers", "resample"]

NAN_GLYPH = "×"
INF_GLYPH = "▲"
ZERO_GLYPH = "·"
SHADES = " ░▒▓█"
"""Glyphs by increasing norm when colours are off (NO_COLOR)."""
MARKER_GLYPH = "↑"
MARKER_TEXT = 24
"""Most characters of a marker's text on the step axis: "diverged at step 12 345" whole (16 cut it
to "diverged at ste…" even with the whole width free); room up to the next marker cuts it further."""

MAX_ROW_HEIGHT = 3
"""Most lines one layer takes when the widget is taller than the network is deep."""

_MAX_LABEL = 20
"""Widest layer-label column; longer names are shortened (see :func:`~vgp_tui.dashboard.layers.short_name`)."""

RECENT_COLUMNS = 4
"""Rightmost columns whose median gives each row's verdict (the label's colour): the recent steps."""


def _marker_text(text: str, room: int) -> str:
    """``text`` in ``room`` characters: whole where it fits, else up to the end of its first clause
    where that fits ("diverged at step 3", not "diverged at step 3: the…"), else cut with an ellipsis."""
    if len(text) <= room:
        return text
    head = text.split(": ", 1)[0]
    return head if len(head) <= room and head != text else clip_end(text, room)


def _rgb(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


_LEVEL_HEX = [_rgb(c) for c in level_rgb(LEVELS)]


@dataclass
class HeatGrid:
    """What the heatmap shows at one size: merged rows, resampled columns, log10 norms."""

    logs: np.ndarray
    """log10 norm per (row, column): -inf for zero, NaN, +inf kept."""
    labels: list[str]
    """One label per row (a layer name, or a range of names where rows merge layers)."""
    first_step: np.ndarray
    """First step of the bucket shown in each column."""
    last_step: np.ndarray
    """Last step of the bucket shown in each column."""


def resample(view: SeriesView, values: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``values`` (buckets x layers, norms) to exactly ``columns`` columns.

    A longer view is merged into ``columns`` buckets of equal step span (means weighted by the steps
    each bucket covers; NaN and inf propagate); a shorter one is stretched, each bucket repeated over
    an equal share of the columns. Returns (values per column, first step, last step).
    """
    first, last = view.first_step, view.last_step
    n = len(first)
    if n > columns:
        edges = np.linspace(first[0], last[-1] + 1, columns + 1)
        group = np.searchsorted(edges, first, side="right") - 1
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        span = (last - first + 1).astype(np.float64)
        with np.errstate(invalid="ignore"):
            weighted = np.add.reduceat(values * span[:, None], starts, axis=0)
            values = weighted / np.add.reduceat(span, starts)[:, None]
        first = first[starts]
        last = np.r_[last[starts[1:] - 1], last[-1]]
        n = len(first)
    index = (np.arange(columns) * n) // columns
    return values[index], first[index], last[index]


class GradientHeatmap(Widget, Panel):
    """Per-layer gradient norms over time as a colour grid, with a log10 colour scale."""

    DEFAULT_CSS = """
    GradientHeatmap {
        height: 1fr;
        min-height: 3;
        border: round $primary 50%;
        border-title-color: $foreground;
        padding: 0 1;
    }
    GradientHeatmap > .gradient-heatmap--label {
        color: $foreground;
    }
    GradientHeatmap > .gradient-heatmap--muted {
        color: $foreground 70%;
    }
    GradientHeatmap > .gradient-heatmap--remedy {
        color: $accent;
        text-style: bold;
    }
    GradientHeatmap > .gradient-heatmap--alert {
        color: $error;
        text-style: bold;
    }
    GradientHeatmap > .gradient-heatmap--warn {
        color: $warning;
    }
    """

    COMPONENT_CLASSES = {
        "gradient-heatmap--label",
        "gradient-heatmap--muted",
        "gradient-heatmap--remedy",
        "gradient-heatmap--alert",
        "gradient-heatmap--warn",
    }

    TITLE = "Gradient heatmap · log10 |g| per layer"

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._layers: tuple[str, ...] = ()
        self._view: SeriesView | None = None
        self._values = np.empty((0, 0))
        self._extremes = np.empty((0, 0))
        self._markers: list[Marker] = []
        self._verdicts: list[str] | None = None
        self._recent: np.ndarray | None = None
        self._version = 0
        self._cache_key: tuple[object, ...] | None = None
        self._strips: list[Strip] = []
        self._styles: _Styles | None = None
        self.shading: bool | None = None
        """Force glyph shading on (True) or colours (False); None follows the app's NO_COLOR setting."""
        self.row_limit: int | None = None
        """At most this many rows (the app sets the flow panel's, so both panels group layers alike)."""
        self.layer_view = LayerView()
        """Which layers the rows show, in which order (the app sets the same on both panels)."""

    def on_mount(self) -> None:
        if not self.border_title:
            self.border_title = self.TITLE

    # -- data ---------------------------------------------------------------------------------------
    EVERY = 1.0

    def watches(self, history: History) -> tuple[Hashable, Hashable]:
        run = history.current
        if run is None:
            return None, None
        return run.steps, (run.run, run.marker_count, run.steps > 0)  # (its first steps: at once)

    def draw_from(self, history: History) -> None:
        run = history.current
        if run is None:
            return
        width = max(self.size.width - 12, 8)
        # The flow bars and the diagnosis read the same verdicts: one scale of health everywhere.
        recent, verdicts = run_verdicts(run)
        self.show(run.layers, run.series.view(width), markers=run.markers, verdicts=verdicts, recent=recent)

    def show(
        self,
        layers: tuple[str, ...],
        view: SeriesView,
        first_layer_channel: int = FIRST_LAYER,
        markers: Sequence[Marker] = (),
        verdicts: Sequence[str] | None = None,
        recent: np.ndarray | None = None,
    ) -> None:
        """Draw ``view``'s per-layer norms (channels from ``first_layer_channel``, one per layer).

        ``verdicts``: each layer's verdict on the scale of health (:func:`vgp_tui.health.run_verdicts`,
        what the diagnosis and the flow bars read); a row's
        label is red where it is vanishing or exploding. ``recent``: the norms those verdicts read
        (what orders the layers worst first). Without them, both are read from the view's last few columns.
        """
        count = max(0, min(len(layers), view.mean.shape[1] - first_layer_channel)) if view.mean.ndim == 2 else 0
        if count != len(self._layers):
            self.refresh(layout=True)  # the height follows the number of layers
        self._layers = tuple(layers[:count])
        self._view = view
        layer_channels = slice(first_layer_channel, first_layer_channel + count)
        self._values = np.asarray(view.mean[:, layer_channels], dtype=np.float64)
        # Every step's lowest and highest norm, however the view merged the steps: the colour scale's span.
        self._extremes = (np.concatenate([view.low[:, layer_channels], view.high[:, layer_channels]])
                          if view.mean.ndim == 2 else np.empty((0, 0)))
        self._markers = list(markers)
        if verdicts is None and len(self._values):
            last = self._values[-RECENT_COLUMNS:]
            recent = nan_median(np.where(np.isfinite(last), last, np.nan))
            verdicts = layer_verdicts(recent, names=self._layers)
        self._verdicts = list(verdicts)[:count] if verdicts is not None else None
        self._recent = np.asarray(recent, dtype=np.float64)[:count] if recent is not None else None
        self._version += 1
        self.refresh()

    def clear(self) -> None:
        """Show nothing (waiting for a run)."""
        self._layers, self._view, self._values, self._markers = (), None, np.empty((0, 0)), []
        self._extremes = np.empty((0, 0))
        self._verdicts = None
        self._recent = None
        self._version += 1
        self.refresh()

    # -- size -------------------------------------------------------------------------------------------
    def on_resize(self) -> None:
        self.post_message(PanelResized(self))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """Lines for every layer at up to MAX_ROW_HEIGHT lines each, plus the axis and the scale.

        With ``height: auto`` the panel is as tall as its layers need and no taller (the loss plot
        gets the rest), never over its ``max-height``: within that, the tallest whole-line rows, all
        of one height. Where rows merge layers by block, as tall as those rows need: resnet-cifar10's
        10 blocks in 13 lines had rows of 1 and 2 lines, the second lines unlabelled, like rows of
        layers without a name.
        """
        extra = 2  # the step axis and the colour scale
        layers = max(1, len(self._layers))
        budget = container.height
        if self.styles.max_height is not None:
            gutter = self.styles.gutter
            outer = Size(container.width + gutter.width, container.height + gutter.height)
            budget = min(budget, int(self.styles.max_height.resolve(outer, viewport)) - gutter.height)
        if layers + extra >= budget:
            if self.layer_view.one_per_row or not self._layers or budget <= extra:
                return max(1, budget)  # one layer a line, scrolled
            rows = len(block_groups(self._layers, budget - extra))  # rows merge layers to fit
            return rows * max(1, min(MAX_ROW_HEIGHT, (budget - extra) // rows)) + extra
        return layers * max(1, min(MAX_ROW_HEIGHT, (budget - extra) // layers)) + extra

    @property
    def layers(self) -> tuple[str, ...]:
        """The layers it was last shown."""
        return self._layers

    def layer_rows(self) -> int:
        """Rows its grid has for layers at its present size (before any ``row_limit``)."""
        return max(1, self.size.height - 2)  # less the step axis and the colour scale

    def rows_shown(self) -> int:
        """Rows its grid shows layers on at its present size, ``row_limit`` applied."""
        rows = self.layer_rows()
        return max(1, min(self.row_limit or rows, rows))

    # -- drawing ------------------------------------------------------------------------------------
    def _shading(self) -> bool:
        if self.shading is not None:
            return self.shading
        try:
            return bool(self.app.no_color)
        except Exception:  # not attached to an app (rendering in a unit test)
            return False

    def render_lines(self, crop: Region) -> list[Strip]:
        # Resolve the CSS styles once per update, not once per line (render_line runs per line).
        self._styles = _Styles.of(self)
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        styles = self._styles or _Styles.of(self)
        shading = self._shading()
        key = (width, height, shading, self._version, styles, self.row_limit, self.layer_view)
        if key != self._cache_key:
            self._strips = self.render_strips(width, height, styles, shading)
            self._cache_key = key
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, styles.base)

    def render_strips(self, width: int, height: int, styles: _Styles | None = None, shading: bool = False) -> list[Strip]:
        """Every line of the picture at ``width`` x ``height`` cells (exposed for tests and timing)."""
        styles = styles or _Styles.plain()
        if width <= 0 or height <= 0:
            return []
        painter = _Painter(width, styles, shading)
        layers, view, values = self._layers, self._view, self._values
        if not layers:  # (no run yet while the session starts: that is waiting, not a model without layers)
            return painter.message_lines(height, "no layers to show" if self._view is not None else "waiting for the first step…")
        has_steps = view is not None and len(view) > 0
        show_scale = height >= 2 and has_steps
        show_axis = height >= 4 and has_steps
        grid_rows = max(1, height - show_scale - show_axis)
        rows = min(grid_rows, len(layers), self.row_limit or grid_rows)

        shown = self.arrangement(rows)
        rows = len(shown.rows)
        label_width = self._label_width(shown, len(layers), width)
        gap = 1 if label_width else 0
        columns = width - label_width - gap

        every_layer = None
        if not has_steps or columns <= 0:
            logs = np.full((rows, 0), np.nan)
            grid = HeatGrid(logs, shown.labels, np.empty(0, np.int64), np.empty(0, np.int64))
        else:
            assert view is not None
            resampled, first, last = resample(view, values, columns)
            every_layer = log_norms(resampled)
            grid = HeatGrid(group_rows(every_layer, shown.rows, names=self._layers), shown.labels, first, last)
        # The colour scale spans every layer, shown or scrolled away, from the lowest norm any step had
        # to the highest: a colour means the same norm whichever rows are on screen, and at any width.
        # (Spanning the columns' means, one recording read 1e-2..1e+0 at 80 columns, 1e-2..1e+1 at 120.)
        low, high = scale_range(grid.logs if every_layer is None else log_norms(self._extremes))
        codes = cell_codes(grid.logs, low, high)
        verdicts = self._verdicts if self._verdicts is not None and len(self._verdicts) == len(layers) else None
        tones = [worst([verdicts[i] for i in r]) if verdicts else "unknown" for r in shown.rows]
        # With room to spare, the rows share the lines (labelled on their first), up to MAX_ROW_HEIGHT
        # each, all of one height (rows of 1 and 2 lines read as unlabelled layers between the
        # labelled ones); what is left stays blank below the scale, so the scale sits right under the
        # picture. (With ``height: auto``, get_content_height leaves nothing over.)
        heights = [max(1, min(MAX_ROW_HEIGHT, grid_rows // rows))] * rows
        labels = [_row_label(grid.labels[i], shown.rows[i], len(layers)) for i in range(rows)]
        painter.level = abbreviation_level([painter.fitting(label, label_width) for label in labels])
        lines: list[Strip] = []
        for i in range(rows):
            row_codes = codes[i] if columns > 0 else None
            label = labels[i]
            if not has_steps and columns > 0 and i == rows // 2:
                lines.append(painter.grid_message(label, label_width, gap, "waiting for the first step…"))
            else:
                lines.append(painter.grid_row(label, label_width, gap, row_codes, tones[i]))
            if heights[i] > 1:
                lines += [painter.grid_row("", label_width, gap, row_codes)] * (heights[i] - 1)
        blank = [Strip.blank(width, styles.base)] * (grid_rows - len(lines))
        if show_axis:
            lines.append(painter.axis_row(label_width, gap, grid, self._markers))
        if show_scale:
            finite = bool(np.isfinite(grid.logs).any())
            present = [g for g, c in ((NAN_GLYPH, NAN), (INF_GLYPH, INF), (ZERO_GLYPH, ZERO)) if (codes == c).any()]
            lines.append(painter.scale_row(label_width, gap, low, high, finite, present, any(t in BAD for t in tones)))
        return (lines + blank)[:height]

    def arrangement(self, rows: int) -> Arrangement:
        """The layers its grid's ``rows`` rows show (as the flow panel's rows show them)."""
        return arrange(self._layers, rows, self.layer_view, self._recent, self._verdicts)

    @staticmethod
    def _label_width(shown: Arrangement, count: int, width: int) -> int:
        wanted = max(len(_row_label(label, row, count)) for label, row in zip(shown.labels, shown.rows))
        return max(0, min(wanted, _MAX_LABEL, width // 3))


def _row_label(label: str, row: Sequence[int], count: int) -> str:
    """A row's label, marked where the row holds the input-side or the output-side layer (of ``count``)."""
    if count == 1 or (0 in row and count - 1 in row):
        return label
    side = "in  " if 0 in row else ("out " if count - 1 in row else "")
    return side + label


@dataclass(frozen=True)
class _Styles:
    """Rich styles the picture uses, resolved from the widget's CSS (hashable: part of the cache key)."""

    base: Style
    label: Style
    muted: Style
    remedy: Style
    alert: Style
    warn: Style

    @classmethod
    def of(cls, widget: Widget) -> _Styles:
        base = widget.rich_style

        def component(name: str) -> Style:
            return base + widget.get_component_rich_style(name, partial=True)

        return cls(
            base,
            component("gradient-heatmap--label"),
            component("gradient-heatmap--muted"),
            component("gradient-heatmap--remedy"),
            component("gradient-heatmap--alert"),
            component("gradient-heatmap--warn"),
        )

    @classmethod
    def plain(cls) -> _Styles:
        base = Style()
        return cls(base, base, Style(dim=True), Style(bold=True), Style(bold=True, color="red"), Style(color="yellow"))


@lru_cache(maxsize=8)
def _cell_styles(base: Style, shading: bool) -> list[tuple[str, Style]]:
    """Glyph and Style of every cell code (colour levels, then zero, NaN, Inf), built once per base style."""
    cells: list[tuple[str, Style]] = []
    for level in range(LEVELS):
        if shading:
            cells.append((SHADES[level * len(SHADES) // LEVELS], base))
        else:
            colour = _LEVEL_HEX[level]
            cells.append((" ", base + Style(bgcolor=colour, color=colour)))
    if shading:
        cells += [(ZERO_GLYPH, base), (NAN_GLYPH, base + Style(bold=True)), (INF_GLYPH, base + Style(bold=True))]
    else:
        cells += [
            (ZERO_GLYPH, base + Style(color=_rgb(ZERO_RGB))),
            (NAN_GLYPH, base + Style(bold=True, color="#ffffff", bgcolor=_rgb(NAN_RGB))),
            (INF_GLYPH, base + Style(bold=True, color="#000000", bgcolor=_rgb(INF_RGB))),
        ]
    return cells


@lru_cache(maxsize=8)
def _bar_colours(bar: int) -> tuple[list[str], list[bool]]:
    """Hex colour of each cell of a colour bar ``bar`` cells wide, and whether it is light."""
    rgb = colormap((np.arange(bar) + 0.5) / bar)
    hexes = [_rgb(tuple(int(round(v)) for v in c)) for c in rgb]  # type: ignore[arg-type]
    light = ((0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]) > 140).tolist()
    return hexes, light


class _Painter:
    """Turns codes and labels into strips of a fixed width, caching one Style per code."""

    def __init__(self, width: int, styles: _Styles, shading: bool) -> None:
        self.width = width
        self.styles = styles
        self.shading = shading
        self.cells = _cell_styles(styles.base, shading)
        self.level = 0
        """Leading name parts every row's label abbreviates (layers.abbreviation_level): they read alike."""

    def strip(self, segments: list[Segment]) -> Strip:
        return Strip(segments).adjust_cell_length(self.width, self.styles.base)

    @staticmethod
    def fitting(text: str, width: int) -> tuple[str, int]:
        """A row label's name and the cells it has: ``width`` less an ``in``/``out`` side mark's."""
        side, name = (text[:4], text[4:]) if text[:4] in ("in  ", "out ") else ("", text)
        if width - len(side) < min(len(name), 3):
            side = ""  # too narrow for the side mark: the name matters more
        return name, width - len(side)

    def label(self, text: str, width: int, gap: int, tone: str = "unknown") -> list[Segment]:
        """A label right-aligned in ``width`` cells; an ``in``/``out`` side mark stays at the left.

        ``tone`` is the row's verdict: the name is red where the layers are vanishing or exploding,
        yellow where they are weakening or growing, as the flow bars are, and muted where the layer
        never got a gradient (its row is dots, and the diagnosis asks whether it is used).
        """
        if width <= 0:
            return []
        name, cells = self.fitting(text, width)
        side = text[: width - cells]  # the in/out mark, where it fits
        name = short_name(name, cells, self.level)
        style = (self.styles.alert if tone in BAD else self.styles.warn if tone in ("weakening", "growing")
                 else self.styles.muted if tone == "unused" else self.styles.label)
        segments = [Segment(side, self.styles.muted)] if side else []
        pad = width - len(side) - len(name)
        if pad > 0:
            segments.append(Segment(" " * pad, self.styles.label))
        segments.append(Segment(name, style))
        if gap:
            segments.append(Segment(" " * gap, self.styles.label))
        return segments

    def grid_row(self, label: str, width: int, gap: int, codes: np.ndarray | None, tone: str = "unknown") -> Strip:
        segments = self.label(label, width, gap, tone)
        if codes is None or not len(codes):
            return self.strip(segments)
        # One segment per run of equal cells: a smooth row costs a few segments, not one per cell.
        change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
        bounds = [0, *change.tolist(), len(codes)]
        cells = self.cells
        for start, end, code in zip(bounds, bounds[1:], codes[bounds[:-1]].tolist()):
            glyph, style = cells[code]
            segments.append(Segment(glyph * (end - start), style))
        if width + gap + len(codes) == self.width:
            return Strip(segments, self.width)  # every glyph is one cell wide: no need to measure
        return self.strip(segments)

    def grid_message(self, label: str, width: int, gap: int, text: str) -> Strip:
        return self.strip([*self.label(label, width, gap), Segment(text, self.styles.muted)])

    def message_lines(self, height: int, text: str) -> list[Strip]:
        lines = [Strip.blank(self.width, self.styles.base)] * height
        lines[height // 2] = self.strip([Segment(clip_end(text, self.width), self.styles.muted)])
        return lines

    def axis_row(self, width: int, gap: int, grid: HeatGrid, markers: Sequence[Marker]) -> Strip:
        """Step numbers at both ends of the time axis, markers at their steps in between."""
        columns = self.width - width - gap
        chars = [" "] * columns
        styles = [self.styles.muted] * columns
        if columns <= 0 or not len(grid.first_step):
            return self.strip(self.label("step", width, gap))

        def put(at: int, text: str, style: Style) -> None:
            for i, ch in enumerate(text):
                if 0 <= at + i < columns:
                    chars[at + i], styles[at + i] = ch, style

        placed: list[tuple[int, Marker]] = []
        for marker in sorted(markers, key=lambda m: m.step):
            if not grid.first_step[0] <= marker.step <= grid.last_step[-1]:
                continue
            column = int(np.searchsorted(grid.last_step, marker.step, side="left"))
            if column < columns and not (placed and placed[-1][0] == column):
                placed.append((column, marker))

        # A step number with a marker inside it is left out: the marker's glyph replaced one of its
        # digits, and "3 1↑8" read as a wrong step.
        left, right = thousands(int(grid.first_step[0])), thousands(int(grid.last_step[-1]))
        if not any(column <= len(left) for column, _ in placed):
            put(0, left, self.styles.muted)
        end = columns
        if len(left) + len(right) + 1 <= columns and not any(column >= columns - len(right) - 1 for column, _ in placed):
            put(columns - len(right), right, self.styles.muted)
            end = columns - len(right) - 1
        for k, (column, marker) in enumerate(placed):
            style = self.styles.alert if marker.kind in ("diverged", "error", "nonfinite") else self.styles.remedy
            # Each marker's glyph always shows; its text only up to the next marker.
            room = (placed[k + 1][0] if k + 1 < len(placed) else end) - column - 2
            text = MARKER_GLYPH + (_marker_text(marker.text, min(room, MARKER_TEXT)) if room >= 3 and marker.text else "")
            put(column, text, style)
        segments = self.label("step", width, gap)
        run_start = 0
        for i in range(1, columns + 1):
            if i == columns or styles[i] != styles[run_start]:
                segments.append(Segment("".join(chars[run_start:i]), styles[run_start]))
                run_start = i
        return self.strip(segments)

    def scale_row(
        self, width: int, gap: int, low: float, high: float, finite: bool, present: list[str], bad: bool = False
    ) -> Strip:
        """The colour scale: the map from ``low`` to ``high`` decades with decade labels, then a legend
        of the special cells shown and, where a row's label is red, what red means."""
        segments = self.label("|g|", width, gap)
        columns = self.width - width - gap
        legend: list[Segment] = []
        if bad:
            legend += [Segment("  ", self.styles.base), Segment("name", self.styles.alert), Segment(" vanishing/exploding", self.styles.label)]
        for glyph in present:
            code = {NAN_GLYPH: NAN, INF_GLYPH: INF, ZERO_GLYPH: ZERO}[glyph]
            name = {NAN_GLYPH: "NaN", INF_GLYPH: "Inf", ZERO_GLYPH: "0"}[glyph]
            legend += [Segment("  ", self.styles.base), Segment(glyph, self.cells[code][1]), Segment(f" {name}", self.styles.label)]
        legend_width = sum(s.cell_length for s in legend)
        if not finite:
            return self.strip([*segments, Segment("no finite gradient norm", self.styles.muted), *legend])
        if columns - legend_width < 12:
            legend, legend_width = [], 0
        bar = max(0, min(columns - legend_width, 60))
        if self.shading:
            segments += self._shaded_bar(bar, low, high)
        else:
            segments += self._colour_bar(bar, low, high)
        return self.strip(segments + legend)

    def _colour_bar(self, bar: int, low: float, high: float) -> list[Segment]:
        if bar <= 0:
            return []
        hexes, light = _bar_colours(bar)
        chars = [" "] * bar
        # Decade labels printed on the bar at their positions: the first left-aligned, the last
        # right-aligned, the others centred; one that would touch a placed label is left out.
        ticks = decade_ticks(low, high)
        taken: list[tuple[int, int]] = []
        order = [ticks[0], ticks[-1], *ticks[1:-1]] if len(ticks) > 1 else ticks
        for tick in order:
            text = format_decade(tick)
            if len(text) > bar:
                continue
            at = round((tick - low) / (high - low) * bar) if high > low else 0
            start = at if tick == ticks[0] else (at - len(text) if tick == ticks[-1] else at - len(text) // 2)
            start = max(0, min(start, bar - len(text)))
            end = start + len(text)
            if any(start <= b and a <= end for a, b in taken):
                continue
            taken.append((start, end))
            chars[start:end] = list(text)
        ink = ["#000000" if light[i] else "#ffffff" for i in range(bar)]
        for start, end in taken:
            # One colour a label, that of most of its cells: "1e+0" read as a white "1e" and a black "+0"
            # where the bar turns light under it.
            black = sum(light[start:end]) * 2 >= end - start
            ink[start:end] = ["#000000" if black else "#ffffff"] * (end - start)
        return [
            Segment(ch, Style(bgcolor=hexes[i], color=ink[i], bold=ch != " "))
            for i, ch in enumerate(chars)
        ]

    def _shaded_bar(self, bar: int, low: float, high: float) -> list[Segment]:
        lo, hi = format_decade(int(round(low))), format_decade(int(round(high)))
        ramp = bar - len(lo) - len(hi) - 4
        if ramp < len(SHADES):
            return [Segment(clip_end(f"{lo} {hi}", bar), self.styles.label)]
        glyphs = "".join(SHADES[i * len(SHADES) // ramp] for i in range(ramp))
        return [Segment(f"{lo} ▕{glyphs}▏ {hi}", self.styles.label)]
