"""The screens of an asciicast at a fixed frame rate: what a viewer's terminal showed at each tick.

The cast's output is played into a terminal emulator (pyte), and the screen is read at ``t0``,
``t0 + 1/fps``, ... up to the cast's last event. ``t0`` is the first update that draws something,
so a picture does not open on the blank screen of the app starting up.

The app writes a frame in one ``write``, but the pseudo-terminal hands it over in several reads a
millisecond or so apart. Reads closer together than :data:`BURST_GAP` are one update, and a screen
is only read between updates, so no frame shows half of one drawing and half of the next.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyte

from vgp_tui.errors import UserError

BURST_GAP = 0.02
"""Seconds: reads this close to the one before belong to the same update."""

# pyte reads the kitty keyboard protocol's CSI > 1 u (push) and CSI < u (pop) as a cursor restore
# followed by a printed "u"; they draw nothing, so they are dropped before pyte sees them.
_KITTY_KEYBOARD = re.compile(r"\x1b\[[<>=?][0-9;]*u")
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-~])")


@dataclass(frozen=True)
class Cell:
    """One character cell: colours are ``rrggbb`` hex strings, a colour name, or ``default``."""

    char: str
    fg: str
    bg: str
    bold: bool
    underline: bool
    reverse: bool


Screen = list[list[Cell]]


@dataclass(frozen=True)
class Timeline:
    """When the frames are: ``count`` ticks of ``1/fps`` seconds from ``start`` (seconds into the cast)."""

    start: float
    end: float
    fps: float

    @property
    def count(self) -> int:
        return int(math.floor((self.end - self.start) * self.fps + 1e-9)) + 1

    def time_of(self, frame: int) -> float:
        return self.start + frame / self.fps


def read_cast(path: str | Path) -> tuple[dict, list[tuple[float, str]]]:
    """The header and the output events ``(seconds, text)`` of an asciicast v2 file."""
    with open(path, encoding="utf-8") as f:
        header = json.loads(f.readline())
        events = [(float(e[0]), e[2]) for e in map(json.loads, f) if e[1] == "o"]
    return header, events


def updates(events: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """The events merged into whole updates, each timed at its last read."""
    merged: list[tuple[float, str]] = []
    for t, text in events:
        if merged and t - merged[-1][0] < BURST_GAP:
            merged[-1] = (t, merged[-1][1] + text)
        else:
            merged.append((t, text))
    return merged


def timeline(events: list[tuple[float, str]], fps: float) -> Timeline:
    """The frames' times: from the first update that draws a character to the cast's last event."""
    merged = updates(events)
    drawing = [t for t, text in merged if _ESCAPES.sub("", text).strip()]
    if not drawing:
        raise UserError("the cast drew nothing: no frame to make a picture of")
    return Timeline(start=drawing[0], end=max(merged[-1][0], drawing[0]), fps=fps)


def screens(events: list[tuple[float, str]], columns: int, rows: int, when: Timeline) -> Iterator[Screen | None]:
    """The screen at each of ``when``'s ticks, or None where it is the same as at the tick before."""
    emulator = pyte.Screen(columns, rows)
    stream = pyte.Stream(emulator)
    merged = updates(events)
    at = 0
    for frame in range(when.count):
        t = when.time_of(frame)
        changed = frame == 0
        while at < len(merged) and merged[at][0] <= t + 1e-9:
            stream.feed(_KITTY_KEYBOARD.sub("", merged[at][1]))
            at += 1
            changed = True
        yield _cells(emulator) if changed else None


def _cells(emulator: pyte.Screen) -> Screen:
    return [
        [Cell(c.data or " ", c.fg, c.bg, c.bold, c.underscore, c.reverse)
         for c in (line[x] for x in range(emulator.columns))]
        for line in (emulator.buffer[y] for y in range(emulator.lines))
    ]
