#!/usr/bin/env python
"""How fast the command line answers, and whether its fast paths stay free of torch.

    python benchmarks/startup.py            # 9 runs of each command
    python benchmarks/startup.py --runs 3   # quicker

Times ``vgp-tui --help`` and ``vgp-tui presets`` as fresh processes (the installed console script
next to this Python, else ``python -m vgp_tui``), median and minimum of ``--runs`` runs after one
untimed run that warms the file cache. Then runs each command in a child that reports which heavy
modules (torch, textual, numpy, ...) it imported, and lists the slowest imports that
``python -X importtime`` shows, so a slow start can be traced to the module that causes it.

Target: ``--help`` in at most 0.3 s, neither command importing torch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("torch", "textual", "numpy", "plotext", "textual_plotext", "rich", "torchvision")
TARGET_HELP_S = 0.3
COMMANDS = (("--help",), ("presets",))

_PROBE = """
import json, sys
from vgp_tui.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
sys.stdout.flush()
print("\\n@@" + json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
"""


def command_line() -> list[str]:
    script = Path(sys.executable).parent / ("vgp-tui.exe" if os.name == "nt" else "vgp-tui")
    if script.exists():
        return [str(script)]
    found = shutil.which("vgp-tui")
    return [found] if found else [sys.executable, "-m", "vgp_tui"]


def time_command(cmd: list[str], runs: int) -> list[float]:
    subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache, untimed
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def heavy_imports(argv: list[str]) -> list[str]:
    code = _PROBE.format(argv=argv, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = next(x for x in done.stderr.splitlines() if x.startswith("@@"))
    import json

    return json.loads(line[2:])


def slowest_imports(argv: list[str], top: int) -> list[tuple[float, str]]:
    """(cumulative seconds, module) of the top-level imports that ``-X importtime`` reports as slowest."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "vgp_tui", *argv], capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:") :].split("|")
        try:
            cumulative = int(parts[1]) / 1e6
        except ValueError:
            continue  # the header line
        name = parts[2].rstrip()
        if not name.startswith("  "):  # depth 0 (one leading space): what the program imported itself
            rows.append((cumulative, name.strip()))
    rows.sort(reverse=True)
    return rows[:top]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Start-up time of the vgp-tui command line.")
    p.add_argument("--runs", type=int, default=9, help="timed runs per command (default 9)")
    p.add_argument("--quick", action="store_true", help="3 runs per command")
    p.add_argument("--top", type=int, default=8, help="slowest imports to list (default 8)")
    args = p.parse_args(argv)
    runs = 3 if args.quick else args.runs
    cmd = command_line()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"start-up benchmark: {' '.join(cmd)}; python {sys.version.split()[0]}; load average {load}")
    header = f"{'command':<18}{'median s':>10}{'min s':>8}{'runs':>6}  imports torch?  heavy modules imported"
    print(header)
    print("-" * len(header))
    verdicts = []
    for extra in COMMANDS:
        times = time_command(cmd + list(extra), runs)
        heavy = heavy_imports(list(extra))
        name = "vgp-tui " + " ".join(extra)
        print(f"{name:<18}{statistics.median(times):10.3f}{min(times):8.3f}{runs:>6}  "
              f"{'YES' if 'torch' in heavy else 'no':<14}  {', '.join(heavy) or '-'}")
        if extra == ("--help",):
            ok = statistics.median(times) <= TARGET_HELP_S
            verdicts.append(f"vgp-tui --help median {statistics.median(times):.3f} s (target <= {TARGET_HELP_S} s): "
                            f"{'MET' if ok else 'NOT MET'}")
        verdicts.append(f"{name} imports torch: {'yes (NOT MET)' if 'torch' in heavy else 'no (MET)'}")
    for extra in COMMANDS:
        print(f"\nslowest top-level imports of 'vgp-tui {' '.join(extra)}' (python -X importtime, cumulative):")
        for seconds, module in slowest_imports(list(extra), args.top):
            print(f"  {seconds * 1000:8.1f} ms  {module}")
    print("\ntargets:")
    for line in verdicts:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
