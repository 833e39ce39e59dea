"""Recording format: round trip, truncation, corrupt lines, newer versions, non-recordings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vgp_tui.engine.events import (
    FORMAT_VERSION,
    KeyPressed,
    RemedyChanged,
    RunStarted,
    SessionHeader,
    StateChanged,
    StepMetrics,
    from_record,
    to_record,
)
from vgp_tui.engine.recording import RecordingWriter, RecordingError, RecordingReader, read_recording

HEADER = SessionHeader(preset="deep-sigmoid", device="cpu", started="2026-01-01T00:00:00+00:00", versions={"torch": "x"})
EVENTS = [
    RunStarted(run=1, t=0.0, preset="deep-sigmoid", layers=("fc0", "head"), remedies={"clip": None, "lr": 0.1, "skip": False}, seed=3),
    StepMetrics(run=1, step=1, t=0.1, loss=1.5, grad_norm=(1e-12, 0.5), total_norm=0.5, clipped=None, lr=0.1),
    StepMetrics(run=1, step=2, t=0.2, loss=math.nan, grad_norm=(math.inf, -math.inf), total_norm=math.nan, clipped=True,
                time_grad=(1.0, 2.0), layer_stats=(0.5, 0.0)),
    RemedyChanged(run=1, step=3, t=0.3, name="clip", old=None, new=1.0, structural=False),
    StateChanged(run=1, step=3, t=0.3, state="diverged", message="diverged at step 2"),
    KeyPressed(run=1, step=3, t=0.4, key="c", action="clip"),
]


def _same(a, b) -> bool:
    return json.dumps(to_record(a)) == json.dumps(to_record(b))


def test_every_event_round_trips_through_json_including_nan_and_inf() -> None:
    for event in [HEADER, *EVENTS]:
        back = from_record(json.loads(json.dumps(to_record(event))))
        assert type(back) is type(event) and _same(back, event)


def test_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with RecordingWriter(path, HEADER) as rec:
        rec.write(EVENTS)
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    assert first["type"] == "header" and first["format"] == "vgp-tui-recording" and first["version"] == FORMAT_VERSION
    assert json.loads(lines[2])["grad_norm"] == [1e-12, 0.5]
    result = read_recording(path)
    assert result.warning is None
    assert _same(result.header, HEADER)
    assert len(result.events) == len(EVENTS) and all(_same(a, b) for a, b in zip(result.events, EVENTS))


def test_truncated_file_replays_up_to_the_last_whole_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with RecordingWriter(path, HEADER) as rec:
        rec.write(EVENTS)
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b"\n", 0, len(data) - 1) + 10])  # cut the last line short
    result = read_recording(path)
    assert len(result.events) == len(EVENTS) - 1
    assert result.warning is not None and "line 7" in result.warning and "cut off" in result.warning


def test_corrupt_line_stops_with_warning_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with RecordingWriter(path, HEADER) as rec:
        rec.write(EVENTS[:2])
    with open(path, "a") as f:
        f.write('{"type": "step", "run": "one"}\n')
        f.write(json.dumps(to_record(EVENTS[2])) + "\n")
    result = read_recording(path)
    assert len(result.events) == 2
    assert "line 4" in result.warning


def test_newer_version_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    record = to_record(HEADER)
    record["version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(RecordingError, match="upgrade vgp-tui"):
        read_recording(path)


@pytest.mark.parametrize("content", [b"", b"hello\n", b'{"type": "step"}\n', b"\xff\xfe\n", b"[1, 2]\n"])
def test_not_a_recording(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match="not a vgp-tui recording"):
        read_recording(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="does not exist"):
        read_recording(tmp_path / "nope.jsonl")


def test_incremental_reader_sees_appended_lines_and_waits_for_partial_ones(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    rec = RecordingWriter(path, HEADER, flush_seconds=0)
    reader = RecordingReader(path)
    assert list(reader.read_available()) == []
    rec.write(EVENTS[:2])
    assert len(list(reader.read_available())) == 2
    line = json.dumps(to_record(EVENTS[2]))
    with open(path, "a") as f:
        f.write(line[:10])
    assert list(reader.read_available()) == []  # half a line: the writer is not done with it
    with open(path, "a") as f:
        f.write(line[10:] + "\n")
    assert len(list(reader.read_available())) == 1
    assert reader.warning is None
    rec.close()
    reader.close()


def test_unwritable_path_is_a_user_error(tmp_path: Path) -> None:
    from vgp_tui.errors import UserError

    with pytest.raises(UserError, match="cannot write recording"):
        RecordingWriter(tmp_path / "no" / "such" / "dir" / "r.jsonl", HEADER)


def test_a_uint64_seed_reads_back_and_a_step_past_int64_does_not() -> None:
    """torch.initial_seed() of an unseeded process is a uint64; steps are stored as int64."""
    record = to_record(EVENTS[0])
    record["seed"] = 2**64 - 1
    assert from_record(json.loads(json.dumps(record))).seed == 2**64 - 1
    step = to_record(EVENTS[1])
    step["step"] = 2**63
    from vgp_tui.engine.events import RecordError

    with pytest.raises(RecordError, match="out of range"):
        from_record(step)
