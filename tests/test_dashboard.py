"""Pilot tests of the live dashboard: every key has its effect on the trainer, threads stay single."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from vgp_tui.dashboard import make_app
from vgp_tui.engine.session import Session
from vgp_tui.scenario import load_preset, parse_preset

SIZE = (120, 40)


def small_sigmoid() -> Any:
    """deep-sigmoid at a size that steps quickly on a loaded CI machine."""
    text = (Path(__file__).parent.parent / "presets" / "deep-sigmoid.toml").read_text()
    return parse_preset(text.replace("depth = 20", "depth = 8").replace("width = 64", "width = 32"), "test", "deep-sigmoid")


def new_app(scenario: Any = None, **kwargs: Any) -> Any:
    session = Session(scenario or small_sigmoid(), device="cpu", **kwargs)
    return make_app(session)


async def wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def diagnosis_kind(app: Any) -> str | None:
    from vgp_tui.dashboard.diagnosis_line import DiagnosisLine

    shown = app.query_one(DiagnosisLine).shown
    return shown.kind if shown is not None else None


async def burst(pilot: Any, *keys: str) -> None:
    """``keys`` as a terminal sends a key held down: one after another, without waiting between them.
    (The pilot's press waits for the app to be idle after each key, pending timers included, so its
    keys never come as a burst.)"""
    from textual import events
    from textual.keys import key_to_character

    for key in keys:
        event = events.Key(key, key_to_character(key))
        event.set_sender(pilot.app)
        pilot.app._driver.send_message(event)
    await pilot.pause(0)


def toasts(app: Any) -> list[str]:
    """The messages of the toasts on screen (mounted ones: what a terminal shows)."""
    from textual.widgets._toast import Toast

    return [str(t._notification.message) for t in app.screen.query(Toast)]


def steps(app: Any) -> int:
    run = app.history.current
    return run.latest.step if run is not None and run.latest is not None else 0


async def test_first_frame_shows_every_panel_and_trains() -> None:
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 20)
        await pilot.pause(0.3)
        for selector in ("#loss", "#flow", "#heatmap", "#diagnosis", "#remedies", "#status"):
            assert app.query_one(selector).display
        assert not app.query_one("#time").display  # no time view for an MLP
        status = str(app.query_one("#status").render())
        assert "deep-sigmoid" in status and "cpu" in status and "run 1" in status
        assert "TRAINING" in status
        bar = str(app.query_one("#remedies").render())
        assert "activation" in bar and "sigmoid" in bar and "cell" not in bar
        await pilot.press("q")
    assert not app.training_threads


async def test_structural_toggle_starts_a_new_run_and_keeps_a_ghost() -> None:
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 5)
        await pilot.press("a")  # sigmoid -> tanh
        await wait_for(pilot, lambda: app.history.current.run == 2)
        assert app.session.trainer.remedies["activation"] == "tanh"
        assert [g.run for g in app.history.ghosts()] == [1]
        from vgp_tui.dashboard.loss_plot import ghost_label

        assert "activation=sigmoid" in ghost_label(app.history.ghosts()[0], app.history.current)  # what differs
        assert app.history.ghosts()[0].steps > 5
        await pilot.press("q")


async def test_live_toggle_applies_at_the_next_step_and_is_marked() -> None:
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 5)
        await pilot.press("c")  # clip off -> 1.0
        await wait_for(pilot, lambda: any(m.kind == "remedy" for m in app.history.current.markers))
        marker = app.history.current.markers[-1]
        assert marker.text == "clip 1"
        assert app.history.current.run == 1  # same run
        await wait_for(pilot, lambda: steps(app) > marker.step + 3)
        assert app.session.trainer.clip == 1.0
        assert app.history.current.clip_steps >= 3
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: app.session.trainer.clip == 2.0)
        await pilot.press("plus")
        await wait_for(pilot, lambda: app.session.trainer.lr == pytest.approx(0.2))
        await pilot.press("minus", "minus")
        await wait_for(pilot, lambda: app.session.trainer.lr == pytest.approx(0.05))
        await pilot.press("g")
        await wait_for(pilot, lambda: app.session.trainer.accumulate == 2)
        await pilot.press("o")
        await wait_for(pilot, lambda: app.session.trainer.remedies["optimizer"] == "momentum")
        assert app.history.current.run == 1
        await pilot.press("q")


async def test_a_burst_of_a_structural_key_starts_one_fresh_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """a pressed four times (sigmoid, tanh, relu, sigmoid, tanh) started four runs of a few steps each,
    which pushed the ghost to compare against out of the legend; the burst is one change now."""
    monkeypatch.setattr("vgp_tui.dashboard.keys.BURST_QUIET_SECONDS", 1.0)  # (a loaded machine)
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 5)
        await burst(pilot, "a", "a", "a", "a")
        await wait_for(pilot, lambda: app.remedies["activation"] == "tanh")
        await wait_for(pilot, lambda: app.history.current.run == 2 and steps(app) > 5)
        await pilot.pause(0.3)
        assert app.history.current.run == 2 and app.session.trainer.remedies["activation"] == "tanh"
        await pilot.press("q")


async def test_a_burst_that_comes_round_to_its_value_says_so_and_starts_no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """a pressed three times (tanh, relu, sigmoid again) toasted "a fresh run starts", and none came."""
    monkeypatch.setattr("vgp_tui.dashboard.keys.BURST_QUIET_SECONDS", 1.0)  # (a loaded machine)
    app = new_app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: steps(app) > 5)
        await burst(pilot, "a", "a", "a")
        await wait_for(pilot, lambda: "activation → sigmoid: as it was, nothing changes" in toasts(app))
        assert not app._unsent
        before = steps(app)
        await wait_for(pilot, lambda: steps(app) > before + 5)
        assert app.history.current.run == 1 and app.session.trainer.remedies["activation"] == "sigmoid"
        await pilot.press("q")


async def test_quitting_right_after_a_remedy_key_keeps_the_change_in_the_recording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """q within the burst's quiet time quit before the change was sent: the recording lacked the key."""
    from vgp_tui.dashboard import _wait_for_training
    from vgp_tui.engine.events import KeyPressed, RemedyChanged
    from vgp_tui.engine.recording import read_recording

    monkeypatch.setattr("vgp_tui.dashboard.keys.BURST_QUIET_SECONDS", 5.0)  # q surely comes within it
    path = tmp_path / "run.jsonl"
    app = make_app(Session(small_sigmoid(), device="cpu"), record=str(path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 5)
        await burst(pilot, "plus", "q")
        await wait_for(pilot, lambda: not app.is_running, timeout=30)
    _wait_for_training(app)  # as run_dashboard closes: the training thread's last records, then the file
    app.recorder.close()
    events = read_recording(path).events
    assert [(e.key, e.action) for e in events if isinstance(e, KeyPressed)] == [("+", "lr=0.2")]
    assert [(e.name, e.new) for e in events if isinstance(e, RemedyChanged)] == [("lr", pytest.approx(0.2))]


async def test_a_late_report_of_a_remedy_change_does_not_set_the_keys_value_back() -> None:
    """The session reports a change at its next step; keys pressed meanwhile had gone past it, and the
    report set the bar back (the next + then doubled the old value)."""
    from vgp_tui.engine.events import RemedyChanged

    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 5)
        await burst(pilot, "plus", "plus")
        await wait_for(pilot, lambda: app.remedies["lr"] == pytest.approx(0.4))
        app.history.add(late := RemedyChanged(1, steps(app), 0.0, "lr", 0.1, 0.2, False))
        app._react(late)
        assert app.remedies["lr"] == pytest.approx(0.4)
        await wait_for(pilot, lambda: app.session.trainer.lr == pytest.approx(0.4))
        await pilot.press("q")


async def test_restart_while_paused_says_the_fresh_run_trains() -> None:
    app = new_app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: steps(app) > 5)
        await pilot.press("space")
        await wait_for(pilot, lambda: app.history.state == "paused")
        await pilot.press("r")
        await wait_for(pilot, lambda: "restart: a fresh run from the same seed, and it trains (it was paused)"
                       in toasts(app))
        await wait_for(pilot, lambda: app.history.current.run == 2 and app.history.state == "training")
        await pilot.press("q")


async def test_a_cast_ends_on_a_frame_without_toasts() -> None:
    """The last frame is the one a cast holds longest: a recorded key's toast covered the heatmap's legend."""
    from vgp_tui.dashboard import make_replay_app

    app = make_replay_app(str(Path(__file__).parent / "fixtures" / "deep-sigmoid.jsonl"), speed=1024, exit_at_end=True)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app._ending)
        await pilot.pause(0.2)
        assert toasts(app) == [] and not app._notifications


async def test_two_quick_spaces_pause_and_resume() -> None:
    """The second space read the state before the session reported the pause, and paused again."""
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 5)
        await burst(pilot, "space", "space")
        await pilot.pause(0.5)
        before = steps(app)
        await wait_for(pilot, lambda: steps(app) > before + 5)
        assert app.history.state == "training"
        await burst(pilot, "space", "space", "space")
        await wait_for(pilot, lambda: app.history.state == "paused")
        await pilot.press("q")


async def test_a_key_held_down_shows_one_toast_and_stops_at_the_limit(
    monkeypatch: pytest.MonkeyPatch, listen: Any
) -> None:
    # Keys that come faster than the quiet time are one burst, as a held key's repeats are; the pilot's
    # presses on a loaded machine may be further apart than a terminal's 30 ms, hence a longer quiet time.
    monkeypatch.setattr("vgp_tui.dashboard.keys.BURST_QUIET_SECONDS", 1.0)
    app = new_app()
    shown = listen(app)
    async with app.run_test(size=SIZE, notifications=True) as pilot:  # (toasts are off in tests by default)
        await wait_for(pilot, lambda: steps(app) > 5)
        await pilot.press("space")  # paused: every change is marked at the next step, none is lost to a divergence
        await wait_for(pilot, lambda: app.history.state == "paused")
        shown.clear()
        await burst(pilot, *["plus"] * 12)  # 0.1 doubled ten times passes 100, the largest lr
        await wait_for(pilot, lambda: app.remedies["lr"] == 100.0)
        await wait_for(pilot, lambda: toasts(app) == ["lr is at its largest, 100"])
        # One toast for the burst: each key's toast shown and cleared by the next stacked up in a terminal
        # (Textual clears only the toasts already mounted).
        assert shown == ["lr is at its largest, 100"], shown
        await pilot.press("n")
        await wait_for(pilot, lambda: any(m.kind == "remedy" for m in app.history.current.markers))
        await pilot.pause(0.2)
        texts = [m.text for m in app.history.current.markers if m.kind == "remedy"]
        assert texts == ["lr 100"], texts  # the burst is one change, and the presses at the limit changed nothing
        assert app.session.trainer.lr == 100.0
        assert app.history.state == "paused"
        await pilot.press("a")  # a structural change while paused starts a run that trains: said, not silent
        await wait_for(pilot, lambda: toasts(app) == [
            "activation → tanh: a fresh run starts from the same seed, and trains (it was paused); "
            "the last one stays as a ghost"])
        await pilot.press("q")


async def test_pause_stops_the_step_counter_and_n_steps_once() -> None:
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 5)
        await pilot.press("space")
        await wait_for(pilot, lambda: app.history.state == "paused")
        await pilot.pause(0.3)
        paused_at = steps(app)
        await pilot.pause(0.5)
        assert steps(app) == paused_at
        assert app.session.trainer.step_count == paused_at
        await pilot.press("n")
        await wait_for(pilot, lambda: steps(app) == paused_at + 1)
        await pilot.pause(0.3)
        assert steps(app) == paused_at + 1
        await pilot.press("space")
        await wait_for(pilot, lambda: steps(app) > paused_at + 5)
        await pilot.press("q")


async def test_restart_spam_leaves_exactly_one_training_thread() -> None:
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        for _ in range(15):
            await pilot.press("r")
        await wait_for(pilot, lambda: app.history.current.run == 16)
        assert len(app.training_threads) == 1
        alive = [t for t in threading.enumerate() if t.ident in app.training_threads]
        assert len(alive) == 1
        await pilot.press("q")
    await asyncio.sleep(0.5)
    assert not app.training_threads


async def test_vanishing_is_diagnosed_and_the_key_it_names_fixes_it_in_one_run() -> None:
    app = new_app(load_preset("deep-sigmoid"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 20, timeout=40)
        await wait_for(pilot, lambda: diagnosis_kind(app) == "vanishing", timeout=40)
        text = str(app.query_one("#diagnosis").render())
        assert "vanishing" in text and "[1] relu + init he" in text
        heat = app.history.current.series.view(100)
        assert heat.mean[:, 2].max() < 1e-6 * heat.mean[:, -1].min()  # layer 1 row is far darker
        await pilot.press("1")  # exactly the key the line names
        await wait_for(pilot, lambda: app.history.current.run == 2 and steps(app) > 20, timeout=40)
        assert app.history.current.remedies["activation"] == "relu" and app.history.current.remedies["init"] == "he"
        await wait_for(pilot, lambda: diagnosis_kind(app) == "healthy", timeout=40)
        assert "healthy flow" in str(app.query_one("#diagnosis").render())
        assert sorted(app.history.runs) == [1, 2]  # both changes made one fresh run, not two
        await pilot.press("q")


async def test_the_dead_relu_fix_restarts_with_the_lower_lr(listen: Any) -> None:
    # A dead unit passes no gradient to its own weights, so the lower learning rate the diagnosis
    # offers for dead ReLUs must start a fresh run, although the lr is a live remedy. (Which runs die
    # is chaotic at the rates that kill them, so the verdict is put on the line while paused.)
    from vgp_tui.dashboard.diagnosis_line import DiagnosisLine
    from vgp_tui.diagnosis import Diagnosis, _dead_fixes

    app = new_app(load_preset("deep-relu"), overrides={"init": "he", "lr": 0.3})
    toasts = listen(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        await pilot.press("space")
        await wait_for(pilot, lambda: app.history.state == "paused")
        fixes = _dead_fixes(dict(app.history.current.remedies))
        app.query_one(DiagnosisLine).show(Diagnosis("dead", "Dead ReLUs: 73% of the units after layer 20 output 0.", fixes))
        await pilot.pause(0.1)
        assert "[1] restart with lr 0.15" in str(app.query_one("#diagnosis").render())
        await pilot.press("1")
        await wait_for(pilot, lambda: app.history.current.run == 2)
        assert app.history.current.remedies["lr"] == 0.15
        toast = next(t for t in toasts if t.startswith("restart with lr 0.15:"))
        assert "fresh run" in toast and "next step" not in toast
        await pilot.press("q")


async def test_a_fix_key_the_line_does_not_offer_says_so(listen: Any) -> None:
    app = new_app()
    toasts = listen(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        await pilot.press("9")
        await wait_for(pilot, lambda: any("no fix [9]" in t for t in toasts))
        await pilot.press("l")  # the LSTM cell: deep-sigmoid has no cell, its key is not in the footer
        await wait_for(pilot, lambda: any("l: cell does not apply to deep-sigmoid" in t for t in toasts))
        assert app.history.current.run == 1
        await pilot.press("q")


async def test_a_live_remedy_after_a_divergence_says_a_fresh_run_starts(listen: Any) -> None:
    app = new_app(load_preset("deep-relu"))
    toasts = listen(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.history.state == "diverged", timeout=40)
        await pilot.press("c")
        await wait_for(pilot, lambda: any(t.startswith("clip → 1") for t in toasts))
        toast = next(t for t in toasts if t.startswith("clip → 1"))
        assert "fresh run" in toast and "next step" not in toast
        await wait_for(pilot, lambda: app.history.current.run == 2, timeout=40)
        await pilot.press("q")


async def test_too_small_terminal_asks_to_enlarge_and_recovers() -> None:
    app = new_app()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause(0.3)
        assert app.query_one("#too-small").display
        assert not app.query_one("#main").display
        assert "Please enlarge" in str(app.query_one("#too-small").render())
        await pilot.resize_terminal(100, 30)
        await pilot.pause(0.3)
        assert app.query_one("#main").display and not app.query_one("#too-small").display
        await pilot.press("q")


async def test_help_screen_lists_keys_and_plots_the_derivative() -> None:
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        from vgp_tui.dashboard.screens import ActivationPlot, HelpScreen

        assert isinstance(app.screen, HelpScreen)
        keys = dict(app.screen.keys)
        assert {"activation: next value", "pause/resume", "restart", "quit"} <= set(keys.values())
        assert "cell: next value" not in keys.values()
        # One line for the nine fix keys, one for the layer-scrolling keys, one for quit.
        assert keys["1–9"] == "apply the fix of that number in the diagnosis line"
        assert not any(description.startswith("fix ") for description in keys.values())
        assert keys["q ^c"] == "quit" and list(keys.values()).count("quit") == 1
        assert "scroll the layers (after z or w)" in keys.values()
        plot = app.screen.query_one(ActivationPlot)
        assert plot.activation == "sigmoid"
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")


async def test_preset_picker_switches_session_in_the_same_thread() -> None:
    app = new_app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        await pilot.press("p")
        from vgp_tui.dashboard.screens import PresetPicker

        await wait_for(pilot, lambda: isinstance(app.screen, PresetPicker))  # (not a fixed pause: CI is loaded)
        names = [name for name, _ in app.screen.presets]
        for _ in range(names.index("rnn-clipping") - names.index("deep-sigmoid")):
            await pilot.press("down")
        await pilot.press("enter")
        # (The screen's own run, not only the session: until the feed brings the new session's run, the
        # History still holds deep-sigmoid's, steps and all; CI once read the layout in between.)
        await wait_for(pilot, lambda: app.session.scenario.name == "rnn-clipping" and steps(app) > 0
                       and "cell" in app.history.current.started_with, timeout=40)
        assert app.query_one("#time").display
        assert len(app.training_threads) == 1
        bar = str(app.query_one("#remedies").render())
        assert "cell" in bar and "activation" not in bar
        # It has switched: its toast goes. (Waited for, not read at once: Textual removes a cleared toast
        # in a later tick, and the new session and its first steps can come in one drain of the feed.)
        await wait_for(pilot, lambda: not any(t.startswith("switching to") for t in toasts(app)), timeout=5)
        await pilot.press("q")


async def test_screenshot_key_saves_an_svg(tmp_path: Path) -> None:
    session = Session(small_sigmoid(), device="cpu")
    app = make_app(session, screenshot_dir=str(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        shots = list(tmp_path.glob("*.svg"))
        svg = shots[0].read_text() if len(shots) == 1 else ""
        assert "Gradient" in svg and "heatmap" in svg and "deep-sigmoid" in svg
        await pilot.press("q")


async def test_the_palettes_screenshot_and_fixes_are_the_dashboards(tmp_path: Path, monkeypatch: Any) -> None:
    """The palette listed Textual's "Screenshot" (written into the downloads folder under another
    name, --screenshot-dir ignored) beside ctrl+s's, and "fix 1" to "fix 9" whatever the line offered."""
    from vgp_tui.dashboard.diagnosis_line import DiagnosisLine
    from vgp_tui.diagnosis import Diagnosis, Fix

    app = make_app(Session(small_sigmoid(), device="cpu"), screenshot_dir=str(tmp_path), train=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert not any(t.startswith("fix") for t in titles), titles  # no step yet: nothing offered
        line = app.query_one(DiagnosisLine)
        line.show(Diagnosis("vanishing", "Vanishing.", (Fix((("activation", "relu"), ("init", "he")), "relu + init he"),
                                                         Fix((("batchnorm", True),), "batchnorm on"))))
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert [t for t in commands if t.startswith("fix")] == ["fix 1: relu + init he (1)", "fix 2: batchnorm on (2)"]
        shots = [t for t in commands if "screenshot" in t.lower()]
        assert shots == ["screenshot (^s)"], shots
        assert "Theme" not in commands  # a light theme drew the plots' labels black on black
        commands["screenshot (^s)"].callback()
        await pilot.pause(0.3)
        assert len(list(tmp_path.glob("vgp-tui-deep-sigmoid-*.svg"))) == 1
        # In a browser tab (`vgp-tui serve`) the picture goes to the browser, not into the server's folder.
        delivered: list[dict[str, Any]] = []
        monkeypatch.setattr(type(app), "is_web", property(lambda self: True))
        monkeypatch.setattr(app, "deliver_text", lambda file, **options: delivered.append(options) or "key")
        said: list[str] = []
        monkeypatch.setattr(app, "notify", lambda message, **_: said.append(message))
        app.action_screenshot()
        await wait_for(pilot, lambda: bool(delivered))
        assert len(delivered) == 1 and delivered[0]["save_filename"].startswith("vgp-tui-deep-sigmoid-")
        assert delivered[0]["mime_type"] == "image/svg+xml" and delivered[0]["open_method"] == "browser"
        assert said == [said[0]] and "sent to the browser" in said[0] and "allow pop-ups" in said[0]
        assert len(list(tmp_path.glob("*.svg"))) == 1
        # Once the browser fetched it, Textual said "Saved screenshot" as well (for its own delivery's
        # name); a failed delivery is said once, as ours.
        from textual import events

        app.post_message(events.DeliveryComplete("key", name=delivered[0]["name"]))
        await pilot.pause(0.1)
        assert len(said) == 1, said
        app.post_message(events.DeliveryFailed("key", OSError("gone"), name=delivered[0]["name"]))
        await pilot.pause(0.1)
        assert said[1:] == ["screenshot not sent to the browser: gone"], said
        monkeypatch.undo()
        await pilot.press("q")


async def test_a_screenshot_is_of_the_dashboard_without_the_toasts_on_screen(tmp_path: Path) -> None:
    """ctrl+s right after a key saved that key's toast in the picture, over the loss plot."""
    from textual.widgets._toast import Toast

    session = Session(small_sigmoid(), device="cpu")
    app = make_app(session, screenshot_dir=str(tmp_path))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        await pilot.press("h")
        await wait_for(pilot, lambda: any("earlier runs" in str(w.render()) for w in app.screen.query(Toast)))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: bool(list(tmp_path.glob("*.svg"))))
        await wait_for(pilot, lambda: any("screenshot saved" in str(w.render()) for w in app.screen.query(Toast)))
        await pilot.press("q")
    picture = next(tmp_path.glob("*.svg")).read_text(encoding="utf-8")
    assert "Gradient" in picture.replace("&#160;", " ")  # (the dashboard's own words are in it)
    assert "earlier" not in picture, "the h key's toast is in the screenshot"


async def test_a_screenshots_file_name_is_whole_on_one_line_of_its_toast_at_80x24(tmp_path: Path) -> None:
    """The toast gave the whole path on one line, which at 80 columns wrapped inside the file's name
    ("…-215434.s" / "vg"): the folder comes first, the name on a line of its own. And Textual folded
    a path longer than the toast two cells too wide, losing them ("test_a_screensho" / "_file…"):
    the app folds it to the toast's width itself."""
    from textual.geometry import Region
    from textual.widgets._toast import Toast

    shots = tmp_path / "shots"
    shots.mkdir()
    app = make_app(Session(small_sigmoid(), device="cpu"), screenshot_dir=str(shots))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any(t.startswith("screenshot saved") for t in toasts(app)))
        await pilot.pause()
        toast = next(t for t in app.screen.query(Toast) if str(t._notification.message).startswith("screenshot"))
        drawn = [strip.text.strip(" ▌") for strip in toast.render_lines(Region(0, 0, *toast.size))]
        # Over another screen's rack, a word longer than a toast loses no cell either.
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
        app.clear_notifications()
        app.notify("z" * 100)
        await wait_for(pilot, lambda: any(t.startswith("z") for t in toasts(app)))
        await pilot.pause()
        toast = next(t for t in app.screen.query(Toast) if str(t._notification.message).startswith("z"))
        over_help = "".join(strip.text for strip in toast.render_lines(Region(0, 0, *toast.size)))
        await pilot.press("escape", "q")
    name = next(shots.glob("*.svg")).name
    assert name in drawn, drawn
    assert f"{shots.resolve()}{os.sep}" in "".join(drawn), drawn  # (a long folder folds, as here)
    assert over_help.count("z") == 100, over_help


async def test_divergence_pauses_with_a_marker_and_a_remedy_goes_on() -> None:
    app = new_app(small_sigmoid(), overrides={"lr": "100", "activation": "relu"})
    async with app.run_test(size=SIZE, notifications=True) as pilot:  # (toasts are off in tests by default)
        await wait_for(pilot, lambda: app.history.state == "diverged", timeout=30)
        marker = app.history.current.markers[-1]
        assert marker.kind == "diverged"
        frozen = app.session.trainer.step_count
        await pilot.pause(0.3)
        assert app.session.trainer.step_count == frozen
        # Its toast points at the diagnosis line and the fix keys: it must not cover them, nor the
        # flow panel or the heatmap. It sits at the loss plot's bottom left.
        from textual.widgets._toast import Toast

        await wait_for(pilot, lambda: any("diagnosis line" in t._notification.message for t in app.screen.query(Toast)))
        await pilot.pause()
        for toast in app.screen.query(Toast):
            for selector in ("#diagnosis", "#remedies", "#status", "#flow", "#heatmap"):
                assert not toast.region.overlaps(app.query_one(selector).region), selector
            loss = app.query_one("#loss").region
            assert toast.region.bottom == loss.bottom and loss.contains_region(toast.region)
        await pilot.press("minus")  # a live remedy after divergence starts afresh with it applied
        # (lr 50 may diverge again at once, so only the new run is waited for, not its state)
        await wait_for(pilot, lambda: app.history.current.run == 2)
        assert app.session.trainer.lr == pytest.approx(50.0)
        assert app.history.current.remedies["lr"] == pytest.approx(50.0)
        await pilot.press("q")


async def test_exception_in_training_is_shown_and_logged_and_the_app_stays_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vgp_tui.engine.trainer import Trainer

    real_step = Trainer.step

    def failing_step(self: Trainer) -> None:
        if self.run == 1 and self.step_count >= 3:
            raise RuntimeError("the data loader broke")
        real_step(self)

    monkeypatch.setattr(Trainer, "step", failing_step)
    log = tmp_path / "vgp.log"
    monkeypatch.setenv("VGP_TUI_LOG", str(log))
    from vgp_tui.dashboard.logfile import configure_logging

    configure_logging()
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.history.state == "error")
        assert "the data loader broke" in app.history.message
        assert "RuntimeError: the data loader broke" in log.read_text()
        await pilot.press("r")
        await wait_for(pilot, lambda: app.history.current.run == 2 and steps(app) > 3)
        await pilot.press("q")


async def test_quit_mid_training_returns_at_once() -> None:
    app = new_app(load_preset("deep-sigmoid"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        started = time.monotonic()
        await pilot.press("q")
    assert time.monotonic() - started < 2.0
    await asyncio.sleep(0.5)
    assert not app.training_threads


async def test_every_key_is_in_the_command_palette() -> None:
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("activation: next value", "pause/resume", "restart", "preset", "log/lin", "screenshot"):
            assert any(t.startswith(wanted) for t in titles), wanted
        assert not any(t.startswith("cell: next value") for t in titles)
        # Found by the words of the README, not only by the keys' short names
        assert any(t.startswith("lr ×2: learning rate") for t in titles), titles
        assert any(t.startswith("ghosts: ") for t in titles), titles
        command = next(c for c in app.get_system_commands(app.screen) if c.title.startswith("pause/resume"))
        await wait_for(pilot, lambda: steps(app) > 2)
        command.callback()
        await wait_for(pilot, lambda: app.history.state == "paused")
        await pilot.press("q")


async def test_a_full_disk_stops_the_recording_not_the_training(listen: Any) -> None:
    session = Session(small_sigmoid(), device="cpu")
    app = make_app(session, record="/dev/full")  # every write fails with "No space left on device"
    shown = listen(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 50)
        assert app.recorder.error and "No space left on device" in app.recorder.error
        # The toast is raised after the next refresh (_report_recording_trouble): under load the error
        # and the 50th step can come in one drain, a refresh before it (failed once that way in CI).
        await wait_for(pilot, lambda: any("training goes on without recording" in m for m in shown), timeout=5)
        before = steps(app)
        await wait_for(pilot, lambda: steps(app) > before + 20)
        await pilot.press("q")


async def test_a_recording_that_fails_at_once_is_said_on_screen_from_the_command_line_path() -> None:
    """As the command line starts it (the session built in the training thread): the toast was
    raised in the pass that took the new session, whose clearing of the toasts, done again after the
    next refresh, took it away; shown once, it never came back. The user trained on, unrecorded."""
    from vgp_tui.dashboard.app import VgpApp

    app = VgpApp(start=lambda: Session(small_sigmoid(), device="cpu"), preset="deep-sigmoid", record="/dev/full")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: steps(app) > 50)
        assert app.recorder.error and "No space left on device" in app.recorder.error
        await pilot.pause(0.2)
        assert any("training goes on without recording" in n.message for n in app._notifications), \
            [n.message for n in app._notifications]
        await pilot.press("q")


async def test_out_of_memory_is_reported_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from vgp_tui.engine.trainer import Trainer

    def out_of_memory(self: Trainer) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(Trainer, "step", out_of_memory)
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.history.state == "error")
        assert "out of memory" in app.history.message and "batch_size" in app.history.message
        assert "ERROR" in str(app.query_one("#status").render())
        await pilot.press("q")


@pytest.mark.parametrize("size", [(40, 10), (79, 24), (80, 23)])
async def test_smaller_than_80x24_asks_to_enlarge(size: tuple[int, int]) -> None:
    app = new_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        assert app.query_one("#too-small").display and not app.query_one("#main").display
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert app.query_one("#main").display
        await pilot.press("q")


async def test_no_color_draws_the_heatmap_in_shades(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 20)
        await pilot.pause(0.3)
        assert app.no_color
        text = "".join(strip.text for strip in app.query_one("#heatmap").render_lines(app.query_one("#heatmap").region.reset_offset))
        assert any(shade in text for shade in "░▒▓█")
        await pilot.press("q")


async def test_a_broken_user_preset_is_a_notification_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listen: Any
) -> None:
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "aaa-broken.toml").write_text("name = 'aaa-broken'\n[model\n")
    monkeypatch.setenv("VGP_TUI_PRESETS", str(folder))
    app = new_app()
    shown = listen(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        await pilot.press("p")
        await pilot.pause(0.2)
        names = [name for name, _ in app.screen.presets]
        assert "aaa-broken" in names and "invalid" in dict(app.screen.presets)["aaa-broken"]
        moves = names.index("aaa-broken") - names.index("deep-sigmoid")  # user presets follow the built-ins
        assert moves > 0
        for _ in range(moves):
            await pilot.press("down")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("not valid TOML" in m for m in shown))
        assert app.session.name == "deep-sigmoid"
        before = steps(app)
        await wait_for(pilot, lambda: steps(app) > before + 5)  # still training the old preset
        await pilot.press("q")


async def test_throttled_panels_catch_up_when_training_pauses() -> None:
    """The loss plot redraws at most once a second while training, but never stays stale."""
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 20)
        await pilot.press("space")
        await wait_for(pilot, lambda: app.history.state == "paused")
        await pilot.pause(1.5)
        final = steps(app)
        assert app._drawn["loss"][0][1] == ((1, final),)  # (run, steps) of every run drawn
        assert app._drawn["heatmap"][0] == final
        assert app._drawn["flow"][0] == final
        await pilot.press("q")


async def test_a_preset_that_cannot_load_keeps_the_previous_run_going(tmp_path: Path, listen: Any) -> None:
    app = new_app(data_dir=str(tmp_path))  # no CIFAR-10 in this folder, and no --synthetic
    toasts = listen(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        app.switch_preset("resnet-cifar10")
        await wait_for(pilot, lambda: any("goes on" in t for t in toasts), timeout=60)
        before = steps(app)
        await wait_for(pilot, lambda: steps(app) > before + 5)  # still training, the same run
        assert app.session.name == "deep-sigmoid" and app.history.current.run == 1
        assert app.history.state == "training"
        await pilot.press("q")


async def test_a_preset_whose_data_is_missing_is_offered_on_its_stand_in_in_the_picker(
    tmp_path: Path, listen: Any
) -> None:
    """The toast told the dashboard's user to "pass --synthetic", which only the command line takes:
    the picker now offers the preset on its synthetic stand-in, one key away, for that preset alone."""
    from textual.widgets import OptionList
    from textual.widgets._toast import Toast

    from vgp_tui.dashboard.screens import PresetPicker

    app = new_app(data_dir=str(tmp_path))  # no CIFAR-10 and no IMDB in this folder, and no --synthetic
    toasts = listen(app)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        app.switch_preset("resnet-cifar10")
        await wait_for(pilot, lambda: any("goes on" in t for t in toasts), timeout=60)
        said = next(t for t in toasts if "goes on" in t)
        assert said.startswith(f"resnet-cifar10 needs CIFAR-10: not in {tmp_path.resolve()}; deep-sigmoid goes on")
        assert "press p and pick 'resnet-cifar10 · synthetic data'" in said and "--synthetic" not in said, said
        await wait_for(pilot, lambda: bool(app.screen.query(Toast)))  # on screen, as the user reads it
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PresetPicker))
        await pilot.pause()
        # The toast goes as the picker opens: drawn over it, at 80x24 it covered the entry it names.
        assert not app.screen.query(Toast), toasts
        picker = app.screen.query_one(OptionList)
        ids = [picker.get_option_at_index(i).id for i in range(picker.option_count)]
        assert ids.index("resnet-cifar10\tsynthetic") == ids.index("resnet-cifar10") + 1, ids
        assert not any(i.endswith("synthetic") for i in ids if not i.startswith("resnet-cifar10")), ids
        for _ in range(ids.index("resnet-cifar10\tsynthetic") - picker.highlighted):
            await pilot.press("down")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.session.name == "resnet-cifar10" and app.history.current.run == 2
                       and steps(app) > 0, timeout=120)
        assert app.session.stand_in and app.history.current.stand_in
        await pilot.press("p")  # the picker opens on what runs: the stand-in, not the real data's entry
        await wait_for(pilot, lambda: isinstance(app.screen, PresetPicker))
        picker = app.screen.query_one(OptionList)
        assert picker.get_option_at_index(picker.highlighted).id == "resnet-cifar10\tsynthetic"
        await pilot.press("enter")  # the same preset on the same data: nothing changes
        await pilot.pause(0.3)
        assert app.session.name == "resnet-cifar10" and app.history.current.run == 2
        # The stand-in was for resnet-cifar10 alone: sentiment-lstm still asks for its real data.
        app.switch_preset("sentiment-lstm")
        await wait_for(pilot, lambda: any(t.startswith("sentiment-lstm needs IMDB") for t in toasts), timeout=60)
        assert app.session.name == "resnet-cifar10"
        await pilot.press("q")


@pytest.mark.parametrize("fault", ["out of memory", "a bug"])
async def test_a_preset_whose_model_cannot_be_built_keeps_the_previous_run_going(
    listen: Any, monkeypatch: Any, fault: str
) -> None:
    """The switched-to preset's model is built before the screen switches: one the allocator refuses
    used to stop the training thread, with the screen already on the new preset's empty panels."""
    import torch

    from vgp_tui.engine import trainer

    build = trainer.build_model

    def refuse_deep_relu(family: Any, config: Any, remedies: Any, task: Any) -> Any:
        if remedies.get("activation") == "relu":  # deep-relu's model, not deep-sigmoid's
            if fault == "a bug":
                raise ValueError("no such layer")
            torch.empty(2**50, dtype=torch.uint8)  # the CPU allocator's own refusal
        return build(family, config, remedies, task)

    monkeypatch.setattr(trainer, "build_model", refuse_deep_relu)
    app = new_app()
    toasts = listen(app)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        app.switch_preset("deep-relu")
        await wait_for(pilot, lambda: any("goes on" in t for t in toasts), timeout=60)
        said = "does not fit in memory" if fault == "out of memory" else "deep-relu could not start: ValueError: no such layer"
        assert any(said in t and t.endswith("deep-sigmoid goes on") for t in toasts), toasts
        if fault == "out of memory":  # the toast shows the preset's [model] (taken for markup, it was lost)
            from textual.widgets._toast import Toast

            await wait_for(pilot, lambda: any("goes on" in str(w.render()) for w in app.screen.query(Toast)))
            shown = [str(w.render()) for w in app.screen.query(Toast) if "goes on" in str(w.render())]
            assert "make [model] smaller" in shown[0], shown
            assert not any("switching to" in str(w.render()) for w in app.screen.query(Toast))  # replaced
        before = steps(app)
        await wait_for(pilot, lambda: steps(app) > before + 5)  # still training, the same run
        assert app.session.name == "deep-sigmoid" and app.history.current.run == 1
        assert app.history.state == "training" and app.runner.threads
        await pilot.press("q")


async def test_replay_offers_only_the_keys_that_work_in_replay(listen: Any) -> None:
    from vgp_tui.dashboard import make_replay_app

    fixture = Path(__file__).parent / "fixtures" / "deep-sigmoid.jsonl"
    app = make_replay_app(str(fixture), speed=1024)
    toasts = listen(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.playback.ended)
        await pilot.pause(0.3)
        shown = {b.action.partition("(")[0] for b in app._visible_bindings() if b.show}
        assert shown == {"toggle_pause", "seek", "speed", "toggle_log", "cycle_ghosts", "help", "quit"}, shown
        await pilot.press("a")
        await wait_for(pilot, lambda: any("a recording cannot be changed" in t for t in toasts))
        bar = str(app.query_one("#remedies").render())
        assert "activation" in bar and " a " not in bar  # the values, without keys that do nothing here
        assert "Press [" not in str(app.query_one("#diagnosis").render())
        await pilot.press("q")


async def test_a_replay_names_the_fixes_it_cannot_apply_in_words(tmp_path: Path) -> None:
    """Run 1 of the deep-sigmoid fixture, alone: it vanishes, and the line names the fixes a live
    session would have offered as keys."""
    from vgp_tui.dashboard import make_replay_app

    lines = (Path(__file__).parent / "fixtures" / "deep-sigmoid.jsonl").read_text().splitlines()
    second = [i for i, line in enumerate(lines) if line.startswith('{"type":"run"')][1]
    (tmp_path / "run1.jsonl").write_text("\n".join(lines[:second]) + "\n")
    app = make_replay_app(str(tmp_path / "run1.jsonl"), speed=1024)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.playback.ended)
        await wait_for(pilot, lambda: diagnosis_kind(app) == "vanishing")
        line = " ".join(str(app.query_one("#diagnosis").render()).split())
        assert "Press [" not in line and line.endswith("vanishing. To try: relu + init he, batchnorm on, skip on."), line
        await pilot.press("q")


@pytest.mark.parametrize("args", [[], ["replay", str(Path(__file__).parent / "fixtures" / "deep-sigmoid.jsonl")]])
def test_without_a_terminal_the_dashboard_says_what_to_do_in_one_line(tmp_path: Path, args: list[str]) -> None:
    import subprocess
    import sys

    with open(tmp_path / "out", "wb") as out:
        done = subprocess.run([sys.executable, "-m", "vgp_tui", *args], stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.PIPE, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert (tmp_path / "out").read_bytes() == b""  # no escape codes into a file
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vgp-tui: error: ") and "ssh -t" in lines[0], done.stderr


def test_a_model_too_big_for_memory_closes_the_dashboard_with_one_line(tmp_path: Path) -> None:
    """The first model is built in the training thread once the screen is up: a model the allocator
    refuses left the screen with empty panels and a dead training thread."""
    import os
    import sys

    from terminal import ANSI, run_in_pty  # tests/terminal.py

    small = tmp_path / "tiny.toml"
    small.write_text((Path(__file__).parent.parent / "presets" / "deep-sigmoid.toml").read_text()
                     .replace("depth = 20", "depth = 2"))
    program = ("import sys, torch\n"
               "from vgp_tui.engine import trainer\n"
               "trainer.build_model = lambda *a, **k: torch.empty(2**50, dtype=torch.uint8)  # the CPU allocator refuses\n"
               "from vgp_tui.cli import main\n"
               "main(sys.argv[1:])\n")
    env = dict(os.environ, TERM="xterm-256color")
    status, output = run_in_pty([sys.executable, "-c", program, "--preset", str(small)], env=env, timeout=60)
    after = ANSI.sub("", output.rsplit("\x1b[?1049l", 1)[-1]).strip()  # what stays once the screen is gone
    assert status == 2, output[-2000:]
    assert after == (f"vgp-tui: error: {small}: the model does not fit in memory on cpu; make [model] smaller "
                     "(depth 2, width 64)"), after


async def test_a_user_preset_that_shadows_a_builtin_one_is_marked(tmp_path: Path, monkeypatch: Any) -> None:
    text = (Path(__file__).parent.parent / "presets" / "deep-sigmoid.toml").read_text()
    (tmp_path / "deep-sigmoid.toml").write_text(text.replace("depth = 20", "depth = 4"))
    monkeypatch.setenv("VGP_TUI_PRESETS", str(tmp_path))
    app = new_app(load_preset("deep-sigmoid"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        await pilot.pause(0.3)
        assert "deep-sigmoid (user preset, shadows built-in)" in str(app.query_one("#status").render())
        await pilot.press("q")


def test_a_missing_screenshot_folder_is_one_line_before_the_screen_opens(tmp_path: Path) -> None:
    """In a real terminal (a pty), so the terminal check passes and the option's own check speaks."""
    import os
    import pty
    import sys

    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-m", "vgp_tui", "--screenshot-dir", str(tmp_path / "nope")])
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 2
    text = output.decode(errors="replace").strip()
    assert text.splitlines() == [f"vgp-tui: error: --screenshot-dir {tmp_path / 'nope'}: no such folder "
                                 "(create it, or leave the option out)"], text


async def test_quick_replay_keys_toast_their_own_result_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from vgp_tui.dashboard import make_replay_app

    monkeypatch.setattr("vgp_tui.dashboard.keys.BURST_QUIET_SECONDS", 1.0)  # each burst of presses is one burst
    app = make_replay_app(str(Path(__file__).parent / "fixtures" / "deep-sigmoid.jsonl"), speed=1)
    shown: list[str] = []  # the keys' answers (the recording's own keys toast too, by notify)
    show_only = app._show_only
    monkeypatch.setattr(app, "_show_only", lambda message, options: (shown.append(message), show_only(message, options)))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause(0.3)
        shown.clear()
        # Faster than the replay reports back: each key read the old state ("×0.5" eight times, "paused" thrice).
        await burst(pilot, *["less_than_sign"] * 8)
        await wait_for(pilot, lambda: "speed ×0.015625" in toasts(app))
        assert shown == ["speed ×0.015625"], shown
        await burst(pilot, "space", "space", "space")
        await wait_for(pilot, lambda: "replay paused" in toasts(app) and "speed ×0.015625" not in toasts(app))
        await burst(pilot, "r", "p", "a", "i")  # keys of the live dashboard: one toast saying why, not four
        await wait_for(pilot, lambda: len(shown) == 3)
        assert shown[:2] == ["speed ×0.015625", "replay paused"] and shown[2].startswith("a recording cannot"), shown
        await wait_for(pilot, lambda: shown[2] in toasts(app))
        await pilot.press("q")


async def test_a_replay_report_older_than_the_last_key_keeps_the_keys_pause_and_speed() -> None:
    from vgp_tui.dashboard import make_replay_app
    from vgp_tui.source import Playback

    app = make_replay_app(str(Path(__file__).parent / "fixtures" / "deep-sigmoid.jsonl"), speed=1)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.playback.commands_applied == 0 and app.playback.label != "")
        # The replay gets the key only after the old report is in: had it taken the key while the
        # press was awaited, its own newer report could come first, and the old one (injected below)
        # would land after it, which the ordered feed never does.
        held: list[Any] = []
        real_send = app.session.send
        app.session.send = held.append
        await pilot.press("space")
        assert app.playback.paused
        # A report the replay sent before it took the space: the next space must still read "paused".
        app.take_playback(Playback(speed=1.0, paused=False, ended=False, following=False, waiting=False))
        assert app.playback.paused
        assert len(held) == 1
        real_send(held[0])
        await wait_for(pilot, lambda: app.playback.commands_applied == 1)
        assert app.playback.paused  # the replay's own report, once it has the key
        await pilot.press("q")


async def test_going_back_in_a_replay_clears_the_recorded_keys_toasts_but_not_the_keys_answer() -> None:
    """After a seek back, "recorded key, step 4048" stayed over the frame of step 2 000."""
    from vgp_tui.dashboard import make_replay_app

    app = make_replay_app(str(Path(__file__).parent / "fixtures" / "deep-sigmoid.jsonl"), speed=1024)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.playback.ended)
        app.notify("1 · fix=relu + init he", title="recorded key, step 400", timeout=60)  # as a recorded key is
        await wait_for(pilot, lambda: "1 · fix=relu + init he" in toasts(app))
        await pilot.press("left")  # (back 10 s of playback: to the start, at this speed; no toast of its own)
        await wait_for(pilot, lambda: "1 · fix=relu + init he" not in toasts(app))
        await wait_for(pilot, lambda: app.playback.ended)
        await pilot.press("home")  # the answer to the key stays when the replay goes back
        await wait_for(pilot, lambda: "from the first record" in toasts(app))
        await wait_for(pilot, lambda: app.history.current is not None and app.history.current.steps > 100)
        assert "from the first record" in toasts(app)
        await pilot.press("q")


async def test_home_and_end_jump_in_a_replay() -> None:
    from vgp_tui.dashboard import make_replay_app
    from vgp_tui.replay import FromStart, ToEnd

    app = make_replay_app(str(Path(__file__).parent / "fixtures" / "deep-sigmoid.jsonl"), speed=1024)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.playback.ended)
        sent: list[Any] = []
        real_send = app.session.send
        app.session.send = lambda command: (sent.append(command), real_send(command))
        await pilot.press("home")
        await pilot.press("end")
        await pilot.pause(0.2)
        assert [type(c) for c in sent] == [FromStart, ToEnd]
        await pilot.press("q")


async def test_a_new_kind_of_source_needs_no_change_to_the_dashboard() -> None:
    """Anything with the Source contract feeds the dashboard: here, a stream of made-up steps."""
    import math

    from vgp_tui.dashboard.app import VgpApp
    from vgp_tui.engine.events import RunStarted, StepMetrics

    class Steps:
        name, device, data_label = "made-up", "nowhere", "a generator"

        def __init__(self) -> None:
            self.sinks: list[Any] = []

        def initial_remedies(self) -> dict[str, Any]:
            return {}

        def send(self, command: Any) -> None:
            pass

        def run(self, stop: threading.Event) -> None:
            self.sinks[0]([RunStarted(run=1, t=0.0, preset="made-up", layers=("a", "b"), remedies={}, seed=0)])
            for step in range(1, 31):
                norms = (1e-9 * step, 1.0)
                self.sinks[0]([StepMetrics(run=1, step=step, t=0.01 * step, loss=1.0 / step, grad_norm=norms,
                                           total_norm=math.hypot(*norms))])
            stop.wait()

    app = VgpApp(Steps())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) == 30)
        await wait_for(pilot, lambda: diagnosis_kind(app) == "vanishing")
        assert "made-up" in str(app.query_one("#status").render())
        await pilot.press("q")
    assert not app.training_threads


async def test_a_new_panel_declares_what_it_watches_and_the_timer_redraws_it() -> None:
    from textual.widgets import Static

    from vgp_tui.dashboard.app import VgpApp
    from vgp_tui.dashboard.panels import Panel

    class StepCount(Static, Panel):
        EVERY = 0.0

        def watches(self, history: Any) -> tuple[Any, Any]:
            run = history.current
            return (run.steps if run else 0), None

        def draw_from(self, history: Any) -> None:
            self.update(f"{history.current.steps if history.current else 0} steps")

    class AppWithStepCount(VgpApp):
        def compose(self) -> Any:
            yield from super().compose()
            yield StepCount(id="step-count")

    app = AppWithStepCount(Session(small_sigmoid(), device="cpu"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 20)
        await wait_for(pilot, lambda: str(app.query_one("#step-count").render()) == f"{app.history.current.steps} steps")
        await pilot.press("q")


async def test_the_status_line_leaves_out_whole_fields_where_it_is_narrow() -> None:
    """At 80 columns it once ended "probe 1.2% ·", cut in the middle. Fields are left out whole, the
    least important first; a replay waiting for its file keeps the file's name, cut if it must be."""
    from textual.app import App, ComposeResult

    from vgp_tui.dashboard.status import StatusLine
    from vgp_tui.engine.events import RunStarted, StepMetrics
    from vgp_tui.engine.history import History

    history = History()
    history.add(RunStarted(run=2, t=0.0, preset="deep-sigmoid", layers=("a", "b"), remedies={}, seed=0))
    history.add(StepMetrics(run=2, step=2282, t=3.0, loss=0.5, grad_norm=(0.1, 0.2), total_norm=0.3,
                            step_ms=1.45, probe_ms=0.017))

    class Line(App[None]):
        def compose(self) -> ComposeResult:
            yield StatusLine()

    async def shown(width: int, **kwargs: Any) -> str:
        app = Line()
        async with app.run_test(size=(width, 5)) as pilot:
            line = app.query_one(StatusLine)
            line.show(history, "deep-sigmoid", "cpu", "spirals (generated)", **kwargs)
            await pilot.pause()
            return str(line.render())

    wide = await shown(160)
    assert wide.endswith(" · 00:00:03 · spirals (generated)") and "690 steps/s · probe 1.2%" in wide
    narrow = await shown(80)
    assert narrow == " TRAINING  deep-sigmoid · cpu · run 2 · step 2 282 · 690 steps/s · probe 1.2%"
    assert await shown(45) == " TRAINING  deep-sigmoid · run 2 · step 2 282"
    # Paused, nothing runs at a rate: the last step's would read as a measurement of now.
    assert await shown(160, state="paused") == " PAUSED  deep-sigmoid · cpu · run 2 · step 2 282 · 00:00:03 · spirals (generated)"
    app = Line()  # a replay waiting for its file: the name stays, cut at the end
    async with app.run_test(size=(60, 5)) as pilot:
        line = app.query_one(StatusLine)
        line.show(History(), "", "", "waiting for /a/rather/long/folder/name/run.jsonl…", mode="waiting")
        await pilot.pause()
        text = str(line.render())
    assert text.startswith(" WAITING ") and "waiting for /a/rather" in text
    # A replay says where it is in the recording and how long that is, before its rate (the seek keys
    # move that clock): 32 s of recording, step 2 282 at 3 s.
    replay = await shown(80, mode="replay", length=32.4)
    assert replay == " REPLAY  TRAINING  deep-sigmoid · cpu · run 2 · step 2 282 · 00:00:03 / 00:00:32", replay
    # Paused (no rate: it is not one of now), and narrower: the time in short before anything else goes.
    paused = await shown(80, mode="replay ×1 paused", length=32.4, stale=True)
    assert paused == " REPLAY ×1 PAUSED  TRAINING  deep-sigmoid · cpu · run 2 · step 2 282 · 0:03/0:32", paused
    assert await shown(76, mode="replay ×1 paused", length=32.4) == (
        " REPLAY ×1 PAUSED  TRAINING  deep-sigmoid · run 2 · step 2 282 · 0:03/0:32")
    assert (await shown(160, mode="replay", length=32.4)).endswith(" · probe 1.2% · 00:00:03 / 00:00:32 · spirals (generated)")


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
async def test_a_synthetic_stand_in_is_named_on_the_status_line_at_every_size(size: tuple[int, int],
                                                                            tmp_path: Path) -> None:
    """The data's label ("synthetic long-range sentiment (stand-in for IMDB)") is the first part a
    narrow status line leaves out: at 120 columns nothing said the data was not IMDB. Where the label
    fits, it says so itself; a replay's label names the file instead."""
    from vgp_tui.dashboard import make_replay_app
    from vgp_tui.dashboard.status import StatusLine
    from vgp_tui.engine.events import StepMetrics
    from vgp_tui.engine.recording import RecordingWriter

    session = Session(load_preset("sentiment-lstm"), device="cpu", synthetic=True)
    recording = tmp_path / "synthetic.jsonl"
    writer = RecordingWriter(recording, session.header())
    session.sinks.append(writer.write)
    app = make_app(session, train=False)
    async with app.run_test(size=size) as pilot:
        session.start_run()  # the run says what it trains on
        layers = session.trainer.probe.layer_names  # a step as training reports it: the line fills up
        session._emit([StepMetrics(run=1, step=1234, t=60.0, loss=0.69, grad_norm=(0.1,) * len(layers),
                                   total_norm=0.2, step_ms=90.0, probe_ms=0.2)])
        app.refresh_panels()
        await pilot.pause()
        text = str(app.query_one(StatusLine).render())
        if size[0] >= 200:
            assert "stand-in for IMDB" in text and "(synthetic)" not in text, text  # said once
        else:
            assert "sentiment-lstm (synthetic)" in text and "stand-in for IMDB" not in text, text
        await pilot.press("q")
    writer.close()
    replay = make_replay_app(str(recording), speed=1024)  # and so does its recording, replayed or cast
    async with replay.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: replay.history.current is not None)
        replay.refresh_panels()
        await pilot.pause()
        text = str(replay.query_one(StatusLine).render())
        assert "sentiment-lstm (synthetic)" in text, text
        await pilot.press("q")
    real = Session(load_preset("deep-sigmoid"), device="cpu", synthetic=True)  # spirals: generated, not a stand-in
    real.load_data()
    assert not real.stand_in


async def test_a_layer_panel_resize_that_arrives_while_the_app_closes_is_ignored() -> None:
    """A resize message handled after the panels were removed (the app quitting) raised NoMatches
    (once in CI, a traceback on the way out)."""
    from vgp_tui.dashboard.heatmap import GradientHeatmap
    from vgp_tui.dashboard.panels import PanelResized

    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        main, heatmap = app.query_one("#main"), app.query_one(GradientHeatmap)
        await pilot.press("q")
    assert not main.is_attached  # the widgets are gone; a late message still reaches the handler
    app.on_panel_resized(PanelResized(heatmap))


async def test_the_refresh_timers_last_tick_after_the_widgets_are_gone_is_harmless() -> None:
    """The refresh interval can fire once more while the app closes, its widgets already removed: on
    a loaded machine CI failed with NoMatches('StatusLine') raised out of run_test's exit. The tick
    after the close is that moment, made certain."""
    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
    app.refresh_panels()
    # The same holds for the other handlers that may run late: a resize, the footer's first drawing.
    from textual import events
    from textual.geometry import Size

    app.on_resize(events.Resize(Size(80, 24), Size(80, 24)))
    app._show_footer_keys()


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
async def test_a_keys_toast_sits_over_the_loss_plot_and_covers_no_other_panel(
    size: tuple[int, int], tmp_path: Path
) -> None:
    """Toasts sat on the heatmap's bottom edge, over the subtitle that z and w change (and, at 80x24,
    over the remedies bar): now inside the loss plot, at its bottom left, at every size, a long
    answer (a structural remedy's, two lines; a screenshot's long path, folded) too."""
    from textual.widgets._toast import Toast

    shots = tmp_path / ("deep" * 8)  # a long path: the screenshot's toast folds it over lines
    shots.mkdir()
    app = make_app(Session(small_sigmoid(), device="cpu"), screenshot_dir=str(shots))
    async with app.run_test(size=size, notifications=True) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        for key, answer in (("ctrl+s", "screenshot saved in "), ("h", "earlier runs:"), ("a", "activation → tanh:")):
            await pilot.press(key)
            await wait_for(pilot, lambda: any(t.startswith(answer) for t in toasts(app)))
            await pilot.pause()
            loss = app.query_one("#loss").region
            for toast in app.screen.query(Toast):
                assert loss.contains_region(toast.region), (key, toast.region, loss)
                assert toast.region.bottom == loss.bottom, (key, toast.region, loss)
                for selector in ("#status", "#flow", "#heatmap", "#diagnosis", "#remedies"):
                    assert not toast.region.overlaps(app.query_one(selector).region), (key, selector)
        await pilot.press("q")


async def test_y_answers_with_a_toast_like_every_other_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """y switched the loss axis without a word; it answers through only_toast, once for a burst."""
    monkeypatch.setattr("vgp_tui.dashboard.keys.BURST_QUIET_SECONDS", 1.0)  # (a loaded machine)
    from vgp_tui.dashboard.loss_plot import LossPlot

    app = new_app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        await burst(pilot, "y", "y", "y")  # log → linear → log → linear
        await wait_for(pilot, lambda: toasts(app) == ["loss axis: linear"])
        assert not app.query_one(LossPlot).log_scale
        await pilot.press("y")
        await wait_for(pilot, lambda: toasts(app) == ["loss axis: log"])
        assert app.query_one(LossPlot).log_scale
        await pilot.press("q")


async def test_another_preset_starts_with_a_log_axis_and_every_ghost() -> None:
    """A linear axis and hidden ghosts chosen on one preset carried over to the next: rnn-clipping's
    climb then read 4e36. Another preset starts as it would on its own."""
    from vgp_tui.dashboard.loss_plot import LossPlot

    app = new_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: steps(app) > 2)
        await pilot.press("y", "h", "h")
        plot = app.query_one(LossPlot)
        assert not plot.log_scale and plot.ghost_mode == "none"
        app.switch_preset("deep-relu")
        # (deep-relu's run, not deep-sigmoid's: 21 layers where the small deep-sigmoid has 9)
        await wait_for(pilot, lambda: app.session.name == "deep-relu" and app.history.current is not None
                       and len(app.history.current.layers) == 21, timeout=40)
        assert plot.log_scale and plot.ghost_mode == "all"
        assert re.fullmatch(r"Loss( \S+)? · log axis \(y toggles\)", str(plot.border_title)), plot.border_title
        await pilot.press("q")


async def test_the_heatmap_subtitle_names_the_view_and_what_z_and_w_do_next() -> None:
    """After z it read "z all", before it "z every layer": nearly the same words for opposite views."""
    from vgp_tui.dashboard.heatmap import GradientHeatmap

    app = new_app(load_preset("deep-sigmoid"))  # 21 layers: more than the heatmap's rows at 120x40
    async with app.run_test(size=SIZE) as pilot:
        heatmap = app.query_one(GradientHeatmap)
        subtitle = lambda: str(heatmap.border_subtitle)  # noqa: E731
        await wait_for(pilot, lambda: subtitle().startswith("21 layers merged"))
        assert subtitle() == "21 layers merged to fit, each row its worst layer · z: one row per layer · w: worst first"
        await pilot.press("z")
        await wait_for(pilot, lambda: subtitle().startswith("layers 1–"))
        rows = heatmap.rows_shown()
        assert subtitle() == f"layers 1–{rows} of 21, one row each · ↑↓ scroll · z: fit all 21 · w: worst first"
        await pilot.press("w")
        await wait_for(pilot, lambda: subtitle().startswith("worst first"))
        assert subtitle() == f"worst first · 1–{rows} of 21 · ↑↓ scroll · z: fit all 21 · w: depth order"
        await pilot.press("q")


async def test_the_footer_shows_the_palettes_key_again_when_the_terminal_widens() -> None:
    """Started at 80x24 the footer leaves out the palette's key (q quit must fit); widened to 120x40
    it did not come back: its new setting was not composed."""
    from textual.widgets import Footer

    app = new_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: steps(app) > 1)

        def keys() -> str:
            return " ".join(str(w.render()) for w in app.query_one(Footer).query("*"))

        await wait_for(pilot, lambda: "quit" in keys())
        assert "palette" not in keys()
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: "palette" in keys())
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: "palette" not in keys() and "quit" in keys())
        await pilot.press("q")
