"""``vgp-tui cast FILE -o demo.gif``: the replay as an animated picture (GIF, animated WebP or APNG).

The frames are the ones the dashboard draws: the replay runs in a pseudo-terminal exactly as for an
asciicast (:func:`vgp_tui.cast.asciicast.record_cast`), its output is played into a terminal emulator and the
screen is read ``fps`` times a second (:mod:`vgp_tui.cast.frames`), and each screen is painted cell
by cell with a font that ships with a Python package (:mod:`vgp_tui.cast.painter`). Why this path
and not Textual's SVG screenshots through an SVG renderer: docs/benchmarks.md, section "Animated casts".

Needs the ``gif`` extra (Pillow, pyte, pymupdf-fonts); without it, one line says what to install.
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from vgp_tui.cast import MAX_PIXELS
from vgp_tui.errors import UserError

IMAGE_FORMATS = {".gif": "GIF", ".webp": "WEBP", ".png": "PNG"}
"""Picture formats by the output's extension (``.png`` is an animated PNG)."""
EXTRA = "pip install 'vgp-tui[gif]'"


@dataclass(frozen=True)
class ImageCast:
    """What was written: ``frames`` ticks of 1/fps seconds (``distinct`` of them differ from the one
    before), covering ``seconds`` of the cast, and the last frame held ``hold`` seconds more."""

    path: Path
    width: int
    height: int
    frames: int
    distinct: int
    seconds: float
    hold: float
    bytes: int


def image_format(output: str | Path) -> str | None:
    """The picture format ``output`` asks for; None for an asciicast (``.cast``)."""
    suffix = Path(output).suffix.lower()
    if suffix == ".cast":
        return None
    if suffix not in IMAGE_FORMATS:
        raise UserError(f"-o {output}: the extension says what to write: .cast (asciicast), .gif, "
                        ".webp (animated) or .png (animated PNG), " + (f"not '{suffix}'" if suffix else "and this name has none"))
    return IMAGE_FORMATS[suffix]


class Progress:
    """One line on ``stream`` redrawn in place: ``[#####.....] what done/total``. Silent when disabled."""

    def __init__(self, enabled: bool, stream: TextIO | None = None, width: int = 30) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self._shown = False

    def show(self, what: str, done: float, total: float, unit: str = "") -> None:
        if not self.enabled:
            return
        filled = int(self.width * min(done, total) / total) if total > 0 else self.width
        count = f"{done:.1f}/{total:.1f}{unit}" if unit else f"{int(done)}/{int(total)}"
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {what} {count}\x1b[K")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        """Erase the line: the "wrote …" line that follows says it all ("encoding 1/1" stayed above it)."""
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


def write_image_cast(
    recording: str | Path,
    output: str | Path,
    columns: int = 100,
    rows: int = 30,
    speed: float = 1.0,
    fps: float = 5.0,
    font_size: int = 16,
    hold: float = 3.0,
    progress: Progress | None = None,
    keep_cast: str | Path | None = None,
    idle_limit: float | None = None,
) -> ImageCast:
    """Replay ``recording`` in a pseudo-terminal and write it as an animated picture to ``output``
    (and the asciicast it was drawn from to ``keep_cast``, when given).

    ``idle_limit``: seconds; no frame stays longer than that (but the last, by ``hold``): the
    asciicast's pauses are cut to it (:func:`vgp_tui.cast.asciicast.limit_idle`), and so is a frame
    that the screen's invisible changes only seemed to end. None keeps the replay's time."""
    kind = image_format(output)
    if kind is None:
        raise UserError(f"-o {output}: an asciicast is written by record_cast, not as a picture")
    output = Path(output)
    if not output.parent.is_dir():
        raise UserError(f"-o {output}: folder '{output.parent}' does not exist")
    _check_extra(kind)
    from vgp_tui.cast.frames import read_cast, screens, timeline
    from vgp_tui.cast.painter import CellPainter

    progress = progress or Progress(False)
    painter = CellPainter(columns, rows, font_size)  # before the replay: a font problem shows at once
    width, height = painter.size
    if width * height > MAX_PIXELS:  # before the replay too: it would only end out of memory
        raise UserError(f"--size {columns}x{rows} at --font-size {font_size} is a {width}x{height} px picture; "
                        f"pictures are limited to {MAX_PIXELS / 1e6:g} megapixels (400x150 at --font-size 16 "
                        f"is 10.3): choose a smaller --size or --font-size, or write a .cast")
    with tempfile.TemporaryDirectory(prefix="vgp-tui-cast-") as folder:
        cast = Path(folder) / "replay.cast"
        _record(recording, cast, columns, rows, speed, progress, idle_limit)
        _, events = read_cast(cast)
        if keep_cast is not None:
            shutil.copyfile(cast, keep_cast)
    when = timeline(events, fps)
    palette = _gif_palette(events, columns, rows, when, painter, progress) if kind == "GIF" else None
    pictures: list[Any] = []
    durations: list[float] = []
    last = b""
    # The pauses are already cut in the asciicast, but the app can write in the middle of a pause
    # without changing a pixel (a redraw of the same cells): the frame would stay for two cut pauses.
    longest = math.inf if idle_limit is None else max(idle_limit, 1 / fps) * 1000
    cut = 0.0
    for frame, screen in enumerate(screens(events, columns, rows, when)):
        picture = None if screen is None else painter.paint(screen)
        if picture is not None and palette is not None:
            picture = _on_palette(picture, palette)
        # A screen that changed only where nothing shows (a toast's removal that redraws the same
        # cells, say) paints the picture before it again: one frame shown longer, as the encoder
        # would merge it anyway (so that ``distinct`` counts what the file holds).
        pixels = picture.tobytes() if picture is not None else last
        if picture is None or pixels == last:
            cut += max(0.0, durations[-1] + 1000 / fps - longest)
            durations[-1] = min(durations[-1] + 1000 / fps, longest)
        else:
            pictures.append(picture)
            durations.append(1000 / fps)
            last = pixels
        progress.show("drawing frame", frame + 1, when.count)
    durations[-1] += hold * 1000
    progress.show("encoding", 0, 1)
    _save(pictures, durations, output, kind)
    progress.show("encoding", 1, 1)
    progress.close()
    return ImageCast(output, width, height, when.count, len(pictures),
                     when.end - when.start - cut / 1000, hold, output.stat().st_size)


def _check_extra(kind: str) -> None:
    missing = []
    for module, package in (("PIL", "pillow"), ("pyte", "pyte"), ("pymupdf_fonts", "pymupdf-fonts")):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise UserError(f"writing a picture needs {', '.join(missing)}: {EXTRA}")
    from PIL import features

    if kind == "WEBP" and not features.check("webp"):
        raise UserError("this Pillow was built without WebP: write a .gif or .png, or install a Pillow wheel")


def _record(recording: str | Path, cast: Path, columns: int, rows: int, speed: float, progress: Progress,
            idle_limit: float | None = None) -> None:
    """The asciicast of the replay, made in a thread while the progress bar counts the replay's seconds.

    The thread is a daemon: on Ctrl+C the command exits at once, and the replay in the pseudo-terminal
    ends when the terminal closes with the process.
    """
    from vgp_tui.cast.asciicast import record_cast
    from vgp_tui.engine.recording import read_recording

    times = [t for e in read_recording(recording).events if (t := getattr(e, "t", None)) is not None]
    expected = (max(times) - min(times)) / speed if times else 0.0
    failure: list[BaseException] = []

    def run() -> None:
        try:
            # 24-bit colour: the heatmap's own colours, not the nearest of xterm's 256
            record_cast(recording, cast, columns, rows, speed, env={"COLORTERM": "truecolor"}, idle_limit=idle_limit)
        except BaseException as exc:  # handed to the main thread, which raises it
            failure.append(exc)

    worker = threading.Thread(target=run, name="vgp-tui-cast", daemon=True)
    started = time.monotonic()
    worker.start()
    while worker.is_alive():
        progress.show("replaying", min(time.monotonic() - started, expected), expected, " s")
        worker.join(0.2)
    if failure:
        raise failure[0]
    progress.show("replaying", expected, expected, " s")


def _gif_palette(events: list[tuple[float, str]], columns: int, rows: int, when: Any, painter: Any,
                 progress: Progress) -> Any:
    """One palette for all of a GIF's frames (:mod:`vgp_tui.cast.palette`), from a first pass over them.

    The frames are painted twice rather than kept: a frame costs milliseconds to paint, and 1.5 MB
    to keep at 100 x 30.
    """
    from vgp_tui.cast.frames import screens
    from vgp_tui.cast.palette import PaletteSampler

    sampler = PaletteSampler()
    for frame, screen in enumerate(screens(events, columns, rows, when)):
        if screen is not None:
            sampler.add(painter.paint(screen))
        progress.show("choosing colours", frame + 1, when.count)
    return sampler.palette()


def _on_palette(picture: Any, palette: Any) -> Any:
    from PIL import Image

    return picture.quantize(palette=palette, dither=Image.Dither.NONE)


def _save(pictures: list[Any], durations: list[float], output: Path, kind: str) -> None:
    options: dict[str, Any] = {"save_all": True, "append_images": pictures[1:], "loop": 0,
                               "duration": [round(d) for d in durations]}
    if kind == "WEBP":
        options.update(lossless=True, method=4)  # lossless: the cells keep their exact colours
    pictures[0].save(output, kind, **options)
