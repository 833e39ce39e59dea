"""The keys that choose which layers the flow and heatmap panels show: all of them fitted (merged by
block), one row per layer, or the worst first, and scrolling through them when they do not fit.

A mixin of the app. Both panels get the same :class:`~vgp_tui.dashboard.layers.LayerView`, so their
rows always show the same layers in the same order; the heatmap's title says which slice is shown.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vgp_tui.dashboard.flow import GradientFlow
from vgp_tui.dashboard.heatmap import GradientHeatmap
from vgp_tui.dashboard.layers import LayerView
from vgp_tui.engine.naming import block_of

PAGE = 1000
"""``scroll_layers(±PAGE)`` moves by a page: clamped to the rows the panels show."""


class LayerActions:
    query_one: Any
    only_toast: Any
    layer_view: LayerView

    def _layer_panels(self) -> tuple[GradientFlow, GradientHeatmap]:
        return self.query_one(GradientFlow), self.query_one(GradientHeatmap)

    def set_layer_view(self, view: LayerView) -> None:
        self.layer_view = view
        for panel in self._layer_panels():
            panel.layer_view = view
            panel.refresh(layout=True)  # (the heatmap is as tall as its rows: merged rows may need fewer lines)

    def action_layer_view(self, what: str) -> None:
        """``every``: one row per layer, or all layers fitted again; ``worst``: the worst first, or depth order."""
        view = self.layer_view
        if what == "worst":
            view = dataclasses.replace(view, worst_first=not view.worst_first, offset=0)
            text = "layers from the least healthy (↑ ↓ scroll)" if view.worst_first else "layers in depth order"
        else:
            one_per_row = not view.one_per_row
            view = LayerView(every_layer=one_per_row)
            text = "one row per layer (↑ ↓ scroll)" if one_per_row else "every layer on screen, merged by block"
        self.set_layer_view(view)
        self.only_toast(text, timeout=2)

    def action_scroll_layers(self, rows: int) -> None:
        """Moves the rows by ``rows`` (a page where ``abs(rows)`` exceeds what is shown)."""
        heatmap = self.query_one(GradientHeatmap)
        count = len(heatmap.layers)
        shown = heatmap.rows_shown()
        if not self.layer_view.one_per_row:
            if count > shown:
                self.only_toast("press z for one row per layer, then ↑ ↓ scroll", timeout=2)
            return
        if abs(rows) > shown:
            rows = shown if rows > 0 else -shown
        self.set_layer_view(self.layer_view.scrolled(rows, count, shown))

    def caption_layers(self) -> None:
        """The heatmap's subtitle says which layers are shown where not all of them have a row of
        their own, and what z and w would show instead (set only when it changes).

        Each key is named with the view it leads to, in other words than the view on screen: "z all"
        under one row per layer and "z every layer" under the merged view read as the same thing."""
        heatmap = self.query_one(GradientHeatmap)
        count = len(heatmap.layers)
        rows = heatmap.rows_shown()
        view = self.layer_view
        worst = "w: depth order" if view.worst_first else "w: worst first"
        if count <= rows and not view.worst_first:
            text = ""
        elif count <= rows:  # (z and w both lead back to depth order: all of them fit)
            text = f"worst first · {worst}"
        elif view.one_per_row:
            caption = heatmap.arrangement(rows).caption(view.worst_first)
            keys = f"↑↓ scroll · z: fit all {count} · {worst}"
            text = f"{caption}, one row each · {keys}" if not view.worst_first else f"{caption} · {keys}"
            if len(text) > heatmap.outer_size.width - 4:  # (80 columns: the keys matter more than "one row each")
                text = f"{caption} · {keys}"
        else:
            names = heatmap.layers
            blocks = any(block_of(a) == block_of(b) for a, b in zip(names, names[1:]))
            merged = f"{count} layers merged {'by block' if blocks else 'to fit'}"
            keys = f"z: one row per layer · {worst}"
            # Where there is room, what a merged row's number is: "layer14–20 3e-7" read as the whole
            # block's, while layer 20 was healthy at 5e-3.
            text = f"{merged}, each row its worst layer · {keys}"
            if len(text) > heatmap.outer_size.width - 4:
                text = f"{merged} · {keys}"
        if heatmap.border_subtitle != text:
            heatmap.border_subtitle = text
