"""The engine end to end: probe equals autograd for every family, remedies, accumulation, recording."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from vgp_tui.engine.commands import Pause, Restart, Resume, SetRemedies, SetRemedy, StepOnce, Stop
from vgp_tui.engine.events import RemedyChanged, RunStarted, StateChanged, StepMetrics, to_record
from vgp_tui.engine.history import History
from vgp_tui.engine.recording import RecordingWriter, read_recording
from vgp_tui.engine.session import Divergence, Session
from vgp_tui.scenario import builtin_names, load_preset, parse_preset

ROOT = Path(__file__).resolve().parent.parent

# Small versions of the presets, so every family steps quickly on two CPU cores.
SHRINK = {
    "deep-sigmoid": [("depth = 20", "depth = 6"), ("width = 64", "width = 16")],
    "deep-relu": [("depth = 20", "depth = 6"), ("width = 64", "width = 16")],
    "rnn-clipping": [("hidden = 64", "hidden = 16"), ("length = 50", "length = 12"), ("samples = 4096", "samples = 256")],
    "resnet-cifar10": [("width = 0.25", "width = 0.0625"), ("samples = 0", "samples = 128"), ("batch_size = 64", "batch_size = 8")],
    "sentiment-lstm": [("embed = 64", "embed = 8"), ("hidden = 64", "hidden = 8"), ("length = 200", "length = 16"),
                       ("samples = 0", "samples = 256"), ("batch_size = 64", "batch_size = 16")],
}


def small(name: str) -> Any:
    text = (ROOT / "presets" / f"{name}.toml").read_text()
    for old, new in SHRINK[name]:
        assert old in text, (name, old)
        text = text.replace(old, new)
    return parse_preset(text, f"small {name}", name)


def session(name: str, **kwargs: Any) -> Session:
    kwargs.setdefault("synthetic", True)
    return Session(small(name), device="cpu", **kwargs)


@pytest.mark.parametrize("name", sorted(SHRINK))
def test_probe_equals_plain_autograd_for_every_family(name: str) -> None:
    s = session(name)
    s.start_run()
    trainer = s.trainer
    model = trainer.model
    x, y = trainer._batch()
    trainer._loss(model(x), y).backward()
    layer, total = trainer.probe.measure()
    groups = model.layer_groups()
    assert trainer.probe.layer_names == tuple(n for n, _ in groups)
    grouped = {id(p) for _, ps in groups for p in ps}
    assert grouped == {id(p) for p in model.parameters() if p.requires_grad}
    for value, (layer_name, params) in zip(layer.tolist(), groups):
        expected = math.sqrt(sum(p.grad.norm().item() ** 2 for p in params if p.grad is not None))
        assert value == pytest.approx(expected, rel=1e-4, abs=1e-30), layer_name
    every = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert total.item() == pytest.approx(every.norm().item(), rel=1e-4)


@pytest.mark.parametrize("name", sorted(SHRINK))
def test_every_preset_runs_headless_and_its_recording_parses_back(name: str, tmp_path: Path) -> None:
    s = session(name, steps=3)
    history = History()
    path = tmp_path / f"{name}.jsonl"
    recorder = RecordingWriter(path, s.header())
    seen: list[Any] = []
    s.sinks += [history.extend, recorder.write, seen.extend]
    s.run(exit_when_done=True)
    recorder.close()
    assert s.state == "finished"
    steps = [e for e in seen if isinstance(e, StepMetrics)]
    assert [e.step for e in steps] == [1, 2, 3]
    assert all(len(e.grad_norm) == len(history.current.layers) for e in steps)
    assert all(math.isfinite(e.loss) for e in steps)
    result = read_recording(path)
    assert result.warning is None and result.header.preset == name
    assert [to_record(e) for e in result.events] == [to_record(e) for e in seen]


def test_recurrent_presets_report_the_time_view() -> None:
    for name, label in (("rnn-clipping", "dL/dx_t"), ("sentiment-lstm", "dL/dx_t")):
        s = session(name, steps=10)
        seen: list[Any] = []
        s.sinks.append(seen.extend)
        s.run(exit_when_done=True)
        run = next(e for e in seen if isinstance(e, RunStarted))
        assert run.time_view == label
        sampled = [e for e in seen if isinstance(e, StepMetrics) and e.time_grad is not None]
        assert [e.step for e in sampled] == [10]  # sampled every [train] time_every = 10 steps
        length = small(name).data.length
        assert len(sampled[0].time_grad) == length


def test_same_seed_same_run_and_remedies_differ_only_in_themselves() -> None:
    def first_losses(**kw: Any) -> list[float]:
        s = session("deep-sigmoid", steps=5, **kw)
        seen: list[Any] = []
        s.sinks.append(seen.extend)
        s.run(exit_when_done=True)
        return [e.loss for e in seen if isinstance(e, StepMetrics)]

    assert first_losses() == first_losses()
    assert first_losses() != first_losses(overrides={"activation": "relu"})


def test_structural_remedy_starts_a_new_run_live_remedy_applies_at_next_step() -> None:
    s = session("deep-sigmoid")
    seen: list[Any] = []
    s.sinks.append(seen.extend)
    s.start_run()
    for _ in range(3):
        s.trainer.step()
    s.send(SetRemedy("lr", 0.5))
    s.send(SetRemedy("skip", True))
    s.send(Pause())
    s._apply_commands(block=False)
    lr_change = next(e for e in seen if isinstance(e, RemedyChanged) and e.name == "lr")
    assert lr_change.step == 4 and not lr_change.structural
    runs = [e for e in seen if isinstance(e, RunStarted)]
    assert [r.run for r in runs] == [1, 2] and runs[1].remedies["skip"] is True and runs[1].reason == "remedy"
    assert s.trainer.lr == 0.5  # the new run keeps the live value too
    s.send(StepOnce())
    s._apply_commands(block=False)
    step = [e for e in seen if isinstance(e, StepMetrics)][-1]
    assert (step.run, step.step, step.lr) == (2, 1, 0.5)
    s.send(Restart())
    s._apply_commands(block=False)
    assert [e.run for e in seen if isinstance(e, RunStarted)] == [1, 2, 3]


def _capture_optimizer_grads(s: Session, norms: list[float]) -> None:
    """Record the total gradient norm the optimizer actually sees at each step."""
    optimizer = s.trainer.optimizer
    real_step = optimizer.step

    def step(*args: Any, **kwargs: Any) -> Any:
        grads = [p.grad.flatten() for p in s.trainer.model.parameters() if p.grad is not None]
        norms.append(torch.cat(grads).norm().item())
        return real_step(*args, **kwargs)

    optimizer.step = step  # type: ignore[method-assign]


def test_a_fix_that_asks_for_a_fresh_run_gets_one_even_for_a_live_remedy() -> None:
    s = session("deep-relu", overrides={"init": "he"})
    s.start_run()
    s.trainer.step()
    s.send(SetRemedies((("lr", 0.005),)))
    s._apply_commands(block=False)
    assert s.run_number == 1 and s.trainer.lr == 0.005  # a live change: the same run goes on
    s.send(SetRemedies((("lr", 0.0025),), fresh_run=True))
    s._apply_commands(block=False)
    assert s.run_number == 2 and s.trainer.step_count == 0 and s.trainer.lr == 0.0025


def test_accumulation_measures_the_gradient_the_optimizer_uses() -> None:
    s = session("deep-sigmoid", overrides={"accumulate": 4})
    seen: list[Any] = []
    s.sinks.append(seen.extend)
    s.start_run()
    used: list[float] = []
    _capture_optimizer_grads(s, used)
    for _ in range(5):
        s.trainer.step()
    s.flush()
    reported = [e.total_norm for e in seen if isinstance(e, StepMetrics)]
    assert reported == pytest.approx(used, rel=1e-5)


def test_clipping_bounds_the_applied_norm_and_reports_the_norm_before() -> None:
    s = session("rnn-clipping", overrides={"clip": 0.01})
    seen: list[Any] = []
    s.sinks.append(seen.extend)
    s.start_run()
    applied: list[float] = []
    _capture_optimizer_grads(s, applied)
    for _ in range(20):
        s.trainer.step()
    s.flush()
    steps = [e for e in seen if isinstance(e, StepMetrics)]
    assert max(applied) <= 0.01 * (1 + 1e-4)
    assert all(e.clipped is (e.total_norm > 0.01) for e in steps)
    assert max(e.total_norm for e in steps) > 0.01  # the reported norm is the one before clipping


def test_rnn_without_clipping_explodes_and_clipping_bounds_it() -> None:
    """The rnn-clipping preset at full size: Pascanu et al.'s exploding gradient, and its cure."""

    def run(steps: int, **overrides: Any) -> tuple[Session, list[StepMetrics], list[float]]:
        s = Session(load_preset("rnn-clipping"), device="cpu", steps=steps, overrides=overrides)
        seen: list[Any] = []
        s.sinks.append(seen.extend)
        s.start_run()
        applied: list[float] = []
        _capture_optimizer_grads(s, applied)
        s.run(exit_when_done=True)
        return s, [e for e in seen if isinstance(e, StepMetrics)], applied

    plain, steps, _ = run(150)
    assert plain.state == "diverged"
    finite = sorted(e.total_norm for e in steps if math.isfinite(e.total_norm))
    assert finite[-1] > 1e6 * finite[0]  # the norm grows by orders of magnitude before it overflows

    clipped, steps, applied = run(500, clip=1.0)
    assert clipped.state == "finished" and len(steps) == 500
    totals = sorted(e.total_norm for e in steps)
    assert totals[-1] > 100 * totals[0]  # norms spanning orders of magnitude are still measured...
    assert max(applied) <= 1.0 + 1e-4  # ...but the optimizer never sees a norm above the threshold
    assert all(math.isfinite(e.loss) for e in steps)


def test_divergence_ends_the_run_at_its_step_and_every_count_agrees() -> None:
    # One flush at the very end: the trainer runs many steps past the divergence before it is seen.
    s = session("deep-relu", overrides={"lr": 100.0}, steps=50, flush_seconds=3600)
    history = History()
    seen: list[Any] = []
    s.sinks += [history.extend, seen.extend]
    s.run(exit_when_done=True)
    assert s.state == "diverged"
    steps = [e for e in seen if isinstance(e, StepMetrics)]
    state = [e for e in seen if isinstance(e, StateChanged)][-1]
    first_bad = next(e for e in steps if not e.finite)
    assert steps[-1] is first_bad  # no step after the divergence reaches anyone
    assert state.state == "diverged" and state.step == first_bad.step
    assert s.trainer.step_count == history.current.latest.step == history.current.steps == first_bad.step
    assert f"diverged at step {first_bad.step}:" in state.message
    assert "paus" not in state.message and "nan" not in state.message  # NaN is spelled one way
    assert s.divergence is not None and s.divergence.step == first_bad.step
    with pytest.raises(RuntimeError, match="diverged"):
        s.trainer.step()  # a diverged run takes no more steps
    s.send(Resume())
    s._apply_commands(block=False)
    assert s.run_number == 2 and s.divergence is None and s.state == "training"


def _step_event(step: int, loss: float, norms: tuple[float, ...]) -> StepMetrics:
    total = math.sqrt(sum(g * g for g in norms))
    return StepMetrics(run=1, step=step, t=0.0, loss=loss, grad_norm=norms, total_norm=total)


def test_divergence_names_what_went_non_finite_first() -> None:
    layers = ("fc1", "fc2", "fc3", "head")
    before = _step_event(7, 2.0, (1.0, 50.0, 3.0, 2.0))
    # The loss is finite, the gradient overflowed: backpropagation reached fc3 before fc2 and fc1.
    d = Divergence.of(_step_event(8, 2.5, (math.nan, math.nan, math.inf, 4.0)), before, layers)
    assert (d.step, d.first_nonfinite, d.nonfinite_layers) == (
        8, "layer 3 (fc3)", ("layer 1 (fc1)", "layer 2 (fc2)", "layer 3 (fc3)"))  # named as the diagnosis names them
    assert d.largest_before == (7, "layer 2 (fc2)", 50.0)
    assert d.message() == ("diverged at step 8: the gradient of layer 3 (fc3) went Inf first, then 2 layers below it; "
                           "loss 2.5; at step 7 the largest gradient was that of layer 2 (fc2), 50")
    # The loss itself is NaN: the forward pass went first, and every gradient with it.
    d = Divergence.of(_step_event(1, math.nan, (math.nan,) * 4), None, layers)
    assert d.first_nonfinite == "loss" and d.largest_before is None
    assert d.message() == ("diverged at step 1: the loss became NaN in the forward pass, "
                           "and with it every layer's gradient")
    one = Divergence.of(_step_event(3, 1.0, (1.0, 1.0, 1.0, math.inf)), before, layers)
    assert "the gradient of layer 4 (head) went Inf (the only layer whose gradient did)" in one.message()


def test_finished_message_counts_one_step_in_the_singular() -> None:
    s = session("deep-sigmoid", steps=1)
    seen: list[Any] = []
    s.sinks.append(seen.extend)
    s.run(exit_when_done=True)
    assert [e.message for e in seen if isinstance(e, StateChanged)] == ["run 1 finished 1 step"]


def test_training_threads_leave_a_core_on_the_cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from vgp_tui.engine import devices

    monkeypatch.setattr(devices, "_usable_cores", lambda: 8)
    assert devices.training_threads("cpu") == 7
    assert devices.training_threads("cpu", 3) == 3 and devices.training_threads("cuda", 3) is None  # --threads
    # serve --demo's tabs share the cores: 2 x 7 spinning threads on 8 cores would stall every step.
    assert devices.shared_threads(2) == 3 and devices.shared_threads(8) == 1 and devices.shared_threads(1) == 7
    monkeypatch.setattr(devices, "_usable_cores", lambda: 1)
    assert devices.training_threads("cpu") == 1
    assert devices.training_threads("cuda") is None and devices.training_threads("mps") is None
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(devices, "_usable_cores", lambda: 3)
        assert devices.use_training_threads("cpu") == 2 and torch.get_num_threads() == 2
        torch.set_num_threads(before)
        assert devices.use_training_threads("cuda:0") is None and torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)


def test_a_prepared_session_trains_the_model_it_built_as_an_unprepared_one_would() -> None:
    """prepare() (a preset switch's) builds the first model without announcing it; run() announces
    that very model as run 1, and it trains exactly as one built by run() itself."""
    def losses(prepared: bool) -> tuple[list[float], list[Any]]:
        s = session("deep-sigmoid", steps=5)
        seen: list[Any] = []
        s.sinks.append(seen.extend)
        if prepared:
            s.prepare()
            built = s._prepared
            assert built is not None and s.trainer is None and not seen  # nothing announced yet
        s.run(exit_when_done=True)
        if prepared:
            assert s.trainer is built
        return [e.loss for e in seen if isinstance(e, StepMetrics)], [e for e in seen if isinstance(e, RunStarted)]

    (plain, plain_runs), (early, early_runs) = losses(False), losses(True)
    assert early == plain and len(plain) == 5
    assert [r.run for r in early_runs] == [r.run for r in plain_runs] == [1]


def test_a_model_too_big_for_memory_in_prepare_leaves_torch_s_random_state_as_it_was(monkeypatch: Any) -> None:
    from vgp_tui.engine import trainer
    from vgp_tui.errors import UserError

    def refuse(*args: Any) -> Any:
        torch.empty(2**50, dtype=torch.uint8)  # the CPU allocator's own refusal

    monkeypatch.setattr(trainer, "build_model", refuse)
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    s = session("deep-sigmoid")
    with pytest.raises(UserError, match="does not fit in memory"):
        s.prepare()
    assert s._prepared is None and s.trainer is None
    assert torch.equal(torch.rand(3), expected)  # the Trainer's manual_seed(seed) was undone


def test_stop_command_ends_the_loop() -> None:
    s = session("deep-sigmoid")
    s.send(Stop())
    s.run()  # returns instead of training forever
    assert s.run_number == 1


def test_a_session_stopped_from_outside_ends_its_recording_as_finished(tmp_path: Path) -> None:
    # The dashboard closed (or a signal stopped `vgp-tui run`) in the middle of a run: end() records
    # the run as finished, so its recording does not replay as if training were still going on.
    import threading

    s = session("deep-sigmoid", flush_seconds=0.01)
    stop = threading.Event()
    writer = RecordingWriter(tmp_path / "run.jsonl", s.header())
    s.sinks += [writer.write, lambda events: stop.set() if any(isinstance(e, StepMetrics) for e in events) else None]
    s.run(stop)
    s.end()
    writer.close()
    events = read_recording(tmp_path / "run.jsonl").events
    last = events[-1]
    steps = [e for e in events if isinstance(e, StepMetrics)]
    assert isinstance(last, StateChanged) and last.state == "finished" and s.state == "finished"
    assert steps and last.step == steps[-1].step == s.trainer.step_count
    assert last.message == f"run 1 stopped after {s.trainer.step_count} step" + ("s" if s.trainer.step_count > 1 else "")
    s.end()  # once ended, again adds nothing
    assert s.state == "finished"

    # A paused run is over too; a finished or diverged one already says how it ended.
    paused = session("deep-sigmoid")
    seen: list[Any] = []
    paused.sinks.append(seen.extend)
    paused.start_run()
    paused.send(Pause())
    paused.send(StepOnce())
    paused._apply_commands(block=False)
    paused.end()
    assert [(e.state, e.message) for e in seen if isinstance(e, StateChanged)][-1] == ("finished", "run 1 stopped after 1 step")
    for ended in (session("deep-sigmoid", steps=2), session("deep-relu", overrides={"lr": 100.0}, steps=50)):
        seen = []
        ended.sinks.append(seen.extend)
        ended.run(exit_when_done=True)
        states = [e.state for e in seen if isinstance(e, StateChanged)]
        ended.end()
        assert [e.state for e in seen if isinstance(e, StateChanged)] == states and states[-1] in ("finished", "diverged")


def test_a_pause_is_not_counted_in_the_steps_time() -> None:
    # step_ms is the time since the last flush over the steps in it: the seconds the user spent paused
    # (or thinking between single steps) once made a step read as 1 000 ms, "0.3 steps/s" on screen.
    import time

    s = session("deep-sigmoid")
    seen: list[Any] = []
    s.sinks.append(seen.extend)
    s.start_run()
    s.send(Pause())
    s._apply_commands(block=False)
    time.sleep(1.0)
    s.send(StepOnce())
    s._apply_commands(block=False)
    one = [e for e in seen if isinstance(e, StepMetrics)]
    assert len(one) == 1 and one[0].step_ms < 500, one[0].step_ms  # one step of a 6 x 16 MLP, not the wait
    time.sleep(1.0)
    s.send(Resume())
    s._apply_commands(block=False)
    for _ in range(5):
        s._step()
    s.flush()
    after = [e for e in seen if isinstance(e, StepMetrics)][1:]
    assert len(after) == 5 and all(e.step_ms < 500 for e in after), [e.step_ms for e in after]


def test_builtin_presets_are_all_covered() -> None:
    assert sorted(SHRINK) == builtin_names()
