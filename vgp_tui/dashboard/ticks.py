"""Axis ticks for the plotext panels: whole-number steps and short, distinct value labels."""

from __future__ import annotations

import math

import numpy as np

from vgp_tui.text import short_number, thousands


def step_ticks(first: float, last: float, count: int = 5) -> tuple[list[float], list[str]]:
    """Whole-number step ticks (plotext would label steps 18.0, 302.2, ...)."""
    if last <= first:
        return [first], [f"{int(first)}"]
    ticks = sorted({round(v) for v in np.linspace(first, last, count)})
    return [float(t) for t in ticks], [thousands(t) for t in ticks]


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


def round_ticks(low: float, high: float, log: bool, most: int = 5) -> tuple[list[float], list[str]]:
    """Round values (1, 2 and 5 times a power of ten, or whole decades) inside ``[low, high]``, at
    least two and at most ``most``, with short labels; :func:`value_ticks` where too few round values
    fall inside (a range narrower than its own magnitude)."""
    if high > low and (low > 0 or not log):
        candidates: list[float] = []
        if log and math.log10(high) - math.log10(low) >= 2:
            first, last = math.ceil(math.log10(low) - 1e-9), math.floor(math.log10(high) + 1e-9)
            candidates = [10.0**k for k in range(first, last + 1)]
        elif log:
            # The densest of these sets that gives two to ``most`` ticks (else the densest with two).
            sets = [(1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 5), (1, 3), (1,)]
            found = [
                [
                    m * 10.0**k
                    for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
                    for m in mantissas
                    if low * (1 - 1e-9) <= m * 10.0**k <= high * (1 + 1e-9)
                ]
                for mantissas in sets
            ]
            fitting = [c for c in found if 2 <= len(c) <= most]
            candidates = fitting[0] if fitting else next((c for c in reversed(found) if len(c) >= 2), [])
        else:
            # The finest 1-2-5 step that gives at most ``most`` ticks.
            power = 10.0 ** math.floor(math.log10((high - low) / max(most, 2)))
            for step in (m * power for m in (1, 2, 5, 10, 20, 50)):
                first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
                if last - first + 1 <= most:
                    break
            candidates = [k * step for k in range(first, last + 1)]
        if len(candidates) > most:  # every other one (or more), keeping the first
            stride = math.ceil(len(candidates) / most)
            candidates = candidates[::stride]
        if len(candidates) >= 2:
            values = [float(f"{v:.12g}") for v in candidates]
            labels = [short_number(v) for v in values]
            if log and all(math.log10(v).is_integer() for v in values) and max(map(len, labels)) > 4:
                labels = [f"1e{round(math.log10(v))}" for v in values]  # 1e-5, not 1e-05 or 0.00001
            if len(set(labels)) == len(labels):
                return values, labels
    values, labels = value_ticks(low, high, log, count=min(most, 4))
    return values, labels
