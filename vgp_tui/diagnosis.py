"""Diagnosis: what the gradient numbers of a run say, in plain words, and which key to try.

Pure logic over a :class:`~vgp_tui.engine.history.RunHistory` (no Textual, no torch), so the dashboard's
diagnosis line, the headless summary and the tests all read the same verdict. It looks at recent
steps (the median of the last :data:`RECENT` full-resolution steps) rather than the latest one, so a
single noisy step does not flip the verdict, and it names only remedies the run can still apply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from vgp_tui.engine.history import NonFinite, RunHistory, more_layers
from vgp_tui.engine.naming import layer_name, possessive
from vgp_tui.engine.remedies import REMEDIES, RemedyValue

# The thresholds live with the per-layer verdict the flow bars and the heatmap use: one scale of health.
from vgp_tui.health import EXPLODING, HEALTHY, RECENT, VANISHING, median_norms, never_used, reference_layer, references
from vgp_tui.text import thousands, two_significant

SPIKE = 100.0
"""A recent total norm this many times both its recent median and the run's first total norm is an
explosion. The second keeps a model that has learned from being called exploding: its gradients are
tiny by then, and one hard batch lifts the norm 100-fold without leaving the scale the run started at
(the sentiment LSTM near a loss of 1e-3: 1.9 at step 172, 110x its recent median, 36x its first step's 0.052)."""
STEADY = 10.0
"""A first NaN or Inf whose last finite total norm before it was at most this many times their median
came with no growth: made in that step (its batch, the loss), not an explosion ("nonfinite")."""
UNIT_FRACTION = 0.5
"""Fraction of dead (or saturated) units in a layer above which the diagnosis calls it out."""

KINDS = ("waiting", "error", "diverged", "nonfinite", "exploding", "dead", "saturated", "vanishing", "healthy")
"""Every ``Diagnosis.kind``, most urgent first."""


MAX_FIXES = 4
"""Fixes offered at once: each has its own number key, and the line must fit at 80 columns."""


@dataclass(frozen=True)
class Fix:
    """One thing to try: remedy values applied together by one key press (its number)."""

    changes: tuple[tuple[str, RemedyValue], ...]
    """``(("activation", "relu"), ("init", "he"))``: set together, so at most one fresh run starts."""
    label: str
    """``relu + init he``, as the diagnosis line shows it."""
    fresh_run: bool = False
    """Apply it to a fresh run from the seed even where its remedies are live ones: the weights as they
    are cannot take it (a unit that is dead now stays dead whatever the learning rate)."""


@dataclass(frozen=True)
class Diagnosis:
    """A verdict on the current run."""

    kind: str
    """One of :data:`KINDS`."""
    verdict: str
    """One or two sentences for the user: what the numbers say."""
    fixes: tuple[Fix, ...] = ()
    """What to try, in the order offered: fix ``n`` is applied by key ``n``. Only remedies that
    apply to this run and would change it."""
    advice: str = ""
    """What to try, in words, where no key can apply it (see :func:`in_words`); shown without fixes."""

    @property
    def text(self) -> str:
        """The verdict, then the keys to press when there are any, else the advice."""
        if self.fixes or not self.advice:
            return _with_fixes(self.verdict, self.fixes)
        return f"{_sentence_end(self.verdict)} {self.advice}"

    @property
    def hints(self) -> tuple[str, ...]:
        """The fixes as the line names them: ``("[1] relu + init he", "[2] batchnorm on")``."""
        return tuple(f"[{i}] {fix.label}" for i, fix in enumerate(self.fixes, 1))


_EXPLODING_ADVICE = "To try: clipping the total norm (at 1.0, say), a lower learning rate, a smaller init."
ADVICE = {
    "vanishing": "To try in the model: ReLU-family activations with He init, normalisation layers, residual connections.",
    "saturated": "To try in the model: ReLU-family activations, normalisation before the activation, a smaller init.",
    "exploding": _EXPLODING_ADVICE,
    "diverged": _EXPLODING_ADVICE,  # (the same fixes as an explosion, as the live line offers)
    "dead": "To try: He init, a lower learning rate from the first step, leaky ReLU.",
    "nonfinite": ("To try: look in that step's batch and loss for a NaN or Inf (a log of 0, a division by 0); "
                  "torch.autograd.detect_anomaly() names the operation that made it."),
}
"""The lesson's remedies in words, for a model vgp-tui does not build (a recording of your own loop)."""
CLIPPED_ADVICE = "To try: a lower clipping threshold, a lower learning rate, a smaller init."
"""What :data:`ADVICE` says of an explosion in a run that clips already."""


def in_words(result: Diagnosis, remedies: dict[str, RemedyValue]) -> Diagnosis:
    """``result`` for a reader who cannot press a key (a replay): the fixes become words.

    A run of a preset names its fixes as the dashboard would have offered them ("To try: relu + init
    he, batchnorm on."). A run whose remedies include no structural one is a model vgp-tui does not
    build, your own training loop: its verdict named a problem and offered at most a learning rate, so
    it gets the lesson's remedies in general words (:data:`ADVICE`).
    """
    builds_model = any(REMEDIES[name].structural for name in remedies if name in REMEDIES)
    if builds_model:
        labels = ", ".join(fix.label for fix in result.fixes)
        return Diagnosis(result.kind, result.verdict, advice=f"To try: {labels}." if labels else "")
    advice = ADVICE.get(result.kind, "")
    if isinstance(remedies.get("clip"), (int, float)) and result.kind in ("exploding", "diverged"):
        advice = CLIPPED_ADVICE  # (a Trainer's gradient_clip_val or max_grad_norm: it clips already)
    return Diagnosis(result.kind, result.verdict, advice=advice)


def diagnose(run: RunHistory | None, state: str = "training", message: str = "") -> Diagnosis:
    """The verdict on ``run`` given the session's ``state`` (and its ``message``, for diverged/error)."""
    if state == "error":
        return Diagnosis("error", message or "Training stopped with an error.")
    remedies = run.remedies if run is not None else {}
    if state == "diverged":
        fixes = _exploding_fixes(remedies)
        text = message or "Training diverged: the loss or the gradient is no longer a finite number."
        return Diagnosis("diverged", text, fixes)
    if run is not None and run.steps == 0 and run.skipped_steps:
        # (Not "waiting": the steps came, and a GradScaler skipped every one of them.)
        count = "the one step" if run.skipped_steps == 1 else f"all {thousands(run.skipped_steps)} steps"
        return Diagnosis("waiting", f"The GradScaler skipped {count} so far: the scaled gradient overflowed. It "
                                    "lowers its scale after each; if it never stops, the gradient itself is not finite.")
    if run is None or run.steps == 0:
        return Diagnosis("waiting", "Waiting for the first training step…")
    return _Reader(run).diagnose()


class _Reader:
    """The recent numbers of one run and the sentences built from them."""

    def __init__(self, run: RunHistory) -> None:
        self.run = run
        self.remedies = run.remedies
        self.recent = run.recent(RECENT)
        self.steps, self.total, self.layers = self.recent.steps, self.recent.total, self.recent.layers
        self.median = median_norms(self.recent)  # the flow bars' and heatmap's verdicts read the same
        self.n = len(run.layers)
        # A layer that never got a gradient is a module never used in the forward (an unused head,
        # a pooler): not "vanishing", and no end of the flow (the first layers' 0s before a vanishing
        # gradient are its underflow, and the flow is read from layer 1: health.never_used).
        unused = never_used(run, self.median)
        self.unused = np.flatnonzero(unused).tolist()
        self.first = next((i for i in range(self.n) if not unused[i]), 0)
        """The input-side layer the flow is read at: the first that gets a gradient, or its underflow."""
        self.last = reference_layer(np.where(unused, 0.0, self.median))
        """The layer the others are read against: the output-side one that gets a gradient."""
        self.refs = references(np.where(unused, 0.0, self.median), run.layers)
        """The layer each is read against, as the panels read it: :attr:`last`, or a repeated block's
        layer's counterpart in the last block (:func:`vgp_tui.health.references`)."""
        self.alone = self.first == self.last
        """One layer gets a gradient (or the model has one): nothing to compare it with."""

    # -- naming -------------------------------------------------------------------------------------
    def layer(self, i: int) -> str:
        """``layer 3 (fc2)``: 1-based, input side first, with the layer's name."""
        if not 0 <= i < self.n:
            return f"layer {i + 1}"
        return layer_name(i, self.run.layers[i])

    def last_layers(self) -> str:
        """``layer 20's (head)``: the reference layer, possessive."""
        return possessive(layer_name(self.last, self.run.layers[self.last]))

    def unused_sentence(self) -> str:
        """The layers that never got a gradient, named, or "": ``Layers 4 (aux) and 6 (pool) get …``."""
        if not self.unused:
            return ""
        if len(self.unused) == 1:
            return f"{_sentence(self.layer(self.unused[0]))} gets no gradient at all: is it used in the forward pass?"
        numbers = [self.layer(i).removeprefix("layer ") for i in self.unused]
        listed = (", ".join(numbers[:-1]) + f" and {numbers[-1]}" if len(numbers) <= 3
                  else ", ".join(numbers[:3]) + f" and {len(numbers) - 3} more")
        return f"Layers {listed} get no gradient at all: are they used in the forward pass?"

    # -- verdict ------------------------------------------------------------------------------------
    def diagnose(self) -> Diagnosis:
        if self.n == 0:
            return Diagnosis("healthy", "This model reports no layers to compare.")
        time_kind, time_text = self.time_view()
        verdict = (
            self.non_finite()
            or self.spike()
            or self.flow("exploding")
            or self.units("dead")
            or self.units("saturated")
            or self.flow("vanishing")
            or self.inside("vanishing")
        )
        history = self.recovered()
        if verdict is None and time_kind is not None:
            # The layers look fine but the gradient fades (or grows) back through time: that is the
            # recurrent net's problem, and what the remedies act on.
            fixes = self.fixes(time_kind)
            return Diagnosis(time_kind, f"{time_text} {history}".strip(), fixes)
        if verdict is None:
            verdict = self.healthy()
        kind, text = verdict
        if time_text:
            text = f"{text} {time_text}"
        if history:
            text = f"{text} {history}"
        if unused := self.unused_sentence():
            text = f"{unused} {text}"
        fixes = self.fixes(kind)
        return Diagnosis(kind, text, fixes)

    def non_finite(self) -> tuple[str, str] | None:
        """The run's NaN/Inf story in order: where it first went non-finite, then whether it still is.

        A run that recovered is not called exploding for it (the other verdicts read the finite
        present); :meth:`recovered` adds the story to whatever they say.
        """
        first = self.run.first_nonfinite
        if first is None or not self.still_non_finite():
            return None
        latest = self.run.latest.step if self.run.latest is not None else first.step
        text = f"At step {first.step} {self.first_bad(first)}"
        last = self.run.last_nonfinite_step
        if first.growth is not None and first.growth <= STEADY:
            # Steady norms until then: no explosion, and clipping or a lower rate would not help.
            kind, end = "nonfinite", ": not an explosion."  # (the advice says where to look; a cut keeps this)
            text = f"{text} with no growth in the gradient before it"
        else:
            kind, end = "exploding", ": exploding."
        if latest == first.step:
            return kind, f"{text}{end}"
        if last == latest:
            return kind, f"{text}, and it is still non-finite at step {latest}{end}"
        return kind, f"{text}; the last non-finite step was {last}, the {latest - last} since are finite{end}"

    def still_non_finite(self) -> bool:
        """Whether a NaN or Inf lies among the recent steps the other verdicts read."""
        return not self.recent.all_finite

    def first_bad(self, first: NonFinite) -> str:
        """``the gradient of layer 3 (fc2) first became NaN (and 2 more layers)``."""
        if first.layer is None:
            return f"the loss or the total gradient norm first became {first.what}"
        return f"the gradient of {self.layer(first.layer)} first became {first.what}{more_layers(first.layers)}"

    def recovered(self) -> str:
        """A sentence about a non-finite stretch the run has left behind, or ""."""
        first = self.run.first_nonfinite
        if first is None or self.still_non_finite():
            return ""
        return f"Earlier, at step {first.step}, {self.first_bad(first)}; it has been finite since step {self.run.last_nonfinite_step + 1}."

    def spike(self) -> tuple[str, str] | None:
        total = self.total[np.isfinite(self.total)]
        if total.size < 3:
            return None
        median = float(np.median(total))
        peak = float(total.max())
        if median <= 0 or peak <= SPIKE * median:
            return None
        first = self.run.first
        start = first.total_norm if first is not None else math.nan
        if math.isfinite(start) and peak <= SPIKE * start:
            return None
        step = int(self.steps[np.isfinite(self.total)][int(np.argmax(total))])
        return "exploding", (
            f"The total gradient norm spiked to {two_significant(peak)} at step {step}, "
            f"{two_significant(peak / median)}x its recent median: exploding."
        )

    def ratio(self) -> float | None:
        first, last = float(self.median[self.first]), float(self.median[self.last])
        if not (math.isfinite(first) and math.isfinite(last)) or last <= 0:
            return None
        return first / last

    def flow_sentence(self) -> str:
        """``Layer 1 (fc0) receives 3e-11 of layer 20's (head) gradient``; empty when not measurable."""
        ratio = self.ratio()
        if ratio is None:
            return ""
        if self.alone:
            only = "The only layer" if self.n == 1 else "The only layer with a gradient"
            return f"{only}, {self.layer(self.first)}, gets a gradient of {two_significant(float(self.median[self.first]))}"
        last = self.last_layers()
        share = f"{two_significant(ratio)} of" if ratio < 1 else f"{two_significant(ratio)} times"
        return _sentence(f"{self.layer(self.first)} receives {share} {last} gradient")

    def flow(self, kind: str) -> tuple[str, str] | None:
        ratio = self.ratio()
        if ratio is None or self.alone:
            return None
        if kind == "exploding" and ratio > EXPLODING:
            orders = round(math.log10(ratio))
            return kind, f"{self.flow_sentence()}, {orders} orders of magnitude more: exploding."
        if kind == "vanishing" and ratio < VANISHING:
            if ratio == 0:
                return kind, f"{self.flow_sentence()}: nothing reaches the input side: vanishing."
            orders = round(-math.log10(ratio))
            return kind, f"{self.flow_sentence()}, {orders} orders of magnitude less: vanishing."
        return None

    def weakest_inside(self) -> tuple[int, float] | None:
        """The layer between the first and the last with the smallest share of its reference's
        gradient (the last layer's, or for a repeated block's layer that of the same layer in the last
        block: :attr:`refs`), and that share; None where there is none to read."""
        last = float(self.median[self.last])
        if self.last - self.first < 2 or not (math.isfinite(last) and last > 0):
            return None
        inside = slice(self.first + 1, self.last)
        with np.errstate(invalid="ignore", divide="ignore"):
            inner = np.asarray(self.median[inside], dtype=np.float64) / self.median[self.refs[inside]]
        inner[[i - self.first - 1 for i in self.unused if self.first < i < self.last]] = np.nan  # (named apart)
        if not np.isfinite(inner).any():
            return None
        i = int(np.nanargmin(np.where(np.isfinite(inner), inner, np.nan)))
        return self.first + 1 + i, float(inner[i])

    def inside(self, kind: str) -> tuple[str, str] | None:
        """The gradient vanishes between the ends while the first layer gets its share. A language
        model's tied embedding is its first layer and its output head at once: it gets the head's
        gradient, the flow read "healthy" from it, and the 24 blocks behind it got 1e-4 of it."""
        ratio = self.ratio()
        weakest = self.weakest_inside()
        if kind != "vanishing" or ratio is None or ratio < VANISHING or weakest is None:
            return None
        i, share = weakest
        if share >= VANISHING:
            return None
        start = f"Gradient reaches {self.layer(self.first)} at {two_significant(ratio)}x of {self.last_layers()}"
        if share == 0:
            return kind, f"{start}, but none reaches {self.layer(i)}: vanishing inside the network."
        orders = round(-math.log10(share))
        return kind, (f"{start}, but {self.layer(i)} gets {two_significant(share)} of {self.of_reference(i)}, "
                      f"{orders} orders of magnitude less: vanishing inside the network.")

    def of_reference(self, i: int) -> str:
        """What layer ``i``'s share is of: ``it`` (the last layer's gradient, just named), or ``what
        the same layer in the last block, layer 140 (h.23.attn), gets``."""
        ref = int(self.refs[i])
        if ref == self.last:
            return "it"
        return f"what the same layer in the last block, {self.layer(ref)}, gets"

    def units(self, kind: str) -> tuple[str, str] | None:
        label = (self.run.stats or "").lower()
        stats = self.run.latest_layer_stats
        if not stats or not label:
            return None
        says_dead, says_saturated = "dead" in label, "saturat" in label
        if says_dead and says_saturated:
            # A label covering both: which one it is depends on the non-linearity.
            says_dead = self.remedies.get("activation") == "relu"
            says_saturated = not says_dead
        if (kind == "dead" and not says_dead) or (kind == "saturated" and not says_saturated):
            return None
        values = np.asarray(stats, dtype=np.float64)
        values = np.where(np.isfinite(values), values, -1.0)
        worst = int(np.argmax(values))
        fraction = float(values[worst])
        if fraction <= UNIT_FRACTION:
            return None
        count = int(np.sum(values > UNIT_FRACTION))
        others = f" (and {count - 1} more layer{'s' if count > 2 else ''} over half)" if count > 1 else ""
        if kind == "dead":
            text = (
                f"Dead ReLUs: {fraction:.0%} of the units after {self.layer(worst)}{others} output 0 for "
                f"every input, so no gradient passes through them."
            )
        else:
            text = (
                f"Saturated: {fraction:.0%} of the units after {self.layer(worst)}{others} sit where the "
                f"activation is flat, so the gradient fades through them."
            )
        return kind, text

    def healthy(self) -> tuple[str, str]:
        ratio = self.ratio()
        if ratio is None:
            if np.all(self.median == 0):
                return "vanishing", "Every layer's gradient is exactly 0, so nothing learns: vanishing."
            return "healthy", "Not enough finite gradient norms yet to compare the layers."
        if self.alone:
            return "healthy", f"{self.flow_sentence()}."
        last = self.last_layers()
        start = f"Gradient reaches {self.layer(self.first)} at {two_significant(ratio)}x of {last}"
        weakest = self.weakest_inside()
        if HEALTHY[0] <= ratio and weakest is not None and weakest[1] < HEALTHY[0]:
            i, share = weakest
            return "healthy", (f"{start}, but {self.layer(i)} gets only {two_significant(share)} of "
                               f"{self.of_reference(i)}: weakening inside the network, not yet vanishing.")
        if HEALTHY[0] <= ratio <= HEALTHY[1]:
            return "healthy", f"{start}: healthy flow."
        if ratio < HEALTHY[0]:
            return "healthy", f"{start}: weakening, but not yet vanishing."
        return "healthy", f"{start}: growing, but not yet exploding."

    def time_view(self) -> tuple[str | None, str]:
        """The back-propagation-through-time sentence, and the kind it implies on its own.

        The weakest time step is compared with the strongest rather than the first with the last:
        a bidirectional layer feeds both ends, so its gradient dies in the middle of the sequence.
        """
        grads = self.run.time_grad_median()
        if not grads or len(grads) < 2:
            return None, ""
        values = [float(g) for g in grads]
        if not all(math.isfinite(v) for v in values) or max(values) <= 0:
            return None, ""
        first, last = values[0], values[-1]
        if last > 0 and first / last > EXPLODING:
            share = f"{two_significant(first / last)} times"
            return "exploding", f"Back through time, time step 1 of {len(values)} gets {share} the last one's gradient: exploding."
        weakest = min(range(len(values)), key=values.__getitem__)
        strongest = max(range(len(values)), key=values.__getitem__)
        ratio = values[weakest] / values[strongest]
        # Exactly 0 is float32 underflow, common this far back; "gets 0 of the gradient" reads oddly.
        share = "none" if ratio == 0 else two_significant(ratio)
        text = (
            f"Back through time, time step {weakest + 1} of {len(values)} gets {share} of the "
            f"gradient at time step {strongest + 1}{' (it underflowed to exactly 0)' if ratio == 0 else ''}"
        )
        if ratio < VANISHING:
            return "vanishing", f"{text}: vanishing."
        # Said of every step: the weakest one is often the last, where "back through time ... step 50
        # of 50" would read as if the gradient went the wrong way.
        return None, (f"Back through time, each of the {len(values)} time steps gets at least {share} of the gradient "
                      f"at time step {strongest + 1}: it reaches back.")

    # -- fixes --------------------------------------------------------------------------------------
    def fixes(self, kind: str) -> tuple[Fix, ...]:
        if kind == "exploding":
            return _exploding_fixes(self.remedies)
        if kind in ("vanishing", "saturated"):
            return _vanishing_fixes(self.remedies)
        if kind == "dead":
            return _dead_fixes(self.remedies)
        return ()


def _fix(remedies: dict[str, RemedyValue], **changes: RemedyValue) -> Fix | None:
    """A fix that sets ``changes``, or None when the run does not take one of them or has them all."""
    if not changes or any(name not in remedies for name in changes):
        return None
    if all(remedies[name] == value for name, value in changes.items()):
        return None
    return Fix(tuple(changes.items()), " + ".join(REMEDIES[name].setting(value) for name, value in changes.items()))


def _fixes(*candidates: Fix | None) -> tuple[Fix, ...]:
    seen: list[Fix] = []
    for fix in candidates:
        if fix is not None and fix not in seen:
            seen.append(fix)
    return tuple(seen[:MAX_FIXES])


def _lower_lr(remedies: dict[str, RemedyValue]) -> Fix | None:
    """Half the learning rate; a tenth of one above 1 (no preset trains there: from lr 100, halving
    took ten diverged runs to get back)."""
    lr = remedies.get("lr")
    if not isinstance(lr, (int, float)):
        return None
    return _fix(remedies, lr=REMEDIES["lr"].scaled(lr, 0.1 if lr > 1 else 0.5))


def _exploding_fixes(remedies: dict[str, RemedyValue]) -> tuple[Fix, ...]:
    relu = remedies.get("activation") == "relu"
    # Xavier suits tanh and sigmoid (recurrent cells are tanh), He suits ReLU.
    init = _fix(remedies, init="he" if relu else "xavier") if remedies.get("init") in ("poor", "default") else None
    clip = _fix(remedies, clip=REMEDIES["clip"].default_on) if remedies.get("clip", 0) is None else None
    lstm = _fix(remedies, cell="lstm") if remedies.get("cell") == "rnn" else None
    if relu and remedies.get("init") == "poor":
        # A poor init is the cause in a ReLU net: fixing it is the lesson (He et al. 2015).
        return _fixes(init, clip, _lower_lr(remedies))
    return _fixes(clip, lstm, _lower_lr(remedies), init)


def _vanishing_fixes(remedies: dict[str, RemedyValue]) -> tuple[Fix, ...]:
    relu = None
    if "activation" in remedies and remedies["activation"] != "relu":
        # ReLU alone under a default init leaves most units dead; with He init it trains.
        relu = _fix(remedies, activation="relu", init="he") if "init" in remedies else _fix(remedies, activation="relu")
    lstm = _fix(remedies, cell="lstm") if remedies.get("cell") == "rnn" else None
    init = _fix(remedies, init="he") if remedies.get("activation") == "relu" else None
    return _fixes(
        lstm,  # the remedy made for gradients fading back through time
        relu,
        init,
        _fix(remedies, batchnorm=True) if remedies.get("batchnorm") is False else None,
        _fix(remedies, skip=True) if remedies.get("skip") is False else None,
    )


def _dead_fixes(remedies: dict[str, RemedyValue]) -> tuple[Fix, ...]:
    # A dead ReLU passes no gradient to its own weights, so it never comes back: a lower learning rate
    # helps only a run that starts with it (a high one is what kills them).
    lower = _lower_lr(remedies)
    return _fixes(
        _fix(remedies, init="he") if remedies.get("init") != "he" else None,
        replace(lower, fresh_run=True, label=f"restart with {lower.label}") if lower is not None else None,
        _fix(remedies, batchnorm=True) if remedies.get("batchnorm") is False else None,
        _fix(remedies, skip=True) if remedies.get("skip") is False else None,
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _sentence_end(text: str) -> str:
    text = text.rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _with_fixes(text: str, fixes: tuple[Fix, ...]) -> str:
    if not fixes:
        return text
    text = _sentence_end(text)
    keys = ", ".join(f"[{i}] {fix.label}" for i, fix in enumerate(fixes, 1))
    return f"{text} Press {keys}."
