#!/usr/bin/env python
"""How much memory the History keeps as a run grows, and how fast the dashboard can read it.

    python benchmarks/history_memory.py            # up to 10^7 steps (about a minute)
    python benchmarks/history_memory.py --quick    # up to 10^5 steps

Feeds one :class:`~vgp_tui.engine.history.MultiResolutionSeries` of 22 channels (loss, total norm
and 20 layers: the deep-sigmoid preset's) with rows directly, step after step, with the dashboard's
window (1024 steps at full resolution, as ``History`` uses), and reports at 10^4, 10^5, 10^6 and 10^7
steps the bytes its arrays hold (``nbytes()``), the number of levels, and how long appending took.
Memory should grow with the logarithm of the run length (each tenfold adds the same few levels);
target: at most 16 MB at 10^7 steps. Also times ``series.view(120)`` (a 120-column plot) at 10^6
steps, the call the dashboard makes on every redraw.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from vgp_tui.engine.history import History, MultiResolutionSeries

CHANNELS = 22
TARGET_MB_AT_1E7 = 16.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="History memory and view time.")
    p.add_argument("--quick", action="store_true", help="stop at 10^5 steps")
    p.add_argument("--max-steps", type=int, default=None, help="largest checkpoint (default 10^7, quick 10^5)")
    p.add_argument("--window", type=int, default=History().window, help="steps kept at full resolution")
    p.add_argument("--view-runs", type=int, default=21, help="timed view(120) calls (median reported)")
    args = p.parse_args(argv)
    top = args.max_steps or (10**5 if args.quick else 10**7)
    checkpoints = [n for n in (10**4, 10**5, 10**6, 10**7) if n <= top] or [top]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"history memory benchmark: {CHANNELS} channels, window {args.window}; load average {load}")

    series = MultiResolutionSeries(CHANNELS, args.window)
    rng = np.random.default_rng(0)
    rows = [row for row in rng.lognormal(size=(64, CHANNELS))]  # numpy rows, as cheap to feed as lists
    header = f"{'steps':>12}{'levels':>8}{'buckets':>9}{'MB (nbytes)':>13}{'MB / decade':>13}{'appends/s':>12}"
    print(header)
    print("-" * len(header))
    step = 0
    previous_mb = None
    view_ms: list[float] = []
    results = {}
    view_at = 0
    for i, n in enumerate(checkpoints):
        started = time.perf_counter()
        while step < n:
            step += 1
            series.append(step, rows[step & 63])
        elapsed = time.perf_counter() - started
        done_here = n - (checkpoints[i - 1] if i else 0)
        rate = done_here / elapsed if elapsed > 0 else float("inf")
        mb = series.nbytes() / 1e6
        buckets = sum(level.size for level in series.levels)
        growth = f"{mb - previous_mb:13.2f}" if previous_mb is not None else f"{'-':>13}"
        print(f"{n:>12,}{len(series.levels):>8}{buckets:>9}{mb:13.2f}{growth}{rate:12,.0f}")
        previous_mb = mb
        results[n] = mb
        if n == 10**6 or (n == checkpoints[-1] and 10**6 not in checkpoints):
            for _ in range(3):
                series.view(120)  # warm
            for _ in range(args.view_runs):
                t = time.perf_counter()
                view = series.view(120)
                view_ms.append((time.perf_counter() - t) * 1000)
            view_at = n
            assert len(view) <= 120
    print(f"\nseries.view(120) at {view_at:,} steps: median {statistics.median(view_ms):.2f} ms, "
          f"min {min(view_ms):.2f} ms over {len(view_ms)} calls")
    print("\ntargets:")
    if 10**7 in results:
        ok = results[10**7] <= TARGET_MB_AT_1E7
        print(f"  history at 10^7 steps: {results[10**7]:.2f} MB (target <= {TARGET_MB_AT_1E7:g} MB): {'MET' if ok else 'NOT MET'}")
    else:
        print(f"  history at 10^7 steps: not measured (--quick or --max-steps); largest: {checkpoints[-1]:,} steps, "
              f"{results[checkpoints[-1]]:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
