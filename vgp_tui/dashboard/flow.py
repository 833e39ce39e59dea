"""Gradient flow: the current per-layer gradient norms as horizontal bars on a log scale.

Drawn with Rich rather than plotext: a bar per layer with its name and value needs one text row per
layer and exact control of the labels, which plotext's bar chart (ticks picked by plotext, no per-bar
value labels on a log axis) does not give in a 30-column panel.

A bar's length is the layer's norm now; its colour is the layer's verdict on the scale of health the
diagnosis uses (:mod:`vgp_tui.health`): red only where the diagnosis would call the layer vanishing or
exploding, yellow where it would say weakening or growing.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from vgp_tui.dashboard.panels import Panel, PanelResized
from vgp_tui.dashboard.layers import Arrangement, LayerView, abbreviation_level, arrange, group_rows, short_name
from vgp_tui.engine.history import History, RunHistory
from vgp_tui.health import run_verdicts, worst
from vgp_tui.text import format_norm

BLOCKS = " ▏▎▍▌▋▊▉█"
VALUE_WIDTH = 6
"""Cells of the value column (a space and ``1e-12``)."""
MIN_BAR = 5
"""The bar keeps at least this many cells; the label column gives way first."""

VERDICT_COLOURS = {
    "healthy": "green",
    "weakening": "yellow",
    "growing": "yellow",
    "vanishing": "red",
    "exploding": "red",
    "unknown": "dim",
    "unused": "dim",
}


def bar(fraction: float, width: int) -> str:
    """A bar ``fraction`` (0..1) of ``width`` cells long, in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (BLOCKS[part] if part else "")).ljust(width)


class GradientFlow(Widget, Panel):
    """Bars of log10 |g| for each layer (input side at the top), scaled to the run's current span.

    As tall as its layers need when it shares its column (the time plot gets the rest), the whole
    column when alone; with fewer rows than layers, layers are grouped as the heatmap groups them,
    the first and the last layer always on their own rows.

    Drawn through the line API from segments with fixed styles: the bars move four times a second,
    and turning a Rich ``Text`` into Textual ``Content`` each time cost more than computing them.
    """

    _STYLES = {name: Style.parse(name) for name in ("dim", "green", "yellow", "red", "bold magenta")}

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._norms: tuple[float, ...] | None = None
        self._verdicts: list[str] = []
        self._recent: np.ndarray | None = None
        self._layers: tuple[str, ...] = ()
        self._built_for: object = None
        self._strips: list[Strip] = []
        self.row_limit: int | None = None
        """At most this many rows (the app sets the heatmap's, so both panels group layers alike)."""
        self.layer_view = LayerView()
        """Which layers the rows show, in which order (the app sets the same on both panels)."""

    TITLES = ("Gradient flow · |g| now", "Gradient flow · |g|", "Gradient flow")
    """The longest that fits the border is shown: Textual would cut the first to "|g| n…" at 80 columns."""

    def on_mount(self) -> None:
        self._fit_title()

    def _fit_title(self) -> None:
        room = self.size.width - 6  # the corners, the rule before the title and a space each side
        self.border_title = next((title for title in self.TITLES if len(title) <= room), self.TITLES[-1])

    EVERY = 0.25  # cheap (one line per layer), and the latest step is what it shows

    def watches(self, history: History) -> tuple[Hashable, Hashable]:
        run = history.current
        latest = run.latest if run is not None else None
        return (latest.step if latest is not None else 0), (run.run if run is not None else 0, latest is not None)

    def draw_from(self, history: History) -> None:
        self.show(history.current)

    def show(self, run: RunHistory | None) -> None:
        latest = run.latest if run is not None else None
        self._norms = tuple(latest.grad_norm) if latest is not None else None
        # The colour reads the recent median, as the diagnosis does, so one noisy step flips neither.
        self._recent, self._verdicts = run_verdicts(run) if latest is not None and run is not None else (None, [])
        layers = run.layers if run is not None else ()
        if len(layers) != len(self._layers):
            self.refresh(layout=True)  # the height follows the number of layers
        self._layers = layers
        parent = self.parent
        if parent is not None:
            # Alone in its column (no time plot) the panel fills it; else it leaves the rest to the plot.
            self.set_class(not any(w.display for w in parent.children if w is not self), "-alone")
        self._built_for = None
        self.refresh()

    @property
    def layers(self) -> tuple[str, ...]:
        """The layers it was last shown."""
        return self._layers

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self._layers))

    def on_resize(self) -> None:
        self._fit_title()
        self.post_message(PanelResized(self))

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        base = self.rich_style
        key = (width, height, base, self.row_limit, self.layer_view)
        if key != self._built_for:
            self._built_for = key
            self._strips = [Strip(line).adjust_cell_length(width, base) for line in self.lines(width, height, base)]
        return self._strips[y] if 0 <= y < len(self._strips) else Strip.blank(width, base)

    def arrangement(self, height: int) -> Arrangement:
        """The layers its ``height`` rows show (as the heatmap's rows show them)."""
        rows = max(min(height, self.row_limit or height), 1)
        return arrange(self._layers, rows, self.layer_view, self._recent, self._verdicts)

    def lines(self, width: int, height: int, base: Style = Style.null()) -> list[list[Segment]]:
        """The panel's rows as segments: one bar per layer (or group of layers), or a waiting message."""
        if self._norms is None or not self._layers:
            return [[Segment("waiting…", base)]]
        shown = self.arrangement(height)
        values = group_rows(np.asarray([self._norms], dtype=float), shown.rows, logs=False, names=self._layers)[:, 0].tolist()
        verdicts = [worst([self._verdicts[i] for i in r]) for r in shown.rows] if self._verdicts else ["unknown"] * len(shown.rows)
        names = shown.labels
        # The bars' scale spans every layer, shown or scrolled away, so a length means the same norm.
        logs = [math.log10(v) for v in self._norms if math.isfinite(v) and v > 0]
        low = min(logs) if logs else -1.0
        high = max(logs) if logs else 0.0
        low = min(low, high - 1.0)
        label_width = max(0, min(max(len(n) for n in names), width - VALUE_WIDTH - 1 - MIN_BAR))
        bar_width = max(width - label_width - 1 - VALUE_WIDTH, 1)
        styles = {name: base + style for name, style in self._STYLES.items()}
        level = abbreviation_level([(name, label_width) for name in names])
        rows = []
        for name, value, verdict in zip(names, values, verdicts):
            if math.isfinite(value) and value > 0:
                fraction = (math.log10(value) - low + 0.05 * (high - low)) / (1.05 * (high - low))
                drawn = Segment(bar(fraction, bar_width), styles[VERDICT_COLOURS[verdict]])
            else:
                # (A layer that never got a gradient is no alarm: its 0 is dim, as its verdict.)
                mark = styles["dim"] if verdict == "unused" else styles["bold magenta"]
                drawn = Segment(("×" if not math.isfinite(value) else "·").ljust(bar_width), mark)
            label = Segment(short_name(name, label_width, level).rjust(label_width) + " ", styles["dim"])
            rows.append([label, drawn, Segment(f"{format_norm(value):>{VALUE_WIDTH}}", base)])
        return rows
