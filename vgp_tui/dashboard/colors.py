"""Colour scales for gradient norms: a perceptual colour map and the mapping of norms onto it.

Plain numpy, no Textual, so the mapping can be tested on its own; the heatmap is its one user (the
flow bars are coloured by each layer's verdict, :mod:`vgp_tui.health`, not by this map). Norms are
compared on a log10 scale: gradients that vanish span ten or more orders of magnitude, and a linear
scale would show all but the largest as one colour.
"""

from __future__ import annotations

import math

import numpy as np

VIRIDIS_STOPS = np.array(
    [
        (68, 1, 84),
        (71, 45, 123),
        (59, 82, 139),
        (44, 114, 142),
        (33, 145, 140),
        (40, 174, 128),
        (94, 201, 98),
        (173, 220, 48),
        (253, 231, 37),
    ],
    dtype=np.float64,
)
"""Viridis (van der Walt & Smith, matplotlib) sampled at nine evenly spaced points, low to high.

Perceptually uniform and monotonic in lightness, so it also reads in grey (NO_COLOR terminals that
only dim colours) and for the common forms of colour blindness; it contains no red or magenta, which
are kept for NaN and Inf cells.
"""

NAN_RGB = (230, 20, 60)
"""Background of NaN cells: a red that the colour map never produces."""
INF_RGB = (255, 80, 230)
"""Background of Inf cells: a magenta that the colour map never produces."""
ZERO_RGB = (90, 90, 90)
"""Glyph colour of exact zeros (log10 = -inf, dead layers): grey, darker than the map's low end."""

LEVELS = 64
"""Colour levels of the quantised map: enough that neighbours look continuous, few enough to cache."""

# Codes of cells that are not a colour level (levels are 0 .. LEVELS - 1).
ZERO = LEVELS
"""Code of an exact zero norm."""
NAN = LEVELS + 1
"""Code of a NaN norm (or a negative one, which a norm can never be)."""
INF = LEVELS + 2
"""Code of an infinite norm."""

MIN_DECADES = 2.0
"""The scale spans at least this many decades, so a nearly constant picture does not exaggerate noise."""


def colormap(t: np.ndarray | float) -> np.ndarray:
    """RGB (0..255, float) of positions ``t`` in [0, 1] on the colour map, interpolated between stops.

    Returns an array of shape ``t.shape + (3,)``; positions outside [0, 1] are clamped.
    """
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
    x = np.linspace(0.0, 1.0, len(VIRIDIS_STOPS))
    return np.stack([np.interp(t, x, VIRIDIS_STOPS[:, c]) for c in range(3)], axis=-1)


def level_rgb(levels: int = LEVELS) -> list[tuple[int, int, int]]:
    """The RGB colour of each quantised level (level k sits at the centre of its bucket)."""
    centres = (np.arange(levels) + 0.5) / levels
    return [tuple(int(round(v)) for v in rgb) for rgb in colormap(centres)]  # type: ignore[misc]


def log_norms(values: np.ndarray) -> np.ndarray:
    """log10 of gradient norms: 0 -> -inf, NaN and negatives -> NaN, inf -> inf, without warnings."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(values)


def scale_range(logs: np.ndarray, min_decades: float = MIN_DECADES) -> tuple[float, float]:
    """Whole decades ``(low, high)`` that hold every finite value of ``logs`` (log10 norms).

    The range is rounded outwards to whole decades, so the scale's labels are powers of ten, and is
    widened around its centre to at least ``min_decades``. Without finite values it is (-2, 0).
    """
    finite = np.asarray(logs, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return (-float(min_decades), 0.0)
    # A hair of tolerance so 1e-12 (log10 = -12.000000000000002) is not pushed a decade further out.
    low = math.floor(float(finite.min()) + 1e-9)
    high = math.ceil(float(finite.max()) - 1e-9)
    if high - low < min_decades:
        missing = min_decades - (high - low)
        low -= math.ceil(missing / 2)
        high += math.floor(missing / 2)
        if high - low < min_decades:
            high += 1
    return (float(low), float(high))


def cell_codes(logs: np.ndarray, low: float, high: float, levels: int = LEVELS) -> np.ndarray:
    """Quantise log10 norms onto ``levels`` colour levels between ``low`` and ``high`` (clamped).

    Returns int16 codes of the same shape: ``0 .. levels - 1`` for finite values, :data:`ZERO` for
    -inf (a zero norm), :data:`INF` for +inf and :data:`NAN` for NaN. (The special codes assume the
    default number of levels.)
    """
    logs = np.asarray(logs, dtype=np.float64)
    span = max(high - low, 1e-12)
    with np.errstate(invalid="ignore"):
        scaled = np.floor((logs - low) / span * levels)
    codes = np.clip(np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0), 0, levels - 1).astype(np.int16)
    codes[np.isnan(logs)] = NAN
    codes[logs == np.inf] = INF
    codes[logs == -np.inf] = ZERO
    return codes


def decade_ticks(low: float, high: float, most: int = 5) -> list[int]:
    """Whole decades to label on a scale from ``low`` to ``high``: both ends and evenly spaced ones between.

    At most ``most`` ticks (at least 2 when the ends differ).
    """
    lo, hi = int(round(low)), int(round(high))
    if hi <= lo:
        return [lo]
    span = hi - lo
    stride = max(1, math.ceil(span / (most - 1)))
    ticks = list(range(lo, hi, stride))
    if hi - ticks[-1] <= stride / 2 and len(ticks) > 1:
        ticks.pop()  # too close to the top end to label both
    return ticks + [hi]


def format_decade(exponent: int) -> str:
    """``1e-12``, ``1e+0``, ``1e+3``: a power of ten as the scale labels it."""
    return f"1e{exponent:+d}"
