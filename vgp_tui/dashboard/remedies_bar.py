"""The remedies bar: every remedy that applies to the preset, its key and its current value."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.widgets import Static

from vgp_tui.engine.remedies import REMEDIES, RemedyValue

# Keys shown for remedies whose value is changed by a pair of keys rather than one.
KEY_LABELS = {"lr": "+/-", "clip": "c [ ]"}


class RemediesBar(Static):
    def show(self, values: Mapping[str, RemedyValue]) -> None:
        text = Text(overflow="fold")
        for name, value in values.items():
            remedy = REMEDIES[name]
            key = KEY_LABELS.get(name, remedy.key)
            text.append(f" {key} ", style="bold reverse")
            text.append(f" {name} ", style="dim")
            text.append(remedy.format(value), style="bold")
            text.append("   ")
        self.update(text)
