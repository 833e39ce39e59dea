"""Braille dots, block elements and box-drawing lines drawn as shapes that fill exactly one cell.

The dashboard's plots are braille and block characters, and its panels are framed with box-drawing
lines. A font draws these at its own size and proportions (and a fallback font, picked by whatever
is installed, at another), so plot lines spill over panel borders and borders break between rows.
Drawn here from the cell's own width and height, a plot stays inside its panel and a border joins
the next cell's border, whatever font draws the text.
"""

from __future__ import annotations

import unicodedata

from PIL import Image, ImageDraw

BRAILLE = range(0x2800, 0x2900)
BLOCKS = range(0x2580, 0x25A0)

# Braille dots by bit, as (column, row) in the 2 x 4 grid of a cell (Unicode's dot numbering 1..8).
_BRAILLE_DOTS = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3)]
# Quadrant blocks U+2596..U+259F as (upper left, upper right, lower left, lower right).
_QUADRANTS = {
    0x2596: "0010", 0x2597: "0001", 0x2598: "1000", 0x2599: "1011", 0x259A: "1001",
    0x259B: "1110", 0x259C: "1101", 0x259D: "0100", 0x259E: "0110", 0x259F: "0111",
}
_SHADES = {0x2591: 64, 0x2592: 128, 0x2593: 192}
CROSS = "\u2715"
"""The loss plot's "diverged" mark, which Cascadia Mono has no glyph for (it drew a box in its place)."""
_DIRECTIONS = {"UP": "u", "DOWN": "d", "LEFT": "l", "RIGHT": "r", "VERTICAL": "ud", "HORIZONTAL": "lr"}


def shape(char: str, width: int, height: int) -> Image.Image | None:
    """An 'L' mask of ``char`` filling a ``width`` x ``height`` cell, or None when a font should draw it."""
    code = ord(char)
    if code in BRAILLE:
        return _braille(code - BRAILLE.start, width, height)
    if code in BLOCKS:
        return _block(code, width, height)
    arms = box_arms(char)
    if arms is not None:
        return _box(*arms, width, height)
    if char == CROSS:
        return _cross(width, height)
    return None


def box_arms(char: str) -> tuple[str, int, bool] | None:
    """``(arms, weight, arc)`` of a single-line box-drawing character: arms among ``udlr``, weight 1
    (light) or 2 (heavy), arc for the rounded corners. None for double, dashed and mixed lines,
    which a font draws."""
    name = unicodedata.name(char, "")
    words = name.split()
    if words[:2] != ["BOX", "DRAWINGS"] or len(words) < 4 or words[2] not in ("LIGHT", "HEAVY"):
        return None
    arc = words[3] == "ARC"
    arms = ""
    for word in words[4 if arc else 3:]:
        if word == "AND":
            continue
        if word not in _DIRECTIONS:
            return None
        arms += _DIRECTIONS[word]
    return arms, 1 if words[2] == "LIGHT" else 2, arc


def _braille(bits: int, width: int, height: int) -> Image.Image:
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    # Each dot is centred in its eighth of the cell, large enough that a curve of dots reads as a line.
    dot_w, dot_h = max(1, round(width / 2 * 0.6)), max(1, round(height / 4 * 0.6))
    for bit, (col, row) in enumerate(_BRAILLE_DOTS):
        if bits >> bit & 1:
            x = round((col + 0.5) * width / 2 - dot_w / 2)
            y = round((row + 0.5) * height / 4 - dot_h / 2)
            draw.rectangle((x, y, x + dot_w - 1, y + dot_h - 1), fill=255)
    return mask


def _block(code: int, width: int, height: int) -> Image.Image:
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)

    def fill(x0: float, y0: float, x1: float, y1: float, value: int = 255) -> None:
        left, top, right, bottom = round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height)
        if right > left and bottom > top:
            draw.rectangle((left, top, right - 1, bottom - 1), fill=value)

    if code == 0x2580:
        fill(0, 0, 1, 0.5)
    elif 0x2581 <= code <= 0x2588:  # lower one eighth .. full block
        fill(0, 1 - (code - 0x2580) / 8, 1, 1)
    elif 0x2589 <= code <= 0x258F:  # left seven eighths .. left one eighth
        fill(0, 0, (0x2590 - code) / 8, 1)
    elif code == 0x2590:
        fill(0.5, 0, 1, 1)
    elif code in _SHADES:
        fill(0, 0, 1, 1, _SHADES[code])
    elif code == 0x2594:
        fill(0, 0, 1, 1 / 8)
    elif code == 0x2595:
        fill(7 / 8, 0, 1, 1)
    else:
        for quarter, on in enumerate(_QUADRANTS[code]):
            if on == "1":
                col, row = quarter % 2, quarter // 2
                fill(col / 2, row / 2, (col + 1) / 2, (row + 1) / 2)
    return mask


def _box(arms: str, weight: int, arc: bool, width: int, height: int) -> Image.Image:
    """Lines from the cell's centre to the middle of each edge named in ``arms``, so neighbours join."""
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    thick = max(1, round(width / 9)) * weight
    cx, cy = (width - thick) // 2, (height - thick) // 2  # top-left pixel of the centre square
    if arc:  # a quarter circle joining the two arms
        radius = max(1, min(cx, width - cx - thick))  # as far as the narrower side of the centre allows
        ax = cx + (radius if "r" in arms else -radius)
        ay = cy + (radius if "d" in arms else -radius)
        start = {"dr": 180, "dl": 270, "ru": 90, "lu": 0}["".join(sorted(arms))]
        draw.arc((ax - radius, ay - radius, ax + radius + thick - 1, ay + radius + thick - 1),
                 start, start + 90, fill=255, width=thick)
        # straight from where the arc ends to the edges
        if "d" in arms:
            draw.rectangle((cx, ay, cx + thick - 1, height - 1), fill=255)
        if "u" in arms:
            draw.rectangle((cx, 0, cx + thick - 1, ay + thick - 1), fill=255)
        if "r" in arms:
            draw.rectangle((ax, cy, width - 1, cy + thick - 1), fill=255)
        if "l" in arms:
            draw.rectangle((0, cy, ax + thick - 1, cy + thick - 1), fill=255)
        return mask
    if "u" in arms:
        draw.rectangle((cx, 0, cx + thick - 1, cy + thick - 1), fill=255)
    if "d" in arms:
        draw.rectangle((cx, cy, cx + thick - 1, height - 1), fill=255)
    if "l" in arms:
        draw.rectangle((0, cy, cx + thick - 1, cy + thick - 1), fill=255)
    if "r" in arms:
        draw.rectangle((cx, cy, width - 1, cy + thick - 1), fill=255)
    return mask


def _cross(width: int, height: int) -> Image.Image:
    """A bold X as wide as the cell, centred where a letter's middle is: bigger than the font's
    multiplication sign (the heatmap's NaN), as in a terminal's fallback font."""
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    thick = max(1, round(width / 6))
    side = width - 2 * max(1, round(width / 10))
    left, top = (width - side) / 2, height * 0.55 - side / 2
    draw.line((left, top, left + side, top + side), fill=255, width=thick)
    draw.line((left, top + side, left + side, top), fill=255, width=thick)
    return mask
