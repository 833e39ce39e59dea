"""The command line: headless runs reproduce the lesson, and every user mistake is one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
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
        # The dashboard's own mistakes are named before it asks for a terminal (these run without one).
        (["--preset", "deep-sigmod"], ["unknown preset 'deep-sigmod'", "did you mean 'deep-sigmoid'"]),
        (["--remedy", "activaton=relu"], ["unknown remedy 'activaton'"]),
        (["--screenshot-dir", "no/such/folder"], ["--screenshot-dir no/such/folder: no such folder"]),
        (["run", "--steps", "1", "--remedy", "activaton=relu"], ["unknown remedy 'activaton'", "did you mean 'activation'"]),
        (["run", "--steps", "1", "--remedy", "activation=relu6"], ["remedy 'activation' cannot be 'relu6'", "sigmoid, tanh, relu"]),
        (["run", "--steps", "1", "--remedy", "cell=lstm"], ["'cell' does not apply to preset 'deep-sigmoid'"]),
        (["run", "--steps", "1", "--remedy", "relu"], ["NAME=VALUE"]),
        (["run", "--steps", "1", "--device", "cuda"], ["no CUDA device"]),
        (["run", "--steps", "1", "--seed", "99999999999999999999"], ["--seed", "not in the range 0<=x<=4294967295"]),
        (["run", "--steps", "1", "--seed", "4294967296"], ["--seed", "not in the range 0<=x<=4294967295"]),
        (["--preset", "deep-relu", "run", "--steps", "1"], ["--preset goes after the command: vgp-tui run --preset"]),
        (["--device", "cpu", "presets"], ["--device is an option of the dashboard; 'vgp-tui presets' does not take it"]),
        (["replay", "missing.jsonl", "--speed", "nan"], ["'nan' is not a number in the range"]),
        (["cast", "missing.jsonl", "-o", "x.gif", "--fps", "nan"], ["'nan' is not a number in the range"]),
        (["cast", "missing.jsonl", "-o", "x"], ["and this name has none"]),
        (["cast", "missing.jsonl", "-o", "x.cast", "--fps", "4"], ["--fps is for pictures (.gif, .webp, .png); x.cast is an asciicast"]),
        (["cast", "missing.jsonl", "-o", "x.cast", "--hold", "1"], ["--hold is for pictures"]),
        (["replay", "missing.jsonl", "--size", "100x30"], ["--size is for --screenshot-at STEP"]),
        (["run", "--steps", "1", "--record", ""], ["--record", "needs a file name"]),
        (["replay", "r.jsonl", "--screenshot-at", "1", "-o", "shot.png"], ["--screenshot-at writes an SVG, so name it .svg"]),
        (["run", "--steps", "1", "--preset", "resnet-cifar10", "--data-dir", str(ROOT), "--synthetic"],
         ["--data-dir and --synthetic do not go together"]),
        (["--steps", "3"], ["--steps is an option of 'vgp-tui run': vgp-tui run ... --steps"]),
        (["run", "--steps", "1", "--preset", "deep-sigmoid.toml"], ["a preset by name goes without the extension: --preset deep-sigmoid"]),
        (["run", "--steps", "1", "--preset", str(ROOT / "presets")], ["is a folder: give a preset's name or its .toml"]),
        (["run", "--steps", "1", "--remedy", "lr=1000"], ["allowed: a number > 0 and <= 100"]),
        (["run", "--steps", "1", "--device", "mps"], ["MPS"]),
        (["run", "--steps", "1", "--device", "tpu"], ["--device must be"]),
        (["run", "--steps", "0"], ["--steps"]),
        (["run"], ["--steps"]),
        (["run", "--steps", "1", "--preset", "missing.toml"], ["preset file 'missing.toml' does not exist"]),
        (["run", "--steps", "1", "--data-dir", "/no/such/dir"], ["--data-dir /no/such/dir does not exist"]),
        (["frobnicate"], ["No such command", "(see 'vgp-tui --help')"]),
        # A subcommand's mistakes point to that subcommand's help.
        (["run", "--stesp", "3"], ["No such option '--stesp'", "(see 'vgp-tui run --help')"]),
        (["run"], ["(see 'vgp-tui run --help')"]),
        (["presets", "--all"], ["(see 'vgp-tui presets --help')"]),
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


def test_the_summary_ends_with_the_dashboards_diagnosis_and_doing_what_it_says_heals_the_run() -> None:
    """The headless run says what the dashboard's diagnosis line says, and offers its fixes as the
    ``--remedy`` options that apply them; running fix [1] exactly as printed gives a healthy flow."""
    done = vgp("run", "--preset", "deep-sigmoid", "--steps", "50", "--seed", "0")
    assert done.returncode == 0, done.stderr
    *_, said, offered = done.stdout.rstrip().splitlines()
    assert said.startswith("diagnosis: Layer 1 receives ") and said.endswith("vanishing."), said
    assert offered == ("to try: [1] --remedy activation=relu --remedy init=he   [2] --remedy batchnorm=on"
                       "   [3] --remedy skip=on"), offered
    first = offered.removeprefix("to try: [1] ").split("   [2]")[0].split()
    fixed = _summary("--preset", "deep-sigmoid", "--steps", "50", "--seed", "0", *first)
    assert fixed["diagnosis"]["kind"] == "healthy", fixed["diagnosis"]
    assert fixed["diagnosis"]["fixes"] == []
    sigmoid = _summary("--preset", "deep-sigmoid", "--steps", "50", "--seed", "0")
    assert sigmoid["diagnosis"]["kind"] == "vanishing"
    assert sigmoid["diagnosis"]["verdict"] == said.removeprefix("diagnosis: ")
    assert sigmoid["diagnosis"]["fixes"][0] == {"label": "relu + init he", "remedies": {"activation": "relu", "init": "he"}}


def test_table_output_and_recording(tmp_path: Path) -> None:
    record = tmp_path / "run.jsonl"
    done = vgp("run", "--preset", "deep-sigmoid", "--steps", "20", "--record", str(record))
    assert done.returncode == 0, done.stderr
    assert "ratio first/last" in done.stdout and "median |grad|" in done.stdout
    # Remedies are written as --remedy takes them.
    assert "remedies: activation=sigmoid init=default batchnorm=off skip=off clip=off lr=0.1" in done.stdout
    assert "20 steps" in done.stdout
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


def test_headless_divergence_summarises_the_finite_steps_and_exits_3() -> None:
    done = vgp("run", "--preset", "deep-relu", "--steps", "100", "--json")
    assert done.returncode == 3, done.stderr
    summary = json.loads(done.stdout)
    diverged = summary["divergence"]["step"]
    assert summary["state"] == "diverged" and summary["diverged_at"] == diverged
    assert summary["steps"] == diverged and summary["finite_steps"] == diverged - 1
    assert summary["message"].startswith(f"diverged at step {diverged}: ")
    assert "paus" not in summary["message"]
    assert summary["divergence"]["first_nonfinite"] == "loss"  # deep-relu's forward pass overflows
    # Layers by the names layers[].name gives them (they read "layer 21 (head)" and "layer 11" there).
    names = [layer["name"] for layer in summary["layers"]]
    assert summary["divergence"]["nonfinite_layers"] and set(summary["divergence"]["nonfinite_layers"]) <= set(names)
    assert summary["divergence"]["largest_before"]["layer"] in names
    medians = [layer["grad_norm_median"] for layer in summary["layers"]]
    assert medians and all(isinstance(m, float) and m > 0 for m in medians)  # finite, not "NaN"
    assert isinstance(summary["first_to_last_ratio"], float)
    assert all(isinstance(v, float) for v in summary["total_norm"].values())

    done = vgp("run", "--preset", "deep-relu", "--steps", "100")
    assert done.returncode == 3, done.stderr
    assert f"before the divergence at step {diverged}" in done.stdout
    assert f"{diverged} steps (diverged at step {diverged})" in done.stdout
    assert "nan" not in done.stdout and "paus" not in done.stdout
    assert "NaN" not in done.stdout.split("layer    median")[1].split("diverged at step")[0]
    # The dashboard's fixes for the divergence, as the options that start a run with each; its verdict
    # is the message above, not said twice.
    assert done.stdout.rstrip().splitlines()[-1].startswith("to try: [1] --remedy init=he   [2] --remedy clip=1")
    assert "diagnosis:" not in done.stdout


def test_run_help_documents_the_exit_statuses() -> None:
    done = vgp("run", "--help")
    assert done.returncode == 0
    assert "3    the run diverged" in done.stdout and "130  interrupted" in done.stdout


def test_run_sets_the_training_threads_of_its_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from vgp_tui.cli import main
    from vgp_tui.engine import devices

    calls: list[tuple[str, int | None]] = []
    monkeypatch.setattr(devices, "use_training_threads", lambda device, requested=None: calls.append((device, requested)))
    small = tmp_path / "tiny.toml"
    small.write_text((ROOT / "presets" / "deep-sigmoid.toml").read_text().replace("depth = 20", "depth = 2"))
    main(["run", "--preset", str(small), "--steps", "1", "--device", "cpu"])  # returns: it finished
    assert calls == [("cpu", None)]
    assert "1 step " in capsys.readouterr().out
    main(["run", "--preset", str(small), "--steps", "1", "--device", "cpu", "--threads", "3"])
    assert calls[-1] == ("cpu", 3)
    done = vgp("run", "--preset", str(small), "--steps", "1", "--threads", "0")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "--threads" in done.stderr, done.stderr


def test_a_model_or_a_batch_too_big_for_memory_is_one_line_that_names_the_sizes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The CPU allocator's own error (asking it for a petabyte: what a depth 500, width 8192 model or a
    batch of a million does on a smaller machine), not CUDA's: it was a traceback at the model's build."""
    import torch

    from vgp_tui.cli import main
    from vgp_tui.engine import trainer

    def too_big(*args: object, **kwargs: object) -> None:
        torch.empty(2**50, dtype=torch.uint8)

    small = tmp_path / "tiny.toml"
    small.write_text((ROOT / "presets" / "deep-sigmoid.toml").read_text().replace("depth = 20", "depth = 2"))
    with monkeypatch.context() as patch:
        patch.setattr(trainer, "build_model", too_big)
        with pytest.raises(SystemExit) as stopped:
            main(["run", "--preset", str(small), "--steps", "1", "--device", "cpu"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"vgp-tui: error: {small}: the model does not fit in memory on cpu; make [model] smaller "
                   "(depth 2, width 64)"), err
    monkeypatch.setattr(trainer.Trainer, "step", too_big)
    with pytest.raises(SystemExit) as stopped:
        main(["run", "--preset", str(small), "--steps", "1", "--device", "cpu"])
    assert stopped.value.code == 1
    assert "out of memory on cpu: lower [train] batch_size or the model's width in the preset" in capsys.readouterr().out


def test_presets_in_a_narrow_terminal_is_a_block_a_preset_that_fits_its_width() -> None:
    """The table is 260 columns wide: in an 80-column terminal its rows wrapped into each other. A
    terminal narrower than the table gets a block a preset; a pipe still gets the table."""
    import os

    from terminal import ANSI, run_in_pty  # tests/terminal.py

    status, out = run_in_pty([sys.executable, "-m", "vgp_tui", "presets"], columns=80,
                             env={**os.environ, "COLUMNS": ""})
    assert status == 0
    lines = ANSI.sub("", out).replace("\r", "").splitlines()
    assert lines and max(len(line) for line in lines) <= 80, lines
    for name in ("deep-sigmoid", "rnn-clipping", "sentiment-lstm"):
        assert any(line.startswith(f"{name}  built-in · ") for line in lines), lines
    piped = vgp("presets").stdout
    assert sum(line.startswith("    remedies: ") for line in lines) == len(piped.splitlines()) - 1
    # Where the files are, for a wheel's user who is told to copy one (a pipe gets the table alone).
    from importlib import resources

    told = " ".join(line.strip() for line in lines)
    assert f"the built-in presets are files in {resources.files('vgp_tui.presets')}; for your own, copy one" in told, told
    assert "built-in presets are files" not in piped


def test_presets_table_marks_where_each_preset_comes_from(tmp_path: Path) -> None:
    builtin = (ROOT / "presets" / "deep-sigmoid.toml").read_text()
    (tmp_path / "deep-sigmoid.toml").write_text(builtin.replace("depth = 20", "depth = 3"))
    (tmp_path / "mine.toml").write_text(builtin)
    (tmp_path / "mismatch.toml").write_text('name = "other"\n' + builtin)
    done = subprocess.run([sys.executable, "-m", "vgp_tui", "presets"], capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "VGP_TUI_PRESETS": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[1:]}
    assert "user, shadows built-in" in rows["deep-sigmoid"]
    assert rows["deep-relu"].split()[1] == "built-in"
    assert rows["mine"].split()[1] == "user"
    assert "other" not in rows  # listed under the name --preset takes...
    assert "(invalid: " in rows["mismatch"] and "key 'name' is 'other'" in rows["mismatch"]  # ...saying why


def test_summary_of_a_run_that_diverged_at_its_first_step() -> None:
    from types import SimpleNamespace

    from vgp_tui.engine.events import RunStarted, StateChanged, StepMetrics
    from vgp_tui.engine.history import History
    from vgp_tui.engine.session import Divergence
    from vgp_tui.summary import summarize, summary_table

    nan = float("nan")
    bad = StepMetrics(run=1, step=1, t=0.1, loss=nan, grad_norm=(nan, nan), total_norm=nan)
    divergence = Divergence.of(bad, None, ("fc1", "head"))
    history = History()
    history.extend([
        RunStarted(run=1, t=0.0, preset="p", layers=("fc1", "head"), remedies={"batchnorm": False}, seed=0),
        bad,
        StateChanged(run=1, step=1, t=0.1, state="diverged", message=divergence.message()),
    ])
    session = SimpleNamespace(scenario=SimpleNamespace(name="p", source="p.toml", origin_label="user"),
                              device="cpu", data_label="d", seed=0, divergence=divergence)
    summary = summarize(history, session)
    assert (summary["steps"], summary["finite_steps"], summary["diverged_at"], summary["layers"]) == (1, 0, 1, [])
    text = summary_table(summary)
    assert "no finite step before the divergence at step 1" in text and "batchnorm=off" in text
    assert "nan" not in text


def test_nohup_run_survives_sighup_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`nohup vgp-tui run ...` ignores SIGHUP: the run must keep that choice, not stop at logout."""
    import signal
    import subprocess
    import sys
    import time

    record = tmp_path / "run.jsonl"

    def step_lines() -> int:
        return record.read_text().count('"type":"step"') if record.exists() else 0

    def wait(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 120
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.1)

    process = subprocess.Popen(
        [sys.executable, "-m", "vgp_tui", "run", "--preset", "deep-sigmoid", "--steps", "1000000", "--record", str(record)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    try:
        wait(lambda: step_lines() > 0, "the run never recorded a step")
        process.send_signal(signal.SIGHUP)
        seen = step_lines()
        wait(lambda: step_lines() > seen + 5, "the run stopped recording after SIGHUP")
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 130
    finally:
        if process.poll() is None:
            process.kill()


def test_ctrl_c_in_a_headless_run_stops_it_after_a_step_not_inside_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl+C as a KeyboardInterrupt could land between the trainer taking its pending steps and
    handing them on, losing them (3 runs in 60); like SIGTERM it must only ask the run to stop."""
    import os
    import signal
    import time

    from vgp_tui import cli
    from vgp_tui.engine.session import Session
    from vgp_tui.engine.recording import read_recording

    original = Session.run
    survived: list[bool] = []

    def run_interrupted(self: Session, stop: object = None, exit_when_done: bool = False) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C in the middle of training
        time.sleep(0.2)  # a KeyboardInterrupt would be raised here, in the training code
        survived.append(True)
        original(self, stop, exit_when_done)  # type: ignore[arg-type]

    monkeypatch.setattr(Session, "run", run_interrupted)
    record = tmp_path / "run.jsonl"
    with pytest.raises(SystemExit) as ended:
        cli.main(["run", "--preset", "deep-sigmoid", "--steps", "100000", "--record", str(record), "--threads", "1",
                  "--json"])
    assert ended.value.code == 130 and survived == [True]
    summary = json.loads(capsys.readouterr().out)  # it said "finished", as if the 100 000 steps were made
    assert summary["state"] == "interrupted" and summary["steps_asked"] == 100000 > summary["steps"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back
    events = read_recording(record).events
    assert events[-1].state == "finished"  # type: ignore[union-attr]


def test_outputs_that_cannot_be_written_say_so_in_one_line(tmp_path: Path) -> None:
    recording = tmp_path / "r.jsonl"
    assert vgp("run", "--steps", "3", "--threads", "1", "--record", str(recording)).returncode == 0
    folder = tmp_path / "shots.svg"
    folder.mkdir()
    # The command line's mistakes (a folder, a place nothing can be written): status 2, before any work.
    _one_error_line(vgp("replay", str(recording), "--screenshot-at", "2", "-o", str(folder)), "is a folder")
    (tmp_path / "demo.cast").mkdir()
    _one_error_line(vgp("cast", str(recording), "-o", str(tmp_path / "demo.cast")), "is a folder")
    _one_error_line(vgp("cast", str(recording), "-o", "/proc/vgp.cast"), "cannot write there")
    # A full disk while writing: one line and status 1, never a traceback or a success.
    full = tmp_path / "full.svg"
    full.symlink_to("/dev/full")  # a file on a full disk
    for args in (["replay", str(recording), "--screenshot-at", "2", "-o", str(full)],
                 ["run", "--steps", "3", "--threads", "1", "--record", "/dev/full"]):
        done = vgp(*args)
        assert done.returncode == 1, (args, done.stderr)
        errors = [line for line in done.stderr.splitlines() if line.startswith("vgp-tui: error: ")]
        assert len(errors) == 1 and "No space left on device" in errors[0], done.stderr
        assert "Traceback" not in done.stderr


def test_a_data_folder_that_is_a_file_and_a_replay_without_a_terminal_say_what_to_do(tmp_path: Path) -> None:
    import os

    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("")
    done = subprocess.run([sys.executable, "-m", "vgp_tui", "run", "--preset", "resnet-cifar10", "--steps", "1"],
                          capture_output=True, text=True, timeout=240, env={**os.environ, "VGP_TUI_DATA": str(not_a_folder)})
    _one_error_line(done, f"VGP_TUI_DATA={not_a_folder} is not a folder")  # (not "the download failed")
    recording = str(ROOT / "tests" / "fixtures" / "deep-sigmoid.jsonl")
    done = subprocess.run([sys.executable, "-m", "vgp_tui", "replay", recording], capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL)
    _one_error_line(done, "--screenshot-at STEP -o shot.svg", "vgp-tui cast FILE")  # not 'run', which trains


def test_a_cast_of_a_recording_cut_short_says_so_as_replay_does(tmp_path: Path) -> None:
    whole = (ROOT / "tests" / "fixtures" / "deep-sigmoid.jsonl").read_bytes()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(whole[: whole.index(b"\n", 2000) + 40])  # a last line without its end
    done = vgp("cast", str(cut), "-o", str(tmp_path / "cut.cast"), "--speed", "64")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().startswith("vgp-tui: warning: ") and "is cut off" in done.stderr, done.stderr


def test_a_cast_of_a_recording_without_steps_is_refused_in_one_line(tmp_path: Path) -> None:
    lines = (ROOT / "tests" / "fixtures" / "deep-sigmoid.jsonl").read_text().splitlines()
    header_and_run = tmp_path / "empty.jsonl"
    header_and_run.write_text("\n".join(lines[:2]) + "\n")  # the session and its first run, no step yet
    done = vgp("cast", str(header_and_run), "-o", str(tmp_path / "empty.cast"))
    _one_error_line(done, "has no step records yet: nothing to cast")
    assert not (tmp_path / "empty.cast").exists()
