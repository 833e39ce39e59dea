"""Recordings: events written as JSON lines, and read back (also while another process writes them).

The format is documented in docs/recording-format.md. A recording is flushed to the operating system
at least every ``flush_seconds``, so a crash or a SIGKILL loses at most that much; ``close`` writes
whatever is left. The reader stops at the first line that is not a whole record and says which line
and which field, so a recording cut off by a crash replays up to its last whole record.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from vgp_tui.engine.events import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Event,
    RecordError,
    RunStarted,
    SessionHeader,
    StepMetrics,
    UnknownRecordType,
    from_record,
    to_record,
)
from vgp_tui.errors import UserError


class RecordingError(UserError):
    """The file is not a recording this version can read (the message says why, in one line)."""


# -- encoding ---------------------------------------------------------------------------------------
# A step record is most of a recording, and the Recorder of a user's loop writes one per training step,
# so it is encoded here straight from its numbers: the very text ``json.dumps(to_record(event))`` writes
# (keys in the same order, floats as ``float.__repr__``, which round-trips exactly, NaN and the
# infinities as the format's strings), in a fifth of the time (docs/benchmarks.md, section 6).
# tests/test_recording.py holds the two encodings equal.
_NONFINITE = {"nan": '"NaN"', "inf": '"Infinity"', "-inf": '"-Infinity"'}
_LITERALS = {id(None): "null", id(True): "true", id(False): "false"}


def _number(x: float) -> str:
    """One float as JSON text; TypeError for anything that is not a float (ints, bools: the slow path)."""
    text = float.__repr__(x)
    return _NONFINITE.get(text, text)


def _numbers(values: Sequence[float]) -> str:
    """A list of floats as JSON text, brackets included."""
    text = ",".join(map(float.__repr__, values))
    if "n" in text:  # "nan", "inf" or "-inf" somewhere: no finite float's repr has an n
        text = ",".join(map(_number, values))
    return f"[{text}]"


# The Recorder's loss and norms are float32 measurements (it measures in float32 whatever the model's
# dtype). Nine significant digits identify every float32 exactly (float32(float(text)) is the value
# again), and '%.9g' writes them in a third of the time repr takes for their float64 (17 digits):
# the biggest part of what a flush costs per step (docs/benchmarks.md, section 6). A whole number is
# written without a point ("1", as JSON allows; readers take it as a float) except negative zero,
# "-0.0", since "-0" would read back as the integer 0. ('%#.9g' keeps every point but writes
# 123456789.0 as "123456789.", which is not JSON.)
_FLOAT32 = "%.9g"
_FLOAT32_LISTS: dict[int, str] = {}
_FLOAT32_SPECIAL = {**_NONFINITE, "-0": "-0.0"}


def _number32(x: float) -> str:
    """One float32 value as JSON text (9 significant digits)."""
    text = _FLOAT32 % x
    return _FLOAT32_SPECIAL.get(text, text)


def _numbers32(values: Sequence[float]) -> str:
    """A list of float32 values as JSON text, brackets included: one %-format for the whole list."""
    n = len(values)
    form = _FLOAT32_LISTS.get(n)
    if form is None:
        form = _FLOAT32_LISTS[n] = ",".join([_FLOAT32] * n)
    text = form % tuple(values)
    if "n" in text or "-0," in text or text.endswith("-0"):  # a "nan", "inf" or "-inf" (no finite
        text = ",".join(map(_number32, values))  # number's text has an n), or a bare "-0"
    return f"[{text}]"


def _literal(value: object) -> str:
    """None, True or False as JSON; TypeError for anything else."""
    try:
        return _LITERALS[id(value)]
    except KeyError:
        raise TypeError(value) from None


def step_line(
    run: int, step: int, t: float, loss: float, grad_norm: Sequence[float], total_norm: float,
    clipped: bool | None, lr: float | None, step_ms: float, probe_ms: float,
    time_grad: Sequence[float] | None = None, layer_stats: Sequence[float] | None = None, skipped: bool = False,
    float32: bool = False,
) -> str:
    """The JSON text of a step record (no newline): what ``json.dumps(to_record(StepMetrics(...)))``
    writes with compact separators, for float fields that are floats (TypeError otherwise).

    ``float32``: the measurements (loss, norms, time_grad, layer_stats) are float32 values, written
    with the 9 digits that identify a float32 instead of the 17 of their float64 (the Recorder's
    lines); the times and the learning rate stay exact float64 either way."""
    if type(run) is not int or type(step) is not int or (skipped is not True and skipped is not False):
        raise TypeError("run and step must be ints, skipped a bool")
    extra = ',"skipped":true' if skipped else ""  # left out when false, as to_record does
    number, numbers = (_number32, _numbers32) if float32 else (_number, _numbers)
    return (
        f'{{"type":"step","run":{run},"step":{step},"t":{_number(t)},"loss":{number(loss)},'
        f'"grad_norm":{numbers(grad_norm)},"total_norm":{number(total_norm)},"clipped":{_literal(clipped)},'
        f'"lr":{"null" if lr is None else _number(lr)},"step_ms":{_number(step_ms)},"probe_ms":{_number(probe_ms)},'
        f'"time_grad":{"null" if time_grad is None else numbers(time_grad)},'
        f'"layer_stats":{"null" if layer_stats is None else numbers(layer_stats)}{extra}}}'
    )


def encode_event(event: Event) -> str:
    """One record's line of JSON text (no newline)."""
    if type(event) is StepMetrics and all(
        v is None or type(v) is tuple for v in (event.grad_norm, event.time_grad, event.layer_stats)
    ):  # (a list would be written as it is by to_record: NaN bare; leave that to json)
        try:
            return step_line(
                event.run, event.step, event.t, event.loss, event.grad_norm, event.total_norm, event.clipped,
                event.lr, event.step_ms, event.probe_ms, event.time_grad, event.layer_stats, event.skipped,
            )
        except TypeError:  # an int where a float goes, say: json.dumps writes it its own way
            pass
    return json.dumps(to_record(event), separators=(",", ":"))


class RecordingWriter:
    """Writes events to ``path`` as JSON lines; use as a sink (``recorder.write(events)``)."""

    def __init__(self, path: str | Path, header: SessionHeader | None = None, flush_seconds: float = 0.5,
                 append: bool = False) -> None:
        """``append``: write after what ``path`` holds (a recording continued), else replace it."""
        self.path = Path(path)
        try:
            self._file: IO[str] | None = open(self.path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise UserError(f"cannot write recording '{path}': {exc.strerror or exc}") from None
        self.flush_seconds = flush_seconds
        self._last_flush = time.monotonic()
        self.error: str | None = None
        """Set when writing failed (disk full, file gone); later events are dropped, not raised."""
        if header is not None:
            self.write([header])
            self.flush()

    @property
    def closed(self) -> bool:
        return self._file is None

    def write(self, events: Iterable[Event]) -> None:
        if self._file is None:
            return
        try:
            self._file.write("".join(encode_event(e) + "\n" for e in events))
            if time.monotonic() - self._last_flush >= self.flush_seconds:
                self.flush()
        except OSError as exc:
            self._fail(exc)

    def write_lines(self, lines: Iterable[str]) -> None:
        """Write records already encoded (by :func:`step_line` or :func:`encode_event`), one a line."""
        if self._file is None:
            return
        try:
            self._file.write("".join(line + "\n" for line in lines))
            if time.monotonic() - self._last_flush >= self.flush_seconds:
                self.flush()
        except OSError as exc:
            self._fail(exc)

    __call__ = write

    def flush(self) -> None:
        if self._file is None:
            return
        try:
            self._file.flush()
        except OSError as exc:
            self._fail(exc)
        self._last_flush = time.monotonic()

    def close(self) -> None:
        if self._file is None:
            return
        try:
            self._file.close()
        except OSError as exc:
            self.error = self.error or f"recording '{self.path}' could not be closed: {exc.strerror or exc}"
        self._file = None

    def _fail(self, exc: OSError) -> None:
        self.error = f"recording '{self.path}' stopped: {exc.strerror or exc}"
        try:
            if self._file is not None:
                self._file.close()
        except OSError:
            pass
        self._file = None

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class ReadResult:
    """Events read from a recording, and a warning if the file ended in a partial or bad record."""

    header: SessionHeader
    events: list[Event] = field(default_factory=list)
    warning: str | None = None


def parse_line(line: str, last_t: float = 0.0) -> Event:
    """One line of a recording as an event; RecordError if it is not a whole, valid record.

    ``last_t`` is the time of the record before, which a record without its own ``t`` takes.
    """
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:  # ValueError: JSONDecodeError, or a number past 4300 digits
        raise RecordError(f"not JSON ({exc.__class__.__name__})") from None
    try:
        return from_record(record, last_t)
    except RecordError:
        raise
    except (TypeError, ValueError, KeyError, OverflowError) as exc:  # a record whose fields do not fit together
        raise RecordError(str(exc)) from None


def read_recording(path: str | Path) -> ReadResult:
    """Read a whole recording; stops at the first broken line with a warning that names it."""
    path = Path(path)
    reader = RecordingReader(path)
    try:
        events = list(reader.read_available())
        reader.finish()
    finally:
        reader.close()
    assert reader.header is not None
    return ReadResult(reader.header, events, reader.warning)


class RecordingReader:
    """Reads a recording incrementally: ``read_available()`` again later returns what was appended.

    A line without its final newline is left for the next call (the writer may be in the middle of
    it); a complete line that is not a valid record ends the reading with ``warning`` set, naming the
    line and the field. A record of a type this version does not know is skipped (``warning`` says so
    for the first one).

    Args:
        path: the recording.
        wait: a file that does not exist yet, or has no whole first line yet, is not an error: the
            header is read by a later ``read_available()`` (``replay --follow``, like ``tail -F``).
    """

    def __init__(self, path: str | Path, wait: bool = False) -> None:
        self.path = Path(path)
        self.wait = wait
        self._file: IO[bytes] | None = None
        self._first_line = b""
        self._pending = b""
        self.line_number = 0
        """Lines read so far (whole ones)."""
        self.warning: str | None = None
        self.header: SessionHeader | None = None
        self.last_line: int | None = None
        """Set when reading stopped early: the last line whose record was kept."""
        self._last_t = 0.0
        self._layers: dict[int, int] = {}
        """Layer count of each run seen, to check the steps against."""
        if wait and not self.path.parent.is_dir():
            raise RecordingError(f"cannot wait for recording '{path}': folder '{self.path.parent}' does not exist")
        self._open()

    def _open(self) -> None:
        """Open the file and read its header (in wait mode, leave a missing or unfinished one for later)."""
        if self._file is None:
            if not self.path.exists() and self.wait:
                return
            if not self.path.is_file():
                what = "is a folder" if self.path.is_dir() else "does not exist"
                raise RecordingError(f"recording '{self.path}' {what}")
            try:
                self._file = open(self.path, "rb")  # noqa: SIM115
            except OSError as exc:
                raise RecordingError(f"cannot read recording '{self.path}': {exc.strerror or exc}") from None
        first = self._file.readline()
        if not first.endswith(b"\n"):
            if self.wait:  # the writer has not finished its header: look again later, from the start
                self._file.close()
                self._file = None
                return
            raise RecordingError(f"'{self.path}' is not a vgp-tui recording (no complete first line)")
        self.line_number = 1
        self._first_line = first
        self.header = self._parse_header(first)

    def _parse_header(self, line: bytes) -> SessionHeader:
        not_ours = f"'{self.path}' is not a vgp-tui recording"
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise RecordingError(f"{not_ours} (line 1 is not JSON)") from None
        if not isinstance(record, dict) or record.get("type") != "header":
            raise RecordingError(f"{not_ours} (line 1 is not a header record)")
        if "format" in record and record["format"] != FORMAT_NAME:
            shown = str(record["format"])[:40]
            raise RecordingError(f"{not_ours} (its header's format is '{shown}', not '{FORMAT_NAME}')")
        version = record.get("version")
        # Checked before the other fields: a newer version may have changed what they mean.
        if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
            raise RecordingError(
                f"'{self.path}' is recording format version {version}; this vgp-tui reads up to "
                f"version {FORMAT_VERSION}: upgrade vgp-tui to replay it"
            )
        try:
            header = from_record(record)
        except (RecordError, TypeError, ValueError, KeyError, OverflowError) as exc:
            raise RecordingError(f"{self.path} line 1: {exc}") from None
        assert isinstance(header, SessionHeader)
        if header.version < 1:
            raise RecordingError(f"{self.path} line 1: header record's 'version' must be 1 to {FORMAT_VERSION}, not {header.version}")
        return header

    def read_available(self) -> Iterator[Event]:
        """Events from whole lines written since the last call."""
        if self.header is None:
            self._open()
            if self.header is None:
                return
        if self._stopped or self._file is None:
            return
        chunk = self._file.read()
        if not chunk:
            return
        data = self._pending + chunk
        lines = data.split(b"\n")
        self._pending = lines.pop()  # empty when the data ended with a newline
        for raw in lines:
            self.line_number += 1
            if not raw.strip():
                continue
            try:
                event = self._check(parse_line(raw.decode("utf-8"), self._last_t))
            except UnknownRecordType as exc:
                # (a later version's new kind of record: skipped, said once, the rest read)
                self.warning = self.warning or f"{self.path} line {self.line_number}: {exc} (from a newer vgp-tui?): skipped"
                continue
            except (RecordError, UnicodeDecodeError) as exc:
                problem = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)
                self.warning = f"{self.path} line {self.line_number}: {problem}; replaying up to line {self.line_number - 1}"
                self.last_line = self.line_number - 1
                self._pending = b""
                return
            t = getattr(event, "t", None)
            if t is not None:
                self._last_t = t
            yield event

    @property
    def _stopped(self) -> bool:
        return self.last_line is not None

    def _check(self, event: Event) -> Event:
        """What one record cannot say alone: a step belongs to a run recorded before it, layer for layer."""
        if isinstance(event, RunStarted):
            self._layers[event.run] = len(event.layers)
        elif isinstance(event, StepMetrics):
            layers = self._layers.get(event.run)
            if layers is None:
                raise RecordError(f"step record of run {event.run}, which no run record before it started")
            if len(event.grad_norm) != layers:
                raise RecordError(
                    f"step record's 'grad_norm' has {len(event.grad_norm)} values; run {event.run} has {layers} layers"
                )
        return event

    def finish(self) -> None:
        """Treat a trailing partial line as truncation (the writer is done)."""
        if self._pending.strip() and not self._stopped:
            self.warning = (
                f"{self.path} line {self.line_number + 1} is cut off (no end of line); "
                f"replaying up to line {self.line_number}"
            )
            self.last_line = self.line_number
        self._pending = b""

    def replaced(self) -> bool:
        """Whether the file read so far is no longer what ``path`` holds: another file took its place,
        or it was cut shorter or rewritten from its first line (a writer started again). ``tail -F``
        reopens then; so does ``replay --follow``. A file that vanished is not replaced until one
        appears."""
        if self._file is None:
            return False
        try:
            now = os.stat(self.path)
            own = os.fstat(self._file.fileno())
        except OSError:
            return False
        if (now.st_ino, now.st_dev) != (own.st_ino, own.st_dev) or own.st_size < self._file.tell():
            return True
        # Truncated and rewritten past where we were since the last look: the first line changed.
        return os.pread(self._file.fileno(), len(self._first_line), 0) != self._first_line

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
