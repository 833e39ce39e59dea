"""Screens over the dashboard: help (every key, and the activation function's derivative) and the preset picker."""

from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist
from textual_plotext.plot import Plot

from vgp_tui.dashboard.plot_panel import PlotPanel

ACTIVATIONS = {
    "sigmoid": (lambda x: 1 / (1 + math.exp(-x)), lambda x: (s := 1 / (1 + math.exp(-x))) * (1 - s)),
    "tanh": (math.tanh, lambda x: 1 - math.tanh(x) ** 2),
    "relu": (lambda x: max(0.0, x), lambda x: 1.0 if x > 0 else 0.0),
}
ACTIVATION_NOTES = {
    "sigmoid": "sigmoid'(x) = s(1-s) is at most 0.25: every sigmoid layer shrinks the gradient at least 4x",
    "tanh": "tanh'(x) = 1-tanh² is at most 1 and near 0 once |x| > 2: saturated units pass no gradient",
    "relu": "relu'(x) is 0 or 1: the gradient passes unshrunk through active units, and not at all through dead ones",
}


class ActivationPlot(PlotPanel):
    """The activation function and its derivative, as the lesson's first two pictures draw them."""

    def __init__(self, activation: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.activation = activation

    def on_mount(self) -> None:
        super().on_mount()
        self.border_title = "Activation"

    def draw(self, plt: Plot) -> None:
        f, df = ACTIVATIONS[self.activation]
        xs = [x / 10 for x in range(-60, 61)]
        plt.plot(xs, [f(x) for x in xs], label=f"{self.activation}(x)", color="cyan", marker="braille")
        plt.plot(xs, [df(x) for x in xs], label=f"{self.activation}'(x)", color="orange", marker="braille")
        plt.title(f"{self.activation} and its derivative")


class HelpScreen(ModalScreen[None]):
    """Every key, and a picture of the current activation's derivative.

    The body scrolls (arrow keys, page keys, the mouse wheel): at 80x24 the key table is taller than
    the screen, and its last lines (quit) must still be reachable.
    """

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]
    # Below 150 columns the activation plot goes under the keys: beside them it got the ten columns
    # the key table left at 120x40, and one at 80x24, where its note, a word a line, made the body
    # two hundred lines long.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (150, "-wide")]

    def __init__(self, keys: list[tuple[str, str]], activation: str | None) -> None:
        super().__init__()
        self.keys = keys
        self.activation = activation

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 1))
        table.add_column(style="bold cyan", justify="right")
        table.add_column()
        for key, description in self.keys:
            table.add_row(key, description)
        with Vertical(id="help-box"):
            yield Label("vgp-tui keys · ↑↓ scroll · escape or q closes this · ctrl+p searches them", id="help-title")
            with VerticalScroll(id="help-body"):
                with Horizontal(id="help-columns"):
                    yield Static(table, id="help-keys")
                    with Vertical(id="help-activation"):
                        for name in (self.activation,) if self.activation else ("sigmoid", "relu"):
                            yield ActivationPlot(name)
                            yield Static(Text(ACTIVATION_NOTES[name], style="italic"), classes="note")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()  # so the arrow and page keys scroll it


STAND_IN_LABEL = "· synthetic data"
"""The picker's name for a preset on its labelled stand-in: ``resnet-cifar10 · synthetic data``."""
STAND_IN_SUFFIX = "\tsynthetic"
"""Ends the option id of a preset on its stand-in (no preset's name holds a tab)."""


class PresetPicker(ModalScreen[tuple[str, bool] | None]):
    """Choose another preset; the dashboard starts it as a fresh run, numbered on from the runs before.

    Dismissed with the preset's name and whether to train it on its synthetic stand-in: offered, after
    the preset itself, for each of ``stand_ins``, the presets whose real data was found missing.
    ``current``: the option of the preset running, highlighted (a stand-in's ends in STAND_IN_SUFFIX)."""

    BINDINGS = [Binding("escape", "dismiss_none", "cancel")]

    def __init__(self, presets: list[tuple[str, str]], current: str, stand_ins: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.presets = presets
        self.current = current
        self.stand_ins = stand_ins

    def compose(self) -> ComposeResult:
        options = []
        for name, summary in self.presets:
            options.append(Option(Text.assemble((name, "bold"), "  ", (summary, "dim")), id=name))
            if name in self.stand_ins:
                label = Text.assemble((f"{name} {STAND_IN_LABEL}", "bold"), "  ",
                                      ("its data is not here: the labelled stand-in, generated", "dim"))
                options.append(Option(label, id=name + STAND_IN_SUFFIX))
        with Vertical(id="picker-box"):
            yield Label("Choose a preset (enter) · escape to cancel", id="picker-title")
            yield OptionList(*options, id="picker-list")

    def on_mount(self) -> None:
        picker = self.query_one(OptionList)
        try:  # (the option id of the preset running: its name, or its name and STAND_IN_SUFFIX)
            picker.highlighted = picker.get_option_index(self.current)
        except OptionDoesNotExist:
            pass
        picker.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        option = event.option.id or ""
        self.dismiss((option.removesuffix(STAND_IN_SUFFIX), option.endswith(STAND_IN_SUFFIX)))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
