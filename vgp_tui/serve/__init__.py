"""``vgp-tui serve``: the dashboard in a web browser, through textual-serve.

Two modes. ``--follow FILE``: every tab runs its own ``replay --follow FILE`` viewer, so any number
of people watch one recording as a training job writes it, and opening a tab never starts a
training. ``--demo``: every tab runs its own live dashboard (a training process), at most
``--max-sessions`` at once. The server listens on 127.0.0.1 unless ``--public`` says otherwise; SSH
port forwarding is the way in from another machine. What each mode exposes is said where it is
decided (:func:`exposure`), so the refusal and the warning cannot drift apart.

Everything the user can get wrong is checked here, before anything listens, and raised as a
UserError (one line, exit status 2).
"""

from __future__ import annotations

import ipaddress
import shlex
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from vgp_tui.errors import UserError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
EVERY_INTERFACE = "0.0.0.0"
DEFAULT_SESSIONS = {"follow": 8, "demo": 2}
"""Tabs at once: a viewer is one light process; a demo tab trains a network on this machine's cores."""

INSTALL_HINT = "pip install 'vgp-tui[serve]'"


@dataclass(frozen=True)
class Plan:
    """What to serve and where; every field already checked."""

    mode: str  # "follow" or "demo"
    command: list[str]  # each tab's process
    what: str  # the mode in words, for the banner and the page
    subject: str  # the recording's file name, or the preset's
    host: str
    port: int
    max_sessions: int
    notes: list[str]  # extra lines for the banner

    @property
    def title(self) -> str:
        """The browser tab's title."""
        return f"vgp-tui · {self.subject}"

    @property
    def public(self) -> bool:
        """Listening beyond this machine (--public with a host that is not loopback)."""
        return not is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach. Any other name needs --public: it may
    resolve to an interface the world reaches."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure(mode: str, port: int, max_sessions: int, subject: str) -> str:
    """What anyone who can reach the port may do, in one sentence."""
    if mode == "follow":
        can = f"watch {subject}"
    else:
        can = (f"start training processes on this machine (up to {max_sessions} at once, each using its "
               f"cores and memory; the preset picker can make it download a data set)")
    return f"anyone who can reach port {port} can {can}, with no login or password, over plain unencrypted HTTP"


def choose_host(host: str | None, public: bool, mode: str, port: int, max_sessions: int, subject: str) -> str:
    """The address to listen on: 127.0.0.1 unless --public; a wider one without it is refused."""
    if host is None:
        return EVERY_INTERFACE if public else DEFAULT_HOST
    if not host.strip():
        raise UserError("--host is empty; leave it out to listen on 127.0.0.1 (this machine only)")
    if is_loopback(host) or public:
        return host
    raise UserError(
        f"--host {host} would listen beyond this machine: {exposure(mode, port, max_sessions, subject)}; "
        f"add --public to do that on purpose, or keep the default and forward the port: "
        f"ssh -L {port}:localhost:{port} {_machine_name()}"
    )


def follow_plan(file: str, host: str | None, port: int, public: bool, max_sessions: int | None) -> Plan:
    """Every tab a ``replay --follow`` viewer of ``file``; the file may appear later, as for replay."""
    from vgp_tui.engine.recording import RecordingReader

    path = Path(file).expanduser().absolute()
    if path.is_dir():
        raise UserError(f"--follow {file} is a folder; give the recording file (for example run.jsonl)")
    if not path.parent.is_dir():
        raise UserError(f"--follow {file}: folder '{path.parent}' does not exist")
    RecordingReader(path, wait=True).close()  # a file that is there but not a recording fails now, not in every tab
    sessions = max_sessions or DEFAULT_SESSIONS["follow"]
    notes = [] if path.exists() else [f"{file} does not exist yet: each tab waits for it, as replay --follow does."]
    chosen = choose_host(host, public, "follow", port, sessions, file)
    return Plan(
        mode="follow",
        command=_child("replay", "--follow", str(path)),
        what=f"following {path.name}",
        subject=path.name,
        host=chosen,
        port=port,
        max_sessions=sessions,
        notes=notes,
    )


def demo_plan(preset: str, device: str, seed: int | None, remedies: tuple[str, ...], data_dir: str | None,
              synthetic: bool, host: str | None, port: int, public: bool, max_sessions: int | None) -> Plan:
    """Every tab its own live dashboard; the options are checked once here, not in each tab."""
    from vgp_tui.engine.devices import resolve_device, shared_threads
    from vgp_tui.engine.remedies import apply_overrides, parse_assignment
    from vgp_tui.scenario import load_preset

    sessions = max_sessions or DEFAULT_SESSIONS["demo"]
    scenario = load_preset(preset)
    chosen = choose_host(host, public, "demo", port, sessions, scenario.name)
    apply_overrides(scenario.remedies, dict(parse_assignment(text) for text in remedies), scenario.name)
    args = ["--preset", preset, "--device", device]
    if data_dir is not None:
        from vgp_tui.data.download import chosen_data_dir

        args += ["--data-dir", str(chosen_data_dir(data_dir, synthetic, scenario).absolute())]
    resolve_device(device)  # last: it imports torch
    # The data too, once here: a tab that cannot have it (CIFAR-10 offline, without --synthetic) said
    # "starting…" and then only "This session has ended", its reason in the server's terminal.
    # (Online, this also downloads it once for every tab.)
    from vgp_tui.data import load_dataset

    load_dataset(scenario.data_kind, scenario.data, data_dir=data_dir, synthetic=synthetic or scenario.synthetic,
                 seed=scenario.seed if seed is None else seed)
    # The tabs train at once: each gets its share of the cores (ignored where a tab trains on a GPU).
    args += ["--threads", str(shared_threads(sessions))]
    args += ["--seed", str(seed)] if seed is not None else []
    for text in remedies:
        args += ["--remedy", text]
    args += ["--synthetic"] if synthetic else []
    return Plan(
        mode="demo",
        command=_child(*args),
        what=f"a live {scenario.name} session per tab",
        subject=scenario.name,
        host=chosen,
        port=port,
        max_sessions=sessions,
        notes=[],
    )


def full_message(plan: Plan) -> str:
    """What a tab beyond the cap reads in its terminal."""
    n = plan.max_sessions
    taken = "The one session this server allows is" if n == 1 else f"All {n} sessions this server allows are"
    why = (f"each tab follows {plan.subject} with a viewer of its own" if plan.mode == "follow"
           else "each tab trains its own network on this machine")
    return f"\n  {taken} in use ({why}).\n  Try again when a tab is closed: reload this page.\n"


def banner(plan: Plan) -> list[tuple[str, bool]]:
    """The lines printed once the server is up, each with whether it goes to stderr (warnings)."""
    per_tab = ("every tab a viewer of its own, nothing trains" if plan.mode == "follow"
               else "every tab trains its own network")
    lines = [(f"vgp-tui serve: {plan.what} ({per_tab}; at most {plan.max_sessions} at once)", False),
             (f"  open {url(plan.host, plan.port)}", False)]
    if plan.public:
        lines.append((f"vgp-tui: warning: listening on {plan.host} beyond this machine: "
                      f"{exposure(plan.mode, plan.port, plan.max_sessions, plan.subject)}",
                      True))
    else:
        lines.append((f"  from another machine: ssh -L {plan.port}:localhost:{plan.port} {_machine_name()}, "
                      f"then open http://localhost:{plan.port} there", False))
    lines += [(f"  {note}", False) for note in plan.notes]
    lines.append(("  Ctrl+C stops the server and every tab's session.", False))
    return lines


def url(host: str, port: int) -> str:
    """The address to open; for a wildcard host, this machine's name."""
    if host in ("0.0.0.0", "::", ""):
        host = _machine_name()
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serve(plan: Plan) -> int:
    """Listen until Ctrl+C (or SIGTERM); each tab's process is stopped with the server. Returns the exit
    status: 128 + the signal's number (130 for Ctrl+C, 143 for SIGTERM), as a shell reports a command
    that a signal ended, so a script or a service manager can tell a stop from a clean exit."""
    try:
        from vgp_tui.serve.server import DashboardServer
    except ImportError as exc:  # the extra's packages; any other missing module is a bug, with its traceback
        if (exc.name or "").split(".")[0] not in ("textual_serve", "aiohttp", "aiohttp_jinja2", "jinja2"):
            raise
        raise UserError(f"serving in a browser needs textual-serve: {INSTALL_HINT}") from None
    _check_port(plan.host, plan.port)

    def ready() -> None:
        for line, to_stderr in banner(plan):
            click.echo(line, err=to_stderr)

    server = DashboardServer(shlex.join(plan.command), host=plan.host, port=plan.port, title=plan.title,
                             what=plan.what, max_sessions=plan.max_sessions, full_message=full_message(plan),
                             on_ready=ready)
    try:
        server.serve()
    except OSError as exc:  # the port taken between our check and the server's own bind
        raise UserError(_bind_error(plan.host, plan.port, exc)) from None
    return 128 + server.stopped_by if server.stopped_by is not None else 0


def _check_port(host: str, port: int) -> None:
    """Bind once before starting, so a port in use or an unknown --host is one line, not a traceback
    from inside the server's event loop."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise UserError(f"--host {host}: no such address or name on this machine") from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            # As aiohttp binds: SO_REUSEADDR, so a port left in TIME_WAIT by a previous run is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise UserError(_bind_error(host, port, exc)) from None


def _bind_error(host: str, port: int, exc: OSError) -> str:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use (another vgp-tui serve?); choose another with --port"
    if exc.errno == errno.EACCES:
        return f"port {port} on {host} needs privileges this user lacks; choose one above 1023 with --port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"--host {host} is not an address of this machine"
    return f"cannot listen on {host} port {port}: {exc.strerror or exc}"


def _child(*args: str) -> list[str]:
    """What a tab runs: the ordinary command line, which draws through Textual's web driver there."""
    return [sys.executable, "-m", "vgp_tui", *args]


def _machine_name() -> str:
    return socket.gethostname() or "HOST"
