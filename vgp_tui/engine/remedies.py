"""The remedy registry: every remedy, its key, its values, and whether it rebuilds the network.

This module is the one place that knows about remedies. The preset loader validates against it, the
trainer reads values from it, the command line parses ``--remedy NAME=VALUE`` with it, the models
take the structural ones it lists for their family, the diagnosis words its fixes with it, and the
dashboard builds its key bindings, remedies bar and help from it. Adding a remedy means adding one
entry to ``REMEDIES`` (plus the model switch or trainer setting that honours it).

Two kinds:

* structural remedies change the network (activation, init, batch norm, skip connections, recurrent
  cell). Applying one starts a fresh run from the same seed, so runs differ only in that remedy.
* live remedies change the optimisation of the current run (clip threshold, learning rate, gradient
  accumulation, optimizer) and take effect at the next optimizer step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Union

from vgp_tui.errors import UserError, closest

RemedyValue = Union[str, bool, float, int, None]
"""A remedy's value: a choice (str), a switch (bool), a rate (float), a count (int), or None (off)."""

Kind = Literal["structural", "live"]
ValueType = Literal["choice", "switch", "threshold", "rate", "count"]

FAMILIES = frozenset({"mlp", "sequence", "resnet", "sentiment"})
"""Model families (see ``vgp_tui.models``); a remedy applies to some of them."""

_OFF_WORDS = {"off", "false", "no", "none", "0"}
_ON_WORDS = {"on", "true", "yes", "1"}


@dataclass(frozen=True)
class Remedy:
    """One remedy: what it is called, which key toggles it, and which values it takes."""

    name: str
    key: str
    """The dashboard key that toggles or cycles it ("" when only its ``scale_keys`` change it)."""
    kind: Kind
    value_type: ValueType
    families: frozenset[str]
    help: str
    choices: tuple[str, ...] = ()
    """For choice remedies, the allowed values in cycling order."""
    minimum: float = 0.0
    maximum: float = math.inf
    default_on: float = 1.0
    """For a threshold remedy, the value switched on when the user turns it on from off."""
    scale_keys: tuple[tuple[str, float], ...] = ()
    """Keys that multiply a rate or threshold, with their factor: ``(("[", 0.5), ("]", 2.0))``."""
    names_itself: bool = False
    """Its values read alone (``relu``, ``lstm``); others need the name (``init he``, ``skip on``)."""

    @property
    def structural(self) -> bool:
        return self.kind == "structural"

    @property
    def key_label(self) -> str:
        """Its keys as the remedies bar shows them: ``a``, ``c [ ]``, ``+/-``."""
        scale = [key for key, _ in self.scale_keys]
        if self.key:
            return " ".join([self.key, *scale])
        return "/".join(scale)

    def setting(self, value: RemedyValue) -> str:
        """``relu``, ``init he`` or ``batchnorm on``: one value of it, as a fix names it."""
        shown = self.format(value)
        return shown if self.names_itself else f"{self.name} {shown}"

    def allowed(self) -> str:
        """Human-readable description of the allowed values, for error messages."""
        if self.value_type == "choice":
            return ", ".join(self.choices)
        if self.value_type == "switch":
            return "on or off"
        if self.value_type in ("threshold", "rate"):
            number = f"a number > {self.minimum:g}" + (f" and <= {self.maximum:g}" if math.isfinite(self.maximum) else "")
            return f"off or {number}" if self.value_type == "threshold" else number
        return f"a whole number from {self.minimum:g} to {self.maximum:g}"

    def parse(self, raw: object, where: str = "") -> RemedyValue:
        """Turn a TOML value or command-line text into a checked value, or raise UserError."""
        prefix = f"{where}: " if where else ""
        bad = UserError(f"{prefix}remedy '{self.name}' cannot be {raw!r}; allowed: {self.allowed()}")
        text = raw.strip().lower() if isinstance(raw, str) else None
        if self.value_type == "choice":
            if text in self.choices:
                return text
            if text is not None:
                raise UserError(
                    f"{prefix}remedy '{self.name}' cannot be {raw!r}; allowed: {self.allowed()}"
                    + closest(text, self.choices)
                )
            raise bad
        if self.value_type == "switch":
            if isinstance(raw, bool):
                return raw
            if text in _ON_WORDS:
                return True
            if text in _OFF_WORDS:
                return False
            raise bad
        if self.value_type == "threshold" and (raw is None or raw is False or text in _OFF_WORDS):
            return None
        if isinstance(raw, bool):
            raise bad
        try:
            number = float(raw) if not isinstance(raw, (int, float)) else raw  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise bad from None
        if self.value_type == "count":
            if not (self.minimum <= number <= self.maximum) or number != int(number):
                raise bad
            return int(number)
        try:
            number = float(number)
        except OverflowError:  # an int too large for a float
            raise bad from None
        if not (math.isfinite(number) and self.minimum < number <= self.maximum):
            raise bad
        return float(number)

    def format(self, value: RemedyValue) -> str:
        """Short text for the remedies bar and for run labels."""
        if value is None:
            return "off"
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)

    def next_value(self, value: RemedyValue) -> RemedyValue:
        """What pressing this remedy's key does to ``value``: cycle, flip, or switch on/off."""
        if self.value_type == "choice":
            i = self.choices.index(value) if value in self.choices else -1  # type: ignore[arg-type]
            return self.choices[(i + 1) % len(self.choices)]
        if self.value_type == "switch":
            return not value
        if self.value_type == "threshold":
            return self.default_on if value is None else None
        if self.value_type == "count":
            doubled = int(value or 1) * 2  # type: ignore[arg-type]
            return doubled if doubled <= self.maximum else int(self.minimum)
        return value

    def scaled(self, value: RemedyValue, factor: float) -> RemedyValue:
        """A rate or threshold multiplied by ``factor`` (the ``[``/``]`` and ``+``/``-`` keys)."""
        if value is None or self.value_type not in ("threshold", "rate"):
            return value
        new = float(value) * factor  # type: ignore[arg-type]
        # 6 digits, as the bar shows them: the powers of two stay whole (1024, not 1020), float noise goes
        return float(f"{min(max(new, 1e-8), self.maximum):.6g}")


_ALL = FAMILIES
REMEDIES: dict[str, Remedy] = {
    r.name: r
    for r in (
        Remedy(
            "activation", "a", "structural", "choice", frozenset({"mlp"}),
            "non-linearity between layers; sigmoid's derivative is at most 0.25, ReLU's is 0 or 1",
            choices=("sigmoid", "tanh", "relu"), names_itself=True,
        ),
        Remedy(
            "init", "i", "structural", "choice", frozenset({"mlp", "sequence", "resnet"}),
            "weight initialisation: PyTorch default, Xavier/Glorot, He/Kaiming, or a deliberately poor one",
            choices=("default", "xavier", "he", "poor"),
        ),
        Remedy(
            "batchnorm", "b", "structural", "switch", frozenset({"mlp", "resnet"}),
            "batch normalisation after each hidden layer",
        ),
        Remedy(
            "skip", "s", "structural", "switch", frozenset({"mlp", "resnet"}),
            "residual (skip) connections around hidden layers",
        ),
        Remedy(
            "cell", "l", "structural", "choice", frozenset({"sequence", "sentiment"}),
            "recurrent cell: vanilla tanh RNN, LSTM or GRU",
            choices=("rnn", "lstm", "gru"), names_itself=True,
        ),
        Remedy(
            "clip", "c", "live", "threshold", _ALL,
            "clip the total gradient norm to this threshold ([ and ] halve or double it)",
            # (bounded as lr is: ] held down doubled it to inf, which a recording cannot hold as JSON)
            minimum=0.0, maximum=1e12, default_on=1.0, scale_keys=(("[", 0.5), ("]", 2.0)),
        ),
        Remedy(
            "lr", "", "live", "rate", _ALL,
            "learning rate (+ doubles it, - halves it)",
            minimum=0.0, maximum=100.0, scale_keys=(("+", 2.0), ("-", 0.5)),
        ),
        Remedy(
            "accumulate", "g", "live", "count", _ALL,
            "micro-batches whose gradients are summed before each optimizer step",
            minimum=1, maximum=16,
        ),
        Remedy(
            "optimizer", "o", "live", "choice", _ALL,
            "optimizer; switching keeps the weights and starts a fresh optimizer state",
            choices=("sgd", "momentum", "adam"),
        ),
    )
}
"""Every remedy, by name, in the order the remedies bar shows them."""


def structural_for(family: str) -> tuple[str, ...]:
    """The structural remedies a model family takes, in registry order."""
    return tuple(r.name for r in REMEDIES.values() if r.structural and family in r.families)


def get_remedy(name: str, where: str = "") -> Remedy:
    """The remedy called ``name``, or a UserError that suggests the closest names."""
    try:
        return REMEDIES[name]
    except KeyError:
        prefix = f"{where}: " if where else ""
        raise UserError(
            f"{prefix}unknown remedy '{name}'; known remedies: {', '.join(REMEDIES)}"
            + closest(name, REMEDIES)
        ) from None


def parse_assignment(text: str) -> tuple[str, str]:
    """Split a command-line ``NAME=VALUE`` into its parts, or raise UserError."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise UserError(f"--remedy expects NAME=VALUE (for example activation=relu), got {text!r}")
    return name.strip().lower(), value.strip()


def apply_overrides(
    defaults: Mapping[str, RemedyValue],
    overrides: Mapping[str, object],
    preset_name: str,
) -> dict[str, RemedyValue]:
    """The preset's remedy values with ``overrides`` applied; only remedies that apply may be set."""
    values = dict(defaults)
    for name, raw in overrides.items():
        remedy = get_remedy(name, "--remedy")
        if name not in values:
            raise UserError(
                f"--remedy: '{name}' does not apply to preset '{preset_name}'; "
                f"it takes: {', '.join(values) or 'none'}"
            )
        values[name] = remedy.parse(raw, "--remedy")
    return values


def format_value(name: str, value: RemedyValue) -> str:
    """A remedy value as the screen shows it; a name this version does not know (a recording from
    a newer vgp-tui, say) is shown as it is rather than refused."""
    remedy = REMEDIES.get(name)
    if remedy is not None:
        return remedy.format(value)
    return "off" if value is None else str(value)


def describe(values: Mapping[str, RemedyValue]) -> str:
    """``activation=relu init=he`` for labels and summaries."""
    return " ".join(f"{n}={format_value(n, v)}" for n, v in values.items())


def differences(old: Mapping[str, RemedyValue], new: Mapping[str, RemedyValue]) -> dict[str, RemedyValue]:
    """The remedies whose value in ``new`` differs from ``old`` (used to label ghost runs)."""
    return {n: v for n, v in new.items() if old.get(n, v) != v}
