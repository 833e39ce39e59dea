"""`vgp-tui cast`: an asciicast v2 file that ends on the dashboard and leaves the viewer's terminal usable."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from terminal import ALTERNATE_SCREEN, ANSI, APP_MODES, QUERY, Terminal  # tests/terminal.py
from vgp_tui.cast.asciicast import _for_a_viewer

FIXTURE = Path(__file__).parent / "fixtures" / "deep-sigmoid.jsonl"
COLUMNS, ROWS = 100, 30


@pytest.fixture(scope="module")
def cast(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[list]]:
    out = tmp_path_factory.mktemp("cast") / "demo.cast"
    done = subprocess.run(
        [sys.executable, "-m", "vgp_tui", "cast", str(FIXTURE), "-o", str(out), "--size", f"{COLUMNS}x{ROWS}",
         "--speed", "8"],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def test_cast_is_valid_asciicast_v2_ending_on_the_dashboard(cast: tuple[dict, list[list]]) -> None:
    header, events = cast
    assert header["version"] == 2 and (header["width"], header["height"]) == (COLUMNS, ROWS)
    assert events and all(len(e) == 3 and e[1] == "o" and isinstance(e[2], str) for e in events)
    times = [e[0] for e in events]
    assert times == sorted(times) and all(isinstance(t, float) and math.isfinite(t) for t in times)
    assert times[0] == 0.0  # from the dashboard's first output: it began with a second of blank terminal
    text = ANSI.sub("", "".join(e[2] for e in events))
    for title in ("Loss", "Gradient heatmap", "Gradient flow", "deep-sigmoid"):
        assert title in text


def test_playing_the_cast_leaves_the_terminal_as_it_found_it(cast: tuple[dict, list[list]]) -> None:
    """`asciinema cat demo.cast` in a shell: the dashboard's last frame stays, the shell gets its terminal back."""
    _, events = cast
    output = "".join(e[2] for e in events)
    terminal = Terminal(COLUMNS, ROWS)
    terminal.feed("$ asciinema cat demo.cast\r\n")
    terminal.feed(output)

    assert not terminal.on_alternate, "the cast leaves the viewer on the alternate screen"
    assert not terminal.screen.cursor.hidden, "the cast leaves the cursor hidden"
    assert not terminal.modes_on() & APP_MODES, f"modes left on: {sorted(terminal.modes_on() & APP_MODES)}"
    assert 7 in terminal.modes_on(), "autowrap is left off"

    # The whole last frame, top row to bottom row, is on the main screen.
    shown = terminal.screen.display
    assert "deep-sigmoid" in shown[0]  # the header, not scrolled away
    assert shown[-1].strip(), "the dashboard's bottom row is blank"
    picture = "\n".join(shown)
    for title in ("Loss", "Gradient heatmap", "Gradient flow", "step"):
        assert title in picture
    assert "asciinema cat" not in picture  # the dashboard was drawn on a clear screen
    query = QUERY.search(output)
    assert query is None and not terminal.answers, f"the viewer's terminal would answer {query} into the shell"

    terminal.feed("$ ")  # the shell's prompt comes back on the last row, below the dashboard
    assert terminal.screen.display[:-1] == shown[:-1]
    assert terminal.screen.display[-1].startswith("$ ")


def test_escape_sequences_split_between_reads_are_still_rewritten() -> None:
    """A read can end in the middle of an escape sequence; the rewriting sees it whole."""
    events = [
        (0.1, "\x1b[?10"),
        (0.2, "49h\x1b[?25l\x1b[?1000h\x1b[?20"),
        (0.3, "26$p\x1b[>1uHello"),
        (0.4, "\x1b[?1000l\x1b[?10"),
        (0.5, "49l\x1b[?25h\x1b[<u"),
    ]
    kept = _for_a_viewer(events, 5)
    output = "".join(text for _, text in kept)
    assert not ALTERNATE_SCREEN.search(output) and not QUERY.search(output)
    assert [t for t, _ in kept] == sorted(t for t, _ in kept) and kept[-1][0] == 0.4
    terminal = Terminal(20, 5)
    terminal.feed(output)
    assert terminal.screen.display[0].startswith("Hello")
    assert not terminal.screen.cursor.hidden and not terminal.modes_on() & APP_MODES
    assert output.count("\x1b[>1u") == output.count("\x1b[<u")  # the keyboard protocol is popped


def test_cast_of_a_bad_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    done = subprocess.run(
        [sys.executable, "-m", "vgp_tui", "cast", str(bad), "-o", str(tmp_path / "x.cast")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("vgp-tui: error: ")


# -- pauses: --idle-limit -------------------------------------------------------------------------------


def recording_with_a_pause(folder: Path, pause: float) -> Path:
    """The fixture with the session sitting still for ``pause`` seconds halfway (its later times shifted)."""
    out, steps = [], 0
    for line in FIXTURE.read_text().splitlines():
        event = json.loads(line)
        steps += event.get("type") == "step"
        if "t" in event and steps > 250:
            event["t"] += pause
        out.append(json.dumps(event))
    path = folder / "paused.jsonl"
    path.write_text("\n".join(out) + "\n")
    return path


def test_idle_limit_cuts_every_longer_gap_to_it_and_keeps_the_events() -> None:
    from vgp_tui.cast.asciicast import limit_idle

    events = [(3.0, "a"), (3.5, "b"), (10.0, "c"), (10.1, "d"), (12.0, "e")]
    assert limit_idle(events, 2.0) == [(2.0, "a"), (2.5, "b"), (4.5, "c"), (4.6, "d"), (6.5, "e")]  # first from 0
    assert limit_idle(events, None) == events  # 0 or none: every pause as recorded


def test_a_pause_in_the_recording_is_cut_to_the_idle_limit_in_the_asciicast(tmp_path: Path) -> None:
    """A 20 s pause in a recorded session was 17 s of nothing in the cast: now at most --idle-limit."""
    paused = recording_with_a_pause(tmp_path, 6.0)  # 1.5 s of the replay at --speed 4
    out = tmp_path / "paused.cast"
    done = subprocess.run(
        [sys.executable, "-m", "vgp_tui", "cast", str(paused), "-o", str(out), "--size", "80x24", "--speed", "4",
         "--idle-limit", "0.5"],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    header, times = json.loads(lines[0]), [json.loads(line)[0] for line in lines[1:]]
    assert header["idle_time_limit"] == 0.5  # as asciinema's recorder says it
    gaps = [b - a for a, b in zip([0.0, *times], times)]
    assert max(gaps) <= 0.5 + 1e-6, max(gaps)
    # The line says how long the cast plays and that pauses were cut (it gave a count of the
    # terminal writes, "150 frames", which said nothing of either).
    said = re.fullmatch(rf"wrote {re.escape(str(out))}: 80x24, ([\d.]+) s \(([\d.]+) s of pauses cut, "
                        rf"--idle-limit 0\.5\); play it with asciinema play {re.escape(str(out))}\n", done.stdout)
    assert said, done.stdout
    assert float(said.group(1)) == pytest.approx(times[-1], abs=0.05)
    # The 6 s pause is 1.5 s of the replay at --speed 4; the dashboard's clock ticks within it, so
    # less than 1 s of it is cut.
    assert 0.1 <= float(said.group(2)) <= 1.5, done.stdout


@pytest.mark.parametrize("value", ["-1", "abc", "nan", "inf", "0.01"])
def test_a_bad_idle_limit_is_one_line(tmp_path: Path, value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vgp_tui", "cast", str(FIXTURE), "-o", str(tmp_path / "x.cast"), "--idle-limit", value],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("vgp-tui: error: ") and "--idle-limit" in done.stderr and "0 or none" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "x.cast").exists()
