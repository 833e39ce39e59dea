"""The help screen (?) plots the running network's own activation, and shows the preset's lesson: its
summary and what you should see (the preset's ``expect`` text), so a loss that stays flat after the
fixes is read as the preset says it should be."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vgp_tui.dashboard import make_app, make_replay_app
from vgp_tui.engine.session import Session
from vgp_tui.scenario import load_preset

SIZE = (120, 40)
FIXTURE = Path(__file__).parent / "fixtures" / "deep-sigmoid.jsonl"


def preset_app(name: str) -> Any:
    """The dashboard of built-in preset ``name``, not training (the help needs no step)."""
    return make_app(Session(load_preset(name), device="cpu"), train=False)


async def open_help(pilot: Any) -> Any:
    from vgp_tui.dashboard.screens import HelpScreen

    await pilot.press("question_mark")
    await pilot.pause()
    assert isinstance(pilot.app.screen, HelpScreen)
    return pilot.app.screen


def plotted(screen: Any) -> list[str]:
    from vgp_tui.dashboard.screens import ActivationPlot

    return [plot.activation for plot in screen.query(ActivationPlot)]


def notes(screen: Any) -> str:
    return " ".join(str(note.render()) for note in screen.query(".note"))


def lesson(screen: Any) -> str:
    """The "This preset" section as plain text, its lines joined ("" where there is none)."""
    found = screen.query("#help-preset")
    return " ".join(str(found.first().render()).split()) if found else ""


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("preset", ["rnn-clipping", "sentiment-lstm"])
async def test_a_tanh_rnn_presets_help_plots_tanh_and_not_sigmoid_or_relu(preset: str) -> None:
    """Both recurrent presets start with the vanilla tanh RNN: the help plotted sigmoid and relu,
    which neither network uses, and never tanh."""
    app = preset_app(preset)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_help(pilot)
        assert plotted(screen) == ["tanh"]
        assert "1-tanh²" in notes(screen) and "back in time" in notes(screen)
        assert "sigmoid'" not in notes(screen) and "relu'" not in notes(screen)
        await pilot.press("escape")
        await pilot.press("q")


async def test_after_switching_to_an_lstm_the_help_says_what_its_cell_state_does() -> None:
    app = preset_app("rnn-clipping")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("l")  # cell: rnn -> lstm
        assert app.remedies["cell"] == "lstm"
        screen = await open_help(pilot)
        assert plotted(screen) == ["tanh"]
        assert "LSTM" in notes(screen) and "cell state" in notes(screen)
        await pilot.press("escape")
        await pilot.press("q")


async def test_deep_sigmoids_help_still_plots_sigmoid() -> None:
    app = preset_app("deep-sigmoid")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_help(pilot)
        assert plotted(screen) == ["sigmoid"]
        assert "at most 0.25" in notes(screen)
        await pilot.press("escape")
        await pilot.press("q")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_help_shows_the_presets_summary_and_what_you_should_see(size: tuple[int, int]) -> None:
    """rnn-clipping's expect text admits that neither fix solves the task; the user who applied them
    and saw a flat loss never read it. Its lines (broken at about 100 columns in the file) are joined
    and wrapped to the box, above the activation plot, where the body scrolls to them."""
    from vgp_tui.dashboard.screens import ActivationPlot

    scenario = load_preset("rnn-clipping")
    app = preset_app("rnn-clipping")
    async with app.run_test(size=size) as pilot:
        screen = await open_help(pilot)
        shown = lesson(screen)
        assert "This preset: rnn-clipping" in shown and scenario.title in shown
        assert one_line(scenario.summary) in shown
        assert one_line(scenario.expect) in shown
        assert "the loss stays at or above 1/6" in shown
        body, section = screen.query_one("#help-body"), screen.query_one("#help-preset")
        inside = body.scrollable_content_region
        assert section.region.x >= inside.x and section.region.right <= inside.right, (section.region, inside)
        assert section.region.height >= len(scenario.expect) // section.region.width  # wrapped, not cut
        assert section.region.y >= screen.query_one("#help-keys").region.bottom  # under the keys…
        assert section.region.bottom <= screen.query_one(ActivationPlot).region.y  # …above the plot
        # The body scrolls to the section's last line.
        body.scroll_to_widget(section, animate=False, top=True)
        await pilot.pause()
        section_lines = [line.text for line in section.render_lines(section.region.reset_offset)]
        assert any("1/6" in line for line in section_lines), section_lines
        await pilot.press("escape")
        await pilot.press("q")


async def test_a_replay_shows_no_lesson_and_plots_the_recorded_activation() -> None:
    """A recording's preset file may have changed since, or be the user's own: no lesson is shown for
    it. The activation of the run the replay is at is plotted, as before (the fixture's first run is
    sigmoid's, its second relu's)."""
    app = make_replay_app(str(FIXTURE), speed=1024)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        screen = await open_help(pilot)
        assert lesson(screen) == ""
        assert plotted(screen) == [app.remedies["activation"]] and plotted(screen)[0] in ("sigmoid", "relu")
        await pilot.press("escape")
        await pilot.press("q")


def test_without_an_activation_or_a_cell_the_help_compares_sigmoid_and_relu() -> None:
    """A ResNet, or a recording of a network whose activation is not known: the two of the lesson."""
    from vgp_tui.dashboard.screens import activation_plots

    assert [name for name, _ in activation_plots(None, None)] == ["sigmoid", "relu"]
    assert [name for name, _ in activation_plots("relu", None)] == ["relu"]
    assert [name for name, _ in activation_plots(None, "gru")] == ["tanh"]


async def test_ctrl_s_over_the_help_and_the_picker_saves_what_is_on_screen(tmp_path: Path) -> None:
    """A modal screen stops the app's own keys: ctrl+s did nothing over the help or the picker."""
    from vgp_tui.dashboard.screens import PresetPicker

    app = make_app(Session(load_preset("deep-sigmoid"), device="cpu"), train=False, screenshot_dir=str(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await open_help(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        shots = list(tmp_path.glob("*.svg"))
        assert len(shots) == 1 and "This&#160;preset" in shots[0].read_text()
        await pilot.press("escape", "p")
        await pilot.pause()
        assert isinstance(app.screen, PresetPicker)
        shots[0].unlink()
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        shots = list(tmp_path.glob("*.svg"))
        assert len(shots) == 1 and "Choose&#160;a&#160;preset" in shots[0].read_text()


async def test_beside_the_keys_the_lesson_keeps_a_gutter() -> None:
    """At 200x60 the longest key line ran into the preset's text: "merged by block & Ollivier 2018"."""
    app = preset_app("rnn-clipping")
    async with app.run_test(size=(200, 60)) as pilot:
        screen = await open_help(pilot)
        keys, lesson_box = screen.query_one("#help-keys"), screen.query_one("#help-preset")
        assert lesson_box.region.y == keys.region.y  # beside the keys, not under them
        assert lesson_box.region.x - keys.region.right >= 2


async def test_the_resnets_help_plots_its_relu_alone() -> None:
    """It compared sigmoid and relu, as for a recording of unknown make: a ResNet-18 uses ReLU."""
    app = preset_app("resnet-cifar10")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_help(pilot)
        assert plotted(screen) == ["relu"]
