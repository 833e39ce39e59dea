"""Session: owns the training of one preset, run after run, and turns commands into events.

The session is the only code that touches the trainer. Other threads talk to it through
:meth:`Session.send` (a queue drained between steps) and hear from it through sinks: callables that
receive lists of events (a History, a RecordingWriter, a queue feeding the dashboard). :meth:`Session.run` is
a plain blocking loop, so it runs the same in a Textual thread worker, a ``threading.Thread``, the
headless command line or a test.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vgp_tui.engine.commands import Command, NoteKey, Pause, Restart, Resume, SetRemedies, SetRemedy, StepOnce, Stop
from vgp_tui.engine.events import Event, KeyPressed, RemedyChanged, RunStarted, SessionHeader, StateChanged, StepMetrics
from vgp_tui.engine.naming import layer_name
from vgp_tui.engine.remedies import REMEDIES, RemedyValue, apply_overrides
from vgp_tui.errors import UserError
from vgp_tui.text import plural, three_significant

log = logging.getLogger("vgp_tui")

Sink = Callable[[list[Event]], Any]


class Session:
    """Training of one scenario with remedies that change run by run.

    Args:
        scenario: the validated preset.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        seed: overrides the preset's seed.
        overrides: remedy values (``{"activation": "relu"}``) applied over the preset's.
        data_dir: where the real data sets live (CIFAR-10, IMDB).
        synthetic: use the labelled synthetic stand-in instead of a real data set.
        steps: optimizer steps per run (overrides the preset's; 0 = until stopped).
        sinks: receivers of event lists.
        flush_seconds: how often measurements are copied off the device and sent to the sinks.
    """

    def __init__(
        self,
        scenario: Any,
        *,
        device: str = "auto",
        seed: int | None = None,
        overrides: Mapping[str, object] | None = None,
        data_dir: str | None = None,
        synthetic: bool = False,
        steps: int | None = None,
        sinks: Iterable[Sink] = (),
        flush_seconds: float = 0.1,
    ) -> None:
        from vgp_tui.engine.devices import resolve_device

        self.scenario = scenario
        self.device = resolve_device(device)
        self.seed = scenario.seed if seed is None else seed
        self.remedies: dict[str, RemedyValue] = apply_overrides(scenario.remedies, overrides or {}, scenario.name)
        self.data_dir = data_dir
        self.synthetic = synthetic or scenario.synthetic
        self.synthetic_for_all = synthetic
        """--synthetic: the presets switched to from this one train on their stand-ins too (a preset
        file's own ``synthetic = true`` is that preset's alone)."""
        self.steps = scenario.train.steps if steps is None else steps
        self.sinks: list[Sink] = list(sinks)
        self.flush_seconds = flush_seconds
        self.commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self.state = "training"
        self.run_number = 0
        self.trainer: Any = None
        self._prepared: Any = None
        """The first run's trainer, built by :meth:`prepare` and not yet announced."""
        self.divergence: Divergence | None = None
        """How the current run diverged (None while it has not)."""
        self.data: Any = None
        self.t0 = time.perf_counter()
        self._last_flush = self.t0

    # -- set-up -------------------------------------------------------------------------------------
    def header(self) -> SessionHeader:
        return SessionHeader.now(self.scenario.name, self.device)

    def load_data(self) -> None:
        """Load the data set onto the device (raises UserError when it cannot be had)."""
        if self.data is not None:
            return
        from dataclasses import replace

        from vgp_tui.data import load_dataset

        data = load_dataset(
            self.scenario.data_kind,
            self.scenario.data,
            data_dir=self.data_dir,
            synthetic=self.synthetic,
            seed=self.seed,
        )
        batch, scenario = self.scenario.train.batch_size, self.scenario
        if batch > len(data.x):
            if scenario.origin == "built-in":  # not the user's file to edit: say what they can do
                from vgp_tui.scenario import user_preset_dir

                fix = (f"give it a data set of at least {batch} examples, or copy the preset to "
                       f"{user_preset_dir() / (scenario.name + '.toml')} and lower its batch_size")
            else:
                fix = f"lower it to at most {len(data.x)}"
            raise UserError(
                f"{scenario.source}: [train] batch_size {batch} is larger than the data "
                f"({plural(len(data.x), 'example')} in {data.label}); {fix}"
            )
        self.data = replace(data, x=data.x.to(self.device), y=data.y.to(self.device))

    @property
    def name(self) -> str:
        return self.scenario.name

    def initial_remedies(self) -> dict[str, RemedyValue]:
        return dict(self.remedies)

    @property
    def data_label(self) -> str:
        return self.data.label if self.data is not None else ""

    @property
    def stand_in(self) -> bool:
        """The data is the synthetic stand-in for the preset's real data set (once loaded)."""
        return self.data is not None and self.data.stand_in

    def prepare(self) -> None:
        """Load the data and build the first run's model without announcing it (raises UserError when
        either cannot be had). A preset switch does this while the old preset can still go on: a model
        too big for memory found only once the screen had switched left no preset training at all.
        :meth:`run` announces the prepared model as its first run."""
        self.load_data()
        if self.trainer is not None or self._prepared is not None:
            return
        import torch

        rng = torch.random.get_rng_state()
        try:
            self._prepared = self._build_trainer(self.run_number + 1)
        except Exception:
            # The model's initialisation seeded torch's global generator: the preset that goes on
            # keeps its own random stream, as if no switch had been tried.
            torch.random.set_rng_state(rng)
            raise

    def start_run(self, reason: str = "start") -> None:
        """Build a fresh model from the seed with the current remedies and announce the run."""
        self.load_data()
        prepared, self._prepared = self._prepared, None
        self.run_number += 1
        self.divergence = None
        if prepared is not None and prepared.run == self.run_number and prepared.remedies == self.remedies:
            self.trainer = prepared
            self.trainer.restart_clock()  # its first step is timed from now, not from when it was built
        else:
            self.trainer = self._build_trainer(self.run_number)
        self.state = "training"
        self._emit(
            [
                RunStarted(
                    run=self.run_number,
                    t=self._now(),
                    preset=self.scenario.name,
                    layers=self.trainer.probe.layer_names,
                    remedies=dict(self.remedies),
                    seed=self.seed,
                    reason=reason,
                    time_view=self.trainer.time_view,
                    stats=self.trainer.stats_label,
                    params=self.trainer.params,
                    stand_in=self.stand_in,
                )
            ]
        )

    def _build_trainer(self, run: int) -> Any:
        from vgp_tui.engine.trainer import Trainer

        try:
            return Trainer(self.scenario, self.remedies, self.data, self.device, run, self.seed, self.t0)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            # The preset's sizes are the user's: one line that says which, not the allocator's traceback.
            raise UserError(f"{self.scenario.source}: the model does not fit in memory on {self.device}; make "
                            f"[model] smaller ({model_sizes(self.scenario)})") from None

    # -- the thread-safe side -----------------------------------------------------------------------
    def send(self, command: Command) -> None:
        """Queue a command for the training thread (safe from any thread)."""
        self.commands.put(command)

    # -- the training thread ------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None, exit_when_done: bool = False) -> None:
        """Train until stopped (``Stop`` command or ``stop`` set), or until done if ``exit_when_done``."""
        stop = stop or threading.Event()
        if self.trainer is None:
            self.start_run()
        while not stop.is_set():
            if not self._apply_commands(block=self.state != "training"):
                break
            if self.state == "training":
                self._step()
                if self.steps and self.trainer.step_count >= self.steps:
                    self.flush()
                    if self.state == "training":
                        self._set_state("finished", f"run {self.run_number} finished {plural(self.steps, 'step')}")
                    if exit_when_done:
                        break
            if time.perf_counter() - self._last_flush >= self.flush_seconds:
                self.flush()
            if exit_when_done and self.state in ("diverged", "error"):
                break
        else:
            # Stopped from outside: the commands sent before the stop (a key pressed just before q)
            # still happen, so that a recording holds every key the user pressed.
            self._apply_commands(block=False)
        self.flush()

    def end(self) -> None:
        """The session is over for good (the dashboard closed, the command line stopped by a signal):
        send what was measured, and record a run still training or paused as finished, so that a
        recording ends on a final state (a replay of it then ends FINISHED, not still TRAINING).
        Called in the training thread once :meth:`run` has returned; not on a preset switch, after
        which the same session may go on."""
        self.flush()
        if self.trainer is not None and self.state in ("training", "paused"):
            self._set_state("finished", f"run {self.run_number} stopped after {plural(self.trainer.step_count, 'step')}")

    def _step(self) -> None:
        try:
            self.trainer.step()
        except Exception as exc:  # noqa: BLE001 - any fault in user-visible training is reported, not fatal
            self.flush()
            if self.state == "diverged":
                # The step that failed came after the divergence, on non-finite weights: it was
                # dropped, and the divergence is what the user needs to hear about.
                log.warning("step after the divergence failed (run %s): %r", self.run_number, exc)
                return
            log.exception("training step failed (run %s, step %s)", self.run_number, self.trainer.step_count + 1)
            self._set_state("error", describe_failure(exc, self.device))

    def flush(self) -> None:
        """Send all measured steps to the sinks; ends the run if one of them diverged (the trainer
        keeps no step past that one, so every count agrees on it)."""
        self._last_flush = time.perf_counter()
        if self.trainer is None or not self.trainer.pending:
            return
        events = self.trainer.flush()
        self._emit(events)
        bad = self.trainer.diverged
        if bad is not None and events and events[-1] is bad:  # found by this flush
            self.divergence = Divergence.of(bad, self.trainer.last_finite, self.trainer.probe.layer_names)
            self._set_state("diverged", self.divergence.message(), step=bad.step)

    def _apply_commands(self, block: bool) -> bool:
        """Apply queued commands; False when told to stop. Waits briefly for one when ``block``."""
        try:
            command = self.commands.get(timeout=0.05) if block else self.commands.get_nowait()
        except queue.Empty:
            return True
        while True:
            if isinstance(command, Stop):
                return False
            self._apply(command)
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return True

    def _apply(self, command: Command) -> None:
        step = self.trainer.step_count if self.trainer else 0
        if isinstance(command, Pause):
            if self.state == "training":
                self.flush()
                self._set_state("paused")
        elif isinstance(command, Resume):
            if self.state == "paused":
                self.trainer.restart_clock()
                self._set_state("training")
            elif self.state in ("diverged", "error", "finished"):
                self.start_run("restart")
        elif isinstance(command, StepOnce):
            if self.state in ("paused", "finished"):
                self.trainer.restart_clock()
                self._step()
                self.flush()
        elif isinstance(command, Restart):
            self.flush()
            self.start_run("restart")
        elif isinstance(command, SetRemedy):
            self._set_remedies({command.name: command.value}, step)
        elif isinstance(command, SetRemedies):
            self._set_remedies(dict(command.values), step, command.fresh_run)
        elif isinstance(command, NoteKey):
            self._emit([KeyPressed(self.run_number, step, self._now(), command.key, command.action)])

    def _set_remedies(self, values: Mapping[str, RemedyValue], step: int, fresh_run: bool = False) -> None:
        """Apply remedy values together: one fresh run when any is structural, when asked
        (``fresh_run``) or when the run is beyond rescue, else each at the next step of the same run."""
        changed: dict[str, RemedyValue] = {}
        for name, value in values.items():
            if REMEDIES.get(name) is None or name not in self.remedies:
                log.warning("ignored remedy %s: it does not apply to %s", name, self.scenario.name)
            elif self.remedies[name] != value:
                changed[name] = value
        if not changed:
            return
        self.flush()
        events: list[Event] = []
        fresh = fresh_run or self.state in ("diverged", "error")
        for name, value in changed.items():
            remedy = REMEDIES[name]
            fresh = fresh or remedy.structural
            # A live change takes effect at the next step, which is where it is marked.
            marked_at = step if remedy.structural else step + 1
            events.append(RemedyChanged(self.run_number, marked_at, self._now(), name, self.remedies[name], value,
                                        remedy.structural))
            self.remedies[name] = value
        self._emit(events)
        if fresh:
            # A structural change rebuilds the network; non-finite weights (or dead units, for a fix
            # that asks) cannot be rescued by a live change: start afresh with it applied.
            self.start_run("remedy")
        else:
            for name, value in changed.items():
                self.trainer.set_live(name, value)

    def _set_state(self, state: str, message: str = "", step: int | None = None) -> None:
        self.state = state
        if step is None:
            step = self.trainer.step_count if self.trainer else 0
        self._emit([StateChanged(self.run_number, step, self._now(), state, message)])

    def _emit(self, events: list[Event]) -> None:
        for sink in self.sinks:
            sink(events)

    def _now(self) -> float:
        return time.perf_counter() - self.t0


@dataclass(frozen=True)
class Divergence:
    """Where and how a run stopped being finite (the headless summary and the message read it).

    The layers are kept by index: the message names them as the diagnosis does ("layer 3 (fc2)"),
    the JSON summary as the layer list does ("fc2")."""

    step: int
    loss: float
    total_norm: float
    layers: tuple[str, ...]
    """The run's layer names, input side first."""
    nonfinite: tuple[int, ...]
    """Layers whose gradient norm was not finite at ``step``, input side first."""
    first_layer: int | None
    """The non-finite layer nearest the output, since backpropagation reaches it first (None: no
    layer is non-finite); what went non-finite first unless the loss did (:attr:`first_nonfinite`)."""
    largest: tuple[int, int, float] | None
    """(step, layer, norm): the largest layer gradient at the last finite step, if there was one."""
    first_value: float = math.nan
    """The gradient norm of the ``first_nonfinite`` layer (NaN or Inf)."""

    @classmethod
    def of(cls, bad: StepMetrics, before: StepMetrics | None, layers: tuple[str, ...]) -> Divergence:
        nonfinite = tuple(i for i, g in enumerate(bad.grad_norm) if not math.isfinite(g))
        first = nonfinite[-1] if nonfinite else None
        largest = None
        if before is not None and before.grad_norm:
            i = max(range(len(before.grad_norm)), key=before.grad_norm.__getitem__)
            largest = (before.step, i, before.grad_norm[i])
        value = bad.grad_norm[first] if first is not None and math.isfinite(bad.loss) else math.nan
        return cls(bad.step, bad.loss, bad.total_norm, tuple(layers), nonfinite, first, largest, value)

    def named(self, i: int) -> str:
        """Layer ``i`` as the diagnosis names it: ``layer 3 (fc2)``."""
        return layer_name(i, self.layers[i])

    @property
    def layer_count(self) -> int:
        return len(self.layers)

    @property
    def nonfinite_layers(self) -> tuple[str, ...]:
        """The non-finite layers, named as the diagnosis names them."""
        return tuple(self.named(i) for i in self.nonfinite)

    @property
    def first_nonfinite(self) -> str | None:
        """What went non-finite first: ``loss`` when the forward pass did (then every gradient
        follows); else :attr:`first_layer`, named; None when only the total norm overflowed."""
        if not math.isfinite(self.loss):
            return "loss"
        return self.named(self.first_layer) if self.first_layer is not None else None

    @property
    def largest_before(self) -> tuple[int, str, float] | None:
        """:attr:`largest` with its layer named."""
        return None if self.largest is None else (self.largest[0], self.named(self.largest[1]), self.largest[2])

    def message(self) -> str:
        """One line: the step, what went non-finite first, and the largest gradient just before."""
        n = len(self.nonfinite_layers)
        if self.first_nonfinite == "loss":
            what = f"the loss became {three_significant(self.loss)} in the forward pass"
            if n:
                some = self.nonfinite_layers[0] if n == 1 else f"{n} layers"
                what += ", and with it " + (
                    "every layer's gradient" if n == self.layer_count else f"the gradient of {some}")
        elif self.first_nonfinite is not None:
            what = f"the gradient of {self.first_nonfinite} went {three_significant(self.first_value)}"
            if n == 1:
                what += " (the only layer whose gradient did)"
            else:  # backpropagation reaches the layers nearer the output first
                what += f" first, then {plural(n - 1, 'layer')} below it"
            what += f"; loss {three_significant(self.loss)}"
        else:
            what = f"the total gradient norm overflowed ({three_significant(self.total_norm)}); every layer's is finite"
        text = f"diverged at step {self.step}: {what}"
        if self.largest_before is not None:
            step, layer, norm = self.largest_before
            text += f"; at step {step} the largest gradient was that of {layer}, {three_significant(norm)}"
        return text


def is_out_of_memory(exc: BaseException) -> bool:
    """A device's allocator ran out: CUDA's OutOfMemoryError, or the CPU allocator's RuntimeError."""
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text


def model_sizes(scenario: Any) -> str:
    """The preset's model sizes, as its [model] table writes them: "depth 500, width 8192"."""
    config = scenario.model
    names = [f.name for f in dataclasses.fields(config) if isinstance(getattr(config, f.name), int)
             and not isinstance(getattr(config, f.name), bool)]
    return ", ".join(f"{name} {getattr(config, name)}" for name in names)


def describe_failure(exc: BaseException, device: str) -> str:
    """One line for the user about a failed training step, with a hint where there is one."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    if is_out_of_memory(exc):
        return f"out of memory on {device}: lower [train] batch_size or the model's width in the preset"
    return f"training failed: {exc.__class__.__name__}: {text} (details in the log)"
