"""Replay, follow, screenshots and casts: the dashboard cannot tell a recording from live training."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


from vgp_tui.dashboard import make_replay_app
from vgp_tui.engine.commands import NoteKey, SetRemedy
from vgp_tui.engine.events import FORMAT_VERSION, StepMetrics
from vgp_tui.engine.history import History
from vgp_tui.engine.recording import RecordingWriter, read_recording
from vgp_tui.engine.session import Session
from vgp_tui.scenario import parse_preset

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "deep-sigmoid.jsonl"
SIZE = (120, 40)


def small_sigmoid() -> Any:
    text = (ROOT / "presets" / "deep-sigmoid.toml").read_text()
    return parse_preset(text.replace("depth = 20", "depth = 6").replace("width = 64", "width = 16"), "test", "deep-sigmoid")


def record_live_session(path: Path) -> History:
    """Train, toggle a live and a structural remedy with key notes, record it; return the live History."""
    session = Session(small_sigmoid(), device="cpu")
    live = History()
    writer = RecordingWriter(path, session.header())
    session.sinks += [live.extend, writer.write]
    session.start_run()
    for i in range(60):
        session.trainer.step()
        if i == 19:
            session.flush()
            for command in (NoteKey("c", "clip=1"), SetRemedy("clip", 1.0)):
                session.send(command)
            session._apply_commands(block=False)
        if i == 39:
            session.flush()
            for command in (NoteKey("a", "activation=tanh"), SetRemedy("activation", "tanh")):
                session.send(command)
            session._apply_commands(block=False)
    session.flush()
    writer.close()
    return live


async def wait_for(pilot: Any, condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def _run_numbers(history: History) -> dict[int, tuple[list[float], list[tuple[float, ...]], list[tuple[int, str, str]]]]:
    out = {}
    for number, run in history.runs.items():
        view = run.series.view()
        out[number] = (
            view.mean[:, 0].tolist(),
            [tuple(row) for row in view.mean[:, 2:].tolist()],
            [(m.step, m.kind, m.text) for m in run.markers],
        )
    return out


async def test_replay_shows_the_same_numbers_and_markers_as_live(tmp_path: Path, listen: Any) -> None:
    path = tmp_path / "session.jsonl"
    live = record_live_session(path)
    app = make_replay_app(str(path), speed=1024)
    notes = listen(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.session.ended)
        await pilot.pause(0.3)
        replayed = app.history
        assert sorted(replayed.runs) == [1, 2]
        assert _run_numbers(replayed) == _run_numbers(live)
        assert [m.text for m in replayed.runs[1].markers] == ["clip 1"]
        assert replayed.current.label == live.current.label
        assert any("clip=1" in n for n in notes) and any("activation=tanh" in n for n in notes)
        status = str(app.query_one("#status").render())
        assert "REPLAY" in status and "deep-sigmoid" in status
        await pilot.press("q")


async def test_replay_controls_pause_speed_and_seek() -> None:
    app = make_replay_app(str(FIXTURE), speed=1.0)
    async with app.run_test(size=SIZE) as pilot:
        source = app.session
        await wait_for(pilot, lambda: app.history.current is not None and app.history.current.latest is not None)
        await pilot.press("space")
        await wait_for(pilot, lambda: source.paused)
        await pilot.pause(0.2)
        frozen = source.clock
        await pilot.pause(0.4)
        assert source.clock == frozen
        await pilot.press("greater_than_sign")
        await wait_for(pilot, lambda: source.speed == 2.0)
        await pilot.press("right")  # 10 s on (x2 at this speed): past the end of this short recording
        await wait_for(pilot, lambda: source.position == len(source.events))
        await pilot.pause(0.3)
        assert app.history.current.run == 3
        await pilot.press("left", "left", "left")  # back to the start: the History is rebuilt
        await wait_for(pilot, lambda: source.position < len(source.events))
        await pilot.pause(0.3)
        assert app.history.current is None or app.history.current.run == 1
        await pilot.press("a")  # remedies cannot change in a recording
        await pilot.pause(0.2)
        assert app.remedies.get("activation") == "sigmoid"
        await pilot.press("q")


async def test_follow_shows_steps_appended_by_another_writer_within_a_second(tmp_path: Path) -> None:
    path = tmp_path / "growing.jsonl"
    source_events = read_recording(FIXTURE)
    writer = RecordingWriter(path, source_events.header, flush_seconds=0.0)
    head = source_events.events[:30]
    writer.write(head)
    app = make_replay_app(str(path), follow=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.session.position >= len(head))
        latencies = []
        for event in source_events.events[30:90]:
            if not isinstance(event, StepMetrics):
                writer.write([event])
                continue
            written = time.monotonic()
            writer.write([event])
            await wait_for(pilot, lambda e=event: app.history.current is not None and app.history.current.latest is not None
                           and app.history.current.latest.step >= e.step, timeout=5)
            latencies.append(time.monotonic() - written)
        assert max(latencies) < 1.0
        assert "FOLLOWING" in str(app.query_one("#status").render())
        await pilot.press("q")
    writer.close()


async def test_truncated_recording_replays_with_a_warning(tmp_path: Path, listen: Any) -> None:
    data = FIXTURE.read_bytes()
    path = tmp_path / "cut.jsonl"
    path.write_bytes(data[: len(data) // 2])
    lines_whole = data[: len(data) // 2].count(b"\n")
    app = make_replay_app(str(path), speed=1024)
    warnings = listen(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.session.ended)
        await pilot.pause(0.3)
        assert any(f"line {lines_whole + 1}" in w and "cut off" in w for w in warnings)
        assert app.history.current.latest is not None
        await pilot.press("q")


def _vgp(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vgp_tui", *args], capture_output=True, text=True, timeout=timeout)


def test_replay_command_errors_are_one_line(tmp_path: Path) -> None:
    newer = tmp_path / "newer.jsonl"
    header = json.loads(FIXTURE.read_text().splitlines()[0])
    header["version"] = FORMAT_VERSION + 1
    newer.write_text(json.dumps(header) + "\n")
    not_one = tmp_path / "notes.txt"
    not_one.write_text("shopping list\n")
    cases = [
        ([str(newer)], "upgrade vgp-tui"),
        ([str(not_one)], "is not a vgp-tui recording"),
        ([str(tmp_path / "missing.jsonl")], "does not exist"),
        ([str(FIXTURE), "--screenshot-at", "5"], "needs -o"),
        ([str(FIXTURE), "--screenshot-at", "5", "-o", "x.svg", "--size", "20x5"], "at least 80x24"),
    ]
    for args, needle in cases:
        done = _vgp("replay", *args)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, done.stderr)


def test_screenshot_at_a_step(tmp_path: Path) -> None:
    out = tmp_path / "shot.svg"
    done = _vgp("replay", str(FIXTURE), "--screenshot-at", "120", "-o", str(out), "--size", "100x30")
    assert done.returncode == 0, done.stderr
    svg = out.read_text()
    assert "heatmap" in svg and "deep-sigmoid" in svg
    assert "step&#160;120" in svg  # the status line shows the step it was taken at


ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[@-Z\\-_]")


def test_cast_is_valid_asciicast_v2_ending_on_the_dashboard(tmp_path: Path) -> None:
    out = tmp_path / "demo.cast"
    done = _vgp("cast", str(FIXTURE), "-o", str(out), "--size", "100x30", "--speed", "8")
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and (header["width"], header["height"]) == (100, 30)
    events = [json.loads(line) for line in lines[1:]]
    assert events and all(len(e) == 3 and e[1] == "o" and isinstance(e[2], str) for e in events)
    times = [e[0] for e in events]
    assert times == sorted(times) and all(isinstance(t, float) and math.isfinite(t) for t in times)
    text = ANSI.sub("", "".join(e[2] for e in events))
    for title in ("Loss", "Gradient heatmap", "Gradient flow", "deep-sigmoid"):
        assert title in text
    assert "\x1b[?1049l" not in "".join(e[2] for e in events)  # ends on the dashboard, not the shell


def test_cast_of_a_bad_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    done = _vgp("cast", str(bad), "-o", str(tmp_path / "x.cast"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


def test_a_recording_with_a_remedy_this_version_does_not_know_still_replays(tmp_path: Path) -> None:
    lines = []
    for line in FIXTURE.read_text().splitlines():
        record = json.loads(line)
        if record["type"] == "run":
            record["remedies"]["dropout_rate"] = 0.5  # written by some newer vgp-tui
        lines.append(json.dumps(record))
    path = tmp_path / "future.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "shot.svg"
    done = _vgp("replay", str(path), "--screenshot-at", "50", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "dropout_rate" in out.read_text()
