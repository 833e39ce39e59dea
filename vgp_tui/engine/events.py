"""The event schema: what the engine tells the world, as frozen dataclasses of plain Python values.

Events never hold tensors, so they can cross threads, be written to a recording and read back, and
feed the dashboard the same way live or replayed. Each event maps to one JSON record of the recording
format (docs/recording-format.md); ``to_record`` and ``from_record`` are the only code that knows the
field names on disk.
"""

from __future__ import annotations

import json
import math
import platform
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, ClassVar, Union

from vgp_tui._version import __version__
from vgp_tui.engine.remedies import REMEDIES, RemedyValue

FORMAT_NAME = "vgp-tui-recording"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SessionHeader:
    """First record of every recording: what produced it."""

    type: ClassVar[str] = "header"
    required: ClassVar[tuple[str, ...]] = ("format", "version")
    """Fields a record must have; the others have defaults or follow from the rest (``from_record``)."""
    preset: str = ""
    device: str = ""
    started: str = ""
    """ISO 8601 start time ("" when the writer did not say)."""
    versions: dict[str, str] = field(default_factory=dict)
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION

    @classmethod
    def now(cls, preset: str, device: str) -> SessionHeader:
        """The header of a recording that starts now, naming the vgp-tui, torch and Python that write it."""
        import torch  # loaded already where a recording is written; readers of recordings never import it

        return cls(
            preset=preset,
            device=device,
            started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            versions={"vgp_tui": __version__, "torch": torch.__version__, "python": platform.python_version()},
        )


CONTINUED = "continued"
"""A run's ``reason`` where it goes on with the previous run's training (``Recorder(continues=...)``:
a framework's second ``fit()`` or ``train()``, a resumed job), numbered on from its steps."""


@dataclass(frozen=True)
class RunStarted:
    """A run began: fresh weights from ``seed`` with these remedies."""

    type: ClassVar[str] = "run"
    required: ClassVar[tuple[str, ...]] = ("run", "layers", "remedies", "seed")
    run: int
    t: float
    preset: str
    layers: tuple[str, ...]
    """Layer names, input side first."""
    remedies: dict[str, RemedyValue]
    seed: int
    reason: str = "start"
    """Why it started: start, restart, remedy, preset, or :data:`CONTINUED`."""
    time_view: str | None = None
    """Label of the per-time-step gradient view (recurrent presets), None where there is none."""
    stats: str | None = None
    """What ``StepMetrics.layer_stats`` measures (for example "dead ReLU fraction"), None if nothing."""
    params: int = 0
    """Number of trainable parameters."""
    stand_in: bool = False
    """The run trains on a synthetic stand-in for its preset's real data set (``--synthetic``): a
    replay, a screenshot and a cast mark the preset "(synthetic)" as the live dashboard does."""
    omitted_when_false: ClassVar[tuple[str, ...]] = ("stand_in",)


@dataclass(frozen=True)
class StepMetrics:
    """One optimizer step, measured after backward and before clipping and the optimizer step."""

    type: ClassVar[str] = "step"
    required: ClassVar[tuple[str, ...]] = ("run", "step", "loss", "grad_norm")
    run: int
    step: int
    t: float
    loss: float
    grad_norm: tuple[float, ...]
    """L2 norm of each layer's gradient (its parameters together), input side first."""
    total_norm: float
    """L2 norm of the whole gradient, before clipping."""
    clipped: bool | None = None
    """Whether clipping scaled the gradient down; None when clipping is off."""
    lr: float | None = None
    """The learning rate of the step; None (written null) where it was not given: a Recorder built
    without ``lr=`` wrote 0.0, which read as a learning rate of zero."""
    step_ms: float = 0.0
    """Wall time of the whole step (forward, backward, probe, clip, update), averaged over a flush."""
    probe_ms: float = 0.0
    """Wall time spent measuring gradients in that step, averaged over a flush."""
    time_grad: tuple[float, ...] | None = None
    """Norm of the gradient at each time step (recurrent presets), on sampled steps only."""
    layer_stats: tuple[float, ...] | None = None
    """Per-layer activation statistic named by the run's ``stats`` (sampled steps only)."""
    skipped: bool = False
    """A mixed-precision loss scaler skipped this optimizer step (a gradient overflowed): the weights did
    not change, so its non-finite norms are not a divergence. Written only when true."""

    omitted_when_false: ClassVar[tuple[str, ...]] = ("skipped",)
    """Fields left out of the record when false, so files without them stay as they were."""

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss) and math.isfinite(self.total_norm)


ROW_LOSS, ROW_CLIPPED, ROW_TOTAL, ROW_LAYERS = 0, 1, 2, 3
"""How a measured step is packed on the device until it is copied to the host: loss, clipped flag
(1, 0, or -1 when clipping was off), total norm, then the per-layer norms. The trainer and the
Recorder of user loops both pack it so and unpack it with :func:`step_from_row`."""


def step_from_row(
    run: int, step: int, t: float, row: list[float], lr: float | None, step_ms: float, probe_ms: float,
    time_grad: tuple[float, ...] | None = None, layer_stats: tuple[float, ...] | None = None,
) -> StepMetrics:
    """The event of one packed row (see ``ROW_LOSS``), once it is on the host."""
    flag = row[ROW_CLIPPED]
    return StepMetrics(
        run=run,
        step=step,
        t=t,
        loss=row[ROW_LOSS],
        grad_norm=tuple(row[ROW_LAYERS:]),
        total_norm=row[ROW_TOTAL],
        clipped=None if flag < 0 else bool(flag),
        lr=lr,
        step_ms=step_ms,
        probe_ms=probe_ms,
        time_grad=time_grad,
        layer_stats=layer_stats,
    )


@dataclass(frozen=True)
class RemedyChanged:
    """The user changed a remedy; structural ones are followed by a RunStarted."""

    type: ClassVar[str] = "remedy"
    required: ClassVar[tuple[str, ...]] = ("run", "step", "name", "old", "new")
    run: int
    step: int
    t: float
    name: str
    old: RemedyValue
    new: RemedyValue
    structural: bool


@dataclass(frozen=True)
class StateChanged:
    """Training paused, resumed, finished, diverged or failed; ``message`` says why for the user."""

    type: ClassVar[str] = "state"
    required: ClassVar[tuple[str, ...]] = ("run", "step", "state")
    run: int
    step: int
    t: float
    state: str
    """One of: training, paused, finished, diverged, error."""
    message: str = ""


@dataclass(frozen=True)
class KeyPressed:
    """A key the user pressed in the dashboard, kept so a replay can show it when it happened."""

    type: ClassVar[str] = "key"
    required: ClassVar[tuple[str, ...]] = ("run", "step", "key", "action")
    run: int
    step: int
    t: float
    key: str
    action: str


Event = Union[SessionHeader, RunStarted, StepMetrics, RemedyChanged, StateChanged, KeyPressed]
EVENT_TYPES: dict[str, type] = {
    cls.type: cls
    for cls in (SessionHeader, RunStarted, StepMetrics, RemedyChanged, StateChanged, KeyPressed)
}

STATES = ("training", "paused", "finished", "diverged", "error")


# Non-finite floats are the lesson (the step where the gradient exploded), so they are kept; JSON has
# no token for them, so they are written as these strings, which any JSON reader can load.
_NONFINITE_OUT = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_NONFINITE_IN = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_float(x: float) -> float | str:
    """``x`` for JSON: finite as it is, NaN and the infinities as the recording format's strings."""
    return x if math.isfinite(x) else _NONFINITE_OUT[repr(x)]


def _encode(value: Any) -> Any:
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    return value


def to_record(event: Event) -> dict[str, Any]:
    """The JSON-ready record of ``event`` (``{"type": ..., field: value, ...}``)."""
    record: dict[str, Any] = {"type": event.type}
    omitted = getattr(event, "omitted_when_false", ())
    for f in fields(event):
        value = getattr(event, f.name)
        if value is False and f.name in omitted:
            continue
        record[f.name] = _encode(value)
    return record


class RecordError(ValueError):
    """A record that does not match the schema (the reader reports it with its line number)."""


class UnknownRecordType(RecordError):
    """A record of a type this version does not know: a later version's addition, which a reader
    skips as it ignores fields it does not know."""


def _show(value: Any) -> str:
    """A short JSON rendering of a bad value for an error message."""
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):  # an integer past Python's 4300-digit limit, a deep nesting
        text = "a value too big to show"
    return text if len(text) <= 32 else text[:29] + "..."


def _decode_float(value: Any, name: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise RecordError(f"'{name}' is out of range") from None
    if isinstance(value, str) and value in _NONFINITE_IN:
        return _NONFINITE_IN[value]
    raise RecordError(f"'{name}' must be a number, not {_show(value)}")


def _decode_floats(value: Any, name: str) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise RecordError(f"'{name}' must be a list of numbers, not {_show(value)}")
    out = []
    for i, v in enumerate(value):
        try:
            out.append(_decode_float(v, name))
        except RecordError:
            raise RecordError(f"'{name}' must be a list of numbers (item {i + 1} is {_show(v)})") from None
    return tuple(out)


def _decode_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"'{name}' must be a whole number, not {_show(value)}")
    # Steps and runs are stored as int64; a seed may be any uint64 (torch.initial_seed() is one).
    if not -(2**63) <= value < (2**64 if name == "seed" else 2**63):
        raise RecordError(f"'{name}' is out of range")
    return value


def _decode_str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise RecordError(f"'{name}' must be text, not {_show(value)}")
    return value


def _decode_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise RecordError(f"'{name}' must be true or false, not {_show(value)}")
    return value


def _decode_names(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError(f"'{name}' must be a list of names, not {_show(value)}")
    return tuple(value)


def _decode_remedy_value(value: Any, name: str) -> RemedyValue:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise RecordError(f"'{name}' must be a remedy value (text, number, true, false or null), not {_show(value)}")


def _decode_mapping(value: Any, name: str, decode_value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordError(f"'{name}' must be an object, not {_show(value)}")
    out = {}
    for k, v in value.items():
        try:
            out[k] = decode_value(v, name)
        except RecordError:
            raise RecordError(f"'{name}' has a bad value for {_show(k)}: {_show(v)}") from None
    return out


def _optional(decode: Any) -> Any:
    return lambda value, name: None if value is None else decode(value, name)


# How each field is read back, keyed by the field's annotation as written in the classes above.
_DECODERS: dict[str, Any] = {
    "int": _decode_int,
    "float": _decode_float,
    "float | None": _optional(_decode_float),
    "str": _decode_str,
    "bool": _decode_bool,
    "bool | None": _optional(_decode_bool),
    "str | None": _optional(_decode_str),
    "tuple[float, ...]": _decode_floats,
    "tuple[float, ...] | None": _optional(_decode_floats),
    "tuple[str, ...]": _decode_names,
    "RemedyValue": _decode_remedy_value,
    "dict[str, RemedyValue]": lambda v, n: _decode_mapping(v, n, _decode_remedy_value),
    "dict[str, str]": lambda v, n: _decode_mapping(v, n, _decode_str),
}


def total_norm_of(grad_norm: tuple[float, ...]) -> float:
    """The whole gradient's L2 norm from its layers' norms (what a step record may leave out)."""
    return math.hypot(*grad_norm)


def from_record(record: Any, last_t: float = 0.0) -> Event:
    """The event a record describes; raises RecordError, naming the record type and the field, for
    anything that is not one.

    Only the fields in the class's ``required`` must be present: the others take their default or
    follow from the rest (``total_norm`` from ``grad_norm``; a missing ``t`` is ``last_t``, the time of
    the record before; a remedy's ``structural`` from the remedy registry). Unknown fields are ignored,
    so that a reader of this version can read additions that keep the version number.
    """
    if not isinstance(record, dict):
        raise RecordError(f"a record must be a JSON object, not {_show(record)}")
    if "type" not in record:
        raise RecordError("record lacks 'type'")
    kind = record["type"]
    if not isinstance(kind, str):
        raise RecordError(f"a record's 'type' must be a string, not {_show(kind)}")
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise UnknownRecordType(f"unknown record type {_show(kind)}")
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in record:
            try:
                values[f.name] = _DECODERS[str(f.type)](record[f.name], f.name)
            except RecordError as exc:
                raise RecordError(f"{kind} record's {exc}") from None
        elif f.name in cls.required:
            raise RecordError(f"{kind} record lacks '{f.name}'")
        elif f.name == "t":
            values["t"] = last_t
        elif f.default is MISSING and f.default_factory is MISSING:
            values[f.name] = _derive(cls, f.name, values)
    return cls(**values)


def _derive(cls: type, name: str, values: dict[str, Any]) -> Any:
    """An optional field without a dataclass default, from the record's other fields."""
    if cls is StepMetrics and name == "total_norm":
        return total_norm_of(values["grad_norm"])  # grad_norm is required and comes first
    if cls is RemedyChanged and name == "structural":
        # A structural change is followed by a run record either way; this only decides whether the
        # change is drawn as a marker, so a remedy this version does not know counts as live.
        remedy = REMEDIES.get(values["name"])
        return remedy is not None and remedy.structural
    if cls is RunStarted and name == "preset":
        return ""
    raise AssertionError(f"{cls.__name__}.{name} is neither required nor derivable")  # a schema bug
