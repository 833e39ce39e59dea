"""The event schema: what the engine tells the world, as frozen dataclasses of plain Python values.

Events never hold tensors, so they can cross threads, be written to a recording and read back, and
feed the dashboard the same way live or replayed. Each event maps to one JSON record of the recording
format (docs/recording-format.md); ``to_record`` and ``from_record`` are the only code that knows the
field names on disk.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Union

from vgp_tui.engine.remedies import RemedyValue

FORMAT_NAME = "vgp-tui-recording"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SessionHeader:
    """First record of every recording: what produced it."""

    type: ClassVar[str] = "header"
    preset: str
    device: str
    started: str
    """ISO 8601 start time."""
    versions: dict[str, str] = field(default_factory=dict)
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION


@dataclass(frozen=True)
class RunStarted:
    """A run began: fresh weights from ``seed`` with these remedies."""

    type: ClassVar[str] = "run"
    run: int
    t: float
    preset: str
    layers: tuple[str, ...]
    """Layer names, input side first."""
    remedies: dict[str, RemedyValue]
    seed: int
    reason: str = "start"
    """Why it started: start, restart, remedy, preset."""
    time_view: str | None = None
    """Label of the per-time-step gradient view (recurrent presets), None where there is none."""
    stats: str | None = None
    """What ``StepMetrics.layer_stats`` measures (for example "dead ReLU fraction"), None if nothing."""
    params: int = 0
    """Number of trainable parameters."""


@dataclass(frozen=True)
class StepMetrics:
    """One optimizer step, measured after backward and before clipping and the optimizer step."""

    type: ClassVar[str] = "step"
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
    lr: float = 0.0
    step_ms: float = 0.0
    """Wall time of the whole step (forward, backward, probe, clip, update), averaged over a flush."""
    probe_ms: float = 0.0
    """Wall time spent measuring gradients in that step, averaged over a flush."""
    time_grad: tuple[float, ...] | None = None
    """Norm of the gradient at each time step (recurrent presets), on sampled steps only."""
    layer_stats: tuple[float, ...] | None = None
    """Per-layer activation statistic named by the run's ``stats`` (sampled steps only)."""

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss) and math.isfinite(self.total_norm)


ROW_LOSS, ROW_CLIPPED, ROW_TOTAL, ROW_LAYERS = 0, 1, 2, 3
"""How a measured step is packed on the device until it is copied to the host: loss, clipped flag
(1, 0, or -1 when clipping was off), total norm, then the per-layer norms. The trainer and the
Recorder of user loops both pack it so and unpack it with :func:`step_from_row`."""


def step_from_row(
    run: int, step: int, t: float, row: list[float], lr: float, step_ms: float, probe_ms: float,
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
    for f in fields(event):
        record[f.name] = _encode(getattr(event, f.name))
    return record


class RecordError(ValueError):
    """A record that does not match the schema (the reader reports it with its line number)."""


def _decode_float(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise RecordError(f"field '{name}' must be a number")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            raise RecordError(f"field '{name}' is out of range") from None
    if isinstance(value, str) and value in _NONFINITE_IN:
        return _NONFINITE_IN[value]
    raise RecordError(f"field '{name}' must be a number")


def _decode_floats(value: Any, name: str) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise RecordError(f"field '{name}' must be a list of numbers")
    return tuple(_decode_float(v, name) for v in value)


def _decode_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"field '{name}' must be a whole number")
    # Steps and runs are stored as int64; a seed may be any uint64 (torch.initial_seed() is one).
    if not -(2**63) <= value < (2**64 if name == "seed" else 2**63):
        raise RecordError(f"field '{name}' is out of range")
    return value


def _decode_str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise RecordError(f"field '{name}' must be text")
    return value


def _decode_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise RecordError(f"field '{name}' must be true or false")
    return value


def _decode_names(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise RecordError(f"field '{name}' must be a list of names")
    return tuple(_decode_str(v, name) for v in value)


def _decode_remedy_value(value: Any, name: str) -> RemedyValue:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise RecordError(f"field '{name}' must be a remedy value")


def _decode_mapping(value: Any, name: str, decode_value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordError(f"field '{name}' must be an object")
    return {_decode_str(k, name): decode_value(v, name) for k, v in value.items()}


def _optional(decode: Any) -> Any:
    return lambda value, name: None if value is None else decode(value, name)


# How each field is read back, keyed by the field's annotation as written in the classes above.
_DECODERS: dict[str, Any] = {
    "int": _decode_int,
    "float": _decode_float,
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


def from_record(record: Any) -> Event:
    """The event a record describes; raises RecordError for anything that is not one.

    Unknown fields are ignored so that a reader of this version can read additions that keep the
    version number; missing fields with defaults take the default.
    """
    if not isinstance(record, dict):
        raise RecordError("a record must be a JSON object")
    kind = record.get("type")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise RecordError(f"unknown record type {kind!r}")
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in record:
            if f.default is MISSING and f.default_factory is MISSING:
                raise RecordError(f"'{kind}' record lacks field '{f.name}'")
            continue
        decoder = _DECODERS[str(f.type)]
        values[f.name] = decoder(record[f.name], f.name)
    return cls(**values)
