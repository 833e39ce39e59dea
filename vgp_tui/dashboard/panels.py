"""The contract between the timer and the panels: each panel says what it watches in the History
and how often it may redraw, so that the timer's redraw is one loop over panels."""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

from textual.message import Message

from vgp_tui.engine.history import History


class PanelResized(Message):
    """A panel whose drawing depends on its size (the heatmap's columns, the diagnosis's wrapping, the
    rows the layer panels share) was laid out at a new size: the app draws it again at once. (Drawn
    only at its cadence, a first frame could keep what was drawn before the layout: a heatmap of 8
    columns, a diagnosis cut to fit 20, every layer in one row, until the data changed.)"""

    def __init__(self, panel: Panel) -> None:
        super().__init__()
        self.panel = panel


class Panel:
    """A panel drawn from the History (mixed into a widget).

    The timer redraws it when ``watches`` says its data changed: at once when its structure changed
    too (a new run, a marker, an axis), else at most every ``EVERY`` seconds. The UI shares the GIL
    with the training thread, so every millisecond saved here is one more for training.
    """

    EVERY: ClassVar[float] = 1.0

    def watches(self, history: History) -> tuple[Hashable, Hashable]:
        """(data, structure): keys whose change calls for a redraw."""
        raise NotImplementedError

    def draw_from(self, history: History) -> None:
        """Take what it shows from ``history`` and repaint."""
        raise NotImplementedError
