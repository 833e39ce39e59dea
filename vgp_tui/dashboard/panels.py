"""The contract between the timer and the panels: each panel says what it watches in the History
and how often it may redraw, so that the timer's redraw is one loop over panels."""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

from textual.message import Message

from vgp_tui.engine.history import History


class LayerPanelResized(Message):
    """A layer panel (the flow bars, the heatmap) was laid out at a new size: the app works out the
    rows the two share again at once. (Worked out at its 0.2 s tick alone, a new run's first frames
    showed the panels from the sizes before the layout: once every layer merged into one row.)"""


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
