"""Screens over the dashboard: help (every key, the running preset's own words, and the activation
function's derivative) and the preset picker."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from vgp_tui.scenario import Scenario

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
CELL_NOTES = {
    "rnn": "tanh'(x) = 1-tanh² is at most 1 and near 0 once |x| > 2: each step back in time multiplies the "
           "gradient by tanh' (and the recurrent weights), so it shrinks step by step, unless those weights "
           "are large enough to make it explode",
    "lstm": "tanh'(x) = 1-tanh² is at most 1 and near 0 once |x| > 2. An LSTM squashes with tanh too, but its "
            "cell state is added to, under sigmoid gates, not squashed at each step: through it the gradient "
            "reaches far back in time",
    "gru": "tanh'(x) = 1-tanh² is at most 1 and near 0 once |x| > 2. A GRU's new state is a sigmoid-gated mix of "
           "the old state and a tanh candidate: through the old state the gradient reaches far back in time",
}
"""The note under the tanh plot for each recurrent cell (all three squash their state with tanh)."""


def activation_plots(activation: str | None, cell: str | None) -> list[tuple[str, str]]:
    """What the help plots, each activation with its note: the network's activation (the ``activation``
    remedy of an MLP), else the tanh of a recurrent ``cell``, else (neither known: a ResNet, or a
    recording without them) sigmoid and relu, to compare."""
    if activation:
        return [(activation, ACTIVATION_NOTES[activation])]
    if cell:
        return [("tanh", CELL_NOTES.get(cell, ACTIVATION_NOTES["tanh"]))]
    return [(name, ACTIVATION_NOTES[name]) for name in ("sigmoid", "relu")]


def preset_lesson(preset: Scenario) -> Text:
    """The "This preset" section: the preset's name and title, its summary and what you should see
    (its ``expect`` text). The files break their lines at about 100 columns; the lines of a paragraph
    are joined here, so the text wraps to the box."""
    text = Text()
    text.append("This preset: ", style="bold")
    text.append(preset.name, style="bold cyan")
    if preset.title and preset.title != preset.name:
        text.append(f" · {preset.title}", style="bold")
    if preset.summary:
        text.append("\n" + " ".join(preset.summary.split()))
    paragraphs = [" ".join(paragraph.split()) for paragraph in preset.expect.split("\n\n") if paragraph.strip()]
    if paragraphs:
        text.append("\nWhat you should see: ", style="bold")
        text.append("\n".join(paragraphs))
    return text


SCREENSHOT_KEY = Binding("ctrl+s", "app.screenshot", "screenshot", show=False)
"""ctrl+s over a screen of these too: a picture of the help's lesson, or of the picker, to share."""


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
    """Every key, the running preset's summary and what it should show, and a picture of the network's
    activation and its derivative (see :func:`activation_plots`).

    The body scrolls (arrow keys, page keys, the mouse wheel): at 80x24 the key table is taller than
    the screen, and its last lines (quit) must still be reachable.
    """

    # (A modal screen stops the app's own keys but those of priority: ctrl+s did nothing here.)
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close"), SCREENSHOT_KEY]
    # Below 150 columns the activation plot goes under the keys: beside them it got the ten columns
    # the key table left at 120x40, and one at 80x24, where its note, a word a line, made the body
    # two hundred lines long.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (150, "-wide")]

    def __init__(self, keys: list[tuple[str, str]], activation: str | None, cell: str | None = None,
                 preset: Scenario | None = None) -> None:
        """``activation`` and ``cell``: the remedies of those names now (None where the network has
        none); ``preset``: the running preset's Scenario, whose lesson the help shows (None in a replay)."""
        super().__init__()
        self.keys = keys
        self.activation = activation
        self.cell = cell
        self.preset = preset

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
                        if self.preset is not None:
                            yield Static(preset_lesson(self.preset), id="help-preset")
                        for name, note in activation_plots(self.activation, self.cell):
                            yield ActivationPlot(name)
                            yield Static(Text(note, style="italic"), classes="note")

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

    BINDINGS = [Binding("escape", "dismiss_none", "cancel"), SCREENSHOT_KEY]

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
