"""The diagnosis line: verdicts read from a History fed with real events, and hints that fit the run."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from vgp_tui.diagnosis import Diagnosis, diagnose
from vgp_tui.engine.events import RunStarted, StateChanged, StepMetrics
from vgp_tui.engine.history import History
from vgp_tui.health import counterparts, layer_verdicts

MLP = {
    "activation": "sigmoid",
    "init": "default",
    "batchnorm": False,
    "skip": False,
    "clip": None,
    "accumulate": 1,
    "lr": 0.1,
    "optimizer": "sgd",
}
RNN = {"cell": "rnn", "init": "poor", "clip": None, "accumulate": 1, "lr": 0.05, "optimizer": "sgd"}
LAYERS = tuple(f"fc{i}" for i in range(9)) + ("head",)


def feed(
    norms: np.ndarray | list[list[float]],
    remedies: dict | None = None,
    layers: tuple[str, ...] = LAYERS,
    total: list[float] | None = None,
    stats: str | None = None,
    layer_stats: tuple[float, ...] | None = None,
    time_view: str | None = None,
    time_grad: tuple[float, ...] | None = None,
) -> History:
    """A History with one run whose steps have these per-layer norms (one row per step)."""
    history = History(window=64)
    history.add(
        RunStarted(
            run=1, t=0.0, preset="test", layers=layers, remedies=dict(remedies or MLP), seed=0,
            stats=stats, time_view=time_view,
        )
    )
    for i, row in enumerate(norms):
        row = [float(v) for v in row]
        last = i == len(norms) - 1
        history.add(
            StepMetrics(
                run=1, step=i + 1, t=0.01 * i, loss=1.0, grad_norm=tuple(row),
                total_norm=total[i] if total is not None else math.sqrt(sum(v * v for v in row)),
                layer_stats=layer_stats if last else None,
                time_grad=time_grad if last else None,
            )
        )
    return history


def flow(first: float, last: float, steps: int = 200, layers: int = len(LAYERS), seed: int = 0) -> np.ndarray:
    """Norms growing geometrically from ``first`` (input side) to ``last``, with a little noise."""
    rng = np.random.default_rng(seed)
    base = np.geomspace(first, last, layers)
    return base * np.exp(0.1 * rng.standard_normal((steps, layers)))


def verdict(history: History) -> Diagnosis:
    return diagnose(history.current, history.state, history.message)


def test_vanishing_names_the_layers_the_size_and_the_remedies_that_apply() -> None:
    d = verdict(feed(flow(1e-10, 0.1)))
    assert d.kind == "vanishing"
    assert "layer 1 (fc0)" in d.text.lower() and "layer 10's (head)" in d.text
    assert "9 orders of magnitude" in d.text
    assert "1e-9" in d.text  # the ratio, two significant digits at most
    # ReLU comes with He init: alone, under the default init, most ReLUs die (measured on deep-sigmoid).
    assert d.hints == ("[1] relu + init he", "[2] batchnorm on", "[3] skip on")
    assert d.fixes[0].changes == (("activation", "relu"), ("init", "he"))
    assert d.text.endswith("Press [1] relu + init he, [2] batchnorm on, [3] skip on.")


def test_vanishing_hints_skip_remedies_already_applied_or_not_offered() -> None:
    remedies = {**MLP, "activation": "relu", "init": "he", "skip": True}
    del remedies["batchnorm"]  # a preset without batch norm: never suggested
    d = verdict(feed(flow(1e-10, 0.1), remedies))
    assert d.kind == "vanishing"
    assert d.fixes == ()  # everything it could suggest is applied or not offered
    assert "Press" not in d.text


def test_the_verdict_reads_the_recent_median_not_one_step() -> None:
    norms = flow(0.05, 0.1, steps=100)
    norms[-1, 0] = 1e-12  # one odd step does not make it vanish
    assert verdict(feed(norms)).kind == "healthy"
    norms[-60:, 0] = 1e-12  # a sustained drop does
    assert verdict(feed(norms)).kind == "vanishing"


def test_exploding_by_ratio_suggests_clip_lower_lr_and_init() -> None:
    remedies = {**MLP, "activation": "relu", "init": "poor"}
    d = verdict(feed(flow(1e6, 1.0), remedies))
    assert d.kind == "exploding"
    assert "6 orders of magnitude more" in d.text
    # In a ReLU net with a poor init, the init is the cause: offered first (He et al. 2015).
    assert d.hints == ("[1] init he", "[2] clip 1", "[3] lr 0.05")
    # Far above any preset's rate a tenth, not a half: from lr 100, halving took ten diverged runs.
    d = verdict(feed(flow(1e6, 1.0), {**remedies, "lr": 100.0}))
    assert d.hints[-1] == "[3] lr 10"


def test_exploding_spike_in_the_total_norm() -> None:
    norms = flow(0.5, 1.0, steps=100)
    total = [1.0] * 100
    total[90] = 5e3
    d = verdict(feed(norms, {**MLP, "clip": 1.0}, total=total))
    assert d.kind == "exploding"
    assert "spiked to 5e3 at step 91" in d.text
    assert "clip" not in " ".join(d.hints)  # clipping is already on


def test_a_spike_within_the_scale_the_run_started_at_is_not_an_explosion() -> None:
    # A model that has learned (the sentiment LSTM): its gradient fell to 0.01 from 0.05 at step 1;
    # one hard batch lifts the norm 190-fold, to 1.9, only 38 times where it started. Not exploding.
    norms = flow(0.5, 1.0, steps=100)
    total = [0.05] + [0.01] * 99
    total[90] = 1.9
    assert verdict(feed(norms, {**MLP, "clip": 1.0}, total=total)).kind == "healthy"
    total[90] = 50.0  # a thousand times where it started: that is one
    d = verdict(feed(norms, {**MLP, "clip": 1.0}, total=total))
    assert d.kind == "exploding" and "spiked to 50 at step 91, 5e3x its recent median" in d.text, d.text


def grown_into(norms: np.ndarray, row: int) -> np.ndarray:
    """``norms`` growing a thousandfold over the ten steps before ``row``: an explosion on its way."""
    norms[row - 10 : row] *= np.geomspace(1.0, 1e3, 10)[:, None]
    return norms


def test_non_finite_gradient_is_exploding_and_names_the_layer() -> None:
    norms = grown_into(flow(0.5, 1.0, steps=30), 27)
    norms[-3, 4] = math.nan
    d = verdict(feed(norms))
    assert d.kind == "exploding"
    assert "step 28" in d.text and "layer 5 (fc4)" in d.text and "NaN" in d.text


def test_a_nan_after_steady_norms_is_not_called_an_explosion() -> None:
    """A NaN in a batch (or a log of 0 in the loss) after steady norms was called exploding, with
    clipping and a lower learning rate to try: neither helps."""
    norms = flow(0.5, 1.0, steps=30)
    norms[-3:, :] = math.nan  # every layer, from step 28 on (the NaN went into the weights)
    d = verdict(feed(norms))
    assert d.kind == "nonfinite" and d.fixes == ()
    assert d.verdict == ("At step 28 the gradient of layer 10 (head) first became NaN (and 9 more layers) with no "
                         "growth in the gradient before it, and it is still non-finite at step 30: not an "
                         "explosion."), d.verdict
    from vgp_tui.diagnosis import in_words

    said = in_words(d, {"lr": 0.1}).text  # a recording of the user's own loop
    assert said.endswith("To try: look in that step's batch and loss for a NaN or Inf (a log of 0, a division by "
                         "0); torch.autograd.detect_anomaly() names the operation that made it."), said
    short = flow(0.5, 1.0, steps=4)  # too few steps before it to tell: as before, an explosion
    short[-1, :] = math.nan
    assert verdict(feed(short)).kind == "exploding"


def test_healthy_flow() -> None:
    d = verdict(feed(flow(0.3, 1.0)))
    assert d.kind == "healthy"
    assert re.search(r"reaches layer 1 \(fc0\) at 0\.3\d?x of layer 10's \(head\): healthy flow", d.text)
    assert d.hints == ()


def test_a_gradient_that_vanishes_between_healthy_ends_is_not_called_healthy() -> None:
    """A language model's tied embedding is its first layer and its output head at once: it gets the
    head's gradient, so "Gradient reaches layer 1 (wte) at 18x of layer 147's: healthy flow" was said
    while the blocks behind it got ever less, block after block, down to 1e-4 of the last block's."""
    layers = ("wte", "h.0", "h.1", "h.2", "ln_f")
    norms = [[0.36, 1e-9, 1e-7, 1e-5, 0.02]] * 40
    d = verdict(feed(norms, remedies={"lr": 0.003}, layers=layers))
    assert d.kind == "vanishing"
    assert d.text.startswith("Gradient reaches layer 1 (wte) at 18x of layer 5's (ln_f), but layer 2 (h.0) gets "
                             "1e-4 of what the same layer in the last block, layer 4 (h.2), gets, 4 orders of "
                             "magnitude less: vanishing inside the network."), d.text
    weaker = [[0.36, 4e-7, 2e-6, 1e-4, 0.02]] * 40  # 4e-3 of the last block's: weakening, not vanishing
    d = verdict(feed(weaker, remedies={"lr": 0.003}, layers=layers))
    assert d.kind == "healthy" and d.text.startswith(
        "Gradient reaches layer 1 (wte) at 18x of layer 5's (ln_f), but layer 2 (h.0) gets only 4e-3 of what "
        "the same layer in the last block, layer 4 (h.2), gets: weakening inside the network, not yet "
        "vanishing."), d.text
    # Two blocks say little about depth: their layers are read against the last layer, as a ResNet-18's.
    two = verdict(feed([[0.36, 2e-5, 8e-6, 0.02]] * 40, remedies={"lr": 0.003}, layers=("wte", "h.0", "h.1", "ln_f")))
    assert two.kind == "vanishing" and two.text.startswith(
        "Gradient reaches layer 1 (wte) at 18x of layer 4's (ln_f), but layer 3 (h.1) gets 4e-4 of it, 3 orders "
        "of magnitude less: vanishing inside the network."), two.text


GPT2_LAYERS = ("wpe", *(f"h.{i}.{part}" for i in range(4) for part in ("ln_1", "attn", "ln_2", "mlp")), "ln_f", "lm_head")


def _gpt2_norms(depth_factor: float = 1.0) -> list[float]:
    """A GPT-2's recent norms at its start (as a 12-block one measured, 256 wide): a LayerNorm's few
    weights 100 times under the block's matrices, the tied embedding-and-head far above every block;
    each block ``depth_factor`` times the one before it."""
    blocks = [v * depth_factor ** (i - 3) for i in range(4) for v in (2e-4, 2e-2, 3e-4, 4e-2)]
    return [9e-3, *blocks, 2e-2, 0.7]


def test_a_healthy_transformer_is_read_block_by_block_not_against_its_head() -> None:
    # Read against the head, a LayerNorm of every block got 3e-4 of it: "vanishing inside the network",
    # and "try residual connections" advised to a model made of them.
    d = verdict(feed([_gpt2_norms()] * 40, remedies={"lr": 3e-4}, layers=GPT2_LAYERS))
    assert d.kind == "healthy" and d.text == (
        "Gradient reaches layer 1 (wpe) at 0.013x of layer 19's (lm_head): healthy flow."), d.text
    assert set(layer_verdicts(_gpt2_norms(), names=GPT2_LAYERS)) == {"healthy"}
    assert layer_verdicts(_gpt2_norms())[1] == "vanishing"  # (what the head alone as reference said)
    # The same transformer losing a decade a block: its first block's layers vanish, as the panels say.
    decaying = _gpt2_norms(depth_factor=20.0)
    d = verdict(feed([decaying] * 40, remedies={"lr": 3e-4}, layers=GPT2_LAYERS))
    assert d.kind == "vanishing" and "but layer 2 (h.0.ln_1) gets 1.3e-4 of what the same layer in the last " \
        "block, layer 14 (h.3.ln_1), gets, 4 orders of magnitude less" in d.text, d.text
    assert layer_verdicts(decaying, names=GPT2_LAYERS)[1:5] == ["vanishing"] * 4


def test_counterparts_pair_each_repeated_layer_with_the_last_blocks() -> None:
    peers = counterparts(GPT2_LAYERS)
    assert [GPT2_LAYERS[p] if p >= 0 else None for p in peers[:5]] == [None, "h.3.ln_1", "h.3.attn", "h.3.ln_2", "h.3.mlp"]
    assert peers[-2:] == (-1, -1)
    # A ResNet-18's stages hold two blocks each: too few to read depth from, so none.
    resnet = ("stem", "layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv1", "layer1.1.conv2", "fc")
    assert set(counterparts(resnet)) == {-1}
    # A layer the last block lacks (a first block's shortcut) has none; an nn.Sequential's layers
    # ("0", "2", ...) are one container whose last layer is the head.
    shortcut = ("a.0.conv", "a.0.shortcut", "a.1.conv", "a.2.conv")
    assert counterparts(shortcut) == (3, -1, 3, 3)
    assert counterparts(("0", "2", "4", "6")) == (3, 3, 3, 3)


def test_dead_relu_units_from_layer_stats() -> None:
    remedies = {**MLP, "activation": "relu", "init": "poor"}
    stats = (0.1, 0.2, 0.85, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1)
    d = verdict(feed(flow(0.05, 1.0), remedies, stats="dead ReLU fraction", layer_stats=stats))
    assert d.kind == "dead"
    assert "85% of the units after layer 3 (fc2) output 0" in d.text and d.text.startswith("Dead ReLUs")
    assert d.hints[0] == "[1] init he" and not any("relu" in h for h in d.hints)
    # A dead unit never comes back: a lower learning rate is offered for a fresh run, not this one.
    assert d.hints[1] == "[2] restart with lr 0.05" and d.fixes[1].changes == (("lr", 0.05),)
    assert d.fixes[1].fresh_run and not d.fixes[0].fresh_run
    # Below half dead it is not called out.
    calm = verdict(feed(flow(0.05, 1.0), remedies, stats="dead ReLU fraction", layer_stats=(0.4,) * 9))
    assert calm.kind == "healthy"


def test_saturated_units_from_layer_stats() -> None:
    stats = (0.9,) + (0.1,) * 8
    d = verdict(feed(flow(1e-4, 1.0), stats="saturated fraction", layer_stats=stats))
    assert d.kind == "saturated"
    assert d.text.startswith("Saturated: 90% of the units after layer 1 (fc0)")
    assert "[1] relu + init he" in d.hints


def test_diverged_and_error_states_show_the_message() -> None:
    history = feed(flow(0.3, 1.0, steps=10))
    history.add(StateChanged(1, 10, 1.0, "diverged", "loss became NaN at step 10"))
    d = verdict(history)
    assert d.kind == "diverged"
    assert d.text.startswith("loss became NaN at step 10")
    assert d.hints[0] == "[1] clip 1"
    assert "at step 10. Press [1] clip 1" in d.text  # the message becomes a sentence before the keys
    assert d.verdict == "loss became NaN at step 10"
    e = diagnose(history.current, "error", "CUDA out of memory")
    assert (e.kind, e.text, e.hints) == ("error", "CUDA out of memory", ())


def test_waiting_before_the_first_step() -> None:
    assert diagnose(None).kind == "waiting"
    empty = feed([])
    assert verdict(empty).kind == "waiting"


def test_recurrent_run_says_how_far_back_in_time_the_gradient_reaches() -> None:
    time_grad = tuple(np.geomspace(1e-8, 1.0, 50))
    history = feed(
        flow(0.5, 1.0, layers=2), RNN, layers=("rnn", "head"), time_view="dL/dh_t", time_grad=time_grad
    )
    d = verdict(history)
    assert d.kind == "vanishing"
    assert "Back through time, time step 1 of 50 gets 1e-8 of the gradient at time step 50: vanishing" in d.text
    assert d.hints[0] == "[1] lstm" and not any("relu" in h for h in d.hints)
    lstm = feed(
        flow(0.5, 1.0, layers=2), {**RNN, "cell": "lstm"}, layers=("rnn", "head"),
        time_view="dL/dh_t", time_grad=tuple(np.geomspace(0.2, 1.0, 50)),
    )
    d = verdict(lstm)
    assert d.kind == "healthy" and "each of the 50 time steps gets at least 0.2 of the gradient at time step 50: it reaches back" in d.text


def test_layers_named_by_number_are_not_named_twice() -> None:
    layers = tuple(f"layer{i}" for i in range(1, 11))
    d = verdict(feed(flow(1e-10, 0.1), layers=layers))
    assert d.text.startswith("Layer 1 receives 1e-9 of layer 10's gradient")  # "layer 1", as elsewhere


def test_a_layer_whose_number_is_not_its_position_keeps_both() -> None:
    layers = ("stem", "layer1", "layer2", "layer3", "fc")  # a ResNet's names: layer1 is the 2nd layer
    d = verdict(feed(flow(1e-10, 0.1, layers=5), layers=layers))
    assert d.text.startswith("Layer 1 (stem) receives") and "layer 5's (fc) gradient" in d.text
    healthy = verdict(feed(flow(0.3, 1.0, layers=5), layers=("fc0", "layer1", "layer2", "layer3", "fc")))
    assert "layer 1 (fc0)" in healthy.text


def test_each_fix_changes_only_what_the_run_takes_and_does_not_have() -> None:
    from vgp_tui.diagnosis import MAX_FIXES

    d = verdict(feed(flow(1e6, 1.0), {**MLP, "activation": "relu", "init": "poor", "clip": 2.0}))
    for fix in d.fixes:
        assert all(name in MLP for name, _ in fix.changes)
        assert any({**MLP, "activation": "relu", "init": "poor", "clip": 2.0}[n] != v for n, v in fix.changes)
    assert len(d.fixes) <= MAX_FIXES


def test_a_last_layer_that_gets_no_gradient_is_named_and_the_others_are_read_against_the_one_before() -> None:
    """A module never used in the forward (an unused head), registered last, records exactly 0: as
    the reference it left the run "Not enough finite gradient norms yet to compare the layers" for
    ever, and every flow bar and heatmap row without a verdict."""
    from vgp_tui.dashboard.layers import group_rows, worst_order
    from vgp_tui.health import layer_verdicts, reference_layer

    layers = ("fc0", "fc1", "head", "aux")
    norms = [[1e-6, 1e-3, 0.1, 0.0]] * 20
    d = verdict(feed(norms, layers=layers))
    assert d.kind == "vanishing"
    assert d.text.startswith("Layer 4 (aux) gets no gradient at all: is it used in the forward pass? Layer 1 (fc0) "
                             "receives 1e-5 of layer 3's (head) gradient, 5 orders of magnitude less: vanishing."), d.text
    d = verdict(feed([[1e-2, 0.05, 0.1, 0.0, 0.0]] * 20, layers=("fc0", "fc1", "head", "aux", "pool")))
    assert d.kind == "healthy" and d.text.startswith(
        "Layers 4 (aux) and 5 (pool) get no gradient at all: are they used in the forward pass? "
        "Gradient reaches layer 1 (fc0) at 0.1x of layer 3's (head): healthy flow."), d.text
    # Anywhere in the model: not "none reaches layer 2: vanishing inside the network", with its fixes.
    d = verdict(feed([[1e-2, 0.0, 0.05, 0.1]] * 20, layers=("fc0", "unused_mid", "fc1", "head")))
    assert d.kind == "healthy" and d.text.startswith(
        "Layer 2 (unused_mid) gets no gradient at all: is it used in the forward pass? Gradient reaches layer 1 "
        "(fc0) at 0.1x of layer 4's (head): healthy flow."), d.text
    d = verdict(feed([[0.0, 1e-2, 0.05, 0.1]] * 20, layers=("unused_in", "fc0", "fc1", "head")))
    assert d.text.startswith("Layer 1 (unused_in) gets no gradient at all: is it used in the forward pass? Gradient "
                             "reaches layer 2 (fc0) at 0.1x of layer 4's (head): healthy flow."), d.text
    d = verdict(feed([[0.3, 0.0]] * 20, layers=("fc", "aux")))  # one layer left to read: no comparison
    assert d.text == ("Layer 2 (aux) gets no gradient at all: is it used in the forward pass? The only layer with a "
                      "gradient, layer 1 (fc), gets a gradient of 0.3."), d.text
    # The first layers' 0s leading to a vanishing gradient are its underflow, not unused modules.
    d = verdict(feed([[0.0, 0.0, 1e-30, 1e-20, 0.1]] * 20, layers=("fc0", "fc1", "fc2", "fc3", "head")))
    assert d.kind == "vanishing" and "no gradient at all" not in d.text, d.text
    assert d.text.startswith("Layer 1 (fc0) receives 0 of layer 5's (head) gradient: nothing reaches the input side"), d.text
    # A layer whose gradient was not 0 at first, and is now, vanished: it is not called unused.
    fading = [[1e-3, 1e-2, 0.1]] * 5 + [[0.0, 1e-2, 0.1]] * 20
    d = verdict(feed(fading, layers=("fc0", "fc1", "head")))
    assert d.kind == "vanishing" and "no gradient at all" not in d.text, d.text
    assert reference_layer([1.0, 0.1, 0.0, 0.0]) == 1 and reference_layer([1.0, math.nan]) == 1
    assert reference_layer([0.0, 0.0]) == 1  # (nothing gets a gradient: the diagnosis says so)
    assert layer_verdicts([1e-6, 5e-4, 0.1, 0.0]) == ["vanishing", "weakening", "healthy", "unknown"]
    assert worst_order([1e-6, 5e-4, 0.1, 0.0], 4)[:2] == [0, 1]
    # The heatmap's merged rows read their distance from the head, not from the unused layer's 0.
    logs = np.array([[-6.0, -1.0, -1.0, -math.inf]])  # (log10 of a norm of 0)
    assert group_rows(logs, [[0, 1], [2], [3]])[0].tolist() == [-6.0]


def test_the_panels_call_a_layer_that_never_got_a_gradient_unused_not_vanishing() -> None:
    """The diagnosis named an unused middle module for what it is, while the heatmap coloured its
    name red (vanishing) and worst-first listed it first: one reading of "no gradient" everywhere."""
    from vgp_tui.dashboard.layers import worst_order
    from vgp_tui.health import run_verdicts

    run = feed([[1e-2, 0.0, 0.05, 0.1]] * 20, layers=("fc0", "unused_mid", "fc1", "head")).current
    recent, verdicts = run_verdicts(run)
    assert verdicts == ["healthy", "unused", "healthy", "healthy"]
    assert worst_order(recent, 4, verdicts)[-1] == 1  # (after the healthy layers: no layer of the flow)
    # The first layers' 0s before a vanishing gradient are its underflow: vanishing, as the diagnosis says.
    run = feed([[0.0, 0.0, 1e-30, 1e-20, 0.1]] * 20, layers=("fc0", "fc1", "fc2", "fc3", "head")).current
    assert run_verdicts(run)[1][:3] == ["vanishing"] * 3
    # A layer that had a gradient and lost it vanished.
    run = feed([[1e-3, 1e-2, 0.1]] * 5 + [[0.0, 1e-2, 0.1]] * 20, layers=("fc0", "fc1", "head")).current
    assert run_verdicts(run)[1][0] == "vanishing"
    # An unused last module: the layers are read against the head before it, and it is unused.
    run = feed([[1e-6, 1e-3, 0.1, 0.0]] * 20, layers=("fc0", "fc1", "head", "aux")).current
    assert run_verdicts(run)[1] == ["vanishing", "healthy", "healthy", "unused"]


def test_zero_gradient_everywhere_is_not_called_healthy() -> None:
    d = verdict(feed(np.zeros((20, len(LAYERS)))))
    assert d.kind == "vanishing"


def test_bidirectional_time_view_finds_the_starved_middle() -> None:
    """Both ends of a bidirectional layer get gradient; the diagnosis must see the middle die."""
    middle_dies = tuple(np.r_[np.geomspace(1.0, 1e-12, 25), np.geomspace(1e-12, 1.0, 25)])
    run = feed(flow(0.5, 1.0, layers=2), {**RNN}, layers=("rnn", "head"), time_view="dL/dx_t", time_grad=middle_dies)
    d = verdict(run)
    assert d.kind == "vanishing"
    assert "time step 25 of 50 gets 1e-12 of the gradient at time step 1" in d.text


def test_the_time_view_is_the_median_of_the_recent_samples_not_the_last_one() -> None:
    # A clipped vanilla RNN's profile swings tenfold from one sample to the next: read from the last
    # sample alone, the line flipped between "vanishing" and "it reaches back" every second or two.
    steady, dip = tuple(np.geomspace(0.1, 1.0, 50)), tuple(np.r_[np.geomspace(1e-4, 1.0, 49), [1.0]])
    run = feed(flow(0.5, 1.0, layers=2), {**RNN}, layers=("rnn", "head"), time_view="dL/dx_t", time_grad=steady)

    def sample(step: int, grads: tuple[float, ...]) -> None:
        run.add(StepMetrics(run=1, step=step, t=1.0, loss=1.0, grad_norm=(0.5, 1.0), total_norm=1.1, time_grad=grads))

    for step, grads in enumerate([steady, dip, steady, dip], start=100):  # one dip in two, the last a dip
        sample(step, grads)
    assert run.current.latest_time_grad == dip  # (the panel still draws the latest sample)
    d = verdict(run)
    assert "reaches back" in d.text, d.text
    sample(200, dip)  # dips in three of the last five samples: it does fade
    assert "time step 1 of 50 gets 1e-4 of the gradient at time step 49: vanishing" in verdict(run).text


def test_a_time_step_whose_gradient_underflowed_gets_none_not_0() -> None:
    underflow = tuple(np.r_[np.geomspace(1.0, 1e-30, 20), np.zeros(10), np.geomspace(1e-30, 1.0, 20)])
    run = feed(flow(0.5, 1.0, layers=2), {**RNN}, layers=("rnn", "head"), time_view="dL/dx_t", time_grad=underflow)
    d = verdict(run)
    assert d.kind == "vanishing"
    assert "time step 21 of 50 gets none of the gradient at time step 1 (it underflowed to exactly 0): vanishing" in d.text
    assert "gets 0 of" not in d.text


@pytest.mark.parametrize("ratio", [1e-5, 9e-4, 1.1e-3, 5e-3, 9e-2, 1.0, 50.0, 500.0, 2e3])
def test_the_diagnosis_and_the_per_layer_verdict_read_one_scale(ratio: float) -> None:
    from vgp_tui.health import BAD, layer_verdicts, recent_norms

    norms = np.tile([ratio] + [0.5] * (len(LAYERS) - 2) + [1.0], (60, 1))
    history = feed(norms)
    kind = verdict(history).kind
    first = layer_verdicts(recent_norms(history.current))[0]
    # The first layer is a problem on the panels exactly when the diagnosis calls the run one.
    assert (first in BAD) == (kind in ("vanishing", "exploding")), (kind, first)
    assert first == ("vanishing" if ratio < 1e-3 else "exploding" if ratio > 1e3 else first)


def test_a_divergence_is_told_in_order_first_step_and_layer_then_what_followed() -> None:
    """Layer 3 turns NaN at step 200, layer 4 Inf at step 201: the story starts at step 200, layer 3."""
    norms = grown_into(flow(0.3, 1.0, steps=201), 199)
    norms[199, 2] = math.nan  # step 200, layer 3 (fc2)
    norms[200, 3] = math.inf  # step 201, layer 4 (fc3)
    history = feed(norms)
    d = verdict(history)
    assert d.kind == "exploding"
    assert d.verdict.startswith("At step 200 the gradient of layer 3 (fc2) first became NaN, and it is still "
                                "non-finite at step 201")
    assert d.fixes  # and the keys that address it
    # The heatmap and the loss plot mark the first step, not the latest.
    assert [(m.step, m.kind) for m in history.current.markers] == [(200, "nonfinite")]


def test_a_run_that_recovered_is_not_called_exploding_but_keeps_its_story() -> None:
    norms = flow(0.3, 1.0, steps=400)
    norms[199, 2] = math.nan
    norms[200, 3] = math.inf
    d = verdict(feed(norms))  # 199 finite steps after step 201: more than the recent window
    assert d.kind == "healthy"
    assert "Earlier, at step 200, the gradient of layer 3 (fc2) first became NaN; it has been finite since step 202." in d.text


def test_a_verdict_too_long_for_three_lines_is_cut_never_its_keys() -> None:
    from rich.console import Console

    from vgp_tui.dashboard.diagnosis_line import DIAGNOSIS_LINES, fit_diagnosis
    from vgp_tui.diagnosis import Fix

    verdict = ("diverged at step 19: the gradient of layer 3 (head) went Inf (the only layer whose gradient did); "
               "loss 4.61e+36; at step 18 the largest gradient was that of layer 3 (head), 3.02e+18")
    fixes = (Fix((("clip", 1.0),), "clip 1"), Fix((("cell", "lstm"),), "lstm"), Fix((("lr", 0.05),), "lr 0.05"),
             Fix((("init", "xavier"),), "init xavier"))
    console = Console(width=78)
    text = fit_diagnosis(Diagnosis("diverged", verdict, fixes), 78, console)
    assert len(text.wrap(console, 78)) <= DIAGNOSIS_LINES
    assert text.plain.endswith("… Press [1] clip 1, [2] lstm, [3] lr 0.05, [4] init xavier."), text.plain  # not "…."
    assert text.plain.startswith("diverged at step 19: the gradient of layer 3 (head) went Inf")
    assert not any(f"{mark}…" in text.plain for mark in ",;:"), text.plain  # cut after a word, not a comma


def test_a_replay_names_the_fixes_in_words_and_a_model_of_ones_own_gets_the_lessons_remedies() -> None:
    """A replay cannot take a key. A preset's run names its fixes as the dashboard would have offered
    them; a recording of one's own loop (its remedies at most lr and clip: nothing vgp-tui builds)
    used to say "vanishing" and nothing more."""
    from rich.console import Console

    from vgp_tui.dashboard.diagnosis_line import DIAGNOSIS_LINES, fit_diagnosis
    from vgp_tui.diagnosis import ADVICE, CLIPPED_ADVICE, in_words

    preset = feed(flow(1e-10, 0.1))
    d = in_words(verdict(preset), preset.current.remedies)
    assert d.kind == "vanishing" and d.fixes == () and "Press" not in d.text
    assert d.text.endswith("vanishing. To try: relu + init he, batchnorm on, skip on."), d.text
    own = {"lr": 0.5}
    for norms, kind in ((flow(1e-10, 0.1), "vanishing"), (flow(1e6, 1.0), "exploding")):
        d = in_words(verdict(feed(norms, own)), own)
        assert d.kind == kind and d.text.endswith(ADVICE[kind]), d.text
        assert "lr 0.25" not in d.text  # the one fix a loop's remedies allowed is not the lesson
    clipping = {"lr": 0.5, "clip": 1.0}  # a Trainer's gradient_clip_val: it clips already
    d = in_words(verdict(feed(flow(1e6, 1.0), clipping)), clipping)
    assert d.kind == "exploding" and d.text.endswith(CLIPPED_ADVICE), d.text
    d = in_words(verdict(feed(flow(0.05, 0.1), own, layer_stats=(0.0,) * 9 + (0.9,), stats="dead")), own)
    assert d.kind == "dead" and "He init" in d.text, d.text
    healthy = in_words(verdict(feed(flow(0.05, 0.1), own)), own)
    assert healthy.text == verdict(feed(flow(0.05, 0.1), own)).text  # nothing to try: nothing added
    from rich.text import Text

    console = Console(width=78)  # the conclusion and the advice survive a cut at 80 columns (a 24-block GPT-2's)
    gpt = ("Gradient reaches layer 1 (transformer.wpe) at 0.51x of layer 147's (lm_head), but layer 104 "
           "(transformer.h.17.ln_1) gets 8.4e-4 of it, 3 orders of magnitude less: vanishing inside the network")
    text = fit_diagnosis(Diagnosis("vanishing", gpt, advice=ADVICE["vanishing"]), 78, console).plain
    assert len(Text(text).wrap(console, 78)) <= DIAGNOSIS_LINES
    assert text.startswith("Gradient reaches layer 1 (transformer.wpe)") and "… vanishing inside the network. " in text
    assert text.split("…")[0][-1] != "b" and gpt.startswith(text.split("…")[0] + " "), text  # a whole word, not "b…"
    assert text.endswith(ADVICE["vanishing"]), text  # (it was "but layer 104 (transformer.h.17… To try …")
    for kind, advice in ADVICE.items():
        long = Diagnosis(kind, "diverged at step 19: the gradient of layer 3 (head) went Inf " * 4, advice=advice)
        text = fit_diagnosis(long, 78, console)
        assert len(text.wrap(console, 78)) <= DIAGNOSIS_LINES and text.plain.endswith(advice), text.plain
