#!/usr/bin/env python
"""Soak: a long dashboard session must not grow threads, open files or memory beyond the History's bound.

    python benchmarks/soak.py --seconds 300                  # the real app, training, keys every 3 s
    python benchmarks/soak.py --seconds 3600 --toggle-every 5
    python benchmarks/soak.py --engine-steps 2000000         # an hour's steps, faster than real time

Live mode runs the real dashboard headless (``make_app(Session(load_preset('deep-sigmoid'),
device='cpu'))`` inside ``app.run_test(size=(120, 40))``), lets it train at full speed and presses a
remedy key every ``--toggle-every`` seconds, cycling through a, i, b, s, c, g, o, +, -, r and space
twice (pause, then resume once the pause shows).

Engine mode (``--engine-steps N``) builds the app with ``train=False`` and puts N synthetic
StepMetrics of 20 layers on its feed in big batches, calling ``app.refresh_panels()`` after each, as
if a session trained at ``--rate`` steps a second (600 by default: 2 million steps is about an hour).
The same key cycle happens every ``--toggle-every`` simulated seconds: in the first half only the live
keys (one long run, so its series grows to its full depth), in the second half every key (runs come
and go, so the History's run limit is exercised).

Both modes sample once a second: Python threads (``threading.active_count()``), OS threads and open
file descriptors of this process (/proc/self), RSS (VmRSS), the History's bytes (``nbytes()``) and
runs, steps so far, runs started. The table compares the first sample after the warm-up with the last
and the largest; the verdicts:

* threads: Python and OS thread counts constant after the warm-up, exactly one training thread while
  the app runs, and none left after it quits;
* open files: the descriptor count constant after the warm-up;
* memory: RSS, less the History's own (bounded) growth, grows by less than 64 MB after the warm-up
  and by less than 16 MB over the last half of the samples (flat);
* History: at most ``max_runs`` runs at every sample, each run's series within the logarithmic bound
  (at most 1 + log2(2 * steps / window) levels of ``2 * window`` buckets).

Exit status 0 when every verdict passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import math
import os
import sys
import threading
import time
import traceback
import tracemalloc
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

MB = 1024 * 1024
RSS_GROWTH_MB = 64.0
"""Largest RSS growth after the warm-up, beyond the History's own growth."""
RSS_LAST_HALF_MB = 16.0
"""Largest RSS growth over the last half of the samples, beyond the History's own growth."""
KEY_CYCLE = ("a", "i", "b", "s", "c", "g", "o", "plus", "minus", "r", "space space")
LIVE_KEYS = ("c", "g", "o", "plus", "minus", "space space")
"""Keys that change the current run without starting a new one."""
TABLE_HEADER = "metric"


# -- measuring this process ---------------------------------------------------------------------------


def proc_status() -> dict[str, int]:
    """VmRSS (kB) and Threads from /proc/self/status."""
    out = {"VmRSS": 0, "Threads": 0}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in out:
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def open_fds() -> int:
    """Open file descriptors (less the one the listing itself holds)."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1
    except OSError:
        return -1


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def history_bound(history: Any) -> int:
    """Bytes the History may hold for the steps it has: per run, the logarithmic number of levels."""
    total = 0
    for run in history.runs.values():
        series = run.series
        per_level = series.levels[0].nbytes()
        levels = max(1, 1 + math.floor(math.log2(2 * max(series.steps, 1) / series.window)))
        total += levels * per_level
    return total


@dataclass
class Sample:
    t: float
    """Seconds since the first trained step (live mode) or since the app started (engine mode)."""
    sim: float
    """Seconds of training the steps so far stand for (engine mode; live mode: same as t)."""
    steps: int
    runs: int
    keys: int
    py_threads: int
    os_threads: int
    training_threads: int
    fds: int
    rss_mb: float
    history_mb: float
    history_runs: int
    history_bound_mb: float
    history_max_runs: int
    state: str


def take_sample(t0: float, app: Any, steps: int, runs: int, keys: int, sim: float | None = None) -> Sample:
    status = proc_status()
    history = app.history
    t = time.monotonic() - t0
    return Sample(
        t=round(t, 2),
        sim=round(t if sim is None else sim, 1),
        steps=steps,
        runs=runs,
        keys=keys,
        py_threads=threading.active_count(),
        os_threads=status["Threads"],
        training_threads=len(app.training_threads),
        fds=open_fds(),
        rss_mb=round(status["VmRSS"] / 1024, 1),
        history_mb=round(history.nbytes() / MB, 2),
        history_runs=len(history.runs),
        history_bound_mb=round(history_bound(history) / MB, 2),
        history_max_runs=history.max_runs,
        state=history.state,
    )


# -- live mode ------------------------------------------------------------------------------------------


class StepCounter:
    """A session sink (called on the training thread) counting steps and runs."""

    def __init__(self) -> None:
        self.steps = 0
        self.runs = 0

    def __call__(self, events: list[Any]) -> None:
        from vgp_tui.engine.events import RunStarted, StepMetrics

        for event in events:
            if isinstance(event, StepMetrics):
                self.steps += 1
            elif isinstance(event, RunStarted):
                self.runs += 1


async def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def press(pilot: Any, app: Any, key: str) -> None:
    if key != "space space":
        await pilot.press(key)
        return
    # Pause, wait until the pause shows, resume. (A run that diverged or finished gets one press: a
    # fresh run; a second would pause that.)
    was = app.history.state
    await pilot.press("space")
    if was == "training":
        await wait_until(lambda: app.history.state == "paused", 5.0)
        await pilot.press("space")
        await wait_until(lambda: app.history.state == "training", 5.0)


async def live(args: argparse.Namespace, report: Callable[[Sample], None]) -> tuple[list[Sample], dict[str, Any]]:
    from vgp_tui.dashboard import make_app
    from vgp_tui.engine.session import Session
    from vgp_tui.scenario import load_preset

    before = {"py_threads": threading.active_count(), "os_threads": proc_status()["Threads"], "fds": open_fds()}
    session = Session(load_preset(args.preset), device="cpu")
    counter = StepCounter()
    session.sinks.append(counter)
    app = make_app(session)
    samples: list[Sample] = []
    async with app.run_test(size=(120, 40)) as pilot:
        # The clock starts at the first trained step: start-up (loading torch, the data, the model) is
        # not what is being measured, and takes very different times on a loaded machine.
        if not await wait_until(lambda: counter.steps > 0, args.startup_timeout):
            raise RuntimeError(f"no training step within {args.startup_timeout:g} s of the app starting")
        t0 = time.monotonic()
        pressed = [0]

        async def sampler() -> None:  # its own task, so a key press that waits does not delay samples
            next_sample = t0 + args.sample_every
            while True:
                await asyncio.sleep(max(0.0, next_sample - time.monotonic()))
                samples.append(take_sample(t0, app, counter.steps, counter.runs, pressed[0]))
                report(samples[-1])
                next_sample = max(next_sample + args.sample_every, time.monotonic())  # no bursts after a stall

        sampling = asyncio.create_task(sampler())
        next_key = t0 + args.toggle_every
        while time.monotonic() - t0 < args.seconds:
            if time.monotonic() >= next_key:
                await press(pilot, app, KEY_CYCLE[pressed[0] % len(KEY_CYCLE)])
                pressed[0] += 1
                next_key = max(next_key + args.toggle_every, time.monotonic())
            await asyncio.sleep(0.05)
        sampling.cancel()
        samples.append(take_sample(t0, app, counter.steps, counter.runs, pressed[0]))
        await pilot.press("q")
    await wait_until(lambda: not app.training_threads, 10.0)
    return samples, {"before": before, "training_threads_left": len(app.training_threads)}


# -- engine mode ----------------------------------------------------------------------------------------


class SyntheticSession:
    """Makes the events a session at ``rate`` steps a second would send, keys included."""

    def __init__(self, preset: str, remedies: dict[str, Any], layers: int, rate: float, toggle_every: float,
                 total: int, seed: int = 0) -> None:
        import numpy as np

        self.np = np
        self.rng = np.random.default_rng(seed)
        self.preset = preset
        self.remedies = dict(remedies)
        self.layers = tuple(f"fc{i}" for i in range(layers - 1)) + ("head",)
        self.rate = rate
        self.every = max(1, round(toggle_every * rate))
        self.total = total
        self.done = 0
        """Steps made so far, all runs together."""
        self.run = 0
        self.step = 0
        self.runs = 0
        self.keys = 0
        # A vanishing pattern: layer i's gradient about 10^(-(layers - 1 - i) / 2) of the last one's.
        self.scale = 10.0 ** (-(layers - 1 - np.arange(layers)) / 2)

    @property
    def t(self) -> float:
        return self.done / self.rate

    def start(self, reason: str = "start") -> list[Any]:
        from vgp_tui.engine.events import RunStarted

        self.run += 1
        self.runs += 1
        self.step = 0
        return [RunStarted(run=self.run, t=self.t, preset=self.preset, layers=self.layers, remedies=dict(self.remedies),
                           seed=0, reason=reason, params=12345)]

    def steps(self, n: int) -> list[Any]:
        from vgp_tui.engine.events import StepMetrics

        np = self.np
        grads = self.scale * self.rng.lognormal(0.0, 0.3, size=(n, len(self.layers)))
        if self.rng.random() < 0.02:  # now and then a non-finite measurement, as a diverging run sends
            grads[self.rng.integers(n), self.rng.integers(len(self.layers))] = self.rng.choice([np.nan, np.inf])
        steps = np.arange(self.step + 1, self.step + n + 1)
        loss = 1.1 * np.exp(-steps / 2e5) + 0.01 * self.rng.random(n)
        total = np.sqrt(np.nansum(grads**2, axis=1))
        lr = float(self.remedies.get("lr") or 0.1)
        t0, dt = self.t, 1.0 / self.rate
        events = [
            StepMetrics(run=self.run, step=s, t=t0 + i * dt, loss=lo, grad_norm=tuple(g), total_norm=tn, lr=lr,
                        step_ms=1.6, probe_ms=0.1)
            for i, (s, lo, g, tn) in enumerate(zip(steps.tolist(), loss.tolist(), grads.tolist(), total.tolist()))
        ]
        self.step += n
        self.done += n
        return events

    def key(self, key: str) -> list[Any]:
        """The events pressing ``key`` makes (as Session._apply and VgpApp's actions would send them)."""
        from vgp_tui.engine.events import KeyPressed, RemedyChanged, StateChanged
        from vgp_tui.engine.remedies import REMEDIES

        self.keys += 1
        t = self.t
        if key == "space space":
            return [KeyPressed(self.run, self.step, t, "space", "pause"),
                    StateChanged(self.run, self.step, t, "paused"),
                    KeyPressed(self.run, self.step, t, "space", "resume"),
                    StateChanged(self.run, self.step, t, "training")]
        if key == "r":
            return [KeyPressed(self.run, self.step, t, "r", "restart"), *self.start("restart")]
        name = {"plus": "lr", "minus": "lr"}.get(key) or next(n for n, r in REMEDIES.items() if r.key == key)
        remedy = REMEDIES[name]
        old = self.remedies[name]
        new = remedy.scaled(old, 2.0 if key == "plus" else 0.5) if name == "lr" else remedy.next_value(old)
        self.remedies[name] = new
        events: list[Any] = [KeyPressed(self.run, self.step, t, key, f"{name}={remedy.format(new)}")]
        if remedy.structural:
            events.append(RemedyChanged(self.run, self.step, t, name, old, new, True))
            events += self.start("remedy")
        else:
            events.append(RemedyChanged(self.run, self.step + 1, t, name, old, new, False))
        return events

    def batch(self, size: int) -> list[Any]:
        """About ``size`` steps' events, keys pressed where their simulated time comes."""
        events: list[Any] = []
        goal = min(self.total, self.done + size)
        while self.done < goal:
            until_key = self.every - self.done % self.every
            n = min(until_key, goal - self.done)
            events += self.steps(n)
            if self.done % self.every == 0 and self.done < self.total:
                cycle = LIVE_KEYS if self.done < self.total // 2 else KEY_CYCLE
                events += self.key(cycle[(self.keys) % len(cycle)])
        return events


async def engine(args: argparse.Namespace, report: Callable[[Sample], None]) -> tuple[list[Sample], dict[str, Any]]:
    from vgp_tui.dashboard import make_app
    from vgp_tui.engine.session import Session
    from vgp_tui.scenario import load_preset

    before = {"py_threads": threading.active_count(), "os_threads": proc_status()["Threads"], "fds": open_fds()}
    session = Session(load_preset(args.preset), device="cpu")  # never trained: it names the preset and device
    app = make_app(session, train=False)
    synthetic = SyntheticSession(args.preset, session.initial_remedies(), args.layers, args.rate, args.toggle_every,
                                 args.engine_steps)
    samples: list[Sample] = []
    async with app.run_test(size=(120, 40)) as pilot:
        t0 = time.monotonic()
        next_sample = t0 + args.sample_every
        app.feed.put(synthetic.start())
        # A sample every second, and at least 50 in all however fast the batches go.
        every_batches = max(1, math.ceil(args.engine_steps / args.batch / 50))
        batches = 0
        while synthetic.done < args.engine_steps:
            app.feed.put(synthetic.batch(args.batch))
            app.refresh_panels()
            await pilot.pause()  # let Textual lay out and render what changed
            batches += 1
            if time.monotonic() >= next_sample or batches % every_batches == 0:
                samples.append(take_sample(t0, app, synthetic.done, synthetic.runs, synthetic.keys, synthetic.t))
                report(samples[-1])
                next_sample = time.monotonic() + args.sample_every
        app.refresh_panels()
        await pilot.pause()
        samples.append(take_sample(t0, app, synthetic.done, synthetic.runs, synthetic.keys, synthetic.t))
        await pilot.press("q")
    return samples, {"before": before, "training_threads_left": len(app.training_threads)}


# -- verdicts and the table -----------------------------------------------------------------------------


@dataclass
class Verdict:
    ok: bool
    name: str
    text: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.text}"


def split_warmup(samples: list[Sample], warmup: float, key: str = "t") -> list[Sample]:
    """The samples from the first one at or after the warm-up (at least two when there are two)."""
    after = [s for s in samples if getattr(s, key) >= warmup]
    if len(after) < 2:
        after = samples[-2:]
    return after


def verdicts(samples: list[Sample], extra: dict[str, Any], live_mode: bool) -> list[Verdict]:
    base, last = samples[0], samples[-1]
    out = []
    py = {s.py_threads for s in samples}
    os_threads = {s.os_threads for s in samples}
    one_trainer = all(s.training_threads == 1 for s in samples) if live_mode else all(s.training_threads == 0 for s in samples)
    after = extra["after"]
    gone = extra["training_threads_left"] == 0 and after["py_threads"] <= extra["before"]["py_threads"]
    out.append(Verdict(
        len(py) == 1 and len(os_threads) == 1 and one_trainer and gone, "threads",
        f"python {base.py_threads} -> {last.py_threads} (range {min(py)}..{max(py)}), "
        f"OS {base.os_threads} -> {last.os_threads} (range {min(os_threads)}..{max(os_threads)}), "
        f"{'one training thread at every sample' if live_mode else 'no training thread (engine mode)'}"
        f"{'' if one_trainer else ' VIOLATED'}; after quitting: {extra['training_threads_left']} training, "
        f"{after['py_threads']} python threads (before the app: {extra['before']['py_threads']})",
    ))
    fds = {s.fds for s in samples}
    out.append(Verdict(len(fds) == 1, "open files", f"{base.fds} -> {last.fds} (range {min(fds)}..{max(fds)}); "
                       f"after quitting {after['fds']} (before the app: {extra['before']['fds']})"))
    peak = max(samples, key=lambda s: s.rss_mb)
    growth = peak.rss_mb - base.rss_mb - max(0.0, peak.history_mb - base.history_mb)
    mid = samples[len(samples) // 2]
    late = last.rss_mb - mid.rss_mb - max(0.0, last.history_mb - mid.history_mb)
    out.append(Verdict(
        growth < RSS_GROWTH_MB and late < RSS_LAST_HALF_MB, "memory",
        f"RSS {base.rss_mb:.1f} -> {last.rss_mb:.1f} MB (max {peak.rss_mb:.1f}): +{growth:.1f} MB beyond the History's "
        f"growth after the warm-up (bound {RSS_GROWTH_MB:.0f} MB), {late:+.1f} MB over the last half "
        f"(t={mid.t:.0f}..{last.t:.0f} s; bound {RSS_LAST_HALF_MB:.0f} MB)",
    ))
    worst = max(samples, key=lambda s: s.history_mb / max(s.history_bound_mb, 1e-9))
    runs_ok = all(s.history_runs <= s.history_max_runs for s in samples)
    bound_ok = all(s.history_mb <= s.history_bound_mb + 1e-6 for s in samples)
    out.append(Verdict(
        runs_ok and bound_ok, "History",
        f"at most {max(s.history_runs for s in samples)} runs (limit {base.history_max_runs}); "
        f"{max(s.history_mb for s in samples):.2f} MB at most; closest to its bound: {worst.history_mb:.2f} of "
        f"{worst.history_bound_mb:.2f} MB at t={worst.t:.0f} s",
    ))
    return out


def table(all_samples: list[Sample], samples: list[Sample]) -> str:
    base, last = samples[0], samples[-1]
    rows: list[tuple[str, str]] = [
        ("t (s)", "t"), ("simulated s", "sim"), ("steps trained", "steps"), ("runs started", "runs"),
        ("keys pressed", "keys"), ("python threads", "py_threads"), ("OS threads", "os_threads"),
        ("training threads", "training_threads"), ("open fds", "fds"), ("RSS (MB)", "rss_mb"),
        ("History (MB)", "history_mb"), ("History bound (MB)", "history_bound_mb"), ("History runs", "history_runs"),
    ]
    header = f"{TABLE_HEADER:<20}{'after warm-up':>15}{'last':>15}{'max':>15}"
    lines = [header, "-" * len(header)]
    for label, key in rows:
        values = [getattr(base, key), getattr(last, key), max(getattr(s, key) for s in samples)]
        lines.append(f"{label:<20}" + "".join(f"{v:>15,}" if isinstance(v, int) else f"{v:>15,.2f}" for v in values))
    rate = last.steps / last.t if last.t else 0.0
    lines.append(f"{'steps/s (overall)':<20}{'':>15}{rate:>15,.0f}")
    lines.append(f"{'samples':<20}{len(samples):>15}{'':>15}{'':>15}   ({len(all_samples)} with the warm-up)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Long-session soak of the dashboard: threads, open files, memory.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--seconds", type=float, default=None, help="live mode: run the real app this long (default 60)")
    mode.add_argument("--engine-steps", type=int, default=None,
                      help="engine mode: feed this many synthetic steps through the History and the refresh path")
    p.add_argument("--toggle-every", type=float, default=3.0,
                   help="seconds between key presses (engine mode: simulated seconds); default 3")
    p.add_argument("--warmup", type=float, default=None,
                   help="seconds (engine mode: fraction of the steps) before the baseline sample; default "
                        "min(30, 20%% of --seconds), engine mode 0.1")
    p.add_argument("--sample-every", type=float, default=1.0, help="seconds between samples (default 1)")
    p.add_argument("--preset", default="deep-sigmoid")
    p.add_argument("--rate", type=float, default=600.0, help="engine mode: simulated steps per second (default 600)")
    p.add_argument("--batch", type=int, default=6000, help="engine mode: steps put on the feed per refresh (default 6000)")
    p.add_argument("--layers", type=int, default=20, help="engine mode: layers per step (default 20)")
    p.add_argument("--csv", default=None, help="also write every sample to this CSV file")
    p.add_argument("--tracemalloc", type=int, default=0, metavar="N",
                   help="trace Python allocations and print the N places whose memory grew most from the "
                        "warm-up to the end (slow, and its own bookkeeping adds to RSS: for finding a leak, "
                        "not for the verdicts)")
    p.add_argument("--startup-timeout", type=float, default=180.0,
                   help="live mode: seconds to wait for the first trained step (default 180)")
    args = p.parse_args(argv)
    live_mode = args.engine_steps is None
    if live_mode and args.seconds is None:
        args.seconds = 60.0
    if live_mode:
        warmup = args.warmup if args.warmup is not None else max(1.0, min(30.0, 0.2 * args.seconds))
        what = (f"live dashboard, {args.preset} on cpu, {args.seconds:g} s from the first step, a key every "
                f"{args.toggle_every:g} s, warm-up {warmup:g} s")
    else:
        warmup = args.warmup if args.warmup is not None else 0.1
        what = (f"engine + refresh path, {args.engine_steps:,} synthetic steps of {args.layers} layers "
                f"(= {args.engine_steps / args.rate / 60:.1f} min at {args.rate:g} steps/s), a key every "
                f"{args.toggle_every:g} simulated s, {args.batch:,} steps per refresh, warm-up {warmup:.0%} of the steps")
    print(f"soak: {what}")
    print(f"load average at start: {load_average()}  (cpus: {os.cpu_count()})", flush=True)

    progress_every = max(10.0, (args.seconds or 0) / 10) if live_mode else None
    last_report = [0.0]

    def progress(sample: Sample) -> None:
        due = sample.t - last_report[0] >= progress_every if live_mode else sample.steps - last_report[0] >= args.engine_steps / 10
        if due:
            last_report[0] = sample.t if live_mode else sample.steps
            print(f"  t={sample.t:7.1f}s steps={sample.steps:>9,} runs={sample.runs:>4} keys={sample.keys:>4} "
                  f"threads={sample.py_threads}/{sample.os_threads} fds={sample.fds} rss={sample.rss_mb:.1f}MB "
                  f"history={sample.history_mb:.2f}MB/{sample.history_runs} runs state={sample.state}", flush=True)

    if args.tracemalloc:
        tracemalloc.start(8)

    def report(sample: Sample) -> None:
        if args.tracemalloc and not snapshots and (sample.t >= warmup if live_mode else sample.steps >= warmup * args.engine_steps):
            snapshots.append(tracemalloc.take_snapshot())
        progress(sample)

    snapshots: list[Any] = []
    started = time.monotonic()
    try:
        samples, extra = asyncio.run(live(args, report) if live_mode else engine(args, report))
    except Exception:  # noqa: BLE001 - the soak reports a crash as a failed verdict
        traceback.print_exc()
        print("FAIL app: the app raised (traceback above)")
        print("result: FAIL")
        return 1
    # Measured once the event loop is closed: Textual runs the training worker in the loop's default
    # executor, whose (idle) thread is only joined when asyncio.run shuts the loop down.
    extra["after"] = {"py_threads": threading.active_count(), "os_threads": proc_status()["Threads"], "fds": open_fds()}
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(Sample)])
            writer.writeheader()
            writer.writerows(asdict(s) for s in samples)
    if not samples:
        print("FAIL samples: none taken")
        print("result: FAIL")
        return 1
    kept = split_warmup(samples, warmup) if live_mode else split_warmup(samples, warmup * samples[-1].steps, "steps")
    print()
    print(table(samples, kept))
    print()
    results = verdicts(kept, extra, live_mode)
    for verdict in results:
        print(verdict.line())
    ok = all(v.ok for v in results)
    if args.tracemalloc and snapshots:
        print()
        print(f"Python allocations that grew most after the warm-up (tracemalloc, top {args.tracemalloc}):")
        growth = tracemalloc.take_snapshot().compare_to(snapshots[0], "traceback")
        for stat in growth[: args.tracemalloc]:
            print(f"  {stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+7d} blocks")
            for line in stat.traceback.format()[-6:]:
                print(f"      {line}")
    print(f"load average at end: {load_average()}; wall time {time.monotonic() - started:.0f} s")
    print(f"result: {'PASS' if ok else 'FAIL'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
