"""A terminal screen of cells painted as an RGB picture: each cell's background, then its glyph.

Text is drawn with Cascadia Mono, which the ``pymupdf-fonts`` package ships, so the picture is the
same on every machine: no font installed on the system is looked up or falls back. Braille, block
elements and box-drawing lines are shapes (:mod:`vgp_tui.cast.shapes`), sized to the cell.

Glyphs are kept as alpha masks, one per character and weight, and a picture is put together with
numpy: backgrounds and foregrounds are blown up from one colour per cell, and blended through the
masks laid side by side. Painting a 100 x 30 screen so costs a few milliseconds.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vgp_tui.cast.frames import Screen
from vgp_tui.cast.shapes import shape

DEFAULT_FG = (224, 224, 224)
DEFAULT_BG = (18, 18, 18)
"""Where the app leaves a colour to the terminal: a light grey on the dark grey of Textual's dark theme."""

# The sixteen named colours as xterm draws them (the dashboard sets its colours itself, as RGB).
NAMED = {
    "black": (0, 0, 0), "red": (205, 0, 0), "green": (0, 205, 0), "brown": (205, 205, 0),
    "blue": (0, 0, 238), "magenta": (205, 0, 205), "cyan": (0, 205, 205), "white": (229, 229, 229),
    "brightblack": (127, 127, 127), "brightred": (255, 0, 0), "brightgreen": (0, 255, 0),
    "brightbrown": (255, 255, 0), "brightblue": (92, 92, 255), "brightmagenta": (255, 0, 255),
    "brightcyan": (0, 255, 255), "brightwhite": (255, 255, 255),
}


def rgb(colour: str, default: tuple[int, int, int]) -> tuple[int, int, int]:
    """A pyte colour (``rrggbb``, a name, or ``default``) as RGB."""
    if len(colour) == 6:
        try:
            return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)
        except ValueError:
            pass
    return NAMED.get(colour, default)


def cascadia_mono(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    import pymupdf_fonts

    return ImageFont.truetype(io.BytesIO(pymupdf_fonts.myfont("cascadiab" if bold else "cascadia")), size)


class CellPainter:
    """Paints screens of ``columns`` x ``rows`` cells with text ``font_size`` pixels high."""

    def __init__(self, columns: int, rows: int, font_size: int = 16) -> None:
        self.columns, self.rows = columns, rows
        self.fonts = {False: cascadia_mono(font_size), True: cascadia_mono(font_size, bold=True)}
        ascent, descent = self.fonts[False].getmetrics()
        self.cell_width = round(self.fonts[False].getlength("M"))
        self.cell_height = ascent + descent
        self.baseline = ascent
        self.size = (columns * self.cell_width, rows * self.cell_height)
        self._index: dict[tuple[str, bool], int] = {(" ", False): 0}
        self._masks: list[np.ndarray] = [np.zeros((self.cell_height, self.cell_width), np.uint8)]
        self._atlas: np.ndarray | None = None

    def cell_box(self, column: int, row: int) -> tuple[int, int, int, int]:
        """The pixels of a cell as (left, top, right, bottom), right and bottom excluded."""
        x, y = column * self.cell_width, row * self.cell_height
        return x, y, x + self.cell_width, y + self.cell_height

    def paint(self, screen: Screen) -> Image.Image:
        rows, cols, ch, cw = self.rows, self.columns, self.cell_height, self.cell_width
        fg = np.empty((rows, cols, 3), np.float32)
        bg = np.empty((rows, cols, 3), np.float32)
        glyph = np.zeros((rows, cols), np.int32)
        for y, line in enumerate(screen[:rows]):
            for x, cell in enumerate(line[:cols]):
                front, back = rgb(cell.fg, DEFAULT_FG), rgb(cell.bg, DEFAULT_BG)
                if cell.reverse:
                    front, back = back, front
                fg[y, x], bg[y, x] = front, back
                if cell.char != " " or cell.underline:
                    glyph[y, x] = self._glyph(cell.char, cell.bold, cell.underline)
        alpha = self._atlas_now()[glyph]  # rows, cols, ch, cw
        alpha = alpha.transpose(0, 2, 1, 3).reshape(rows * ch, cols * cw, 1)
        front = np.repeat(np.repeat(fg, ch, axis=0), cw, axis=1)
        back = np.repeat(np.repeat(bg, ch, axis=0), cw, axis=1)
        picture = back + (front - back) * alpha
        return Image.fromarray(np.rint(picture).astype(np.uint8), "RGB")

    def _glyph(self, char: str, bold: bool, underline: bool) -> int:
        key = (char + ("_" if underline else ""), bold)
        index = self._index.get(key)
        if index is None:
            mask = shape(char, self.cell_width, self.cell_height) if char != " " else None
            if mask is None:
                mask = Image.new("L", (self.cell_width, self.cell_height), 0)
                if char != " ":
                    ImageDraw.Draw(mask).text((0, self.baseline), char, fill=255, font=self.fonts[bold], anchor="ls")
            if underline:
                ImageDraw.Draw(mask).line((0, self.baseline + 1, self.cell_width, self.baseline + 1), fill=255)
            index = self._index[key] = len(self._masks)
            self._masks.append(np.asarray(mask, np.uint8))
            self._atlas = None
        return index

    def _atlas_now(self) -> np.ndarray:
        if self._atlas is None:
            self._atlas = np.stack(self._masks).astype(np.float32) / 255.0
        return self._atlas
