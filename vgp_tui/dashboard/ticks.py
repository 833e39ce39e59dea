"""Axis ticks for the plotext panels: whole-number steps and short, distinct value labels."""

from __future__ import annotations

import math

import numpy as np


def step_ticks(first: float, last: float, count: int = 5) -> tuple[list[float], list[str]]:
    """Whole-number step ticks (plotext would label steps 18.0, 302.2, ...)."""
    if last <= first:
        return [first], [f"{int(first)}"]
    ticks = sorted({round(v) for v in np.linspace(first, last, count)})
    return [float(t) for t in ticks], [f"{t:,}".replace(",", " ") for t in ticks]


def value_ticks(low: float, high: float, log: bool, count: int = 4) -> tuple[list[float], list[str]]:
    """Short y labels: decades (1e-3) on a log axis that spans them, else three significant digits."""
    if log and low > 0 and math.log10(high) - math.log10(low) >= 2:
        a, b = math.floor(math.log10(low)), math.ceil(math.log10(high))
        step = max(1, math.ceil((b - a) / count))
        decades = list(range(a, b + 1, step))
        return [10.0**k for k in decades], [f"1e{k}" for k in decades]
    if high <= low:
        return [low], [f"{low:.3g}"]
    if log and low > 0:
        values = np.logspace(math.log10(low), math.log10(high), count)
    else:
        values = np.linspace(low, high, count)
    for digits in range(3, 9):  # enough digits that neighbouring labels differ
        labels = [f"{v:.{digits}g}" for v in values]
        if len(set(labels)) == len(labels):
            break
    return values.tolist(), labels
