"""History: bounded multi-resolution series, runs and ghosts, markers, NaN kept."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vgp_tui.engine.events import RemedyChanged, RunStarted, StateChanged, StepMetrics
from vgp_tui.engine.history import FIRST_LAYER, History, MultiResolutionSeries


def test_series_keeps_recent_steps_exact_and_merges_older_ones() -> None:
    s = MultiResolutionSeries(channels=2, window=8)
    for step in range(1, 101):
        s.append(step, [step, -step])
    view = s.view()
    assert view.first_step[0] == 1 and view.last_step[-1] == 100
    assert np.all(view.first_step[1:] == view.last_step[:-1] + 1)  # contiguous, no gaps, no overlap
    # The newest buckets are single steps at full resolution.
    assert view.last_step[-1] == view.first_step[-1] == 100
    assert view.mean[-1, 0] == 100
    counts = view.last_step - view.first_step + 1
    means = view.mean[:, 0]
    expected = (view.first_step + view.last_step) / 2
    np.testing.assert_allclose(means, expected)
    assert np.all(view.low[:, 0] == view.first_step)
    assert np.all(view.high[:, 0] == view.last_step)
    assert counts.sum() == 100
    # Up to a step: the buckets that start at or before it (the loss plot's window), merged as asked.
    early = s.view(until=20)
    assert early.first_step[0] == 1 and early.first_step[-1] <= 20 < early.last_step[-1] + 1 + 8
    assert np.array_equal(early.first_step, view.first_step[view.first_step <= 20])
    assert len(s.view(4, until=60)) <= 4 and s.view(4, until=60).first_step[0] == 1
    assert len(s.view(until=0)) == 0


def test_series_memory_grows_logarithmically() -> None:
    sizes = []
    for n in (10_000, 100_000):
        s = MultiResolutionSeries(channels=22, window=256)
        row = np.ones(22)
        for step in range(n):
            s.append(step, row)
        sizes.append(s.nbytes())
    # Ten times the steps costs a few more levels, not ten times the memory.
    assert sizes[1] < 2.5 * sizes[0]


def test_view_downsamples_to_max_points_and_keeps_the_start() -> None:
    s = MultiResolutionSeries(channels=1, window=16)
    for step in range(1000):
        s.append(step, [step])
    view = s.view(max_points=50)
    assert len(view) <= 50
    assert view.first_step[0] == 0 and view.last_step[-1] == 999
    assert view.low[0, 0] == 0 and view.high[-1, 0] == 999


def test_nan_and_inf_survive_merging() -> None:
    s = MultiResolutionSeries(channels=1, window=4)
    for step in range(64):
        s.append(step, [math.nan if step == 3 else (math.inf if step == 40 else 1.0)])
    view = s.view(max_points=4)
    assert math.isnan(view.mean[0, 0])
    assert any(math.isinf(v) or math.isnan(v) for v in view.high[:, 0])


def _run(n: int, remedies: dict, t: float = 0.0) -> RunStarted:
    return RunStarted(run=n, t=t, preset="p", layers=("a", "b"), remedies=remedies, seed=0)


def _step(run: int, step: int, norms=(1.0, 2.0), loss=1.0, clipped=None) -> StepMetrics:
    return StepMetrics(run=run, step=step, t=step * 0.01, loss=loss, grad_norm=norms, total_norm=3.0, clipped=clipped)


def test_runs_ghosts_and_markers() -> None:
    h = History()
    h.add(_run(1, {"activation": "sigmoid", "init": "default", "lr": 0.1}))
    h.extend(_step(1, k) for k in range(1, 11))
    h.add(RemedyChanged(1, 11, 0.2, "lr", 0.1, 0.2, structural=False))
    h.add(RemedyChanged(1, 11, 0.2, "activation", "sigmoid", "relu", structural=True))
    h.add(_run(2, {"activation": "relu", "init": "default", "lr": 0.2}))
    h.add(_step(2, 1))
    assert h.current.run == 2
    assert [g.run for g in h.ghosts()] == [1]
    assert h.current.started_with["activation"] == "relu"
    assert h.ghosts()[0].started_with == {"activation": "sigmoid", "init": "default", "lr": 0.1}
    assert [(m.step, m.text) for m in h.ghosts()[0].markers] == [(11, "lr 0.2")]
    assert h.ghosts()[0].steps == 10


def test_old_runs_are_forgotten_beyond_the_limit() -> None:
    h = History(max_runs=3)
    for n in range(1, 6):
        h.add(_run(n, {"lr": 0.1 * n}))
        h.add(_step(n, 1))
    assert sorted(h.runs) == [3, 4, 5]


def test_state_and_divergence_marker() -> None:
    h = History()
    h.add(_run(1, {}))
    h.add(_step(1, 1, norms=(math.nan, 1.0), loss=math.nan))
    h.add(StateChanged(1, 1, 0.5, "diverged", "diverged at step 1"))
    assert h.state == "diverged"
    assert h.current.markers[-1].kind == "diverged"
    view = h.current.series.view()
    assert math.isnan(view.mean[0, FIRST_LAYER])


def test_clip_counts() -> None:
    h = History()
    h.add(_run(1, {"clip": 1.0}))
    h.extend([_step(1, 1, clipped=True), _step(1, 2, clipped=False), _step(1, 3, clipped=True)])
    assert (h.current.clip_steps, h.current.clipped_steps) == (3, 2)


def test_step_with_wrong_layer_count_is_ignored() -> None:
    h = History()
    h.add(_run(1, {}))
    h.add(_step(1, 1, norms=(1.0,)))
    assert h.current.steps == 0


@pytest.mark.parametrize("window", [1, 3])
def test_window_must_be_even(window: int) -> None:
    with pytest.raises(ValueError):
        MultiResolutionSeries(1, window)


def test_ghost_label_uses_the_remedies_each_run_started_with() -> None:
    from vgp_tui.dashboard.loss_plot import ghost_label

    h = History()
    h.add(_run(1, {"clip": None, "lr": 0.1}))
    h.add(_step(1, 1))
    # A live change that ends the run (after divergence) is marked on run 1 ...
    h.add(RemedyChanged(1, 2, 0.2, "clip", None, 1.0, structural=False))
    h.add(_run(2, {"clip": 1.0, "lr": 0.1}))
    ghost = h.ghosts()[0]
    assert ghost.remedies["clip"] == 1.0 and ghost.markers[-1].text == "clip 1"
    # ... but the ghost is still told apart by what it started with.
    assert ghost_label(ghost, h.current) == "run 1: clip=off"


def test_the_ghost_of_a_run_that_was_continued_is_labelled_by_its_steps() -> None:
    """Recorder(continues=) (a framework's second fit, a resumed job): the earlier part of the same
    training was labelled "run 1: same remedies", as another try from the same seed."""
    from dataclasses import replace

    from vgp_tui.dashboard.loss_plot import ghost_label

    h = History()
    h.add(_run(1, {"clip": None}))
    h.extend([_step(1, s) for s in range(1, 21)])
    h.add(replace(_run(2, {"clip": None}), reason="continued"))
    h.extend([_step(2, s) for s in range(21, 31)])
    assert ghost_label(h.ghosts()[0], h.current) == "run 1: steps 1–20"
    again = History()  # a fresh run from the same seed keeps its label
    again.add(_run(1, {"clip": None}))
    again.extend([_step(1, s) for s in range(1, 21)])
    again.add(_run(2, {"clip": None}))
    again.extend([_step(2, s) for s in range(1, 11)])
    assert ghost_label(again.ghosts()[0], again.current) == "run 1: same remedies"


def test_a_step_the_scaler_skipped_is_counted_not_drawn_nor_called_a_divergence() -> None:
    import math

    from vgp_tui.diagnosis import diagnose
    from vgp_tui.engine.events import RunStarted, StepMetrics

    history = History()
    history.add(RunStarted(run=1, t=0.0, preset="custom", layers=("fc1", "head"), remedies={}, seed=0))
    for step in range(1, 40):
        skipped = step == 20
        norms = (math.inf, 1.0) if skipped else (0.5, 1.0)
        history.add(StepMetrics(run=1, step=step, t=0.01 * step, loss=1.0, grad_norm=norms,
                                total_norm=math.inf if skipped else 1.2, skipped=skipped))
    run = history.current
    assert run.skipped_steps == 1 and run.steps == 38 and run.first_nonfinite is None
    assert diagnose(run).kind == "healthy"


def test_recent_reads_the_last_full_resolution_steps_as_copies() -> None:
    h = History(window=8)
    h.add(_run(1, {}))
    h.extend(_step(1, k, norms=(k, 10.0 * k), loss=-k) for k in range(1, 101))
    recent = h.current.recent(5)
    assert recent.steps.tolist() == [96, 97, 98, 99, 100]
    assert recent.loss.tolist() == [-96.0, -97.0, -98.0, -99.0, -100.0]
    assert recent.total.tolist() == [3.0] * 5
    assert recent.layers.tolist() == [[k, 10.0 * k] for k in range(96, 101)]
    assert recent.layers.dtype == np.float64 and recent.all_finite
    recent.layers[:] = math.nan  # the reader's copy: the history keeps its numbers
    assert h.current.recent(1).layers.tolist() == [[100.0, 1000.0]]
    # Only the steps before a given one (a divergence), and never more than level 0 holds.
    assert h.current.recent(3, before=99).steps.tolist() == [96, 97, 98]
    assert len(h.current.recent(1000)) < 100


def test_recent_says_whether_a_nan_or_inf_is_among_its_steps() -> None:
    h = History()
    h.add(_run(1, {}))
    h.extend(_step(1, k) for k in range(1, 5))
    h.add(_step(1, 5, norms=(math.inf, 1.0)))
    assert not h.current.recent(3).all_finite
    assert h.current.recent(3, before=5).all_finite


def test_overview_names_the_channels_of_the_whole_run() -> None:
    h = History(window=8)
    h.add(_run(1, {}))
    h.extend(_step(1, k, norms=(k, 1.0), loss=float(k)) for k in range(1, 101))
    whole = h.current.overview()
    assert whole.first_step[0] == 1 and whole.last_step[-1] == 100 and len(whole) < 100
    np.testing.assert_allclose(whole.mean.loss, (whole.first_step + whole.last_step) / 2)
    np.testing.assert_allclose(whole.mean.layers[:, 0], whole.mean.loss)
    assert whole.low.layers[0, 0] == 1 and whole.high.layers[-1, 0] == 100
    assert whole.mean.layers.shape == (len(whole), 2) and whole.high.total.shape == (len(whole),)
    cut = int(whole.last_step[-3]) + 1  # a divergence there: the last two buckets are dropped
    finite = whole.before(cut)
    assert len(finite) == len(whole) - 2 and finite.high.loss.max() == cut - 1
    assert finite.mean.layers.shape == (len(whole) - 2, 2)
    assert len(h.current.overview(10)) <= 10


def test_markers_are_bounded_and_a_divergence_marker_stays() -> None:
    from vgp_tui.engine.events import RemedyChanged, RunStarted, StateChanged
    from vgp_tui.engine.history import MAX_MARKERS

    history = History()
    history.add(RunStarted(run=1, t=0.0, preset="custom", layers=("fc1", "head"), remedies={"lr": 0.1}, seed=0))
    history.add(StateChanged(1, 1, 0.0, "error", "a hiccup"))
    for step in range(2, 10_000):  # an lr schedule logged every step
        history.add(RemedyChanged(1, step, 0.0, "lr", 0.1, 0.1 + step * 1e-6, False))
    run = history.current
    assert len(run.markers) == MAX_MARKERS and run.marker_count == 9_999
    assert run.markers[0].kind == "error" and run.markers[-1].step == 9_999


def test_ever_nonzero_remembers_every_step_across_the_merged_levels() -> None:
    """Kept step by step (the panels read it at every redraw): it must say what every level's
    buckets would say, the stored float32 values read, a NaN counting as a gradient."""
    series = MultiResolutionSeries(4, window=4)
    series.append(1, [0.0, 1e-50, 0.0, math.nan])  # (1e-50 is stored as a float32 0: no gradient)
    series.append(2, [0.0, 0.0, 2.0, 0.0])
    for step in range(3, 40):  # many cascades: the first rows live in merged levels only
        series.append(step, [0.0, 0.0, 0.0, 0.0])
    assert len(series.levels) > 2
    assert series.ever_nonzero(slice(0, 4)).tolist() == [False, False, True, True]
    assert series.ever_nonzero(slice(2, 4)).tolist() == [True, True]
    from_levels = np.zeros(4, bool)
    for level in series.levels:
        from_levels |= (level.high[: level.size] != 0).any(axis=0)
    assert series.ever_nonzero(slice(0, 4)).tolist() == from_levels.tolist()
