"""The dashboard app: panels fed from a History snapshot on a timer, keys sent to the session as commands.

Threading: the session runs in a Textual thread worker and only ever puts event lists on the
:class:`EventFeed` (a queue: it never waits for the UI and never calls ``call_from_thread`` per
step). The UI timer drains the feed into the History about eight times a second and redraws only
the panels whose data changed. Keys become commands on the session's queue; the UI thread never
touches a model or an optimizer.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Static

from vgp_tui.dashboard.feed import EventFeed, NewSession, Notice
from vgp_tui.dashboard.flow import GradientFlow
from vgp_tui.dashboard.heatmap import GradientHeatmap
from vgp_tui.dashboard.loss_plot import LossPlot
from vgp_tui.dashboard.remedies_bar import RemediesBar
from vgp_tui.dashboard.screens import HelpScreen, PresetPicker
from vgp_tui.dashboard.status import StatusLine
from vgp_tui.dashboard.time_view import TimeGradientPlot
from vgp_tui.diagnosis import diagnose
from vgp_tui.engine.commands import NoteKey, Pause, Restart, Resume, SetRemedy, StepOnce, Stop
from vgp_tui.engine.events import RemedyChanged, RunStarted, StateChanged
from vgp_tui.engine.history import History
from vgp_tui.engine.remedies import REMEDIES, RemedyValue
from vgp_tui.errors import UserError

log = logging.getLogger("vgp_tui")

MIN_WIDTH, MIN_HEIGHT = 80, 24
REFRESH_SECONDS = 0.125

_KEY_NAMES = {"+": "plus", "-": "minus", "[": "left_square_bracket", "]": "right_square_bracket"}


def _remedy_bindings() -> list[Binding]:
    """One binding per remedy in the registry; ``check_action`` hides those the preset does not take."""
    bindings = []
    for remedy in REMEDIES.values():
        key = _KEY_NAMES.get(remedy.key, remedy.key)
        # The remedies bar shows these keys with their values, so the footer leaves them out.
        if remedy.name == "lr":
            bindings.append(Binding(key, "scale_remedy('lr', 2.0)", "lr ×2", show=False))
            bindings.append(Binding("minus", "scale_remedy('lr', 0.5)", "lr ÷2", show=False))
        else:
            bindings.append(Binding(key, f"toggle_remedy('{remedy.name}')", f"{remedy.name}: next value", show=False))
        if remedy.name == "clip":
            bindings.append(Binding("left_square_bracket", "scale_remedy('clip', 0.5)", "clip ÷2", show=False))
            bindings.append(Binding("right_square_bracket", "scale_remedy('clip', 2.0)", "clip ×2", show=False))
    return bindings


class VgpApp(App[None]):
    """The live dashboard for one session (preset switches replace the session)."""

    TITLE = "vgp-tui"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        *_remedy_bindings(),
        Binding("space", "toggle_pause", "pause/resume"),
        Binding("n", "step_once", "one step"),
        Binding("r", "restart", "restart"),
        Binding("p", "pick_preset", "preset"),
        Binding("y", "toggle_log", "log/lin"),
        Binding("question_mark", "help", "help"),
        Binding("ctrl+s", "screenshot", "screenshot", show=False),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, session: Any, recorder: Any = None, screenshot_dir: str | Path = ".", train: bool = True) -> None:
        super().__init__()
        self.autostart = train
        """False shows only what is put on the feed (tests and pictures from recorded events)."""
        self.session = session
        self.recorder = recorder
        self.screenshot_dir = Path(screenshot_dir)
        self.history = History()
        self.feed = EventFeed()
        self.remedies: dict[str, RemedyValue] = dict(session.remedies)
        """The remedy values as the user last set them (the trainer catches up at its next step)."""
        self._quit = threading.Event()
        self._next_session: Any = None
        self._drawn_version = -1
        self.training_threads: set[int] = set()
        """Idents of threads inside the training loop right now (exactly one while the app runs)."""
        session.sinks.append(self.feed.put)
        if recorder is not None:
            session.sinks.append(recorder.write)

    # -- layout -------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        with Vertical(id="main"):
            with Horizontal(id="top"):
                yield LossPlot(id="loss")
                with Vertical(id="right"):
                    yield GradientFlow(id="flow")
                    yield TimeGradientPlot(id="time")
            yield GradientHeatmap(id="heatmap")
            yield Static(id="diagnosis")
            yield RemediesBar(id="remedies")
        yield Static(id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self._apply_session_layout()
        self._check_size()
        self.set_interval(REFRESH_SECONDS, self.refresh_panels)
        if self.autostart:
            self.train()

    def _apply_session_layout(self) -> None:
        recurrent = self.session.scenario.family in ("sequence", "sentiment")
        self.query_one("#time").display = recurrent
        self.query_one(RemediesBar).show(self.remedies)
        self.refresh_bindings()

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, width: int | None = None, height: int | None = None) -> None:
        if width is None or height is None:
            width, height = self.size
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        self.query_one("#main").display = not small
        notice = self.query_one("#too-small", Static)
        notice.display = small
        if small:
            notice.update(f"Please enlarge the terminal to at least {MIN_WIDTH}×{MIN_HEIGHT} (now {width}×{height}).\nq quits.")

    # -- training thread ------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="training", name="training")
    def train(self) -> None:
        """The one training thread: runs the session, then the next one after a preset switch."""
        ident = threading.get_ident()
        self.training_threads.add(ident)
        try:
            while not self._quit.is_set():
                session = self.session
                try:
                    session.run(self._quit)
                except Exception as exc:  # noqa: BLE001 - shown to the user; the app stays up
                    log.exception("training loop failed")
                    self.feed.put([Notice(f"training stopped: {exc}")])
                    return
                nxt = self._next_session
                if nxt is None:
                    return
                self._next_session = None
                try:
                    nxt.load_data()
                except UserError as exc:
                    self.feed.put([Notice(str(exc))])
                    nxt = session  # keep going with the previous preset
                    nxt.start_run("restart")
                nxt.sinks[:] = [s for s in session.sinks]
                self.session = nxt
                self.feed.put([NewSession(nxt)])
        finally:
            self.training_threads.discard(ident)

    # -- the timer ------------------------------------------------------------------------------------
    def refresh_panels(self) -> None:
        """Drain the feed into the History and redraw what changed."""
        for item in self.feed.drain():
            if isinstance(item, NewSession):
                self.history = History()
                self.remedies = dict(item.session.remedies)
                self._apply_session_layout()
            elif isinstance(item, Notice):
                self.notify(item.text, severity=item.severity, timeout=8)  # type: ignore[arg-type]
            else:
                self.history.add(item)
                self._react(item)
        history = self.history
        self.query_one(StatusLine).show(history, self.session.scenario.name, self.session.device, self.session.data_label)
        if history.version == self._drawn_version or not self.query_one("#main").display:
            return
        self._drawn_version = history.version
        run = history.current
        self.query_one(LossPlot).show(history)
        self.query_one(GradientFlow).show(run)
        if run is not None:
            heatmap = self.query_one(GradientHeatmap)
            width = max(heatmap.size.width - 12, 8)
            heatmap.show(run.layers, run.series.view(width), markers=run.markers)
        if self.query_one("#time").display:
            self.query_one(TimeGradientPlot).show(history)
        self._show_diagnosis()

    def _react(self, event: Any) -> None:
        """Events that deserve a toast or change the remedies bar."""
        if isinstance(event, RunStarted):
            self.remedies.update(event.remedies)
            self.query_one(RemediesBar).show(self.remedies)
        elif isinstance(event, RemedyChanged):
            self.remedies[event.name] = event.new
            self.query_one(RemediesBar).show(self.remedies)
        elif isinstance(event, StateChanged) and event.state in ("diverged", "error"):
            hint = "toggle a remedy (c clip, - lower lr) or press space for a fresh run"
            self.notify(f"{event.message}\n{hint}", severity="error", timeout=10)
        elif isinstance(event, StateChanged) and event.state == "finished":
            self.notify(event.message or "finished", timeout=5)

    def _show_diagnosis(self) -> None:
        result = diagnose(self.history.current, self.history.state, self.history.message)
        widget = self.query_one("#diagnosis", Static)
        widget.set_class(result.kind in ("vanishing", "exploding", "diverged", "error"), "bad")
        widget.set_class(result.kind in ("dead", "saturated"), "warn")
        widget.update(Text(result.text))  # plain text: "[a]" is a key, not markup

    def get_system_commands(self, screen: Any) -> Any:
        """Every key's action in the command palette too (ctrl+p), after Textual's own commands."""
        yield from super().get_system_commands(screen)
        for binding in self._visible_bindings():
            action = binding.action
            yield SystemCommand(
                f"{binding.description} ({self.get_key_display(binding)})",
                f"same as pressing {self.get_key_display(binding)}",
                lambda action=action: self.call_later(self.run_action, action),  # type: ignore[misc]
            )

    # -- actions --------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("toggle_remedy", "scale_remedy") and parameters:
            return parameters[0] in self.remedies  # remedies the preset does not take are hidden
        return True

    def _send(self, command: Any, key: str, action: str) -> None:
        self.session.send(NoteKey(key, action))
        self.session.send(command)

    def action_toggle_remedy(self, name: str) -> None:
        remedy = REMEDIES[name]
        value = remedy.next_value(self.remedies[name])
        self._set_remedy(name, value)

    def action_scale_remedy(self, name: str, factor: float) -> None:
        remedy = REMEDIES[name]
        current = self.remedies.get(name)
        if current is None:
            self.notify(f"{name} is off: press {remedy.key} to turn it on first", severity="warning")
            return
        self._set_remedy(name, remedy.scaled(current, factor))

    def _set_remedy(self, name: str, value: RemedyValue) -> None:
        remedy = REMEDIES[name]
        self.remedies[name] = value
        self._send(SetRemedy(name, value), remedy.key, f"{name}={remedy.format(value)}")
        self.query_one(RemediesBar).show(self.remedies)
        if remedy.structural:
            self.notify(f"{name} → {remedy.format(value)}: a fresh run starts from the same seed; the last one stays as a ghost")
        else:
            self.notify(f"{name} → {remedy.format(value)}: applies at the next step")

    def action_toggle_pause(self) -> None:
        state = self.history.state
        if state == "training":
            self._send(Pause(), "space", "pause")
            self.notify("paused: n steps once, space resumes")
        else:
            self._send(Resume(), "space", "resume")
            self.notify("resumed" if state == "paused" else "a fresh run starts")

    def action_step_once(self) -> None:
        if self.history.state == "training":
            self.notify("n steps once while paused: press space first", severity="warning")
            return
        self._send(StepOnce(), "n", "step")

    def action_restart(self) -> None:
        self._send(Restart(), "r", "restart")
        self.notify("restart: a fresh run from the same seed")

    def action_toggle_log(self) -> None:
        plot = self.query_one(LossPlot)
        plot.log_scale = not plot.log_scale
        plot.show(self.history)

    def action_help(self) -> None:
        keys = [(self.get_key_display(b), b.description) for b in self._visible_bindings()]
        activation = self.remedies.get("activation")
        self.push_screen(HelpScreen(keys, str(activation) if activation else None))

    def _visible_bindings(self) -> list[Binding]:
        out = []
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            action, _, rest = binding.action.partition("(")
            params = tuple(p.strip(" '\")") for p in rest.split(",")) if rest else ()
            if self.check_action(action, params):
                out.append(binding)
        return out

    def action_pick_preset(self) -> None:
        from vgp_tui.scenario import available_names, load_preset

        presets = []
        for name in available_names():
            try:
                presets.append((name, load_preset(name).summary))
            except UserError as exc:
                presets.append((name, f"(invalid: {exc})"))
        self.push_screen(PresetPicker(presets, self.session.scenario.name), self._switch_preset)

    def _switch_preset(self, name: str | None) -> None:
        if not name or name == self.session.scenario.name:
            return
        from vgp_tui.engine.session import Session
        from vgp_tui.scenario import load_preset

        old = self.session
        try:
            scenario = load_preset(name)
            new = Session(scenario, device=old.device, data_dir=old.data_dir, synthetic=old.synthetic)
        except UserError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        new.run_number = old.run_number
        self._next_session = new
        old.send(NoteKey("p", f"preset={name}"))
        old.send(Stop())
        self.notify(f"switching to {name}…")

    def action_screenshot(self) -> None:
        name = f"vgp-tui-{self.session.scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}.svg"
        try:
            path = self.save_screenshot(filename=name, path=str(self.screenshot_dir))
        except OSError as exc:
            self.notify(f"screenshot failed: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"screenshot saved: {path}")

    async def action_quit(self) -> None:
        self.stop_training()
        self.exit()

    def stop_training(self) -> None:
        self._quit.set()
        self.session.send(Stop())

    def on_unmount(self) -> None:
        self.stop_training()
