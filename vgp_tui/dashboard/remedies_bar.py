"""The remedies bar: every remedy that applies to the preset, its key and its current value."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.widgets import Static

from vgp_tui.engine.remedies import REMEDIES, RemedyValue, format_value


class RemediesBar(Static):
    """Items are packed whole into lines: a remedy never breaks between its key and its value."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._values: dict[str, RemedyValue] = {}
        self.show_keys = True
        """False in a replay: a recording's remedies are shown, but no key changes them."""

    def show(self, values: Mapping[str, RemedyValue]) -> None:
        self._values = dict(values)
        width = self.size.width or 200
        text = Text(no_wrap=True, overflow="ellipsis")
        used = 0
        for name, value in values.items():
            remedy = REMEDIES.get(name)
            key = remedy.key_label if remedy else "·"  # a remedy a newer recording names
            item = Text.assemble(
                (f" {key} ", "bold reverse") if self.show_keys else "",
                (f" {name} ", "dim"),
                (format_value(name, value), "bold"),
                "  ",
            )
            if used and used + item.cell_len > width:
                text.append("\n")
                used = 0
            text.append_text(item)
            used += item.cell_len
        self.update(text)

    def on_resize(self) -> None:
        self.show(self._values)
