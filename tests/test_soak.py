"""The long-session soak (benchmarks/soak.py): quick runs prove the script still works, the slow one
runs the live dashboard for a minute with keys pressed every two seconds and asserts its verdicts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"
VERDICTS = ("threads", "open files", "memory", "History")


def run_soak(*args: str, timeout: float) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, str(SOAK), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=SOAK.parent.parent)
    return proc.returncode, proc.stdout + proc.stderr


def verdict_lines(output: str) -> dict[str, str]:
    lines = {}
    for line in output.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASS", "FAIL"):
            lines[rest.partition(":")[0]] = word
    return lines


@pytest.mark.parametrize("args", [("--seconds", "3"), ("--engine-steps", "20000")], ids=["live", "engine"])
def test_the_soak_script_runs_and_prints_its_table(args: tuple[str, ...]) -> None:
    """A short run of each mode: it completes, prints the table and every verdict, and exits 0."""
    code, output = run_soak(*args, timeout=300)
    assert code == 0, output
    assert "metric" in output and "after warm-up" in output and "RSS (MB)" in output, output
    assert verdict_lines(output) == dict.fromkeys(VERDICTS, "PASS"), output
    assert "result: PASS" in output


@pytest.mark.slow
def test_a_minute_of_the_live_dashboard_with_keys_grows_no_threads_files_or_memory() -> None:
    code, output = run_soak("--seconds", "60", "--toggle-every", "2", timeout=600)
    print(output)
    assert verdict_lines(output) == dict.fromkeys(VERDICTS, "PASS"), output
    assert code == 0, output
