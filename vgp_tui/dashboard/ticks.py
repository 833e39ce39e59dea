"""Axis ticks for the plotext panels: whole-number steps and short, distinct value labels."""

from __future__ import annotations

import math

import numpy as np

from vgp_tui.text import short_number, step_label


def step_ticks(first: float, last: float, count: int = 5, width: int | None = None) -> tuple[list[float], list[str]]:
    """Step ticks: the first step, then round steps (1, 2 or 5 times a power of ten) after it, labelled
    short (``1``, ``500``, ``1k``, ``2.5k``, ``1.2M``): the most of them, up to ``count``, whose labels
    keep a column or two between them on an axis ``width`` columns wide (when it is given).

    (Evenly spaced ticks read ``1 954 1 908 2 861`` on a narrow axis: neither round nor, with the
    thousands' spaces, clearly four numbers.)"""
    start, end = round(first), round(last)
    if end <= start:
        return [float(start)], [step_label(start)]
    span = end - start
    power = 10 ** max(0, math.floor(math.log10(span / count)))
    ticks = [start]
    for step in (m * power for m in (1, 2, 5, 10, 20, 50, 100)):
        # Round steps after the first, none closer to it than half a step (their labels would touch).
        rounds = [k * step for k in range(math.ceil((start + step / 2) / step), end // step + 1)]
        if len(rounds) > count - 1:
            continue
        labels = [step_label(t) for t in (start, *rounds)]
        gap = (rounds[0] - start if len(rounds) < 2 else min(rounds[0] - start, step)) if rounds else span
        if width is None or gap * width / span >= max(map(len, labels)) + 2:
            ticks = [start, *rounds]
            break
    return [float(t) for t in ticks], [step_label(t) for t in ticks]


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
        if len(candidates) < 2:
            # The finest 1-2-5 step that gives at most ``most`` ticks: on a linear axis, and on a log
            # axis too narrow for the sets above (a loss between 2.299 and 2.311), all but linear there.
            power = 10.0 ** math.floor(math.log10((high - low) / max(most, 2)))
            for step in (m * power for m in (1, 2, 5, 10, 20, 50)):
                first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
                if last - first < 1:  # one tick: keep the finer step's, thinned below (1.05 and 1.15 of 1.05-1.15)
                    break
                candidates = [k * step for k in range(first, last + 1)]
                if len(candidates) <= most:
                    break
        if len(candidates) > most:  # every other one (or more), keeping the first
            stride = math.ceil(len(candidates) / most)
            candidates = candidates[::stride]
        if len(candidates) >= 2:
            values = [float(f"{v:.12g}") for v in candidates]
            labels = [short_number(v) for v in values]
            for digits in range(4, 9):  # 2.305 between 2.3 and 2.31: three digits would write 2.31 twice
                if len(set(labels)) == len(labels):
                    break
                labels = [short_number(v, digits) for v in values]
            if log and all(math.log10(v).is_integer() for v in values) and max(map(len, labels)) > 4:
                labels = [f"1e{round(math.log10(v))}" for v in values]  # 1e-5, not 1e-05 or 0.00001
            if len(set(labels)) == len(labels):
                return values, labels
    values, labels = value_ticks(low, high, log, count=min(most, 4))
    return values, labels
