"""The diagnosis line: the verdict in words and the numbered fixes, fitted to the width it gets."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from rich.text import Text
from textual.widgets import Static

from vgp_tui.dashboard.panels import Panel, PanelResized
from vgp_tui.diagnosis import Diagnosis, diagnose, in_words
from vgp_tui.engine.history import History
from vgp_tui.text import ELLIPSIS

DIAGNOSIS_LINES = 3
"""The most lines the diagnosis may take (at 80 columns a divergence needs three)."""


CONCLUSION = 40
"""The most characters of a verdict's last clause (after its last ": ") kept whole when it is cut."""


def fit_diagnosis(result: Diagnosis, width: int, console: Any) -> Text:
    """The diagnosis as it fits in :data:`DIAGNOSIS_LINES` lines of ``width``: when it is too long
    the verdict is cut (with "…"), never the keys to press nor the verdict's conclusion, the short
    clause after its last colon (": vanishing inside the network."): cut at its end, the verdict
    lost what it said ("but layer 104 (transformer.h.17… To try in the model: …")."""
    text = Text(result.text)
    if len(text.wrap(console, width)) <= DIAGNOSIS_LINES:
        return text
    # (the keys part opens with the period the verdict lacked: after the ellipsis it would read "….")
    keys = result.text[len(result.verdict):].removeprefix(".")
    verdict = result.verdict
    colon = verdict.rfind(": ")
    conclusion = verdict[colon:] if 0 < colon and len(verdict) - colon <= CONCLUSION else ""
    words = verdict[: len(verdict) - len(conclusion)]
    ending = (conclusion.removeprefix(":") + ("." if keys and not conclusion.endswith(".") else "")) if conclusion else ""

    def cut(end: int) -> str:  # after a whole word ("b… vanishing" read as a typo), and not after a comma
        kept = words[:end]
        if end < len(words) and not words[end].isspace() and " " in kept:
            kept = kept[: kept.rfind(" ")]
        return kept.rstrip(" ,;:") + ELLIPSIS + ending + keys

    low, high = 0, len(words)
    while low < high:  # the longest cut of the verdict that still fits
        middle = (low + high + 1) // 2
        if len(Text(cut(middle)).wrap(console, width)) <= DIAGNOSIS_LINES:
            low = middle
        else:
            high = middle - 1
    return Text(cut(low))


class DiagnosisLine(Static, Panel):
    """Two or three lines; red for a problem, yellow for a warning. ``shown`` is what keys 1-9 apply."""

    EVERY = 1.0  # a verdict over the last steps' medians changes slowly; a new state or run shows at once

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shown: Diagnosis | None = None
        self._width = 0
        self.replay = False
        """A recording cannot be changed: the verdict shows, and what to try in words, not as keys."""
        self.starting = False
        """The session is still being built: say so instead of "waiting"."""

    def watches(self, history: History) -> tuple[Hashable, Hashable]:
        run = history.current
        # A run's first steps show at once: "waiting for the first step" must not outlive them.
        return history.version, (run.run if run is not None else 0, run is not None and run.steps > 0, history.state,
                                 self.starting)

    def on_resize(self) -> None:
        self.post_message(PanelResized(self))  # (fitted to its width)

    def draw_from(self, history: History) -> None:
        result = diagnose(history.current, history.state, history.message)
        if self.starting:
            result = Diagnosis("waiting", "Starting: importing PyTorch and loading the data…")
        if self.replay and history.current is not None:
            result = in_words(result, history.current.remedies)
        self.show(result)

    def show(self, result: Diagnosis) -> None:
        width = max(20, self.size.width - 2)  # inside its padding
        if (result, width) == (self.shown, self._width):
            return  # unchanged: no repaint
        self.shown, self._width = result, width
        self.set_class(result.kind in ("vanishing", "exploding", "nonfinite", "diverged", "error"), "bad")
        self.set_class(result.kind in ("dead", "saturated"), "warn")
        text = fit_diagnosis(result, width, self.app.console)
        lines = max(2, len(text.wrap(self.app.console, width)))
        if self.styles.height is None or self.styles.height.value != lines:
            self.styles.height = lines  # a layout pass only when the line count changes
        self.update(text, layout=False)  # plain text: "[1]" is a key, not markup
