"""The dashboard app: the layout, the 5 Hz timer that drains the feed into the History and redraws
the panels that asked for it (panels.py), and the keys that do not change remedies or a replay.

Elsewhere: the training thread's side in runner.py, the keys in keys.py, the remedy keys in
remedy_actions.py, the replay's keys in replay_actions.py. The UI thread never touches a model or an
optimizer, and reads nothing of the source but the items on the feed (vgp_tui/source.py).
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import os
import signal
import threading
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

from textual import events, on, work
from textual.app import App, ComposeResult, ScreenStackError, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.css.scalar import Scalar, Unit
from textual.geometry import Spacing
from textual.widgets import Footer, Static

from vgp_tui.dashboard.diagnosis_line import DiagnosisLine
from vgp_tui.dashboard.feed import EventFeed, NewSession, Notice
from vgp_tui.dashboard.runner import Runner
from vgp_tui.dashboard.flow import GradientFlow
from vgp_tui.dashboard.heatmap import GradientHeatmap
from vgp_tui.dashboard.panels import Panel, PanelResized
from vgp_tui.dashboard.keys import LIVE_ONLY, REPLAY_ONLY, action_name, app_bindings, burst_quiet_seconds
from vgp_tui.dashboard.loss_plot import LossPlot
from vgp_tui.dashboard.remedies_bar import RemediesBar
from vgp_tui.dashboard.layer_actions import LayerActions
from vgp_tui.dashboard.layers import LayerView
from vgp_tui.dashboard.remedy_actions import RemedyActions
from vgp_tui.dashboard.replay_actions import ReplayActions
from vgp_tui.dashboard.screens import STAND_IN_LABEL, STAND_IN_SUFFIX, HelpScreen, PresetPicker
from vgp_tui.dashboard.status import StatusLine
from vgp_tui.dashboard.time_view import TimeGradientPlot
from vgp_tui.engine.commands import NoteKey, Pause, Restart, Resume, StepOnce, Stop
from vgp_tui.engine.events import KeyPressed, RemedyChanged, RunStarted, StateChanged
from vgp_tui.engine.history import History
from vgp_tui.engine.remedies import RemedyValue
from vgp_tui.errors import UserError
from vgp_tui.replay import StopReplay
from vgp_tui.source import Playback, Rewind, Source
from vgp_tui.text import fold_long_words

log = logging.getLogger("vgp_tui")

MIN_WIDTH, MIN_HEIGHT = 80, 24
REFRESH_SECONDS = 0.2
"""The UI timer: 5 Hz keeps the numbers fresh and leaves the GIL to the training thread."""

TOAST_WIDTH = 60
"""Widest toast (Textual's width): a key's answer in one or two lines over the loss plot."""
TOAST_GUTTER = 5
"""A toast's cells that hold no text: its edge, its padding and what Textual keeps beside it (measured
with Textual 8.2: a toast 60 cells wide, or over the loss plot a rack 50 wide, shows at most 55 and 45
cells of text)."""
RECENT_PLAYBACK_SECONDS = 3.0
"""A replay toasts a recorded key or state only if the playback passed it within this many seconds."""
SCREENSHOT_DELIVERY = "vgp-tui screenshot"
"""The name of a served tab's screenshot delivery (not Textual's "screenshot", which toasts again)."""


class VgpApp(RemedyActions, ReplayActions, LayerActions, App[None]):
    """The live dashboard for one session (preset switches replace the session)."""

    TITLE = "vgp-tui"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute, so a subclass elsewhere finds it too
    BINDINGS = app_bindings()

    def __init__(
        self,
        session: Source | None = None,
        recorder: Any = None,
        screenshot_dir: str | Path = ".",
        train: bool = True,
        replay: bool = False,
        exit_at_end: bool = False,
        screenshot_to: str | Path | None = None,
        start: Callable[[], Any] | None = None,
        preset: str = "",
        record: str | None = None,
    ) -> None:
        super().__init__()
        self.autostart = train
        """False shows only what is put on the feed (tests and pictures from recorded events)."""
        self.replay = replay
        """The source is a ReplaySource: remedies cannot change, space/arrows/<> control playback."""
        self.exit_at_end = exit_at_end
        self.screenshot_to = Path(screenshot_to) if screenshot_to else None
        """Save one SVG here once the replay has fed everything it was asked to, then quit."""
        self.screenshot_error: str | None = None
        """Why the --screenshot-at frame could not be written (a full disk), or None."""
        self._ending = False
        self.quit_signal: int | None = None
        """The signal that ended the app (SIGTERM, SIGHUP), once one did."""
        self.signalled = threading.Event()
        """Set with :attr:`quit_signal`: what the shutdown watchdog (``dashboard._run_until_closed``) waits for."""
        self._drew_the_end = False
        """A replay's end was drawn in full (every panel at once); set again after a seek back."""
        self._warned = ""
        self._pending_toast: Any = None  # the timer of the answer that only_toast() will show
        self._answer: tuple[str, dict[str, Any], float] | None = None
        """The last answer only_toast() showed: (message, options, when), kept over a replay's rewind."""
        self._unsent: dict[str, tuple[RemedyValue, str, RemedyValue]] = {}
        self._unsent_timer: Any = None
        self._expected_state: tuple[str | None, float] = (None, 0.0)  # see state_for_keys()
        self._recording_error_shown = False
        self.fed_at = time.monotonic()
        """When the last record arrived on the feed (monotonic seconds)."""
        self._stand_ins: set[str] = set()
        """Presets whose real data was missing at a switch: the picker offers them on synthetic data."""
        self.screenshot_dir = Path(screenshot_dir)
        self.history = History()
        self.layer_view = LayerView()
        self.feed = EventFeed()
        self.runner = Runner(session, self.feed, start=start, preset=preset, record=record, recorder=recorder)
        """The training thread's side: the source it runs, preset switches, a deferred start."""
        self.remedies: dict[str, RemedyValue] = self.session.initial_remedies()
        """The remedy values as the user last set them (the trainer catches up at its next step)."""
        self._drawn: dict[str, tuple[object, object, float]] = {}
        self.playback = Playback(speed=1.0, paused=False, ended=False, following=False, waiting=False)
        """A replay's state as it last told it (on the feed), with the pause and speed of keys it has not had yet."""
        self.replay_commands_sent = 0
        """Commands sent to a replay: a report that has not applied them all is older than the last key."""

    @property
    def session(self) -> Any:  # a Source; Any, since actions reach Session- or replay-only parts
        """What the training thread runs now: a Session, a ReplaySource, or a stand-in while starting."""
        return self.runner.source

    @property
    def recorder(self) -> Any:
        return self.runner.recorder

    @property
    def training_threads(self) -> set[int]:
        return self.runner.threads

    @property
    def startup_error(self) -> str | None:
        return self.runner.startup_error

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
            yield DiagnosisLine(id="diagnosis")
            yield RemediesBar(id="remedies")
        yield Static(id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self._panels = [widget for widget in self.query("*") if isinstance(widget, Panel)]
        """Every panel the timer redraws: each says what it watches and how often (panels.py)."""
        self._handle_signals()
        if self.signalled.is_set():  # hung up before it ran (a browser tab closed while it started)
            self.exit(return_code=128 + int(self.quit_signal or 0))
            return
        self._apply_session_layout()
        self._check_size()
        self._fit_footer(self.size.width)
        self.set_interval(REFRESH_SECONDS, self.refresh_panels)
        self.call_after_refresh(self._show_footer_keys)
        if self.autostart:
            self.train()

    def _apply_session_layout(self) -> None:
        run = self.history.current
        self.query_one("#time").display = bool(run and run.time_view)
        bar = self.query_one(RemediesBar)
        bar.show_keys = not self.replay
        bar.show(self.remedies)
        self.refresh_bindings()

    def _handle_signals(self) -> None:
        """SIGTERM and SIGHUP (an SSH drop) quit like q does: training stops, the terminal is
        restored and the recording is closed with its last records."""
        try:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
                if sig is not None:
                    loop.add_signal_handler(sig, self._quit_on_signal, sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or not Unix
            pass

    def _quit_on_signal(self, sig: int) -> None:
        log.info("quitting on signal %s", sig)
        self.quit_signal = sig
        self.signalled.set()
        self.stop_training()
        self.exit(return_code=128 + sig)

    def on_key(self, event: events.Key) -> None:
        """A key that does nothing here says why: in a replay one that would change the run, live a
        remedy the preset does not take (its key is hidden from the footer, and did nothing at all)."""
        bindings = [b for b in self.BINDINGS if isinstance(b, Binding) and b.key == event.key]
        if self.replay:
            if any(action_name(b)[0] in LIVE_ONLY for b in bindings):
                self.only_toast("a recording cannot be changed: space pauses, ← → seek, < > speed, home goes to the "
                                "start", title="replay", severity="warning", timeout=4)
            return
        for binding in bindings:
            action, parameters = action_name(binding)
            if action in ("toggle_remedy", "scale_remedy") and parameters and parameters[0] not in self.remedies:
                self.only_toast(f"{event.key}: {parameters[0]} does not apply to {self.session.name} "
                                "(its remedies and their keys are in the bar above the footer)",
                                severity="warning", timeout=4)
                return

    def notify(self, message: str, *, markup: bool = False, **options: Any) -> None:  # type: ignore[override]
        """Textual's toast, with its text shown as it is: ours hold paths and the preset's [section]
        names ("make [model] smaller" lost its word as a markup tag), never markup."""
        super().notify(fold_long_words(message, self._toast_text_width()), markup=markup, **options)

    def _toast_text_width(self) -> int:
        """The cells a toast has for its text: over the loss plot, by the rack's width (_place_toasts sets
        it); on another screen, by Textual's toast width, 60 and at most half of the rack (the screen
        less its scrollbar's two columns)."""
        try:
            rack_width = self.screen.query_one("ToastRack").styles.width
        except (NoMatches, ScreenStackError):  # (not running yet, or closing)
            rack_width = None
        if rack_width is not None and rack_width.unit == Unit.CELLS:
            return int(rack_width.value) - TOAST_GUTTER
        return min(TOAST_WIDTH, (self.size.width - 2) // 2) - TOAST_GUTTER

    def only_toast(self, message: str, **options: Any) -> None:
        """A toast that replaces those on screen: the answer to a key, where a key pressed again and
        again (held down, or faster than the replay reports back) stacked a dozen over the panels.
        The last of a burst wins (keys.BURST_QUIET_SECONDS)."""
        self.cancel_pending_toast()
        self._pending_toast = self.set_timer(burst_quiet_seconds(), lambda: self._show_only(message, options))

    def cancel_pending_toast(self) -> None:
        if self._pending_toast is not None:
            self._pending_toast.stop()
            self._pending_toast = None

    def clear_toasts(self) -> None:
        """Every toast gone, the answer still to come included. Textual removes only the toasts already
        mounted: one notified in the same tick (a recorded key fed with the replay's end) stayed, so
        the clearing is done again once the screen has been refreshed."""
        self.cancel_pending_toast()
        self.clear_notifications()
        self.call_after_refresh(self.clear_notifications)

    def _show_only(self, message: str, options: dict[str, Any]) -> None:
        self._pending_toast = None
        self.clear_notifications()
        self.notify(message, **options)
        self._answer = (message, options, time.monotonic())

    def _clear_recorded_toasts(self) -> None:
        """A replay went back: the recorded keys and states on screen are of steps not reached yet
        ("recorded key, step 4048" stayed over step 2 000). The answer to the key that went back stays."""
        self.clear_notifications()
        if self._answer is not None:
            message, options, shown = self._answer
            left = float(options.get("timeout") or self.NOTIFICATION_TIMEOUT) - (time.monotonic() - shown)
            if left > 0.5:
                self.notify(message, **{**options, "timeout": left})

    def on_resize(self, event: events.Resize) -> None:
        try:
            self._check_size(event.size.width, event.size.height)
            self._fit_footer(event.size.width)
        except NoMatches:  # a resize that arrives while the app closes, its widgets already gone
            return
        self._drawn.clear()  # every panel is redrawn for its new size

    def _show_footer_keys(self) -> None:
        """Textual's footer draws its keys only while the app has the focus, which a terminal gives at
        once; a browser tab (``vgp-tui serve``) gives it at the first click or key, so until then the
        footer would be blank. The keys are drawn now, focused or not."""
        try:
            footer = self.query_one(Footer)
        except NoMatches:  # the app closed before its first refresh was done
            return
        self.refresh_bindings()
        footer.call_later(footer.recompose)  # in its own context: its compose binds its data

    def _fit_footer(self, width: int) -> None:
        """Below 120 columns the footer packs its keys and leaves out the palette's (ctrl+p still
        works), so that "q quit" is always on screen."""
        footer = self.query_one(Footer)
        compact, palette = width < 120, width >= 120
        if (footer.compact, footer.show_command_palette) != (compact, palette):
            footer.compact, footer.show_command_palette = compact, palette
            # Composed again: the palette's key, left out at 80 columns, did not come back at 120.
            footer.refresh(recompose=True)

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
        """The one training thread (see :class:`Runner`)."""
        self.runner.run(lambda status: self.call_from_thread(self.exit, None, status))

    # -- the timer ------------------------------------------------------------------------------------
    def refresh_panels(self) -> None:
        """Drain the feed into the History and redraw what changed."""
        try:
            status = self.query_one(StatusLine)
        except NoMatches:  # the interval's last tick, landing while the app closes: its widgets are gone
            return
        items = self.feed.drain()
        if any(not isinstance(item, (Playback, Notice)) for item in items):
            self.fed_at = time.monotonic()  # (a followed file's last record: see ReplayActions._mode)
        # A replay's toasts are for what the playback passes now: a seek, the end key or a frame taken
        # at a step feeds everything before it at once, and its old keys and states stacked up.
        newest = max((getattr(item, "t", 0.0) for item in items), default=0.0)
        recent = RECENT_PLAYBACK_SECONDS * max(self.playback.speed, 1.0) if self.replay else math.inf
        for item in items:
            if isinstance(item, NewSession):
                self.clear_toasts()  # "switching to …" and the old preset's toasts
                self.history = History()
                self._drawn.clear()
                self.drop_unsent_remedies()
                self.remedies = item.session.initial_remedies()
                # Another preset starts as it would on its own: a log axis, every ghost (a linear axis
                # chosen for deep-sigmoid's 1.1 read 4e36 on rnn-clipping's climb).
                self.query_one(LossPlot).reset_view()
                self._apply_session_layout()
            elif isinstance(item, Rewind):
                self.history = History()
                self._drawn.clear()
                self._clear_recorded_toasts()
            elif isinstance(item, Playback):
                self.take_playback(item)
            elif isinstance(item, Notice):
                if item.stand_in_for is not None:
                    self._stand_ins.add(item.stand_in_for)
                # (replacing the toasts on screen: "switching to …" waits for this or the new session)
                self.only_toast(item.text, severity=item.severity, timeout=8)
            else:
                self.history.add(item)
                self._react(item, toast=newest - getattr(item, "t", newest) <= recent)
        self._report_recording_trouble()
        history = self.history
        starting = "starting" if self.runner.starting else None
        if self.replay:  # what the replay last told, not its attributes: they change in another thread
            name, device, label = self.playback.name, self.playback.device, self.playback.label
        else:  # fixed once the session is built
            name, device, label = self._preset_label(), self.session.device, self.session.data_label
        # The data's own label is the first part a narrow line leaves out (at 120 columns
        # sentiment-lstm's was gone): where it is, the mark that it is not the real data set stays.
        mark = " (synthetic)" if history.current is not None and history.current.stand_in else ""
        # (A paused replay, a followed file gone quiet, or a replay in a pause of its recording: the
        # last step's rate is not one of now.)
        stale = self.quiet_for() is not None or self.in_recording_pause() or (self.replay and self.playback.paused)
        status.show(history, name, device, label, self._mode(), state=starting, mark=mark, stale=stale,
                    length=self.playback.length if self.replay else None,
                    reached=self.playback.reached if self.replay else None)
        if self.replay:
            self._replay_housekeeping()
        if not self.query_one("#main").display:
            return
        # From the sizes of the last layout (a new run's layers, which change them, are shared again
        # once laid out: on_panel_resized).
        self._share_layer_rows()
        line = self.query_one(DiagnosisLine)
        line.starting, line.replay = self.runner.starting, self.replay
        for panel in self._panels:
            if panel.display:
                data, structure = panel.watches(history)
                if self._redraw(panel.id or type(panel).__name__, data, structure, panel.EVERY):
                    panel.draw_from(history)
        self._place_toasts()  # (the heatmap moves without a resize when the rows below it change)

    def on_panel_resized(self, message: PanelResized) -> None:
        try:
            main = self.query_one("#main")
        except NoMatches:  # a resize that arrives while the app closes, its widgets already gone
            return
        panel = message.panel
        if main.display and panel.display:
            name = panel.id or type(panel).__name__
            self._drawn.pop(name, None)  # drawn for its old size: again now, whatever its cadence
            if self._redraw(name, *panel.watches(self.history), panel.EVERY):
                panel.draw_from(self.history)
            self._share_layer_rows()
        self._place_toasts()

    def _place_toasts(self) -> None:
        """Toasts stack up from the loss plot's bottom left corner, over its step axis and its first
        steps: what a key changed is elsewhere, or in the whole of the plot (y, h).

        Textual's place, the bottom right of the screen, is the diagnosis line and the fix keys that
        most toasts point at (a divergence's says "the diagnosis line names a fix key") and the
        remedies bar the remedy keys change; the top right is the flow panel, whose first layer is the
        lesson; the heatmap's bottom edge is its colour scale and the subtitle that z and w change.
        A toast is one or two lines there, under the loss plot's legend, whose rows start at the top.
        """
        screen = self.default_screen  # the dashboard's rack (a dialog has its own)
        try:
            # (by its type's name: Textual does not export the class)
            rack, loss, main = screen.query_one("ToastRack"), self.query_one(LossPlot), self.query_one("#main")
        except NoMatches:  # (closing)
            return
        region = loss.region
        over_loss = bool(main.display and loss.display and region.width > 2 and region.height)
        if over_loss:  # inside its frame, its bottom edge included, at most TOAST_WIDTH wide
            # (A docked rack is as wide as its width says: a right margin only moves it.)
            width: Scalar | None = Scalar.from_number(min(region.width - 2, TOAST_WIDTH))
            margin = Spacing(0, 0, max(screen.size.height - region.bottom, 0), region.x + 1)
        else:
            width, margin = None, Spacing(0, 0, 1, 0)  # Textual's own
        rack.set_class(over_loss, "-over-loss")
        if rack.styles.margin != margin or rack.styles.width != width:
            rack.styles.margin, rack.styles.width = margin, width

    def _layer_panels_show_the_run(self) -> bool:
        """Both layer panels were given the current run's layers (until then their sizes say nothing)."""
        run = self.history.current
        return run is not None and self.query_one(GradientFlow).layers == run.layers == self.query_one(GradientHeatmap).layers

    def layout_signature(self) -> tuple[object, ...] | None:
        """Where every panel is and how many rows the layer panels share, once both have drawn the
        current run's layers (None before): the same twice running, the screen has settled."""
        flow, heatmap, footer = self.query_one(GradientFlow), self.query_one(GradientHeatmap), self.query_one(Footer)
        if not self._layer_panels_show_the_run() or not footer.children:
            return None  # (the footer's keys are composed a moment after it: _show_footer_keys)
        panels = (flow, heatmap, self.query_one(LossPlot), footer)
        return (*(panel.region for panel in panels), flow.row_limit, len(footer.children))

    def _share_layer_rows(self) -> None:
        """Both layer panels get the smaller one's row count, so that when layers must share rows
        they share them alike in both (the same groups, the same labels); then the heatmap's caption
        says what the rows show."""
        flow, heatmap = self.query_one(GradientFlow), self.query_one(GradientHeatmap)
        run = self.history.current
        if run is not None and self._layer_panels_show_the_run():
            rows = min(flow.size.height, heatmap.layer_rows())
            limit = rows if 0 < rows < len(run.layers) else None
            if limit != flow.row_limit:
                flow.row_limit = heatmap.row_limit = limit
                flow.refresh()
                heatmap.refresh()
        self.caption_layers()

    def _redraw(self, panel: str, key: object, structure: object, every: float) -> bool:
        """Whether to redraw ``panel``: its data (``key``) changed, and either its ``structure``
        changed (a new run, a marker: shown at once) or ``every`` seconds have passed since its last
        drawing. Remembers what was drawn."""
        drawn = self._drawn.get(panel)
        if drawn is not None and drawn[0] == key:
            return False
        now = time.monotonic()
        if drawn is not None and drawn[1] == structure and now - drawn[2] < every:
            return False
        self._drawn[panel] = (key, structure, now)
        return True

    def _preset_label(self) -> str:
        """The preset's name, marked when a user preset stands in for the built-in one of that name."""
        scenario = getattr(self.session, "scenario", None)
        if scenario is not None and getattr(scenario, "shadows_builtin", False):
            return f"{self.session.name} (user preset, shadows built-in)"
        return self.session.name

    def _report_recording_trouble(self) -> None:
        """A full disk or a vanished file stops the recording, never the training or the screen."""
        recorder = self.recorder
        if recorder is not None and recorder.error and not self._recording_error_shown:
            self._recording_error_shown = True
            # After the next refresh: a recording that fails at its first write does so in the pass
            # that takes the new session, whose clearing of the toasts (done again after the refresh,
            # clear_toasts) took this one away, and the user trained on unrecorded without a word.
            self.call_after_refresh(self.notify, f"{recorder.error}; training goes on without recording",
                                    severity="error", timeout=15)

    def _react(self, event: Any, toast: bool = True) -> None:
        """Events that deserve a toast (where ``toast``) or change the remedies bar."""
        # Live, self.remedies is what the keys asked for, which the session's reports only catch up with
        # (a report of a change the keys had gone past set the bar back, and the next + doubled the old
        # value: twelve presses ended at lr 51.2); a replay's remedies are the recording's.
        if isinstance(event, RunStarted):
            self.remedies.update(event.remedies)
            self.remedies.update({name: value for name, (value, *_) in self._unsent.items()})
            self.query_one(RemediesBar).show(self.remedies)
            self.query_one("#time").display = bool(event.time_view)
        elif isinstance(event, RemedyChanged):
            if self.replay:
                self.remedies[event.name] = event.new
                self.query_one(RemediesBar).show(self.remedies)
        elif not toast:
            return
        elif isinstance(event, KeyPressed) and self.replay:
            # Shown for 3 s of the recording's time (at least 1 s): at a high --speed, as in a cast,
            # a few keys' toasts would otherwise pile up over the panels.
            timeout = max(1.0, 3.0 / max(self.playback.speed, 1.0))
            self.notify(f"{event.key} · {event.action}", title=f"recorded key, step {event.step}", timeout=timeout)
        elif isinstance(event, StateChanged) and event.state in ("diverged", "error") and not self.replay:
            # The diagnosis line tells the whole story; the toast only points at it.
            headline = event.message.split(":", 1)[0] or event.state
            self.notify(f"{headline}: the diagnosis line names a fix key; space starts afresh", severity="error",
                        timeout=8)
        elif isinstance(event, StateChanged) and event.state in ("diverged", "error"):
            # (its whole message is the diagnosis line's story: six lines of toast over the heatmap)
            headline = event.message.split(":", 1)[0] or event.state
            self.notify(f"{headline}: the diagnosis line says why", severity="error", timeout=6)
        elif isinstance(event, StateChanged) and event.state == "finished":
            self.notify(event.message or "finished", timeout=5)

    def get_system_commands(self, screen: Any) -> Any:
        """Every key's action in the command palette too (ctrl+p), after Textual's own commands.

        Textual's "Screenshot" is left out: ctrl+s's is in the list, and Textual's wrote a file of
        another name into the downloads folder, whatever ``--screenshot-dir`` said. So is "Theme": the
        plots and the heatmap draw their own colours for a dark background, and under a light theme
        their labels came out black on black. The fix keys are listed as the diagnosis line offers
        them now, by name ("fix 1: relu + init he")."""
        left_out = {"Screenshot", "Theme"}
        yield from (command for command in super().get_system_commands(screen) if command.title not in left_out)
        try:
            shown = self.query_one(DiagnosisLine).shown
        except NoMatches:
            shown = None
        fixes = shown.fixes if shown is not None and not self.replay else ()
        for binding in self._visible_bindings():
            action, key = binding.action, self.get_key_display(binding)
            name, parameters = action_name(binding)
            title = f"{binding.tooltip or binding.description} ({key})"
            if name == "apply_fix":
                number = int(parameters[0])
                if number > len(fixes):
                    continue  # not offered now: pressing it would only say so
                title = f"fix {number}: {fixes[number - 1].label} ({key})"
            elif binding.key == "ctrl+c":
                continue  # q's twin
            yield SystemCommand(
                title,
                f"same as pressing {key}",
                lambda action=action: self.call_later(self.run_action, action),  # type: ignore[misc]
            )

    # -- actions --------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in LIVE_ONLY and self.replay:
            return False  # a recording cannot be changed, only watched
        if action in REPLAY_ONLY:
            return self.replay
        if action in ("toggle_remedy", "scale_remedy") and parameters:
            return parameters[0] in self.remedies  # remedies the preset does not take are hidden
        return True

    def _send(self, command: Any, key: str, action: str) -> None:
        self.send_unsent_remedies()  # a remedy key's change comes before the command of a later key
        self.session.send(NoteKey(key, action))
        self.session.send(command)

    def state_for_keys(self) -> str:
        """The run's state as a key reads it: what the last space asked for until the session says so
        (its report comes at its next step; a second space read the old state, and two quick spaces
        left a training run paused), for a second at most, then whatever the session last said."""
        expected, since = self._expected_state
        if expected is not None and expected != self.history.state and time.monotonic() - since < 1.0:
            return expected
        self._expected_state = (None, 0.0)
        return self.history.state

    def action_toggle_pause(self) -> None:
        if self.replay:
            self.toggle_replay_pause()
            return
        state = self.state_for_keys()
        if state == "training":
            self._send(Pause(), "space", "pause")
            self.only_toast("paused: n steps once, space resumes")
            self._expected_state = ("paused", time.monotonic())
        else:
            self._send(Resume(), "space", "resume")
            self.only_toast("resumed" if state == "paused" else "a fresh run starts")
            self._expected_state = ("training", time.monotonic())

    def action_step_once(self) -> None:
        if self.state_for_keys() == "training":
            self.only_toast("n steps once while paused: press space first", severity="warning")
            return
        self._send(StepOnce(), "n", "step")

    def action_restart(self) -> None:
        paused = self.state_for_keys() == "paused"
        self._send(Restart(), "r", "restart")
        trains = ", and it trains (it was paused)" if paused else ""
        self.only_toast(f"restart: a fresh run from the same seed{trains}")

    def action_toggle_log(self) -> None:
        self.only_toast(self.query_one(LossPlot).toggle_log(self.history), timeout=3)

    def action_cycle_ghosts(self) -> None:
        self.only_toast(self.query_one(LossPlot).cycle_ghosts(), timeout=3)

    def action_help(self) -> None:
        keys: list[tuple[str, str]] = []
        # Keys of one action share a line: the four that scroll the layers, the nine fix numbers.
        shared = {"scroll_layers": "scroll the layers (after z or w)",
                  "apply_fix": "apply the fix of that number in the diagnosis line"}
        rows: dict[str, int] = {}
        for b in self._visible_bindings():
            action = action_name(b)[0]
            key = self.get_key_display(b)
            if action in shared and action in rows:
                keys[rows[action]] = (f"{keys[rows[action]][0]} {key}", shared[action])
            elif action in shared:
                rows[action] = len(keys)
                keys.append((key, shared[action]))
            elif keys and keys[-1][1] == (b.tooltip or b.description):
                keys[-1] = (f"{keys[-1][0]} {key}", keys[-1][1])  # q and ^c: both quit
            else:
                keys.append((key, b.tooltip or b.description))
        if "apply_fix" in rows:  # "1–9", not nine numbers
            numbers = keys[rows["apply_fix"]][0].split()
            keys[rows["apply_fix"]] = (f"{numbers[0]}–{numbers[-1]}", shared["apply_fix"])
        # The network's nonlinearity, as its remedies say it: an MLP's activation, a recurrent cell's tanh.
        activation, cell = self.remedies.get("activation"), self.remedies.get("cell")
        # A live preset's lesson (its summary and what you should see); a replay's recording may come
        # from a preset file that has changed since, or from one that is not here: none is shown.
        preset = None if self.replay else getattr(self.session, "scenario", None)
        if not activation and preset is not None:  # a family whose nonlinearity is fixed: ResNet's ReLU
            activation = getattr(preset.model, "ACTIVATION", None)
        self.clear_toasts()  # (see action_pick_preset)
        self.push_screen(HelpScreen(keys, str(activation) if activation else None, str(cell) if cell else None,
                                    preset))

    def _visible_bindings(self) -> list[Binding]:
        out = []
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            if self.check_action(*action_name(binding)):
                out.append(binding)
        return out

    def action_pick_preset(self) -> None:
        from vgp_tui.scenario import available_names, load_preset

        presets = []
        for name in available_names():
            try:
                scenario = load_preset(name)
                mark = f"({scenario.origin_label}) " if scenario.origin != "built-in" else ""
                presets.append((name, mark + scenario.summary))
            except UserError as exc:
                presets.append((name, f"(invalid: {exc})"))
        # The toasts on screen go: Textual draws them again over the dialog, where at 80x24 the
        # missing-data toast covered the very entry it said to pick, refolded into fragments.
        self.clear_toasts()
        on_stand_in = self.session.name in self._stand_ins and getattr(self.session, "stand_in", False)
        current = self.session.name + (STAND_IN_SUFFIX if on_stand_in else "")
        self.push_screen(PresetPicker(presets, current, frozenset(self._stand_ins)), self._picked)

    def _picked(self, choice: tuple[str, bool] | None) -> None:
        if choice is not None:
            self.switch_preset(*choice)

    def switch_preset(self, name: str, stand_in: bool = False) -> None:
        """Train preset ``name`` from now on, on its synthetic stand-in if ``stand_in`` (or if the
        dashboard was started with --synthetic); the same preset on the same data does nothing."""
        from vgp_tui.engine.session import Session
        from vgp_tui.scenario import load_preset

        old = self.session
        if name == old.name and stand_in <= old.synthetic:  # (the preset on the data it has already)
            return
        try:
            scenario = load_preset(name)
            new = Session(scenario, device=old.device, data_dir=old.data_dir,
                          synthetic=stand_in or old.synthetic_for_all)
        except UserError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        new.synthetic_for_all = old.synthetic_for_all  # (a stand-in picked here is for this preset alone)
        self.runner.switch_to(new, name)
        # It stays until the switch is done (building a big model takes a while, and the old preset
        # waits meanwhile): cleared when the new session arrives, replaced by the notice if it cannot.
        self.only_toast(f"switching to {name}{f' {STAND_IN_LABEL}' if stand_in else ''}…", timeout=120)

    def action_screenshot(self) -> None:
        # The picture is of the dashboard, as `replay --screenshot-at` takes it: a key's toast stood
        # over the loss plot in it (ctrl+s right after a key saved it there). Taken once they are gone.
        self.clear_toasts()
        self.call_after_refresh(self._take_screenshot)

    def _take_screenshot(self) -> None:
        name = f"vgp-tui-{self.session.name}-{time.strftime('%Y%m%d-%H%M%S')}.svg"
        if self.is_web:  # a browser tab of `vgp-tui serve`: the server's folder is not the visitor's
            # As deliver_screenshot() does, but under a name of ours: for its name Textual adds a toast
            # of its own, "Saved screenshot", to the one below.
            self.deliver_text(io.StringIO(self.export_screenshot()), save_filename=name, open_method="browser",
                              mime_type="image/svg+xml", name=SCREENSHOT_DELIVERY)
            # The page opens it from a websocket message, not from the key press: a popup blocker may
            # hold it back.
            self.notify(f"screenshot {name} sent to the browser (if no tab opens, allow pop-ups for this page)")
            return
        try:
            path = self.save_screenshot(filename=name, path=str(self.screenshot_dir))
        except OSError as exc:
            self.notify(f"screenshot failed: {exc.strerror or exc}", severity="error")
            return
        # The folder absolute, as the user may be far from the cwd; the file's name on a line of its
        # own, which it fits at 80 columns: a toast wraps a long line in the middle of a word, and the
        # whole path, on one line, was cut inside the name there.
        where = Path(path).resolve()
        self.notify(f"screenshot saved in {where.parent}{os.sep}\n{where.name}")

    @on(events.DeliveryFailed)
    def _screenshot_not_delivered(self, event: events.DeliveryFailed) -> None:
        if event.name == SCREENSHOT_DELIVERY:
            self.notify(f"screenshot not sent to the browser: {event.exception}", severity="error")

    async def action_quit(self) -> None:
        self.stop_training()
        self.exit()

    def stop_training(self) -> None:
        if not self.replay:
            # q within the burst's quiet time of a remedy key: the change is in the recording too
            self.send_unsent_remedies()
        self.runner.stop(StopReplay() if self.replay else Stop())

    def on_unmount(self) -> None:
        self.stop_training()
