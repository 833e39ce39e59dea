"""Numbers and text as the screen and the messages write them, in one place.

Plain Python (no Textual, torch or numpy), so every panel, message and report can share one way of
writing a step count, a gradient norm or a name cut to fit.
"""

from __future__ import annotations

import math

ELLIPSIS = "…"
"""Marks where text was cut to fit."""


def clip_end(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cut at the end with an ellipsis."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: width - 1] + ELLIPSIS


def fold_long_words(text: str, width: int) -> str:
    """``text`` with every word longer than ``width`` cells broken into pieces of ``width``, each on a
    line of its own: a path in a toast. (Textual folds such a word itself, but wider than the toast
    shows, and the cells in between were lost.) Lines and shorter words are left as they are."""
    if width <= 0:
        return text

    def fold(word: str) -> str:
        return "\n".join(word[i : i + width] for i in range(0, len(word), width)) if len(word) > width else word

    return "\n".join(" ".join(fold(word) for word in line.split(" ")) for line in text.split("\n"))


def thousands(n: int) -> str:
    """``12 400``: a whole number with a space between thousands, as the status line and axes write steps."""
    return f"{n:,}".replace(",", " ")


def plural(n: int, word: str) -> str:
    """``1 step``, ``2 steps``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def format_norm(x: float, *, signed_exponent: bool = True) -> str:
    """A gradient norm in one significant digit: ``3e-5``, ``2e+1``, ``0``, ``NaN``, ``Inf``.

    ``signed_exponent=False`` writes a positive exponent below 10 without its sign (``2e1``), as the
    time view's compact line does.
    """
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf"
    if x == 0:
        return "0"
    return f"{x:.0e}".replace("e-0", "e-").replace("e+0", "e+" if signed_exponent else "e")


def short_number(value: float, digits: int = 3) -> str:
    """``0.2``, ``1.5``, ``300``, ``1e-5``: a round tick value in as few characters as it takes (at most
    ``digits`` significant digits)."""
    text = f"{value:.{digits}g}"
    mantissa, sep, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if sep else text


def step_label(n: int) -> str:
    """A step number as an axis writes it: ``950``, ``1k``, ``2.5k``, ``12k``, ``1.2M`` (three
    significant digits at most; the status line has the exact step)."""
    units = ((10**9, "G"), (10**6, "M"), (10**3, "k"))
    for i, (size, suffix) in enumerate(units):
        if abs(n) >= size:
            text = f"{n / size:.3g}"
            if i and abs(float(text)) >= 1000:  # 999 999 is "1M", not "1e+03k"
                return f"{n / units[i - 1][0]:.3g}{units[i - 1][1]}"
            return text + suffix
    return str(n)


def two_significant(x: float) -> str:
    """Two significant digits, short, for the diagnosis's sentences: ``3e-11``, ``0.25``, ``12``,
    ``4.5e4``, ``nan``."""
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if x == 0:
        return "0"
    if 1e-2 <= abs(x) < 1e3:
        return f"{float(f'{x:.2g}'):f}".rstrip("0").rstrip(".")
    mantissa, _, exponent = f"{x:.1e}".partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def three_significant(x: float) -> str:
    """A measured value for the user (messages, the headless summary): three significant digits,
    ``NaN``, ``Inf`` and ``-Inf`` spelled one way."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    return f"{x:.3g}"
