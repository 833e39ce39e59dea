"""The command line: the dashboard, the preset table, headless runs (and, later, replay and cast).

Heavy modules (torch, textual) are imported inside the commands that need them, so ``--help`` and
``presets`` answer at once. Every user mistake ends as one ``vgp-tui: error: ...`` line and exit
status 2, never a traceback.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vgp_tui.cast import IDLE_LIMIT, MAX_PIXELS, MIN_IDLE_LIMIT
from vgp_tui.errors import UserError

_EPILOG = "Run 'vgp-tui presets' for the scenarios and 'vgp-tui COMMAND --help' for a command."


class FiniteFloatRange(click.FloatRange):
    """A click float range that refuses nan (which passes every comparison of a range) and inf."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a number in the range {self._describe_range()}", param, ctx)
        return number


SEED = click.IntRange(min=0, max=2**32 - 1)
"""What a preset file's ``seed`` may be: torch's CPU generator keeps a seed's low 32 bits, so a larger
one would train as another seed under its own label (and past 2**64 it overflows)."""


def _fail(message: str) -> None:
    click.echo(f"vgp-tui: error: {message}", err=True)
    sys.exit(2)


def _a_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An option's file name, refusing an empty one (``--record ""`` recorded nothing, silently)."""
    if value is not None and not value.strip():
        raise click.BadParameter("needs a file name", ctx, param)
    return value


def training_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options shared by the dashboard and ``run``."""
    options = [
        click.option("--preset", "-p", default="deep-sigmoid", show_default=True, metavar="NAME|PATH",
                     help="Built-in or user preset name, or a path to a preset TOML file."),
        click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda|cuda:N|mps",
                     help="Where to train; auto takes CUDA, then MPS, then the CPU."),
        click.option("--seed", type=SEED, default=None, metavar="N",
                     help="Seed for weights and batches (default: the preset's)."),
        click.option("--remedy", "-r", "remedies", multiple=True, metavar="NAME=VALUE",
                     help="Start with a remedy set, e.g. activation=relu; repeatable."),
        click.option("--record", type=click.Path(dir_okay=False), default=None, metavar="FILE", callback=_a_name,
                     help="Write every event to FILE as JSON lines (docs/recording-format.md)."),
        click.option("--data-dir", type=str, default=None, metavar="DIR",
                     help="Folder holding CIFAR-10 (cifar-10-batches-py) or IMDB (aclImdb)."),
        click.option("--synthetic", is_flag=True, help="Use the labelled synthetic stand-in instead of real data."),
        click.option("--threads", type=click.IntRange(min=1), default=None, metavar="N",
                     help="CPU threads for training [default: one fewer than the cores]."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def build_session(preset: str, device: str, seed: int | None, remedies: tuple[str, ...], data_dir: str | None,
                  synthetic: bool, steps: int | None = None, threads: int | None = None) -> Any:
    """Validate everything the user typed and load the data; raises UserError for any mistake. Sets
    the training threads (the dashboard's and ``run``'s policy: spinning threads stall on a busy machine)."""
    from vgp_tui.engine.remedies import parse_assignment
    from vgp_tui.scenario import load_preset

    scenario = load_preset(preset)
    overrides: dict[str, object] = {}
    for text in remedies:
        name, value = parse_assignment(text)
        overrides[name] = value
    if data_dir is not None:  # checked for every preset: one with generated data would ignore a typo
        from vgp_tui.data.download import chosen_data_dir

        chosen_data_dir(data_dir, synthetic, scenario)
    from vgp_tui.engine.session import Session

    session = Session(scenario, device=device, seed=seed, overrides=overrides, data_dir=data_dir,
                      synthetic=synthetic, steps=steps)
    session.load_data()
    from vgp_tui.engine import devices

    devices.use_training_threads(session.device, threads)
    return session


@click.group(invoke_without_command=True, epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@training_options
@click.option("--screenshot-dir", default=".", show_default=True, metavar="DIR",
              help="Where ctrl+s writes its SVG screenshots.")
@click.version_option(package_name="vgp-tui", prog_name="vgp-tui")
@click.pass_context
def cli(ctx: click.Context, preset: str, device: str, seed: int | None, remedies: tuple[str, ...],
        record: str | None, data_dir: str | None, synthetic: bool, threads: int | None, screenshot_dir: str) -> None:
    """Watch gradients vanish or explode, layer by layer, and press a key to apply a remedy.

    With no command, opens the live dashboard on the chosen preset.
    """
    if ctx.invoked_subcommand is not None:
        _refuse_options_before(ctx, ctx.invoked_subcommand)
        return
    from pathlib import Path

    from vgp_tui.dashboard import run_dashboard
    from vgp_tui.engine.remedies import apply_overrides, parse_assignment
    from vgp_tui.scenario import load_preset

    if not Path(screenshot_dir).expanduser().is_dir():
        raise UserError(f"--screenshot-dir {screenshot_dir}: no such folder (create it, or leave the option out)")
    # The quick checks (no torch) come before the screen opens, so a typo is one line at once, and
    # before the terminal is asked for (run_dashboard does), so a typo is not told "needs a terminal";
    # the session itself is built while the frame is already drawn.
    scenario = load_preset(preset)
    apply_overrides(scenario.remedies, dict(parse_assignment(text) for text in remedies), scenario.name)
    run_dashboard(lambda: build_session(preset, device, seed, remedies, data_dir, synthetic, threads=threads),
                  scenario.name, record=record, screenshot_dir=str(Path(screenshot_dir).expanduser()))


def _written(ctx: click.Context) -> list[click.Parameter]:
    """The options of ``ctx``'s command written on its command line (not left to their defaults)."""
    from click.core import ParameterSource

    return [p for p in ctx.command.params if p.name and ctx.get_parameter_source(p.name) is ParameterSource.COMMANDLINE]


def _given(*names: str) -> list[str]:
    """Of these options of the running command, the flags written on its command line."""
    return [p.opts[0] for p in _written(click.get_current_context()) if p.name in names]


def _refuse_options_before(ctx: click.Context, name: str) -> None:
    """The dashboard's options written before a command (``vgp-tui --preset deep-relu run``) would be
    dropped without a word, and the command run with its own defaults: say where they go instead."""
    given = _written(ctx)
    if not given:
        return
    command = ctx.command.commands[name]  # type: ignore[attr-defined]
    takes = {p.name for p in command.params}
    first = given[0]
    flag = first.opts[0] if first.opts else first.name
    if first.name in takes:
        raise UserError(f"{flag} goes after the command: vgp-tui {name} {flag} ...")
    raise UserError(f"{flag} is an option of the dashboard; 'vgp-tui {name}' does not take it (see 'vgp-tui {name} --help')")


@cli.command("presets")
def presets_command() -> None:
    """List the scenarios: name, where it comes from, model, data, remedies and what each shows.

    A preset's name is its file's name; a user preset named like a built-in one replaces it. User
    presets are TOML files in $VGP_TUI_PRESETS, else $XDG_CONFIG_HOME/vgp-tui/presets, else
    ~/.config/vgp-tui/presets; in a terminal the list ends with the folders, built-in ones included.
    """
    from vgp_tui.scenario import available_names, builtin_names, load_preset, user_names

    builtin, user = set(builtin_names()), set(user_names())
    rows = []
    for name in available_names():
        try:
            s = load_preset(name)
        except UserError as exc:  # listed under the name --preset takes, so the user finds the file
            origin = "user, shadows built-in" if name in builtin else "user" if name in user else "built-in"
            rows.append((name, origin, "-", "-", "-", f"(invalid: {exc})"))
            continue
        rows.append((s.name, s.origin_label, s.family, s.data_kind, ", ".join(s.remedies), s.summary))
    headers = ("preset", "from", "model", "data", "remedies", "what it shows")
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(5)]
    table = [("  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + "  " + row[5]) for row in [headers, *rows]]
    columns = shutil.get_terminal_size().columns
    if not sys.stdout.isatty():
        click.echo("\n".join(table))  # one row a preset, nothing else: what a pipe gets
        return
    if max(len(line) for line in table) <= columns:
        click.echo("\n".join(table))
        click.echo()
        click.echo(_where_presets_are())
        return
    # A terminal narrower than the table (every one under about 260 columns): a block a preset,
    # wrapped to the width, instead of rows that wrap into each other.
    width = max(columns - 4, 40)
    for i, (name, origin, family, data, remedies, summary) in enumerate(rows):
        if i:
            click.echo()
        click.echo(f"{click.style(name, bold=True)}  {origin} · {family} model · {data} data")
        for line in textwrap.wrap(f"remedies: {remedies}", width) + textwrap.wrap(summary, width):
            click.echo(f"    {line}")
    click.echo()
    click.echo("\n".join(textwrap.wrap(_where_presets_are(), columns - 1, subsequent_indent="  ",
                                      break_long_words=False, break_on_hyphens=False)))  # paths whole


def _where_presets_are() -> str:
    """Where the files are: a wheel's built-in presets are deep in site-packages, where no user looks
    (the README said to copy one of presets/*.toml, a folder only a clone has)."""
    from importlib import resources

    from vgp_tui.scenario import user_preset_dir

    return (f"the built-in presets are files in {resources.files('vgp_tui.presets')}; for your own, copy one "
            f"to {user_preset_dir()}/NAME.toml, edit it, and pass --preset NAME")


_SERVE_EPILOG = (
    "\b\nExamples:\n"
    "  vgp-tui run --preset deep-sigmoid --steps 5000 --record run.jsonl &\n"
    "  vgp-tui serve --follow run.jsonl       # everyone watches that run\n"
    "  vgp-tui serve --demo --preset deep-relu --max-sessions 3\n"
    "  ssh -L 8000:localhost:8000 HOST        # then open http://localhost:8000\n"
    "\b\nThe server listens on 127.0.0.1 only. --public listens beyond this machine (every interface,\n"
    "or --host): no login, plain HTTP; with --demo anyone reaching the port starts training here.\n"
    "Ctrl+C or SIGTERM stops it and every tab's session; the exit status is then 130 or 143.\n"
    "See docs/serving.md."
)


@cli.command("serve", epilog=_SERVE_EPILOG)
@click.option("--follow", "follow", default=None, metavar="FILE",
              help="Every visitor watches FILE as it is written (a replay viewer per tab; nothing trains).")
@click.option("--demo", is_flag=True, help="Every visitor gets a live training session of their own.")
@click.option("--host", default=None, metavar="ADDRESS",
              help="Where to listen [default: 127.0.0.1, this machine only]; another address needs --public.")
@click.option("--port", type=click.IntRange(min=1, max=65535), default=8000, show_default=True, metavar="PORT",
              help="Where to listen.")
@click.option("--public", is_flag=True,
              help="Listen beyond this machine (on every interface, or on --host): no login, plain HTTP.")
@click.option("--max-sessions", type=click.IntRange(min=1, max=64), default=None, metavar="N",
              help="Tabs served at once; the next one is told to try later [default: 8 with --follow, 2 with --demo].")
@click.option("--preset", "-p", default="deep-sigmoid", show_default=True, metavar="NAME|PATH", help="With --demo: the preset.")
@click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda|cuda:N|mps", help="With --demo: where to train.")
@click.option("--seed", type=SEED, default=None, metavar="N", help="With --demo: seed (default: the preset's).")
@click.option("--remedy", "-r", "remedies", multiple=True, metavar="NAME=VALUE", help="With --demo: a remedy to start with.")
@click.option("--data-dir", type=str, default=None, metavar="DIR", help="With --demo: folder holding CIFAR-10 or IMDB.")
@click.option("--synthetic", is_flag=True, help="With --demo: the labelled synthetic stand-in instead of real data.")
@click.pass_context
def serve_command(ctx: click.Context, follow: str | None, demo: bool, host: str | None, port: int, public: bool,
                  max_sessions: int | None, preset: str, device: str, seed: int | None, remedies: tuple[str, ...],
                  data_dir: str | None, synthetic: bool) -> None:
    """The dashboard in a web browser (textual-serve), on http://127.0.0.1:8000 by default.

    \b
    --follow FILE  every tab follows one recording as it is written (as 'replay --follow')
    --demo         every tab trains its own live session, at most --max-sessions at once
    """
    from vgp_tui.serve import demo_plan, follow_plan, serve

    if (follow is None) == (not demo):
        raise UserError("serve needs --follow FILE (everyone watches one recording) or --demo (each tab trains "
                        "its own session)" + (", not both" if demo else ""))
    if follow is not None:
        demo_only = [f"--{name.replace('_', '-')}" for name in ("preset", "device", "seed", "remedies", "data_dir", "synthetic")
                     if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]
        if demo_only:
            shown = demo_only[0].replace("--remedies", "--remedy")
            raise UserError(f"{shown} is for --demo; with --follow the recording decides what is shown")
        plan = follow_plan(follow, host, port, public, max_sessions)
    else:
        plan = demo_plan(preset, device, seed, remedies, data_dir, synthetic, host, port, public, max_sessions)
    status = serve(plan)  # after the clean stop: every tab's session ended
    if status:
        sys.exit(status)


EXIT_DIVERGED = 3
"""Exit status of ``run`` when training diverged (1 is a failed step, 2 a usage mistake, 130 an
interruption), so a script or batch job can tell a divergence from success and from a crash."""

_RUN_EPILOG = (
    "\b\nExit status:\n"
    "  0    the run finished its steps\n"
    "  1    a training step failed, or --record could not write (the message says why)\n"
    "  2    a mistake on the command line or in a preset file\n"
    f"  {EXIT_DIVERGED}    the run diverged: the loss or a gradient became NaN or Inf (the summary\n"
    "       covers the finite steps before it and names the step)\n"
    "  130  interrupted (Ctrl+C, SIGTERM or SIGHUP); the summary covers the steps so far"
)


@cli.command("run", epilog=_RUN_EPILOG)
@training_options
@click.option("--steps", type=click.IntRange(min=1), required=True, help="Optimizer steps to train.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary instead of a table.")
def run_command(preset: str, device: str, seed: int | None, remedies: tuple[str, ...], record: str | None,
                data_dir: str | None, synthetic: bool, threads: int | None, steps: int, as_json: bool) -> None:
    """Train headless for --steps steps and print the per-layer gradient summary."""
    from vgp_tui.engine.history import History
    from vgp_tui.engine.recording import RecordingWriter
    from vgp_tui.summary import summarize, summary_table

    stop = threading.Event()
    # Set before the imports and the data: a Ctrl+C there must not land in a callback that ignores it.
    previous = {sig: signal.signal(sig, _stop_handler(stop)) for sig in _stop_signals()}
    try:
        session = build_session(preset, device, seed, remedies, data_dir, synthetic, steps=steps, threads=threads)
    except BaseException:
        _restore(previous)
        raise
    history = History()
    session.sinks.append(history.extend)
    recorder = RecordingWriter(record, session.header()) if record else None
    if recorder is not None:
        session.sinks.append(recorder.write)
    progress = _Progress(steps, enabled=not as_json and sys.stderr.isatty())
    session.sinks.append(progress.update)
    interrupted = False
    try:
        session.run(stop, exit_when_done=True)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        session.end()  # a run stopped by a signal is recorded as finished, with the steps it made
        _restore(previous)
        progress.close()
        if recorder is not None:
            recorder.close()
    summary = summarize(history, session, steps_asked=steps, interrupted=interrupted or stop.is_set())
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(summary_table(summary))
    if recorder is not None and recorder.error:
        click.echo(f"vgp-tui: error: {recorder.error}", err=True)
    if interrupted or stop.is_set():
        sys.exit(130)
    if session.state == "error":
        sys.exit(1)
    if session.state == "diverged":
        sys.exit(EXIT_DIVERGED)
    if recorder is not None and recorder.error:
        sys.exit(1)  # the run trained, but what a batch job runs it for is not all on disk


@cli.command("replay")
@click.argument("file", type=str)
@click.option("--speed", type=FiniteFloatRange(min=1 / 64, max=1024), default=1.0, show_default=True,
              help="Recording seconds per second of playback.")
@click.option("--follow", is_flag=True, help="Follow FILE like tail -F: wait for it, start at its live end (home: from the start).")
@click.option("--screenshot-at", type=click.IntRange(min=1), default=None, metavar="STEP",
              help="Write one SVG frame at STEP (of the last run reaching it, or of --run) to -o, then exit.")
@click.option("--run", "run_number", type=click.IntRange(min=1), default=None, metavar="N",
              help="With --screenshot-at: the step of run N.")
@click.option("-o", "--output", type=str, default=None, metavar="OUT.svg", help="Where --screenshot-at writes.")
@click.option("--size", default="120x40", show_default=True, metavar="COLSxROWS", help="Frame size for --screenshot-at.")
@click.option("--exit-at-end", is_flag=True, hidden=True, help="Quit a second after the last record (for cast).")
def replay_command(file: str, speed: float, follow: bool, screenshot_at: int | None, run_number: int | None,
                   output: str | None, size: str, exit_at_end: bool) -> None:
    """Show a recording in the dashboard: space pauses, left/right seek, < and > change speed.

    --follow waits for FILE if it does not exist yet and starts at the end of what is written.
    --screenshot-at exits with status 1 (after writing the frame of the last step there is) when
    the recording has no such step, or the GradScaler skipped it (the panels show the step before).
    """
    from vgp_tui.dashboard import make_replay_app, run_replay

    if screenshot_at is not None and not output:
        raise UserError("--screenshot-at needs -o OUT.svg (where to write the frame)")
    if output and screenshot_at is None:
        raise UserError("-o is for --screenshot-at STEP; without it the replay is shown on screen")
    if screenshot_at is not None and follow:
        raise UserError("--screenshot-at and --follow do not go together")
    if run_number is not None and screenshot_at is None:
        raise UserError("--run is for --screenshot-at STEP: it picks the run whose step is drawn")
    if screenshot_at is None and _given("size"):  # (it was ignored without a word)
        raise UserError("--size is for --screenshot-at STEP; the replay on screen takes the terminal's size")
    columns, rows = parse_size(size)
    if output and screenshot_at is not None and Path(output).suffix.lower() != ".svg":
        raise UserError(f"-o {output}: --screenshot-at writes an SVG, so name it .svg "
                        "('vgp-tui cast FILE -o demo.png' makes pictures)")
    target = writable_output(output) if output and screenshot_at is not None else None
    app = make_replay_app(file, speed=speed, follow=follow, exit_at_end=exit_at_end,
                          screenshot_at=screenshot_at, screenshot_to=output, screenshot_run=run_number)
    source = app.session
    runs = source.runs if run_number is not None else []  # (a scan of the whole recording: only for --run)
    if run_number is not None and run_number not in runs:
        has = f"runs {runs[0]} to {runs[-1]}" if len(runs) > 1 else (f"only run {runs[0]}" if runs else "no run")
        raise UserError(f"--run {run_number}: {file} has {has}")

    def warn_about_the_file() -> None:
        # The dashboard's toast goes when the screen does; the terminal keeps this line.
        if source.warning:
            click.echo(f"vgp-tui: warning: {source.warning}", err=True)

    if screenshot_at is None:
        try:
            run_replay(app)
        except SystemExit:  # the replay ran and quit with a status (a UserError showed nothing: no warning)
            warn_about_the_file()
            raise
        warn_about_the_file()
        return
    assert target is not None
    app.run(headless=True, size=(columns, rows))
    source.close()
    if app.screenshot_error:
        click.echo(f"vgp-tui: error: could not write {output}: {app.screenshot_error}", err=True)
        sys.exit(1)
    if not target.is_file():
        raise UserError(f"no frame was written to {output}")
    click.echo(f"wrote {target}")
    warn_about_the_file()
    if source.shortfall:  # a frame was written, but not of the step asked for (none, or skipped): status 1
        click.echo(f"vgp-tui: warning: {source.shortfall}", err=True)
        sys.exit(1)


class IdleLimit(click.ParamType):
    """``--idle-limit``: seconds (at least MIN_IDLE_LIMIT), or 0, none or off for no limit (None)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None:
            return None
        text = str(value).strip().lower()
        if text in ("none", "off"):
            return None
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if number == 0:
            return None
        if not math.isfinite(number) or number < MIN_IDLE_LIMIT:
            self.fail(f"{value!r} is not a number of seconds of at least {MIN_IDLE_LIMIT:g} (or 0 or none, to keep "
                      "every pause)", param, ctx)
        return number


@cli.command("cast")
@click.argument("file", type=str)
@click.option("-o", "--output", required=True, metavar="OUT.cast|gif|webp|png",
              help="Where to write; the extension picks the format: .cast (asciicast v2), .gif, .webp or .png "
                   "(animated).")
@click.option("--size", default="120x40", show_default=True, metavar="COLSxROWS",
              help=f"Terminal size of the cast; a picture is at most {MAX_PIXELS / 1e6:g} megapixels (400x150 at "
                   "--font-size 16).")
@click.option("--speed", type=FiniteFloatRange(min=1 / 64, max=1024), default=1.0, show_default=True,
              help="Recording seconds per second of the cast.")
@click.option("--fps", type=FiniteFloatRange(min=1, max=50), default=5.0, show_default=True,
              help="Pictures only: frames per second (GIF keeps times in hundredths of a second).")
@click.option("--font-size", type=click.IntRange(min=8, max=64), default=16, show_default=True, metavar="PX",
              help="Pictures only: text height in pixels (a cell is about 0.6 of it wide).")
@click.option("--hold", type=FiniteFloatRange(min=0, max=60), default=3.0, show_default=True, metavar="SECONDS",
              help="Pictures only: how long the last frame stays before the picture loops.")
@click.option("--idle-limit", type=IdleLimit(), default=f"{IDLE_LIMIT:g}", show_default=True, metavar="SECONDS",
              help="Any pause longer than this (the recorded session sitting still) is cut to it, in the "
                   "asciicast and in the picture; 0 or none keeps every pause.")
def cast_command(file: str, output: str, size: str, speed: float, fps: float, font_size: int, hold: float,
                 idle_limit: float | None) -> None:
    """Turn a recording into an asciicast (asciinema play OUT.cast) or an animated GIF, WebP or PNG.

    A picture shows the dashboard as the replay draws it, sampled --fps times a second; pictures
    need the gif extra (pip install 'vgp-tui[gif]'). A progress bar shows on stderr when it is a terminal.
    """
    from vgp_tui.cast.image import Progress, image_format, write_image_cast
    from vgp_tui.engine.recording import read_recording

    columns, rows = parse_size(size)
    picture = image_format(output)
    if picture is None and (only_pictures := _given("fps", "font_size", "hold")):  # (ignored without a word)
        raise UserError(f"{only_pictures[0]} is for pictures (.gif, .webp, .png); {output} is an asciicast, "
                        "which the player draws at the viewer's own font and frame rate")
    writable_output(output)
    from vgp_tui.engine.events import StepMetrics

    recording = read_recording(file)
    if not any(isinstance(event, StepMetrics) for event in recording.events):
        # (it made a cast of an empty dashboard, "waiting for the first step", and exited 0)
        raise UserError(f"{file} has no step records yet: nothing to cast (a run writes them as it trains)")
    warning = recording.warning  # a file cut short: said after the cast (as replay says it), before "wrote"
    try:
        if picture is None:
            from vgp_tui.cast.asciicast import record_cast

            made = record_cast(file, output, columns, rows, speed, idle_limit=idle_limit)
            # How long it plays, and why it is shorter than the replay where pauses were cut. (It said
            # "150 frames": the dashboard's writes to the terminal, a count that says nothing to a
            # viewer and varies with the machine's load.)
            cut = f" ({made.cut:.1f} s of pauses cut, --idle-limit {idle_limit:g})" if made.cut >= 0.05 else ""
            done = f"wrote {output}: {columns}x{rows}, {made.seconds:.1f} s{cut}; play it with asciinema play {output}"
        else:
            made = write_image_cast(file, output, columns, rows, speed, fps, font_size, hold,
                                    progress=Progress(enabled=sys.stderr.isatty()), idle_limit=idle_limit)
            # The frames the file holds: sampled --fps times a second, a frame is kept only where the
            # picture changed (the rest show it longer), so "89 frames" at 50 fps was a file of 8.
            done = (f"wrote {output}: {made.width}x{made.height} px, {made.distinct} frame"
                    f"{'' if made.distinct == 1 else 's'} (sampled at {fps:g} fps, repeats merged), "
                    f"{made.seconds:.1f} s + {made.hold:g} s held, {made.bytes / 1e6:.2f} MB")
    except OSError as exc:  # a full disk, say: the file's fault, not the command line's
        click.echo(f"vgp-tui: error: could not write {output}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    if warning:  # before "wrote …": the last line says what was made, and is the one a reader looks at
        click.echo(f"vgp-tui: warning: {warning}", err=True)
    click.echo(done)


def writable_output(output: str, option: str = "-o") -> Path:
    """``output`` as a path that can be written, else the UserError that says why (checked before the
    work, so that a frame or a whole animation is not made for nothing)."""
    target = Path(output).expanduser()
    if target.is_dir():
        raise UserError(f"{option} {output} is a folder: give the name of a file in it")
    if not target.parent.is_dir():
        raise UserError(f"{option} {output}: folder '{target.parent}' does not exist (create it first)")
    existed = target.exists()
    try:
        with open(target, "a"):
            pass
    except OSError as exc:
        raise UserError(f"{option} {output}: cannot write there ({exc.strerror or exc})") from None
    if not existed:
        target.unlink(missing_ok=True)
    return target


def parse_size(text: str) -> tuple[int, int]:
    """``120x40`` as (120, 40); the dashboard needs at least 80x24."""
    cols, sep, rows = text.lower().partition("x")
    if not sep or not cols.isdigit() or not rows.isdigit():
        raise UserError(f"--size must look like 120x40 (columns x rows), got '{text}'")
    size = int(cols), int(rows)
    if size[0] < 80 or size[1] < 24 or size[0] > 1000 or size[1] > 500:
        raise UserError(f"--size {text}: the dashboard needs at least 80x24 (and at most 1000x500)")
    return size


class _Progress:
    """A one-line progress counter on stderr (only on a terminal)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.done = 0

    def update(self, events: list[Any]) -> None:
        if not self.enabled:
            return
        for e in events:
            if getattr(e, "type", "") == "step":
                self.done = e.step
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        click.echo(f"\r[{'#' * filled}{'.' * (width - filled)}] step {self.done}/{self.total}", nl=False, err=True)

    def close(self) -> None:
        if self.enabled:
            click.echo("", err=True)


def _stop_signals() -> list[signal.Signals]:
    """Ctrl+C, SIGTERM and SIGHUP stop a headless run cleanly, except one the caller chose to ignore
    (``nohup vgp-tui run ...`` must survive the end of the SSH session)."""
    sigs = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGHUP"):
        sigs.append(signal.SIGHUP)
    return [sig for sig in sigs if signal.getsignal(sig) is not signal.SIG_IGN]


def _commands_with_option(flag: str) -> list[str]:
    """The commands that take ``flag`` (``--steps``: run)."""
    return [name for name, command in cli.commands.items()
            if any(flag in getattr(p, "opts", ()) for p in command.params)]


def _stop_handler(stop: threading.Event) -> Callable[[int, Any], None]:
    """Asks the run to stop after its current step. Ctrl+C as KeyboardInterrupt could land between
    the trainer taking its pending steps and handing them on, and those steps would be lost; a second
    Ctrl+C still interrupts at once (a data load, say, does not look at ``stop``)."""

    def handler(sig: int, frame: Any) -> None:
        stop.set()
        if sig == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    return handler


def _restore(previous: dict[signal.Signals, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``vgp-tui`` script and ``python -m vgp_tui``."""
    try:
        cli.main(args=argv, prog_name="vgp-tui", standalone_mode=False)
    except UserError as exc:
        _fail(str(exc))
    except click.exceptions.NoArgsIsHelpError as exc:  # pragma: no cover - click >= 8.2
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click.exceptions.NoSuchOption as exc:
        ctx = exc.ctx
        command = ctx.command_path if ctx is not None else "vgp-tui"
        owners = _commands_with_option(exc.option_name) if ctx is not None and ctx.parent is None else []
        if owners:  # vgp-tui --steps 3: the option of a command, written before it or without it
            _fail(f"{exc.option_name} is an option of {' and '.join(repr(f'vgp-tui {c}') for c in owners)}: "
                  f"vgp-tui {owners[0]} ... {exc.option_name} ...")
        _fail(f"{exc.format_message()} (see '{command} --help')")
    except click.ClickException as exc:
        # A usage error knows its command: point to that command's own help (vgp-tui run --help).
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "vgp-tui"
        _fail(f"{exc.format_message()} (see '{command} --help')")
    except click.exceptions.Abort:
        click.echo("", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
