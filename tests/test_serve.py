"""``vgp-tui serve``: the dashboard in a real browser, the cap on sessions, and the refusals.

The browser test drives the system's Chromium (``apt-get install chromium`` on Debian) with
Playwright; Playwright's own browser download is never used. Where no Chromium is found it is
skipped with a reason that says how to get one, except under CI (``CI`` set), where it fails:
``.ci/run`` installs Chromium first. ``VGP_TUI_CHROMIUM`` names another Chromium or Chrome binary;
``VGP_TUI_SERVE_FRAME=frame.png`` keeps the browser's screenshot of the dashboard for a person to see.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vgp_tui.errors import UserError
from vgp_tui.serve import banner, choose_host, follow_plan, full_message, is_loopback

FIXTURE = Path(__file__).parent / "fixtures" / "deep-sigmoid.jsonl"
WAIT = 90.0
"""Seconds to wait for any one state (a page drawn, a step shown): generous, for a loaded machine."""


def vgp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vgp_tui", *args], capture_output=True, text=True, timeout=120)


def one_error_line(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vgp-tui: error: "), done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- refusals: every mistake is one line and exit status 2, before anything listens -----------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "::", "gpu-box.example"])
def test_listening_beyond_this_machine_needs_public_and_says_what_it_exposes(tmp_path: Path, host: str) -> None:
    line = one_error_line(vgp("serve", "--follow", str(FIXTURE), "--host", host),
                          f"--host {host} would listen beyond this machine", "anyone who can reach port 8000 can watch",
                          "no login", "plain unencrypted HTTP", "add --public", "ssh -L 8000:localhost:8000")
    assert "training" not in line
    line = one_error_line(vgp("serve", "--demo", "--host", host, "--max-sessions", "3"),
                          "start training processes on this machine (up to 3 at once", "add --public")


def test_the_loopback_addresses_are_this_machine_and_nothing_else_is() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "192.0.2.7", "localhost.example", "my-box"))
    assert choose_host(None, False, "follow", 8000, 8, "run.jsonl") == "127.0.0.1"
    assert choose_host(None, True, "follow", 8000, 8, "run.jsonl") == "0.0.0.0"
    assert choose_host("10.0.0.1", True, "demo", 8000, 2, "deep-sigmoid") == "10.0.0.1"
    with pytest.raises(UserError, match="add --public"):
        choose_host("10.0.0.1", False, "demo", 8000, 2, "deep-sigmoid")


@pytest.mark.parametrize(("args", "needles"), [
    (["serve"], ["--follow FILE", "--demo"]),
    (["serve", "--demo", "--follow", str(FIXTURE)], ["not both"]),
    (["serve", "--follow", str(FIXTURE), "--preset", "deep-relu"], ["--preset is for --demo"]),
    (["serve", "--follow", str(FIXTURE), "--remedy", "activation=relu"], ["--remedy is for --demo"]),
    (["serve", "--follow", "/no/such/folder/run.jsonl"], ["folder '/no/such/folder' does not exist"]),
    (["serve", "--follow", str(FIXTURE.parent)], ["is a folder"]),
    (["serve", "--follow", str(Path(__file__))], ["is not a vgp-tui recording"]),
    (["serve", "--demo", "--preset", "deep-sigmod"], ["unknown preset 'deep-sigmod'"]),
    (["serve", "--demo", "--remedy", "cell=lstm"], ["'cell' does not apply to preset 'deep-sigmoid'"]),
    (["serve", "--demo", "--device", "tpu"], ["--device must be"]),
    (["serve", "--demo", "--port", "0"], ["--port"]),
    (["serve", "--demo", "--max-sessions", "0"], ["--max-sessions"]),
    (["serve", "--follow", str(FIXTURE), "--host", "no-such-host.invalid", "--public"], ["no-such-host.invalid"]),
])
def test_serve_mistakes_are_one_line_and_exit_2(args: list[str], needles: list[str]) -> None:
    one_error_line(vgp(*args), *needles)


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_error_line(vgp("serve", "--follow", str(FIXTURE), "--port", str(port)),
                       f"port {port} on 127.0.0.1 is in use", "--port")


def test_without_textual_serve_it_names_the_extra(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['textual_serve'] = None; sys.modules['textual_serve.server'] = None;"
            f"from vgp_tui.cli import main; main(['serve', '--follow', {str(FIXTURE)!r}])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    one_error_line(done, "needs textual-serve", "pip install 'vgp-tui[serve]'")


def test_following_a_file_not_written_yet_waits_for_it_as_replay_follow_does(tmp_path: Path) -> None:
    plan = follow_plan(str(tmp_path / "later.jsonl"), None, 8000, False, None)
    assert plan.command[-3:] == ["replay", "--follow", str(tmp_path / "later.jsonl")]
    assert any("does not exist yet: each tab waits for it" in note for note in plan.notes)
    assert "The one session this server allows is in use" in full_message(follow_plan(str(FIXTURE), None, 8000, False, 1))


def test_demo_tabs_share_the_cores_instead_of_each_taking_all_but_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from vgp_tui.engine import devices
    from vgp_tui.serve import demo_plan

    monkeypatch.setattr(devices, "_usable_cores", lambda: 16)
    plan = demo_plan("deep-sigmoid", "cpu", None, (), None, False, None, 8000, False, 3)
    assert plan.command[plan.command.index("--threads") + 1] == "5", plan.command


def test_a_demo_given_real_data_and_the_stand_in_says_so_before_serving(tmp_path: Path) -> None:
    from vgp_tui.serve import demo_plan

    # (each tab's dashboard would have refused it, after the server had started)
    with pytest.raises(UserError, match="--data-dir and --synthetic do not go together"):
        demo_plan("resnet-cifar10", "cpu", None, (), str(tmp_path), True, None, 8000, False, 3)


def test_a_demo_without_its_data_says_so_before_serving(tmp_path: Path) -> None:
    """Each tab said "starting…", then only "This session has ended": the reason was in the server's log."""
    from vgp_tui.serve import demo_plan

    with pytest.raises(UserError, match=f"^--data-dir {tmp_path} holds no CIFAR-10"):
        demo_plan("resnet-cifar10", "cpu", None, (), str(tmp_path), False, None, 8000, False, 3)
    plan = demo_plan("resnet-cifar10", "cpu", None, (), None, True, None, 8000, False, 3)  # the stand-in: served
    assert "--synthetic" in plan.command


def test_the_banner_gives_the_address_and_either_the_ssh_hint_or_what_public_exposes() -> None:
    local = banner(follow_plan(str(FIXTURE), None, 8123, False, None))
    text = "\n".join(line for line, _ in local)
    assert "open http://127.0.0.1:8123" in text and "ssh -L 8123:localhost:8123" in text, text
    assert not any(to_stderr for _, to_stderr in local)
    public = banner(follow_plan(str(FIXTURE), None, 8123, True, None))
    warnings = [line for line, to_stderr in public if to_stderr]
    assert len(warnings) == 1, public
    for words in ("vgp-tui: warning: listening on 0.0.0.0 beyond this machine", "can watch deep-sigmoid.jsonl",
                  "no login", "plain unencrypted HTTP"):
        assert words in warnings[0]
    # --public with a loopback --host listens on this machine only: nothing to warn about.
    assert not any(to_stderr for _, to_stderr in banner(follow_plan(str(FIXTURE), "127.0.0.1", 8123, True, None)))


# -- a running server ---------------------------------------------------------------------------------


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def served(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """``vgp-tui serve ARGS`` on a free port, in a process group of its own, stopped as Ctrl+C stops it.

    On the way out it checks that the server exited by itself on SIGINT, with status 130 (128 + SIGINT;
    143 where the test stopped it with SIGTERM), and left none of its tabs' processes behind. ``env``:
    variables added to the server's environment (its tabs' processes inherit it)."""
    port = _free_port()
    log = tmp_path / f"serve-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "vgp_tui", "serve", *args, "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env={**os.environ, **(env or {})})
    server = Served(process, f"http://127.0.0.1:{port}/", log)
    try:
        _until(lambda: _listening(port) or process.poll() is not None, "the server to listen", server.output)
        assert process.poll() is None, server.output()
        yield server
    finally:
        stopped_here = process.poll() is None
        if stopped_here:
            process.send_signal(signal.SIGINT)  # the server alone: it must stop its tabs' processes itself
        try:
            status = process.wait(timeout=WAIT)
            _until(lambda: not _alive_in_group(process.pid), "the tabs' processes to end", server.output)
        finally:
            if _alive_in_group(process.pid):
                os.killpg(process.pid, signal.SIGKILL)
        assert status in ((128 + signal.SIGINT,) if stopped_here else (128 + signal.SIGINT, 128 + signal.SIGTERM)), \
            (status, server.output())


async def test_demo_serves_at_most_max_sessions_and_tells_the_next_visitor(tmp_path: Path) -> None:
    import aiohttp

    refusal = "The one session this server allows is in use"
    with served(tmp_path, "--demo", "--max-sessions", "1", "--device", "cpu") as server:
        socket_url = server.url.replace("http://", "ws://") + "ws?width=100&height=30"
        async with aiohttp.ClientSession() as http:
            first = await http.ws_connect(socket_url)
            drawn = await first.receive(timeout=WAIT)  # the first tab's dashboard: a training process
            assert drawn.type == aiohttp.WSMsgType.BINARY and refusal.encode() not in drawn.data

            second = await http.ws_connect(socket_url)
            told = await second.receive(timeout=WAIT)
            assert told.type == aiohttp.WSMsgType.BINARY, told
            assert refusal in told.data.decode(), told.data
            assert "each tab trains its own network on this machine" in told.data.decode()
            assert "Try again when a tab is closed" in told.data.decode()
            assert (await second.receive(timeout=WAIT)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

            # Once the first tab is closed and its process has stopped, a new visitor gets a session.
            await first.close()
            deadline = time.monotonic() + WAIT
            while True:
                third = await http.ws_connect(socket_url)
                message = await third.receive(timeout=WAIT)
                await third.close()
                if message.type == aiohttp.WSMsgType.BINARY and refusal.encode() not in message.data:
                    break
                assert time.monotonic() < deadline, "the closed tab's place never came free"
                await _asleep(0.2)
    assert "refused a session" in server.output()


async def test_a_plain_request_for_the_websocket_is_refused_in_a_line_and_a_proxy_gets_wss(tmp_path: Path) -> None:
    """A probe's GET of /ws was a 430-line traceback in the server's terminal; behind a TLS proxy the
    page was given ws://, which a browser does not open from an https page."""
    import aiohttp

    with served(tmp_path, "--follow", str(FIXTURE)) as server:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "ws") as answer:
                assert answer.status == 400 and "open / in a browser" in await answer.text()
            async with http.get(server.url, headers={"X-Forwarded-Proto": "https"}) as page:
                text = await page.text()
            assert "wss://" in text and "ws://" not in text.replace("wss://", ""), text[:2000]
    assert "Traceback" not in server.output() and "refused a request for /ws" in server.output(), server.output()


async def test_stopping_the_server_with_a_tab_open_stops_both_at_once_and_quietly(tmp_path: Path) -> None:
    """SIGTERM (or Ctrl+C) with a tab open: aiohttp waited for the tab's websocket to time out (its
    heartbeat is 15 s), so the server and the tab's process took 16 to 23 s to stop."""
    import asyncio

    import aiohttp

    with served(tmp_path, "--follow", str(FIXTURE)) as server:  # (it checks the tab's process ends too)
        socket_url = server.url.replace("http://", "ws://") + "ws?width=100&height=30"
        async with aiohttp.ClientSession() as http:
            tab = await http.ws_connect(socket_url, heartbeat=None)
            drawn = await tab.receive(timeout=WAIT)  # the tab's process is up and drawing
            assert drawn.type == aiohttp.WSMsgType.BINARY, drawn
            reading = asyncio.create_task(_read_all(tab))  # as a browser reads every frame
            await asyncio.sleep(2.0)
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            status = await asyncio.to_thread(server.process.wait, WAIT)
            stopped = time.monotonic() - started
            await reading
    assert status == 128 + signal.SIGTERM, server.output()
    assert stopped < 10.0, f"the server took {stopped:.1f} s to stop: it waited for the tab's websocket to time out"
    assert "Exception ignored" not in server.output() and "Traceback" not in server.output(), server.output()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_server_cleanly_with_128_plus_its_number(tmp_path: Path, stop: signal.Signals) -> None:
    """Ctrl+C and SIGTERM ended the server with status 0, as if it had finished: now 130 and 143, as a
    shell reports a command a signal ended, after the same clean stop (its lines, no traceback)."""
    with served(tmp_path, "--follow", str(FIXTURE)) as server:
        server.process.send_signal(stop)
        status = server.process.wait(timeout=WAIT)
        assert status == 128 + stop, server.output()  # (served() then sees it has ended, and its tabs)
    assert "Traceback" not in server.output() and "Exception ignored" not in server.output(), server.output()


# -- a real browser -------------------------------------------------------------------------------------

# Textual.js (textual-serve's page script) keeps its xterm.js Terminal in a closure. This runs before
# any page script: the first time an object gets its own ``_core`` (xterm's Terminal sets it in its
# constructor), the object is kept where the test can read the terminal's screen, as drawn, through
# xterm's public buffer API.
KEEP_TERMINALS = """
Object.defineProperty(Object.prototype, "_core", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "_core", {value, writable: true, configurable: true, enumerable: true});
    if (typeof this.loadAddon === "function") (window.__vgpTerminals ||= []).push(this);
  },
});
"""
SCREEN_TEXT = """() => {
  const term = (window.__vgpTerminals || [])[0];
  if (!term) return "";
  const rows = [];
  for (let y = 0; y < term.rows; y++) {
    const line = term.buffer.active.getLine(y);
    rows.push(line ? line.translateToString(true) : "");
  }
  return rows.join("\\n");
}"""


def test_a_screenshot_reaches_the_browser_from_a_tab_that_answers_late(tmp_path: Path) -> None:
    # textual-serve gave up on a download after 4 s without a chunk from the tab's process, and the
    # browser's page of ctrl+s never finished loading: on a loaded machine (CI with a CPU hog beside
    # it, two tabs and the browser on two cores) a tab answered that late once in three runs. Here the
    # tab answers the first request for a chunk 6 s late, on purpose.
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    recording = tmp_path / "run.jsonl"
    RecordingWriter(recording).through_step(40)
    late = {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parent / "slow_download"), os.environ.get("PYTHONPATH", "")]),
            "VGP_TUI_TEST_CHUNK_DELAY": "6"}
    with served(tmp_path, "--follow", str(recording), env=late) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 900})
            tab.add_init_script(KEEP_TERMINALS)
            tab.goto(server.url)
            _screen_until(tab, lambda text: shown_step(text) == 40, "step 40", server)
            svg = _saved_svg(tab)
            assert "<svg" in svg and "Gradient" in svg and "deep-sigmoid" in svg, svg[:200]
        finally:
            browser.close()


def test_the_browser_shows_the_dashboard_following_a_recording_as_it_is_written(tmp_path: Path) -> None:
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    recording = tmp_path / "run.jsonl"
    writer = RecordingWriter(recording)
    writer.through_step(40)
    with served(tmp_path, "--follow", str(recording)) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            requested: list[str] = []
            tabs = []
            for _ in range(2):  # two visitors, each following the same recording
                tab = browser.new_page(viewport={"width": 1400, "height": 900})
                tab.on("request", lambda request: requested.append(request.url))
                tab.add_init_script(KEEP_TERMINALS)
                tab.goto(server.url)
                tabs.append(tab)
            for tab in tabs:
                # The footer's keys too, drawn (a moment after the first frame) before any key is pressed
                screen = _screen_until(tab, lambda text: shown_step(text) == 40 and "q quit" in text,
                                       "step 40, the live end, and the footer's keys", server)
                for words in ("FOLLOWING", "deep-sigmoid", "Loss", "Gradient flow", "Gradient heatmap", "layer1"):
                    assert words in screen, screen

            writer.through_step(120, pause=0.01)  # line by line, as a training job writes
            for tab in tabs:
                _screen_until(tab, lambda text: shown_step(text) == 120, "step 120, written after the page opened", server)
            assert tabs[0].title() == "vgp-tui · run.jsonl"
            tabs[0].screenshot(path=os.environ.get("VGP_TUI_SERVE_FRAME") or str(tmp_path / "frame.png"))
            svg = _saved_svg(tabs[0])
            assert "<svg" in svg and "Gradient" in svg and "deep-sigmoid" in svg, svg[:200]
            # SIGTERM with the tabs open: the server and the tabs' processes stop at once, and quietly
            # (collected after aiohttp closed its loop, each stopped tab's subprocess transport printed
            # "Exception ignored in BaseSubprocessTransport.__del__": 2 runs of 3 with a browser).
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(timeout=WAIT) == 128 + signal.SIGTERM, server.output()
            assert "Exception ignored" not in server.output() and "Traceback" not in server.output(), server.output()
        finally:
            browser.close()
    # The page loads nothing from anywhere else (textual-serve's own page asks a font CDN).
    assert requested and all(url.startswith(server.url) for url in requested), requested
    assert server.output().count("session opened") == 2


def shown_step(screen: str) -> int | None:
    """The step on the status line (steps below 1 000 here, so no thousands separator)."""
    found = re.search(r"· step (\d+)\b", screen)
    return int(found.group(1)) if found else None


class RecordingWriter:
    """Writes the fixture's lines as the training job that made it did: the header, the first run,
    then its steps, each line flushed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = FIXTURE.read_text().splitlines(keepends=True)
        self.written = 0

    def through_step(self, last: int, pause: float = 0.0) -> None:
        with open(self.path, "a") as out:
            while True:
                record = json.loads(self.lines[self.written])
                if record["type"] == "step" and record["step"] >= last + 1:
                    return
                assert record.get("run", 1) == 1, "the fixture's first run is shorter than this test thinks"
                out.write(self.lines[self.written])
                out.flush()
                self.written += 1
                if pause:
                    time.sleep(pause)


def _saved_svg(tab: Any) -> str:
    """What ctrl+s in ``tab`` gives the visitor: the SVG, which the browser opens in a new tab (not a
    file on the server). A download is served once: this is the page the browser opened."""
    tab.click("body")
    with tab.context.expect_page(timeout=WAIT * 1000) as opened:
        tab.keyboard.press("Control+s")
    shot = opened.value
    assert "/download/" in shot.url, shot.url
    shot.wait_for_load_state()
    return shot.content()


def _screen_until(tab: object, done: Callable[[str], bool], what: str, server: Served) -> str:
    screen = ""

    def check() -> bool:
        nonlocal screen
        screen = tab.evaluate(SCREEN_TEXT)  # type: ignore[attr-defined]
        return done(screen)

    _until(check, what, lambda: f"{screen}\n-- the server's output:\n{server.output()}")
    return screen


def _chromium() -> str:
    """The system's Chromium; where there is none, a skip that says how to get one (a failure under CI)."""
    named = os.environ.get("VGP_TUI_CHROMIUM")
    if named:
        return named
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    why = ("no Chromium found: install the system's package (Debian: apt-get install chromium) or set "
           "VGP_TUI_CHROMIUM to a Chromium or Chrome binary")
    if os.environ.get("CI"):
        pytest.fail(why + " (.ci/run installs it)")
    pytest.skip(why)


def _until(done: Callable[[], bool], what: str, context: Callable[[], str]) -> None:
    deadline = time.monotonic() + WAIT
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {WAIT:.0f} s for {what}; last seen:\n{context()}")
        time.sleep(0.1)


async def _read_all(websocket: "aiohttp.ClientWebSocketResponse") -> None:  # noqa: F821
    """Read a websocket's messages until it closes."""
    async for _ in websocket:
        pass


async def _asleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _alive_in_group(group: int) -> bool:
    """Whether a process of the group still runs (zombies awaiting their reaper do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


def test_a_browser_tab_is_a_terminal_and_a_pipe_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """``require_terminal`` lets textual-serve's tabs (pipes, web driver) draw, and nothing else."""
    from vgp_tui.dashboard import WEB_DRIVER, require_terminal
    from vgp_tui.errors import UserError

    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    monkeypatch.delenv("TEXTUAL_DRIVER", raising=False)
    with pytest.raises(UserError, match="needs a terminal"):
        require_terminal()
    monkeypatch.setenv("TEXTUAL_DRIVER", WEB_DRIVER)
    require_terminal()


def test_a_tabs_process_quits_when_the_server_is_gone(tmp_path: Path) -> None:
    """A tab's process reads the server through a pipe (Textual's web driver). A server stopped with
    SIGTERM, or crashed, left it drawing for nobody at a core's worth of CPU, deaf to SIGTERM. When the
    pipe hangs up, it quits as on SIGHUP."""
    from vgp_tui.dashboard import WEB_DRIVER

    env = dict(os.environ, TEXTUAL_DRIVER=WEB_DRIVER, COLUMNS="100", LINES="30")
    proc = subprocess.Popen([sys.executable, "-m", "vgp_tui", "replay", "--follow", str(FIXTURE)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        first = proc.stdout.readline()  # the web driver's greeting: the app is up
        assert b"__GANGLION__" in first, (first, proc.stderr.read() if proc.poll() is not None else b"")
        import threading

        drain = threading.Thread(target=lambda: [None for _ in iter(lambda: proc.stdout.read(65536), b"")], daemon=True)
        drain.start()  # as a server reads every frame: a full pipe would hold the app's writes
        time.sleep(1.0)
        assert proc.poll() is None  # a live server: it keeps running
        proc.stdin.close()  # the server is gone
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 128 + signal.SIGHUP


# -- a tab's process ends with its session ------------------------------------------------------------


_DEAF_APP = ("import sys, time; sys.stdout.write('__GANGLION__\\n'); sys.stdout.flush(); "
             "[time.sleep(0.05) for _ in range(100000)]")
"""A tab's process that neither quits when asked nor when its input goes (as an app asked while it
was starting did, drawing on for nobody at a core's worth of CPU)."""
_LISTENING_APP = "import sys; sys.stdout.write('__GANGLION__\\n'); sys.stdout.flush(); sys.stdin.buffer.read()"
"""One that quits when its input goes, as the dashboard does (dashboard._quit_when_the_server_goes)."""


@pytest.mark.parametrize(("code", "killed"), [(_DEAF_APP, True), (_LISTENING_APP, False)], ids=["deaf", "listening"])
async def test_a_closed_tabs_process_ends_whether_or_not_it_heard_the_quit(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, code: str, killed: bool) -> None:
    """textual-serve's stop returned once the app's output could no longer be sent to the closed tab,
    leaving an app that had not quit running: 3 tabs of 10 closed within seconds of opening."""
    import asyncio
    import logging
    import shlex

    from textual_serve.download_manager import DownloadManager

    from vgp_tui.serve import server

    monkeypatch.setattr(server, "STOP_SECONDS", 0.5)

    async def ignore(*_: object) -> None:
        pass

    session = server.TabSession(f"exec {shlex.join([sys.executable, '-c', code])}", write_bytes=ignore,
                                write_str=ignore, close=ignore, download_manager=DownloadManager(), debug=False)
    await session.start(80, 24)
    process = session._process
    assert process is not None and process.returncode is None
    with caplog.at_level(logging.WARNING, logger="textual-serve"):
        await asyncio.wait_for(session.stop(), 10)
    assert process.returncode is not None  # the process itself (exec: no shell left holding it)
    assert ("did not quit" in caplog.text) == killed, caplog.text


async def test_a_tab_hung_up_before_its_app_ran_quits_as_it_starts() -> None:
    """The hang-up watcher's exit could not reach an app not yet running: it ran on for nobody."""
    from vgp_tui.dashboard import make_replay_app

    app = make_replay_app(str(FIXTURE), speed=1)
    app.quit_signal = signal.SIGHUP
    app.signalled.set()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
    assert app.return_code == 128 + signal.SIGHUP
