"""`vgp-tui cast FILE -o demo.gif`: the replay as an animated picture, frame by frame as the dashboard draws it."""

from __future__ import annotations

import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from PIL import Image

from terminal import Terminal  # tests/terminal.py
from vgp_tui.cast.image import Progress, write_image_cast
from vgp_tui.dashboard.colors import level_rgb

FIXTURE = Path(__file__).parent / "fixtures" / "deep-sigmoid.jsonl"
COLUMNS, ROWS, SPEED, FPS, HOLD = 80, 24, 2.0, 4.0, 1.0


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("gif")
    shown = io.StringIO()
    result = write_image_cast(FIXTURE, folder / "demo.gif", COLUMNS, ROWS, speed=SPEED, fps=FPS, font_size=14,
                              hold=HOLD, progress=Progress(True, shown), keep_cast=folder / "demo.cast")
    return result, folder, shown.getvalue()


def _durations(picture: Image.Image) -> list[int]:
    durations = []
    for frame in range(picture.n_frames):
        picture.seek(frame)
        durations.append(picture.info["duration"])
    return durations


def test_frames_are_the_replay_at_the_frame_rate(made) -> None:
    result, folder, _ = made
    picture = Image.open(folder / "demo.gif")
    assert picture.format == "GIF" and picture.is_animated
    # One frame per 1/fps s from the first drawing to the cast's end (identical neighbours are one GIF
    # frame shown longer), the last held HOLD s more.
    assert result.frames == math.floor(result.seconds * FPS + 1e-9) + 1
    assert picture.n_frames == result.distinct and 2 <= result.distinct <= result.frames
    assert sum(_durations(picture)) == result.frames * 1000 / FPS + HOLD * 1000
    # The frames cover the whole replay: the recording's span at the chosen speed.
    times = [json.loads(line).get("t") for line in FIXTURE.read_text().splitlines()]
    times = [t for t in times if t is not None]
    assert result.seconds >= 0.9 * (max(times) - min(times)) / SPEED


def test_picture_is_the_terminal_size_in_whole_cells(made) -> None:
    result, folder, _ = made
    width, height = Image.open(folder / "demo.gif").size
    assert (width, height) == (result.width, result.height)
    assert width % COLUMNS == 0 and height % ROWS == 0
    assert 6 <= width // COLUMNS <= 12 and 12 <= height // ROWS <= 24  # a 14 px font's cell
    assert result.bytes == (folder / "demo.gif").stat().st_size


def test_heatmap_cells_show_the_heatmaps_colours(made) -> None:
    """Where the last frame's text has the heatmap (rows of layer labels under its title), the GIF's
    pixels have the cell colours the dashboard drew there, and those are its colour map's levels."""
    _, folder, _ = made
    lines = (folder / "demo.cast").read_text().splitlines()
    terminal = Terminal(COLUMNS, ROWS)
    for line in lines[1:]:
        terminal.feed(json.loads(line)[2])
    text = terminal.screen.display
    title = next(y for y, row in enumerate(text) if "Gradient heatmap" in row)
    steps = next(y for y in range(title + 1, ROWS) if text[y][1:].lstrip().startswith("step "))
    rows = [y for y in range(title + 1, steps) if "layer" in text[y] or "head" in text[y]]
    assert len(rows) >= 4, text
    # The grid starts one column past the longest label, where the step axis prints its first step.
    start = text[steps].index("step") + len("step ")
    levels = {"%02x%02x%02x" % rgb for rgb in level_rgb()}

    picture = Image.open(folder / "demo.gif")
    picture.seek(picture.n_frames - 1)
    pixels = picture.convert("RGB")
    cell_w, cell_h = pixels.width // COLUMNS, pixels.height // ROWS
    cells = [(x, y) for y in rows for x in range(start, COLUMNS - 1)]  # up to the panel's right border
    heat = [(x, y) for x, y in cells if terminal.screen.buffer[y][x].bg in levels]
    # (the replay's toasts of recorded keys cover the grid's right part in the last frame)
    assert len(heat) >= 10 * len(rows), "the heatmap's cells are not in the colour map's colours"
    assert len({terminal.screen.buffer[y][x].bg for x, y in heat}) >= 5, "the heatmap shows too few levels"
    matched = 0
    for x, y in heat:
        want = bytes.fromhex(terminal.screen.buffer[y][x].bg)
        centre = pixels.crop((x * cell_w + cell_w // 4, y * cell_h + cell_h // 4,
                              x * cell_w + 3 * cell_w // 4, y * cell_h + 3 * cell_h // 4))
        got = np.asarray(centre, dtype=float).reshape(-1, 3).mean(axis=0)
        matched += max(abs(g - w) for g, w in zip(got, want)) <= 16  # a GIF's 256-colour palette
    assert matched >= 0.95 * len(heat), f"{matched} of {len(heat)} heatmap cells have their colour"


def test_progress_counts_the_replay_then_every_frame(made) -> None:
    result, _, shown = made
    *updates, erased = shown.split("\r")[1:]
    assert updates and all(u.startswith("[") for u in updates)
    assert erased == "\x1b[K"  # the bar is erased once done: the summary line replaces it
    assert any("replaying" in u for u in updates)
    drawing = [u for u in updates if "drawing frame" in u]
    assert drawing[-1].split("drawing frame ")[1].split("\x1b")[0] == f"{result.frames}/{result.frames}"
    assert "#" * 30 in drawing[-1]


def test_progress_is_silent_when_not_on_a_terminal() -> None:
    quiet = io.StringIO()
    progress = Progress(False, quiet)
    progress.show("drawing frame", 1, 2)
    progress.close()
    assert quiet.getvalue() == ""


def _cast(*args: str, code: str = "") -> subprocess.CompletedProcess[str]:
    run = f"{code}import sys; from vgp_tui.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", run, "cast", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("output", "says"), [
    ("demo.mp4", "the extension says what to write"),
    ("no-such-folder/demo.gif", "does not exist"),
])
def test_mistakes_are_one_line(tmp_path: Path, output: str, says: str) -> None:
    done = _cast(str(FIXTURE), "-o", str(tmp_path / output))
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("vgp-tui: error: ")
    assert says in done.stderr


def test_a_bad_recording_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    done = _cast(str(bad), "-o", str(tmp_path / "demo.gif"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("vgp-tui: error: ")


def test_without_the_extra_it_names_the_extra(tmp_path: Path) -> None:
    done = _cast(str(FIXTURE), "-o", str(tmp_path / "demo.gif"), code="import sys; sys.modules['pyte'] = None; ")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "pip install 'vgp-tui[gif]'" in done.stderr and "pyte" in done.stderr


def test_every_glyph_the_dashboard_writes_is_drawn_not_a_missing_glyph_box() -> None:
    """Each character outside ASCII in the package's code, styles and presets (what the dashboard can
    put on screen) is either a shape the painter draws or a glyph of Cascadia Mono, in both weights:
    the loss plot's ✕ (diverged) was the font's empty box in every GIF. A character the font lacks
    paints the same mask as a private-use code point, which no font used here has."""
    from vgp_tui.cast.painter import CellPainter
    from vgp_tui.cast.shapes import CROSS

    painter = CellPainter(2, 1, 16)
    package = Path(__file__).resolve().parents[1] / "vgp_tui"
    texts = [p.read_text(encoding="utf-8") for p in (*package.rglob("*.py"), *package.rglob("*.tcss"), *package.rglob("*.toml"))]
    chars = sorted({c for text in texts for c in text if ord(c) > 127 and c.isprintable()})
    assert CROSS in chars and "·" in chars  # what the scan must find

    def mask(char: str, bold: bool) -> bytes:
        index = painter._glyph(char, bold, False)
        return painter._atlas_now()[index].tobytes()

    missing = {(c, bold) for c in chars for bold in (False, True) if mask(c, bold) == mask("\ue000", bold)}
    assert not missing, sorted(missing)
    assert mask(CROSS, False) != mask("×", False)  # diverged and NaN stay apart


# -- what the command says, and what it refuses ------------------------------------------------------------


def _in_a_terminal(*args: str, columns: int = 300, rows: int = 20) -> tuple[int, str]:
    """``vgp-tui ARGS`` with stdout and stderr on one pseudo-terminal, as a person runs it (so the progress
    bar is on): its exit status and the screen it leaves, as lines without the blank ones."""
    import os
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, its output on the terminal
        os.execv(sys.executable, [sys.executable, "-m", "vgp_tui", *args])
    output = b""
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], 1.0)[0]:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the command has exited and closed the terminal
                break
            if not data:
                break
            output += data
    finally:
        os.close(fd)
        if time.monotonic() >= deadline:
            os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
    screen = Terminal(columns, rows)
    screen.feed(output.decode("utf-8", errors="replace"))
    return os.waitstatus_to_exitcode(status), [line.rstrip() for line in screen.screen.display if line.strip()]


def test_the_cut_off_warning_comes_before_wrote_and_no_progress_bar_is_left(tmp_path: Path) -> None:
    """`cast` said "wrote …" and then the warning about the file: the warning comes first, so the last
    line says what was made; the progress bar is erased (it left "encoding 1/1" above it)."""
    whole = FIXTURE.read_bytes()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(whole[: whole.index(b"\n", 2000) + 40])  # a last line without its end
    status, shown = _in_a_terminal("cast", str(cut), "-o", str(tmp_path / "cut.gif"), "--size", "80x24",
                                   "--font-size", "8", "--speed", "64")
    assert status == 0, shown
    assert len(shown) == 2, shown
    assert shown[0].startswith("vgp-tui: warning: ") and "is cut off" in shown[0], shown
    assert shown[1].startswith(f"wrote {tmp_path / 'cut.gif'}: "), shown


def test_the_frame_count_said_is_the_frames_the_file_holds(tmp_path: Path) -> None:
    """At --fps 50 it said "89 frames" of a GIF that held 8: identical frames are merged into one shown longer."""
    out = tmp_path / "fast.gif"
    done = _cast(str(FIXTURE), "-o", str(out), "--size", "80x24", "--font-size", "8", "--speed", "8", "--fps", "50")
    assert done.returncode == 0, done.stderr
    said = re.search(r", (\d+) frames? \(sampled at 50 fps, repeats merged\)", done.stdout)
    assert said, done.stdout
    assert int(said.group(1)) == Image.open(out).n_frames, done.stdout


def test_a_pause_in_the_recording_is_cut_to_the_idle_limit_in_the_picture(tmp_path: Path) -> None:
    from test_cast import recording_with_a_pause  # tests/test_cast.py

    paused = recording_with_a_pause(tmp_path, 6.0)  # 1.5 s of the replay at --speed 4
    out = tmp_path / "paused.gif"
    done = _cast(str(paused), "-o", str(out), "--size", "80x24", "--font-size", "8", "--speed", "4", "--fps", "10",
                 "--idle-limit", "0.5", "--hold", "1")
    assert done.returncode == 0, done.stderr
    durations = _durations(Image.open(out))
    assert max(durations[:-1]) <= 500 + 10, durations  # (a GIF keeps hundredths of a second)
    assert durations[-1] <= 500 + 1000 + 10, durations  # the last: the limit, then --hold


def test_a_frame_ended_only_by_invisible_changes_is_still_cut_to_the_idle_limit(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """In a pause the app may redraw what is already there (a toast's removal over the same cells): each gap
    is within the limit, but the picture does not change for two of them; that frame is cut to the limit too."""
    import vgp_tui.cast.image as image

    def replay(recording: object, cast: Path, columns: int, rows: int, speed: float, progress: object,
               idle_limit: float | None = None) -> None:
        events = [(0.1, "\x1b[HA"), (1.0, "\x1b[HA"), (1.9, "\x1b[HA"), (2.0, "\x1b[HB")]  # gaps of 0.9 s at most
        cast.write_text(json.dumps({"version": 2, "width": columns, "height": rows}) + "\n"
                        + "".join(json.dumps([t, "o", text]) + "\n" for t, text in events))

    monkeypatch.setattr(image, "_record", replay)
    made = write_image_cast(FIXTURE, tmp_path / "still.gif", 80, 24, fps=10, font_size=8, hold=0, idle_limit=1.0)
    assert _durations(Image.open(tmp_path / "still.gif")) == [1000, 100]  # "A" 1.9 s cut to 1 s, then "B"
    assert made.distinct == 2 and made.seconds == pytest.approx(1.0)


def test_a_picture_too_big_to_paint_is_refused_in_one_line_and_the_widest_terminal_is_not(tmp_path: Path) -> None:
    """--size 1000x500 took 5.3 GB: a picture is at most MAX_PIXELS, said before any replay."""
    from vgp_tui.cast import MAX_PIXELS
    from vgp_tui.cast.painter import CellPainter

    done = _cast(str(FIXTURE), "-o", str(tmp_path / "huge.gif"), "--size", "1000x500")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("vgp-tui: error: --size 1000x500 at --font-size 16 is a ")
    assert "limited to 12 megapixels" in done.stderr and not (tmp_path / "huge.gif").exists()
    width, height = CellPainter(400, 150, 16).size  # the widest terminal a person shares, at the default font
    assert width * height <= MAX_PIXELS
