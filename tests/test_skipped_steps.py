"""Steps a mixed-precision GradScaler skipped: recorded as ``skipped``, not drawn, but counted on the
status line, and a screenshot asked for at one says that it shows the step before instead.

A new user's AMP recording with a forced Inf showed no sign of the skipped step anywhere, and
``replay --screenshot-at`` that step wrote a frame labelled with the step before, exited 0 and said nothing."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import vgp_tui
from vgp_tui.dashboard import make_replay_app
from vgp_tui.dashboard.status import StatusLine
from vgp_tui.engine.events import RunStarted, SessionHeader, StepMetrics
from vgp_tui.engine.history import History
from vgp_tui.engine.recording import RecordingWriter
from vgp_tui.replay import ReplaySource

SKIP_AT = 5
"""The step whose gradient gets an Inf: the GradScaler skips it."""
STEPS = 8


@pytest.fixture(scope="module")
def amp_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's AMP loop, recorded with ``Recorder(..., scaler=)``: bfloat16 autocast on the CPU, a
    GradScaler, and an Inf forced into one layer's gradient at step SKIP_AT."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    path = tmp_path_factory.mktemp("amp") / "amp.jsonl"
    with vgp_tui.Recorder(path, vgp_tui.GradientProbe(model), scaler=scaler, flush_seconds=1e9) as recorder:
        for step in range(1, STEPS + 1):
            x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = nn.functional.cross_entropy(model(x), y)
            scaler.scale(loss).backward()
            if step == SKIP_AT:
                model[2].weight.grad[0, 0] = math.inf
            recorder.step(loss)
            before = scaler.get_scale()
            scaler.step(optimizer)
            scaler.update()
            assert (scaler.get_scale() < before) == (step == SKIP_AT)  # the scaler did skip it
            optimizer.zero_grad(set_to_none=True)
    return path


def _vgp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vgp_tui", *args], capture_output=True, text=True, timeout=120)


# -- the status line counts them -----------------------------------------------------------------------
async def test_a_replay_of_an_amp_run_says_how_many_steps_the_scaler_skipped(amp_recording: Path) -> None:
    app = make_replay_app(str(amp_recording), speed=1024)
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 20
        while not (app.session.ended and app.history.current is not None
                   and app.history.current.latest is not None and app.history.current.latest.step == STEPS):
            assert time.monotonic() < deadline, "the replay did not reach its end"
            await pilot.pause(0.05)
        app.refresh_panels()
        await pilot.pause()
        text = str(app.query_one(StatusLine).render())
        assert f"step {STEPS} · 1 skipped" in text, text
        await pilot.press("q")


async def test_the_skipped_count_is_shown_only_when_there_are_some_and_ranks_above_the_device() -> None:
    from textual.app import App, ComposeResult

    def history(skipped: tuple[int, ...]) -> History:
        h = History()
        h.add(RunStarted(run=2, t=0.0, preset="deep-sigmoid", layers=("a", "b"), remedies={}, seed=0))
        for step in range(2280, 2283):
            h.add(StepMetrics(run=2, step=step, t=3.0, loss=0.5, grad_norm=(0.1, math.inf if step in skipped else 0.2),
                              total_norm=math.inf if step in skipped else 0.3, step_ms=1.45, probe_ms=0.017,
                              skipped=step in skipped))
        return h

    class Line(App[None]):
        def compose(self) -> ComposeResult:
            yield StatusLine()

    async def shown(h: History, width: int) -> str:
        app = Line()
        async with app.run_test(size=(width, 5)) as pilot:
            line = app.query_one(StatusLine)
            line.show(h, "deep-sigmoid", "cpu", "spirals (generated)")
            await pilot.pause()
            return str(line.render())

    assert "skipped" not in await shown(history(()), 160)  # a run whose scaler skipped nothing: as before
    two = history((2281, 2282))
    assert (await shown(two, 160)).startswith(" TRAINING  deep-sigmoid · cpu · run 2 · step 2 282 · 2 skipped · ")
    # Narrow: the count outlasts the device, the rate and the clock (it says how to read the step).
    assert await shown(two, 56) == " TRAINING  deep-sigmoid · run 2 · step 2 282 · 2 skipped"
    assert await shown(two, 45) == " TRAINING  deep-sigmoid · run 2 · step 2 282"
    # Steps that clipping scaled down are counted beside them (a user's step(clip=) left no trace).
    clipped = History()
    clipped.add(RunStarted(run=1, t=0.0, preset="custom", layers=("a", "b"), remedies={}, seed=0))
    for step, flag in ((1, True), (2, False), (3, True), (4, None)):
        clipped.add(StepMetrics(run=1, step=step, t=0.1, loss=0.5, grad_norm=(0.1, 0.2), total_norm=0.3,
                                step_ms=1.45, probe_ms=0.017, clipped=flag))
    assert (await shown(clipped, 160)).startswith(" TRAINING  deep-sigmoid · cpu · run 1 · step 4 · 2 clipped · ")
    assert "clipped" not in await shown(two, 160)
    # In a replay at 80 columns the count outlasts the file's name (a user's own loop is always a replay).
    app = Line()
    async with app.run_test(size=(80, 5)) as pilot:
        line = app.query_one(StatusLine)
        line.show(clipped, "custom", "cpu", "replay of u_clip.jsonl", mode="replay")
        await pilot.pause()
        assert "· 2 clipped" in str(line.render()), line.render()


def test_a_run_whose_every_step_the_scaler_skipped_is_not_waiting_for_its_first_step() -> None:
    from vgp_tui.diagnosis import diagnose

    h = History()
    h.add(RunStarted(run=1, t=0.0, preset="custom", layers=("a", "b"), remedies={}, seed=0))
    assert diagnose(h.current).text == "Waiting for the first training step…"
    for step in range(1, 21):
        h.add(StepMetrics(run=1, step=step, t=0.1, loss=0.5, grad_norm=(math.inf, math.inf), total_norm=math.inf,
                          skipped=True))
    d = diagnose(h.current)
    assert d.text.startswith("The GradScaler skipped all 20 steps so far: the scaled gradient overflowed."), d.text


# -- a screenshot at a skipped step says what it shows ------------------------------------------------
def test_a_screenshot_at_a_skipped_step_shows_the_step_before_warns_and_exits_1(amp_recording: Path,
                                                                               tmp_path: Path) -> None:
    source = ReplaySource(amp_recording, until_step=SKIP_AT)
    history = History()
    source.sinks.append(history.extend)  # (the Playback items it also puts there are not events: ignored)
    source.run()
    assert history.current.latest.step == SKIP_AT - 1 and history.current.skipped_steps == 1
    assert history.current.reached == SKIP_AT
    expected = (f"{amp_recording}: step {SKIP_AT} of run 1 was skipped by the GradScaler (no gradients to draw); "
                f"the panels show step {SKIP_AT - 1}")
    assert source.shortfall == expected
    out = tmp_path / "shot.svg"
    done = _vgp("replay", str(amp_recording), "--screenshot-at", str(SKIP_AT), "-o", str(out))
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [f"vgp-tui: warning: {expected}"]
    svg = out.read_text()
    # The status line is at the step asked for, and its count is of the steps up to it: at the skip's
    # step it read "step 4 · 1 skipped", a count that took in a step it had not reached.
    assert f"step&#160;{SKIP_AT}&#160;·&#160;1&#160;skipped" in svg, svg
    before = tmp_path / "before.svg"  # the step before: nothing skipped yet
    done = _vgp("replay", str(amp_recording), "--screenshot-at", str(SKIP_AT - 1), "-o", str(before))
    assert done.returncode == 0 and "skipped" not in before.read_text()
    later = tmp_path / "later.svg"  # a step after it is drawn: no warning, status 0
    done = _vgp("replay", str(amp_recording), "--screenshot-at", str(SKIP_AT + 1), "-o", str(later))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert f"step&#160;{SKIP_AT + 1}" in later.read_text()


def _written(path: Path, skipped: set[int], last: int = STEPS) -> Path:
    header = SessionHeader(preset="amp", device="cpu")
    run = RunStarted(run=1, t=0.0, preset="amp", layers=("a", "b"), remedies={}, seed=0)
    steps = [StepMetrics(run=1, step=s, t=0.1 * s, loss=1.0, grad_norm=(0.1, math.inf if s in skipped else 0.2),
                         total_norm=math.inf if s in skipped else 0.3, skipped=s in skipped) for s in range(1, last + 1)]
    with RecordingWriter(path, header) as writer:
        writer.write([run, *steps])
    return path


def _shortfall(path: Path, step: int, run: int | None = None) -> str | None:
    source = ReplaySource(path, until_step=step, until_run=run)
    source.run()
    return source.shortfall


def test_the_frame_named_in_a_warning_is_the_last_step_drawn(tmp_path: Path) -> None:
    # A GradScaler's first steps often overflow (its initial scale is large): nothing drawn yet.
    early = _written(tmp_path / "early.jsonl", {1, 2})
    assert _shortfall(early, 2) == (f"{early}: step 2 of run 1 was skipped by the GradScaler (no gradients to draw); "
                                    "the panels show no step")
    assert _shortfall(early, 3) is None
    # Past the end of a recording whose last step was skipped: the frame is of the step before it.
    ends = _written(tmp_path / "ends.jsonl", {7, 8})
    assert _shortfall(ends, 50) == f"{ends} has no step 50: it ends at step 8 of run 1; the panels show step 6"
    assert _shortfall(ends, 50, run=1) == (f"{ends} has no step 50 in run 1: run 1 ends at step 8; "
                                           "the panels show step 6")
