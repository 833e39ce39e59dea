#!/usr/bin/env python
"""What watching costs: the dashboard's share of the trainer's CPU, its refresh tick, its output.

    python benchmarks/dashboard_cost.py            # about two and a half minutes
    python benchmarks/dashboard_cost.py --quick    # a few seconds, to prove it still works

1. Training speed with the dashboard attached (the real app, headless, refreshing at its normal
   rate) divided by training speed headless, on deep-sigmoid. Blocks alternate headless, dashboard,
   headless, ..., headless, and each dashboard block is divided by the mean of the two headless
   blocks around it, so drift of a shared machine cancels to first order. Both use the thread
   budget the dashboard uses (one thread fewer than cores), so the ratio is the UI's cost alone.
   Beside it, the CPU time of the UI thread per second: the cost itself, which wall-clock noise
   does not blur.
2. The UI's time per refresh tick at 120x40 with 10^6 steps of history: draining a new batch of
   events into the History, choosing what to redraw, and rendering every panel (the plotext plots
   rebuild their figure, the heatmap its strips), as the timer does five times a second.
3. Bytes per second written to a 120x40 terminal in steady state, the time from launch to the
   first complete frame, and the CPU time of the UI thread and of the training threads there: the
   real ``vgp-tui`` in a pseudo-terminal, as over SSH (the per-thread times come from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import statistics
import struct
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import median_ci  # noqa: E402 - the benchmarks share one definition


def headless_rate(seconds: float) -> float:
    from vgp_tui.engine.session import Session
    from vgp_tui.scenario import load_preset

    session = Session(load_preset("deep-sigmoid"), device="cpu")
    session.start_run()
    stop = threading.Event()
    thread = threading.Thread(target=session.run, args=(stop,))
    thread.start()
    time.sleep(1.0)  # warm-up
    start_steps, start = session.trainer.step_count, time.perf_counter()
    time.sleep(seconds)
    rate = (session.trainer.step_count - start_steps) / (time.perf_counter() - start)
    stop.set()
    thread.join()
    return rate


def dashboard_rate(seconds: float) -> tuple[float, float]:
    """(training steps per second, milliseconds of UI-thread CPU per second) with the app attached."""
    from vgp_tui.dashboard import make_app
    from vgp_tui.engine.session import Session
    from vgp_tui.scenario import load_preset

    result: list[tuple[float, float]] = []

    async def main() -> None:
        session = Session(load_preset("deep-sigmoid"), device="cpu")
        app = make_app(session)
        async with app.run_test(size=(120, 40)) as pilot:
            while session.trainer is None:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            # The app runs on this thread (run_test drives it from this event loop).
            start_steps, start, start_cpu = session.trainer.step_count, time.perf_counter(), time.thread_time()
            await asyncio.sleep(seconds)
            elapsed = time.perf_counter() - start
            result.append(((session.trainer.step_count - start_steps) / elapsed,
                           1000.0 * (time.thread_time() - start_cpu) / elapsed))
            await pilot.press("q")

    asyncio.run(main())
    return result[0]


def tick_times(history_steps: int, ticks: int) -> tuple[list[float], list[float]]:
    """Milliseconds per refresh tick with ``history_steps`` of history, each tick bringing new steps:
    as the timer runs them (costly panels throttled), and with every panel redrawn."""
    from vgp_tui.dashboard import make_app
    from vgp_tui.engine.events import RunStarted, StepMetrics
    from vgp_tui.engine.session import Session
    from vgp_tui.scenario import load_preset

    layers = tuple(f"layer{i}" for i in range(1, 21))
    norms = tuple(10.0 ** -(20 - i) for i in range(20))
    times: list[float] = []
    full: list[float] = []

    async def main() -> None:
        app = make_app(Session(load_preset("deep-sigmoid"), device="cpu"), train=False)
        async with app.run_test(size=(120, 40)) as pilot:
            history = app.history
            history.add(RunStarted(run=1, t=0.0, preset="deep-sigmoid", layers=layers, remedies={"lr": 0.1}, seed=0))
            series = history.current.series
            row = [1.1, 0.3, *norms]
            for step in range(1, history_steps + 1):  # straight into the series: fast to build
                series.append(step, row)
            await pilot.pause()
            panels = [app.query_one(selector) for selector in ("#status", "#loss", "#flow", "#heatmap", "#diagnosis")]
            step = history_steps
            for _ in range(ticks):
                batch = [StepMetrics(run=1, step=step + k, t=step * 0.002, loss=1.1, grad_norm=norms, total_norm=0.3,
                                     step_ms=2.0, probe_ms=0.1) for k in range(1, 76)]  # ~375 steps/s at 5 Hz
                step += 75
                app.feed.put(batch)
                started = time.perf_counter()
                app.refresh_panels()
                for panel in panels:  # what the screen refresh then draws
                    panel.render_lines(panel.region.reset_offset)
                times.append((time.perf_counter() - started) * 1000.0)
                app._drawn.clear()  # the worst tick: every panel redrawn (a resize, a new run)
                started = time.perf_counter()
                app.refresh_panels()
                for panel in panels:
                    panel.render_lines(panel.region.reset_offset)
                full.append((time.perf_counter() - started) * 1000.0)
                await pilot.pause(0.01)
            await pilot.press("q")

    asyncio.run(main())
    return times, full


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of process ``pid``, from /proc; {} where there is none."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a thread that ended meanwhile
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return out


def terminal_output(seconds: float, warmup: float) -> tuple[float, float, float, float, float]:
    """The real app in a pty: seconds to the frame (panels and keys, before torch is imported),
    seconds to the first data (a training step on the status line), bytes per second in steady state, and
    CPU milliseconds per second of its UI thread (the main thread) and of all its other threads
    (training) over the same stretch; NaN where /proc is missing."""
    import fcntl
    import pty
    import termios

    env = dict(os.environ, TERM="xterm-256color")
    launched = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.execve(sys.executable, [sys.executable, "-m", "vgp_tui", "--preset", "deep-sigmoid"], env)
    seen = b""
    frame = None
    first_frame = None
    counted = 0
    count_from = None
    cpu_start: dict[int, float] = {}
    cpu_end: dict[int, float] = {}
    cpu_span = [0.0, 0.0]  # when the two samples were taken
    try:
        while time.monotonic() - launched < warmup + seconds + 30:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            now = time.monotonic()
            if first_frame is None:
                seen += chunk
                if frame is None and b"heatmap" in seen and b"Loss" in seen and b"quit" in seen:
                    frame = now - launched
                if b"heatmap" in seen and b"run 1" in seen and b"Loss" in seen:
                    first_frame = now - launched
                    count_from = now + warmup
                continue
            if count_from is not None and now >= count_from:
                if not cpu_span[0]:
                    # The window starts at this sample: bytes and CPU are counted over the time
                    # between the two samples, which are never the same moment.
                    cpu_start, cpu_span[0] = thread_cpu_seconds(pid), now
                    continue
                counted += len(chunk)
                if now - cpu_span[0] >= seconds:
                    cpu_end, cpu_span[1] = thread_cpu_seconds(pid), now
                    break
    finally:
        try:
            os.write(fd, b"q")
        except OSError:
            pass
        deadline = time.monotonic() + 5
        exited = False
        while not exited and time.monotonic() < deadline:
            exited = os.waitpid(pid, os.WNOHANG) != (0, 0)
            time.sleep(0.1)
        if not exited:  # never leave a dashboard running behind the benchmark
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
    span = cpu_span[1] - cpu_span[0]

    def ms_per_s(threads: set[int]) -> float:
        if not threads or span <= 0:
            return float("nan")  # the run ended before a second sample (a crash or a time-out)
        return 1000.0 * sum(cpu_end[t] - cpu_start[t] for t in threads) / span

    common = set(cpu_start) & set(cpu_end)
    ui = ms_per_s(common & {pid})
    others = ms_per_s(common - {pid})
    rate = counted / span if span > 0 else float("nan")
    return frame or float("nan"), first_frame or float("nan"), rate, ui, others


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves the script works, measures nothing")
    parser.add_argument("--rounds", type=int, default=8, help="dashboard blocks (one more headless block)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each speed measurement")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds = 1, 1.0
    history_steps = 10_000 if args.quick else 1_000_000
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, load average {os.getloadavg()[0]:.2f}")

    headless, attached, ui_cpu = [headless_rate(args.seconds)], [], []
    for _ in range(args.rounds):
        rate, cpu = dashboard_rate(args.seconds)
        attached.append(rate)
        ui_cpu.append(cpu)
        headless.append(headless_rate(args.seconds))
    ratios = [a / ((h0 + h1) / 2) for a, h0, h1 in zip(attached, headless, headless[1:])]
    low, high = median_ci(ratios)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print("\n| measure | median | spread |")
    print("| --- | --- | --- |")
    print(f"| headless steps/s | {statistics.median(headless):.0f} | {min(headless):.0f}-{max(headless):.0f} (min-max) |")
    print(f"| dashboard steps/s | {statistics.median(attached):.0f} | {min(attached):.0f}-{max(attached):.0f} (min-max) |")
    print(f"| dashboard / headless ({args.rounds} rounds) | {statistics.median(ratios):.3f} "
          f"| {low:.3f}-{high:.3f} (95% CI of the median); {min(ratios):.3f}-{max(ratios):.3f} (min-max) |")
    print(f"| UI thread CPU while attached (ms per s) | {statistics.median(ui_cpu):.1f} | {min(ui_cpu):.1f}-{max(ui_cpu):.1f} (min-max) |")

    ticks, full = tick_times(history_steps, 10 if args.quick else 40)
    for label, values in (("UI tick", ticks), ("UI tick, every panel redrawn", full)):
        q = statistics.quantiles(values, n=10)
        print(f"| {label} at 120x40, {history_steps:,} steps of history (ms) | {statistics.median(values):.1f} "
              f"| {q[0]:.1f}-{q[-1]:.1f} (p10-p90) |")

    frame, first, rate, ui, training = terminal_output(2.0 if args.quick else 20.0, 1.0 if args.quick else 5.0)
    print(f"| frame on screen after launch (s) | {frame:.2f} | panels and keys, before torch is imported |")
    print(f"| first data after launch (s) | {first:.2f} | a training step on the status line |")
    print(f"| terminal output at 120x40, steady state (KB/s) | {rate / 1000:.1f} | |")
    print(f"| in that terminal: UI thread CPU (ms per s) | {ui:.1f} | training threads {training:.0f} ms per s |")


if __name__ == "__main__":
    main()
