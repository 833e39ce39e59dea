#!/usr/bin/env python
"""Two ways to turn the replay into an animated picture, measured side by side in one run.

    python benchmarks/gif_render.py                 # the fixture at 100x30, speed 1, 5 fps
    python benchmarks/gif_render.py --quick         # 80x24, speed 4 (what the tests run)
    python benchmarks/gif_render.py --out /tmp/gif  # also keep each path's frames as PNG files

(a) svg: the dashboard runs headless in this process (Textual's ``run_test``) while the recording
    replays; every 1/fps s Textual's ``export_screenshot()`` SVG is rendered by resvg (resvg-py)
    and mapped by Pillow onto one palette for all frames. Rendered twice: with the system's fonts
    (what resvg falls back to for "Fira Code", which is not installed), and with only Cascadia Mono
    loaded (shipped by pymupdf-fonts) as the monospace family.
(b) cells: the replay runs in a pseudo-terminal (what ``vgp-tui cast`` records); its output is
    played into pyte and each screen painted cell by cell (vgp_tui.cast.painter: Cascadia Mono for
    text, braille, blocks and box lines as shapes) and mapped onto one palette the same way.

For each: milliseconds per frame (median) by stage, and the GIF's bytes for those frames. Then the
fidelity of each on one controlled screen, drawn by Rich (the exporter behind Textual's screenshots)
as SVG for (a) and as terminal output for (b): a bordered panel on a blue background filled with
braille, full blocks and half blocks in yellow on a black screen.
    spill   yellow outside the panel's background, as a share of the yellow inside (0 = none)
    border  share of the panel's height along which its left border line is drawn (1 = unbroken)
    blocks  share of a 3x3 patch of full blocks that is filled (1 = solid)
    corners share of the panel's four rounded corners drawn at all
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import resvg_py
from PIL import Image

from vgp_tui.cast.asciicast import record_cast
from vgp_tui.cast.frames import Timeline, read_cast, screens, timeline
from vgp_tui.cast.painter import CellPainter
from vgp_tui.cast.palette import PaletteSampler

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "deep-sigmoid.jsonl"


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000 if values else float("nan")


def gif_bytes(frames: list[Image.Image], fps: float) -> int:
    """The GIF as `vgp-tui cast` writes it: one palette for all frames (vgp_tui.cast.palette)."""
    sampler = PaletteSampler()
    for frame in frames:
        sampler.add(frame)
    palette = sampler.palette()
    quantised = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    out = io.BytesIO()
    quantised[0].save(out, "GIF", save_all=True, append_images=quantised[1:], duration=round(1000 / fps), loop=0)
    return len(out.getvalue())


def quantise_times(frames: list[Image.Image]) -> list[float]:
    """Seconds per frame to sample it for the shared palette and map it onto that palette."""
    sampler = PaletteSampler()
    t = time.perf_counter()
    for frame in frames:
        sampler.add(frame)
    palette = sampler.palette()
    shared = (time.perf_counter() - t) / len(frames)
    times = []
    for frame in frames:
        t = time.perf_counter()
        frame.quantize(palette=palette, dither=Image.Dither.NONE)
        times.append(time.perf_counter() - t + shared)
    return times


def cascadia_file(folder: Path) -> str:
    import pymupdf_fonts

    path = folder / "CascadiaMono-Regular.ttf"
    path.write_bytes(pymupdf_fonts.myfont("cascadia"))
    bold = folder / "CascadiaMono-Bold.ttf"
    bold.write_bytes(pymupdf_fonts.myfont("cascadiab"))
    return str(path), str(bold)


def resvg(svg: str, pinned: tuple[str, str] | None) -> Image.Image:
    if pinned:
        png = resvg_py.svg_to_bytes(svg_string=svg, skip_system_fonts=True, font_files=list(pinned),
                                    font_family="Cascadia Mono", monospace_family="Cascadia Mono",
                                    sans_serif_family="Cascadia Mono", serif_family="Cascadia Mono")
    else:
        png = resvg_py.svg_to_bytes(svg_string=svg)
    return Image.open(io.BytesIO(bytes(png))).convert("RGB")


# -- (a) Textual's SVG export through resvg ---------------------------------------------------------
async def svg_frames(recording: Path, columns: int, rows: int, speed: float, fps: float) -> list[str]:
    from vgp_tui.dashboard import make_replay_app
    from vgp_tui.engine.recording import read_recording

    times = [t for e in read_recording(recording).events if (t := getattr(e, "t", None)) is not None]
    seconds = (max(times) - min(times)) / speed + 1.0
    app = make_replay_app(str(recording), speed=speed)
    svgs: list[str] = []
    export: list[float] = []
    async with app.run_test(size=(columns, rows)) as pilot:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            await pilot.pause(1 / fps)
            t = time.perf_counter()
            svgs.append(app.export_screenshot())
            export.append(time.perf_counter() - t)
        app.stop_training()
    app.session.close()
    return svgs, export


def path_svg(recording: Path, columns: int, rows: int, speed: float, fps: float, pinned, out: Path | None) -> list:
    svgs, export = asyncio.run(svg_frames(recording, columns, rows, speed, fps))
    rows_out = []
    for label, fonts in (("(a) svg + resvg, system fonts", None), ("(a) svg + resvg, Cascadia Mono only", pinned)):
        render, frames = [], []
        for svg in svgs:
            t = time.perf_counter()
            frames.append(resvg(svg, fonts))
            render.append(time.perf_counter() - t)
        quant = quantise_times(frames)
        if out:
            frames[-1].save(out / f"{'a-system' if fonts is None else 'a-cascadia'}-last.png")
        rows_out.append((label, len(frames), frames[0].size, ms(export), ms(render), ms(quant),
                         ms(export) + ms(render) + ms(quant), gif_bytes(frames, fps)))
    return rows_out


# -- (b) pty output through pyte, painted cell by cell -----------------------------------------------
def path_cells(recording: Path, columns: int, rows: int, speed: float, fps: float, font_size: int,
               out: Path | None) -> tuple:
    with tempfile.TemporaryDirectory() as folder:
        cast = Path(folder) / "r.cast"
        record_cast(recording, cast, columns, rows, speed, env={"COLORTERM": "truecolor"})
        _, events = read_cast(cast)
    when = timeline(events, fps)
    painter = CellPainter(columns, rows, font_size)
    emulate, paint, frames = [], [], []
    walk = screens(events, columns, rows, when)
    while True:
        t = time.perf_counter()
        screen = next(walk, StopIteration)
        emulate.append(time.perf_counter() - t)
        if screen is StopIteration:
            break
        if screen is None:
            continue
        t = time.perf_counter()
        frames.append(painter.paint(screen))
        paint.append(time.perf_counter() - t)
    quant = quantise_times(frames)
    if out:
        frames[-1].save(out / "b-cells-last.png")
    return ("(b) pty + pyte + cell painter", len(frames), frames[0].size, ms(emulate), ms(paint), ms(quant),
            ms(emulate) + ms(paint) + ms(quant), gif_bytes(frames, fps))


# -- fidelity on a controlled screen ---------------------------------------------------------------
W, H = 24, 9
PANEL = (2, 1, 15, 7)  # columns 2..15, rows 1..7 (border included)


def fidelity_console():
    from rich.console import Console
    from rich.text import Text

    console = Console(record=True, force_terminal=True, color_system="truecolor", width=W, height=H,
                      file=io.StringIO(), legacy_windows=False)
    left, top, right, bottom = PANEL
    inner = right - left - 1
    fill = ["⣿" * inner, "█" * 3 + "⣀⣤⣶⣿⡇⢸" + "▄" * (inner - 9), "█" * 3 + "⠉⠛⠿⣿" + "▀" * (inner - 7),
            "█" * 3 + "⢀⡠⠔⠊⠁" + "▌" * (inner - 8), "⣿" * inner]
    for row in range(H):
        text = Text(" " * left, style="on #000000")
        if top <= row <= bottom:
            if row in (top, bottom):
                edge = ("╭" + "─" * inner + "╮") if row == top else ("╰" + "─" * inner + "╯")
                text.append(edge, style="#ffffff on #0000c0")
            else:
                text.append("│", style="#ffffff on #0000c0")
                text.append(fill[(row - top - 1) % len(fill)], style="#ffff00 on #0000c0")
                text.append("│", style="#ffffff on #0000c0")
        text.append(" " * (W - len(text.plain)), style="on #000000")
        console.print(text, end="\n" if row < H - 1 else "", no_wrap=True, overflow="crop")
    return console


def fidelity(picture: Image.Image) -> tuple[float, float, float, float]:
    a = np.asarray(picture.convert("RGB")).astype(int)
    blue = (a[..., 2] > 150) & (a[..., 0] < 60) & (a[..., 1] < 60)
    ys, xs = np.nonzero(blue)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    cell_w = (x1 - x0) / (PANEL[2] - PANEL[0] + 1)
    cell_h = (y1 - y0) / (PANEL[3] - PANEL[1] + 1)
    yellow = (a[..., 0] > 150) & (a[..., 1] > 150) & (a[..., 2] < 110)  # the fill's strokes
    white = (a > 180).all(axis=2)  # the border's strokes
    inside = np.zeros_like(yellow)
    inside[y0:y1, x0:x1] = True
    # the SVG's window title and frame are not the screen: only pixels on the screen's cells count
    screen = np.zeros_like(yellow)
    screen[max(0, int(y0 - PANEL[1] * cell_h)):int(y1 + (H - 1 - PANEL[3]) * cell_h),
           max(0, int(x0 - PANEL[0] * cell_w)):int(x1 + (W - 1 - PANEL[2]) * cell_w)] = True
    spill = (yellow & ~inside & screen).sum() / max(1, (yellow & inside).sum())
    border_rows = white[int(y0 + cell_h):int(y1 - cell_h), int(x0):int(x0 + cell_w)].any(axis=1)
    border = border_rows.mean()
    px0, py0 = int(x0 + cell_w), int(y0 + 2 * cell_h)  # the full-block patch: 3 columns, rows 2..4
    blocks = yellow[py0:int(py0 + 3 * cell_h), px0:int(px0 + 3 * cell_w)].mean()
    corners = np.mean([white[int(cy):int(cy + cell_h), int(cx):int(cx + cell_w)].any()
                       for cx in (x0, x1 - cell_w) for cy in (y0, y1 - cell_h)])
    return float(spill), float(border), float(blocks), float(corners)


def fidelity_rows(pinned, font_size: int, out: Path | None) -> list:
    console = fidelity_console()
    ansi = console.file.getvalue().replace("\n", "\r\n")
    svg = console.export_svg(title="fidelity")
    shots = [("(a) svg + resvg, system fonts", resvg(svg, None)),
             ("(a) svg + resvg, Cascadia Mono only", resvg(svg, pinned))]
    cells = next(screens([(0.0, ansi)], W, H, Timeline(0.0, 0.0, 1.0)))
    shots.append(("(b) pty + pyte + cell painter", CellPainter(W, H, font_size).paint(cells)))
    rows = []
    for label, picture in shots:
        if out:
            picture.save(out / f"fidelity-{label[:3].strip('()')}-{len(rows)}.png")
        rows.append((label, *fidelity(picture)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recording", type=Path, default=FIXTURE)
    parser.add_argument("--size", default="100x30")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--font-size", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="80x24 at speed 4")
    parser.add_argument("--out", type=Path, default=None, help="folder for each path's last frame as PNG")
    args = parser.parse_args()
    if args.quick:
        args.size, args.speed = "80x24", 4.0
    columns, rows = (int(v) for v in args.size.split("x"))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        pinned = cascadia_file(Path(folder))
        results = path_svg(args.recording, columns, rows, args.speed, args.fps, pinned, args.out)
        results.append(path_cells(args.recording, columns, rows, args.speed, args.fps, args.font_size, args.out))
        faithful = fidelity_rows(pinned, args.font_size, args.out)
    print(f"{args.recording.name} at {columns}x{rows}, speed {args.speed:g}, {args.fps:g} fps; "
          f"Python {sys.version.split()[0]}, resvg-py {getattr(resvg_py, '__version__', '?')}, "
          f"Pillow {Image.__version__}")
    print(f"{'path':<38} {'frames':>6} {'pixels':>10} {'source ms':>9} {'raster ms':>9} {'quantise ms':>11} "
          f"{'total ms/frame':>14} {'GIF bytes':>10} {'bytes/frame':>11}")
    for label, n, size, source, raster, quant, total, size_bytes in results:
        print(f"{label:<38} {n:>6} {f'{size[0]}x{size[1]}':>10} {source:>9.1f} {raster:>9.1f} {quant:>11.1f} "
              f"{total:>14.1f} {size_bytes:>10} {size_bytes // max(n, 1):>11}")
    print("(source: Textual's export_screenshot for (a); pyte reading the pty output for (b))")
    print()
    print(f"{'fidelity':<38} {'spill':>7} {'border':>7} {'blocks':>7} {'corners':>7}")
    for label, spill, border, blocks, corners in faithful:
        print(f"{label:<38} {spill:>7.3f} {border:>7.3f} {blocks:>7.3f} {corners:>7.2f}")


if __name__ == "__main__":
    main()
