"""Recording format: round trip, truncation, corrupt lines, newer versions, non-recordings."""

from __future__ import annotations

import json
import math
import re
import struct
from pathlib import Path

import pytest
import torch

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
from vgp_tui.engine.recording import (
    RecordingError,
    RecordingReader,
    RecordingWriter,
    encode_event,
    parse_line,
    read_recording,
    step_line,
)

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


# -- a format other programs can write (docs/recording-format.md) -----------------------------------
DOC = Path(__file__).resolve().parents[1] / "docs" / "recording-format.md"


def _doc_section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    assert f"\n## {title}\n" in text, f"docs/recording-format.md lacks the section '## {title}'"
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _doc_blocks(title: str, language: str) -> list[str]:
    """The fenced code blocks of a section written in ``language`` ("" for a plain block)."""
    blocks: list[tuple[str, list[str]]] = []
    inside = False
    for line in _doc_section(title).splitlines():
        if line.startswith("```"):
            if not inside:
                blocks.append((line[3:].strip(), []))
            inside = not inside
        elif inside:
            blocks[-1][1].append(line)
    return ["\n".join(body) for lang, body in blocks if lang == language]


def _minimal_lines() -> list[str]:
    """The shortest recording the documentation promises a reader accepts."""
    return _doc_blocks("Writing a recording from another program", "json")[0].splitlines()


def test_the_documented_minimal_recording_is_read_with_what_it_leaves_out_filled_in(tmp_path: Path) -> None:
    path = tmp_path / "minimal.jsonl"
    path.write_text("\n".join(_minimal_lines()) + "\n")
    result = read_recording(path)
    assert result.warning is None
    assert (result.header.preset, result.header.device, result.header.started) == ("", "", "")
    run, first, second = result.events
    assert isinstance(run, RunStarted) and run.layers == ("fc0", "fc1", "head") and run.t == 0.0
    assert isinstance(first, StepMetrics) and isinstance(second, StepMetrics)
    assert first.total_norm == pytest.approx(math.sqrt(3e-12**2 + 1e-06**2 + 0.21**2))
    assert (first.clipped, first.lr, first.step_ms) == (None, None, 0.0)


def test_a_record_without_t_takes_the_time_of_the_record_before_it() -> None:
    step = {"type": "step", "run": 1, "step": 4, "loss": 1.0, "grad_norm": [3.0, 4.0]}
    event = from_record(step, last_t=2.5)
    assert event.t == 2.5 and event.total_norm == 5.0
    assert from_record({"type": "remedy", "run": 1, "step": 4, "name": "activation", "old": "sigmoid", "new": "relu"}).structural
    assert not from_record({"type": "remedy", "run": 1, "step": 4, "name": "clip", "old": None, "new": 1.0}).structural
    assert not from_record({"type": "remedy", "run": 1, "step": 4, "name": "warp", "old": 1, "new": 2}).structural


def test_the_documentation_marks_exactly_the_fields_a_reader_requires() -> None:
    from dataclasses import fields

    from vgp_tui.engine.events import EVENT_TYPES

    records = _doc_section("Records")
    for kind, cls in EVENT_TYPES.items():
        section = records.split(f"### `{kind}`", 1)
        assert len(section) == 2, f"no section for '{kind}' records"
        required, optional = set(), set()
        for row in section[1].split("\n### ", 1)[0].splitlines():
            cells = [c.strip() for c in row.strip().strip("|").split("|")]
            if len(cells) < 2 or not cells[0].startswith("`"):
                continue
            names = set(re.findall(r"`(\w+)`", cells[0]))
            (required if cells[1] == "required" else optional).update(names)
            assert cells[1] == "required" or cells[1].startswith("optional ("), row  # an optional one says its value
        assert required == set(cls.required), kind
        assert required | optional == {f.name for f in fields(cls)}, kind


BROKEN = [
    # (the line that replaces the last step of the minimal recording, or is added after it; the warning)
    ('{"type":"step","run":1,"step":1,"t":0.1,"grad_norm":[1,2,3]}', "step record lacks 'loss'"),
    ('{"type":"step","run":1,"step":1,"t":0.1,"loss":"low","grad_norm":[1,2,3]}', "step record's 'loss' must be a number, not \"low\""),
    ('{"type":"step","run":1,"step":1,"loss":1,"grad_norm":[1,null,3]}', "step record's 'grad_norm' must be a list of numbers (item 2 is null)"),
    ('{"type":"step","run":1,"step":1,"loss":1,"grad_norm":[1,2]}', "step record's 'grad_norm' has 2 values; run 1 has 3 layers"),
    ('{"type":"step","run":2,"step":1,"loss":1,"grad_norm":[1,2,3]}', "step record of run 2, which no run record before it started"),
    ('{"type":"step","run":1,"step":1.5,"loss":1,"grad_norm":[1,2,3]}', "step record's 'step' must be a whole number, not 1.5"),
    ('{"type":"run","run":2,"remedies":{},"seed":0}', "run record lacks 'layers'"),
    ('{"type":"state","run":1,"step":2}', "state record lacks 'state'"),
    ('{"run":1,"step":2}', "record lacks 'type'"),
    ('{"type":7,"run":1}', "a record's 'type' must be a string, not 7"),
    ("not json", "not JSON (JSONDecodeError)"),
]


@pytest.mark.parametrize(("line", "problem"), BROKEN)
def test_a_broken_record_is_named_by_its_line_and_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        line: str, problem: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("run.jsonl").write_text("\n".join([*_minimal_lines()[:3], line, _minimal_lines()[3]]) + "\n")
    result = read_recording("run.jsonl")
    assert result.warning == f"run.jsonl line 4: {problem}; replaying up to line 3"
    assert len(result.events) == 2  # the run and the step before the broken line


def test_a_record_of_a_type_this_version_does_not_know_is_skipped_and_said_once(tmp_path: Path) -> None:
    """A later version's new kind of record ended the replay there, as a broken line does: it is
    skipped, as a field this version does not know is ignored."""
    lines = _minimal_lines()
    extra = ['{"type":"annotation","run":1,"text":"a note"}', '{"type":"checkpoint","run":1,"path":"x.pt"}']
    path = tmp_path / "run.jsonl"
    path.write_text("\n".join([*lines[:3], *extra, lines[3]]) + "\n")
    result = read_recording(path)
    plain = tmp_path / "plain.jsonl"
    plain.write_text("\n".join(lines) + "\n")
    assert result.events == read_recording(plain).events  # every other record, the last step included
    assert result.warning == f'{path} line 4: unknown record type "annotation" (from a newer vgp-tui?): skipped'


def test_the_documented_warnings_are_the_ones_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lines = _minimal_lines()
    documented = _doc_blocks("Writing a recording from another program", "")[0].splitlines()
    assert len(documented) == 3
    files = [
        lines[:2] + [lines[2].replace('"loss":1.1,', "")],
        lines[:3] + [lines[3].replace('"loss":1.0', '"loss":"low"')],
        lines + [lines[3].replace('"step":2', '"step":3').replace("2e-12,", "")],
    ]
    for body, warning in zip(files, documented):
        Path("run.jsonl").write_text("\n".join(body) + "\n")
        assert read_recording("run.jsonl").warning == warning


HEADER_PROBLEMS = [
    ('{"type":"header","format":"vgp-tui-recording"}', "run.jsonl line 1: header record lacks 'version'"),
    ('{"type":"header","version":1}', "run.jsonl line 1: header record lacks 'format'"),
    ('{"type":"header","format":"vgp-tui-recording","version":1,"preset":3}',
     "run.jsonl line 1: header record's 'preset' must be text, not 3"),
    ('{"type":"header","format":"vgp-tui-recording","version":"1"}',
     "run.jsonl line 1: header record's 'version' must be a whole number, not \"1\""),
    ('{"type":"header","format":"vgp-tui-recording","version":0}',
     "run.jsonl line 1: header record's 'version' must be 1 to 1, not 0"),
    ('{"type":"header","format":"other","version":1}',
     "'run.jsonl' is not a vgp-tui recording (its header's format is 'other', not 'vgp-tui-recording')"),
    ('{"type":"run","run":1}', "'run.jsonl' is not a vgp-tui recording (line 1 is not a header record)"),
]


@pytest.mark.parametrize(("header", "message"), HEADER_PROBLEMS)
def test_a_header_that_cannot_be_read_is_refused_naming_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  header: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("run.jsonl").write_text("\n".join([header, *_minimal_lines()[1:]]) + "\n")
    with pytest.raises(RecordingError) as caught:
        read_recording("run.jsonl")
    assert str(caught.value) == message


# -- the step record's own encoder (RecordingWriter and the Recorder write steps with it) ----------------
_AWKWARD = (0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e-05, 0.1, 1.0, 123456789.0,
            0.8989398241043091, float.fromhex("0x1.fffffep+127"), math.nan, math.inf, -math.inf)


def _random_step(rng, step: int) -> StepMetrics:
    def number() -> float:
        pick = rng.random()
        if pick < 0.3:
            return rng.choice(_AWKWARD)
        if pick < 0.6:  # a float32 value, as the probe's norms are
            return float(torch.tensor(rng.uniform(-1e6, 1e6), dtype=torch.float32))
        return rng.uniform(-1, 1) * 10 ** rng.randint(-300, 300)

    layers = rng.randint(1, 6)
    return StepMetrics(
        run=rng.randint(1, 3), step=step, t=number(), loss=number(), grad_norm=tuple(number() for _ in range(layers)),
        total_norm=number(), clipped=rng.choice((None, True, False)), lr=number(), step_ms=number(), probe_ms=number(),
        time_grad=rng.choice((None, tuple(number() for _ in range(3)))),
        layer_stats=rng.choice((None, tuple(number() for _ in range(layers)))), skipped=rng.random() < 0.3,
    )


def test_step_records_are_encoded_exactly_as_json_dumps_writes_them() -> None:
    import random

    rng = random.Random(0)
    events = [_random_step(rng, step) for step in range(1, 2001)]
    # The encoder's fallbacks: an int where a float goes, a list where a tuple goes (written as it is).
    events += [StepMetrics(run=1, step=1, t=0, loss=1, grad_norm=(1, 2.5), total_norm=3, lr=0),
               StepMetrics(run=1, step=1, t=0.5, loss=1.0, grad_norm=[1.0, math.nan], total_norm=math.nan)]  # type: ignore[arg-type]
    for event in events:
        assert encode_event(event) == json.dumps(to_record(event), separators=(",", ":"))


def test_step_lines_round_trip_every_float_bit_for_bit() -> None:
    values = _AWKWARD + tuple(float(v) for v in torch.randn(200, dtype=torch.float32) * 1e-20)
    line = step_line(2, 7, 0.25, -0.0, values, math.nan, None, 0.1, 1.5, 0.01, skipped=True)
    back = parse_line(line)
    assert isinstance(back, StepMetrics) and back.skipped and back.clipped is None and back.run == 2 and back.step == 7
    bits = [struct.pack("<d", v) for v in back.grad_norm]
    assert bits == [struct.pack("<d", v) for v in values]  # -0.0 and subnormals included
    assert math.copysign(1.0, back.loss) == -1.0 and math.isnan(back.total_norm)
    assert '"NaN"' in line and '"Infinity"' in line and '"-Infinity"' in line and "nan" not in line.replace("grad_norm", "")


def test_float32_step_lines_give_back_every_float32_bit_for_bit() -> None:
    """The Recorder's lines (float32=True): loss and norms in 9 digits, each reading back as the very
    float32 it was (subnormals, the largest float32 and -0.0 included); times and lr stay exact."""
    f32 = [0.0, -0.0, 1.0, 0.1, 1e-45, 1.1754942e-38, 3.4028234663852886e38, 0.8989398241043091]
    f32 = [float(torch.tensor(v, dtype=torch.float32)) for v in f32]
    f32 += [float(v) for v in torch.randn(500, dtype=torch.float32) * torch.pow(10.0, torch.randint(-40, 37, (500,)).float())]
    f32 = [v for v in f32 if math.isfinite(v)]
    t, lr = 1234.5678901234567, 3.0000000000000004e-4
    line = step_line(1, 3, t, f32[1], f32 + [math.nan, math.inf, -math.inf], f32[2], True, lr, 1.25, 0.0625,
                     skipped=False, float32=True)
    back = parse_line(line)
    assert isinstance(back, StepMetrics)
    again = torch.tensor(back.grad_norm[:-3], dtype=torch.float32)
    assert again.view(torch.int32).tolist() == torch.tensor(f32, dtype=torch.float32).view(torch.int32).tolist()
    assert math.isnan(back.grad_norm[-3]) and back.grad_norm[-2:] == (math.inf, -math.inf)
    assert math.copysign(1.0, back.loss) == -1.0 and back.total_norm == 1.0
    assert (back.t, back.lr, back.step_ms, back.probe_ms) == (t, lr, 1.25, 0.0625)  # float64, exact
    assert all(type(v) is float for v in back.grad_norm)  # '1.00000000', never a bare 1
    assert len(line) < len(step_line(1, 3, t, f32[1], f32, f32[2], True, lr, 1.25, 0.0625)) * 0.75
