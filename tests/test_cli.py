"""The command line: headless runs reproduce the lesson, and every user mistake is one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def vgp(*args: str, cwd: Path | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vgp_tui", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


def _one_error_line(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("vgp-tui: error: ")
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["run", "--preset", "deep-sigmod", "--steps", "1"], ["unknown preset 'deep-sigmod'", "did you mean 'deep-sigmoid'"]),
        (["run", "--steps", "1", "--remedy", "activaton=relu"], ["unknown remedy 'activaton'", "did you mean 'activation'"]),
        (["run", "--steps", "1", "--remedy", "activation=relu6"], ["remedy 'activation' cannot be 'relu6'", "sigmoid, tanh, relu"]),
        (["run", "--steps", "1", "--remedy", "cell=lstm"], ["'cell' does not apply to preset 'deep-sigmoid'"]),
        (["run", "--steps", "1", "--remedy", "relu"], ["NAME=VALUE"]),
        (["run", "--steps", "1", "--device", "cuda"], ["no CUDA device"]),
        (["run", "--steps", "1", "--device", "mps"], ["MPS"]),
        (["run", "--steps", "1", "--device", "tpu"], ["--device must be"]),
        (["run", "--steps", "0"], ["--steps"]),
        (["run"], ["--steps"]),
        (["run", "--steps", "1", "--preset", "missing.toml"], ["preset file 'missing.toml' does not exist"]),
        (["run", "--steps", "1", "--data-dir", "/no/such/dir"], ["--data-dir /no/such/dir does not exist"]),
        (["frobnicate"], ["No such command"]),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(args: list[str], needles: list[str]) -> None:
    if args[-1] == "cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a CUDA device, so --device cuda is not a mistake here")
    _one_error_line(vgp(*args), *needles)


def test_bad_preset_file_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text((ROOT / "presets" / "deep-sigmoid.toml").read_text().replace("depth = 20", "depth = 0"))
    _one_error_line(vgp("run", "--preset", str(bad), "--steps", "1"), str(bad), "[model] key 'depth'", "from 1 to 500")


def test_help_and_presets() -> None:
    done = vgp("--help")
    assert done.returncode == 0 and "--preset" in done.stdout and "presets" in done.stdout
    done = vgp("presets")
    assert done.returncode == 0
    for name in ("deep-sigmoid", "deep-relu", "rnn-clipping", "resnet-cifar10", "sentiment-lstm"):
        assert name in done.stdout


def _summary(*args: str) -> dict:
    done = vgp("run", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_deep_sigmoid_vanishes_and_relu_he_fixes_it() -> None:
    sigmoid = _summary("--preset", "deep-sigmoid", "--steps", "50", "--seed", "0")
    assert sigmoid["steps"] == 50
    assert sigmoid["first_to_last_ratio"] < 1e-3
    fixed = _summary("--preset", "deep-sigmoid", "--steps", "50", "--seed", "0",
                     "--remedy", "activation=relu", "--remedy", "init=he")
    assert fixed["remedies"]["activation"] == "relu" and fixed["remedies"]["init"] == "he"
    assert fixed["first_to_last_ratio"] > 1e-2


def test_table_output_and_recording(tmp_path: Path) -> None:
    record = tmp_path / "run.jsonl"
    done = vgp("run", "--preset", "deep-sigmoid", "--steps", "20", "--record", str(record))
    assert done.returncode == 0, done.stderr
    assert "ratio first/last" in done.stdout and "median |grad|" in done.stdout
    from vgp_tui.engine.recording import read_recording

    result = read_recording(record)
    assert result.warning is None
    steps = [e for e in result.events if e.type == "step"]
    assert [e.step for e in steps] == list(range(1, 21))


def test_data_dir_that_holds_something_else(tmp_path: Path) -> None:
    (tmp_path / "holiday.jpg").write_bytes(b"not a data set")
    done = vgp("run", "--preset", "resnet-cifar10", "--steps", "1", "--data-dir", str(tmp_path))
    _one_error_line(done, str(tmp_path), "--synthetic")
    done = vgp("run", "--preset", "sentiment-lstm", "--steps", "1", "--data-dir", str(tmp_path))
    _one_error_line(done, str(tmp_path), "aclImdb")


def test_missing_dataset_offline_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No copy in the cache and no network: one line naming the folder, the download and --synthetic."""
    env_cache = tmp_path / "cache"
    done = subprocess.run(
        [sys.executable, "-c",
         "import urllib.request, sys\n"
         "def refuse(*a, **k): raise OSError('network is unreachable')\n"
         "urllib.request.urlopen = refuse\n"
         "from vgp_tui.cli import main\n"
         "sys.argv = ['vgp-tui', 'run', '--preset', 'resnet-cifar10', '--steps', '1']\n"
         "main()\n"],
        capture_output=True, text=True, env={**__import__("os").environ, "VGP_TUI_DATA": str(env_cache)}, timeout=120,
    )
    _one_error_line(done, "CIFAR-10", "--synthetic", str(env_cache))
