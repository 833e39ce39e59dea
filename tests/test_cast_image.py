"""`vgp-tui cast FILE -o demo.gif`: the replay as an animated picture, frame by frame as the dashboard draws it."""

from __future__ import annotations

import io
import json
import math
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
