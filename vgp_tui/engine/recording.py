"""Recordings: events written as JSON lines, and read back (also while another process writes them).

The format is documented in docs/recording-format.md. A recording is flushed to the operating system
at least every ``flush_seconds``, so a crash or a SIGKILL loses at most that much; ``close`` writes
whatever is left. The reader stops at the first line that is not a whole record and says which line,
so a recording cut off by a crash replays up to its last whole record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from vgp_tui.engine.events import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Event,
    RecordError,
    SessionHeader,
    from_record,
    to_record,
)
from vgp_tui.errors import UserError


class RecordingError(UserError):
    """The file is not a recording this version can read (the message says why, in one line)."""


class RecordingWriter:
    """Writes events to ``path`` as JSON lines; use as a sink (``recorder.write(events)``)."""

    def __init__(self, path: str | Path, header: SessionHeader | None = None, flush_seconds: float = 0.5) -> None:
        self.path = Path(path)
        try:
            self._file: IO[str] | None = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
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
            self._file.write("".join(json.dumps(to_record(e), separators=(",", ":")) + "\n" for e in events))
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


def _check_header(event: Event, path: Path) -> SessionHeader:
    if not isinstance(event, SessionHeader) or event.format != FORMAT_NAME:
        raise RecordingError(f"'{path}' is not a vgp-tui recording (its first line is not a header)")
    if event.version > FORMAT_VERSION:
        raise RecordingError(
            f"'{path}' is recording format version {event.version}; this vgp-tui reads up to "
            f"version {FORMAT_VERSION}: upgrade vgp-tui to replay it"
        )
    return event


def parse_line(line: str) -> Event:
    """One line of a recording as an event; RecordError if it is not a whole, valid record."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:  # ValueError: JSONDecodeError, or a number past 4300 digits
        raise RecordError(f"not JSON ({exc.__class__.__name__})") from None
    try:
        return from_record(record)
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
    it); a complete line that is not a valid record ends the reading with ``warning`` set.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise RecordingError(f"recording '{path}' does not exist")
        try:
            self._file: IO[bytes] = open(self.path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise RecordingError(f"cannot read recording '{path}': {exc.strerror or exc}") from None
        self._pending = b""
        self.line_number = 0
        self.warning: str | None = None
        self.header: SessionHeader | None = None
        self._stopped = False
        first = self._file.readline()
        if not first.endswith(b"\n"):
            raise RecordingError(f"'{path}' is not a vgp-tui recording (no complete first line)")
        self.line_number = 1
        try:
            event = parse_line(first.decode("utf-8"))
        except (RecordError, UnicodeDecodeError):
            raise RecordingError(f"'{path}' is not a vgp-tui recording (line 1 is not a header record)") from None
        self.header = _check_header(event, self.path)

    def read_available(self) -> Iterator[Event]:
        """Events from whole lines written since the last call."""
        if self._stopped:
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
                yield parse_line(raw.decode("utf-8"))
            except (RecordError, UnicodeDecodeError) as exc:
                self.warning = (
                    f"'{self.path}' line {self.line_number} is not a whole record ({exc}); "
                    f"replaying up to line {self.line_number - 1}"
                )
                self._stopped = True
                return

    def finish(self) -> None:
        """Treat a trailing partial line as truncation (the writer is done)."""
        if self._pending.strip() and not self._stopped:
            self.warning = (
                f"'{self.path}' line {self.line_number + 1} is cut off; "
                f"replaying up to line {self.line_number}"
            )
        self._pending = b""

    def close(self) -> None:
        self._file.close()
