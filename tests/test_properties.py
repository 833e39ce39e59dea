"""Property tests (hypothesis) of everything that reads untrusted input, and of the History's series.

* The preset parser on arbitrary text, on generated TOML documents and on mutated built-in presets:
  it returns a Scenario or raises UserError with one line that starts with the source name; nothing
  else may escape (docs/reliability.md lists what each bad input must give).
* The recording reader on arbitrary bytes after a valid header, on arbitrary JSON lines, on mutated
  records and on arbitrary whole files: it returns (and what it returns round-trips through the
  record format and feeds a History) or raises RecordingError; ``parse_line`` raises only RecordError.
* ``Remedy.parse`` of every remedy on arbitrary text, numbers, booleans and None.
* MultiResolutionSeries on arbitrary rows (NaN and inf included): buckets cover every appended step
  exactly once, counts add up, min/max/mean are those of the steps in each bucket, memory is bounded.

Every bug hypothesis found here has been fixed; the inputs that showed it are kept as plain
regression tests (``test_..._that_once_...``) that assert what the code must do with them now.
"""

from __future__ import annotations

import json
import math
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vgp_tui.data.specs import DATA_SPECS
from vgp_tui.engine.events import (
    EVENT_TYPES,
    STATES,
    KeyPressed,
    RecordError,
    RemedyChanged,
    RunStarted,
    SessionHeader,
    StateChanged,
    StepMetrics,
    from_record,
    to_record,
)
from vgp_tui.engine.history import History, MultiResolutionSeries
from vgp_tui.engine.recording import RecordingError, RecordingReader, parse_line, read_recording
from vgp_tui.engine.remedies import REMEDIES, Remedy
from vgp_tui.errors import UserError
from vgp_tui.models.configs import FAMILY_CONFIGS
from vgp_tui.scenario import Scenario, parse_preset

ROOT = Path(__file__).resolve().parent.parent
PRESET_FILES = sorted((ROOT / "presets").glob("*.toml"))
SOURCE = "my-preset.toml"

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def one_line(message: str) -> bool:
    return len(message.splitlines()) == 1


# ---------------------------------------------------------------------------------------------------
# Inputs that broke a property once (the regression tests below keep them).

HUGE_INT = "1" + "0" * 400  # parses as an int; float() of it overflows
TOO_LONG_INT = "1" + "0" * 5000  # past Python's 4300-digit limit for int/str conversion
DEEP_ARRAY = "a = " + "[" * 2000 + "]" * 2000
DEEP_SIGMOID = (ROOT / "presets" / "deep-sigmoid.toml").read_text()


# ---------------------------------------------------------------------------------------------------
# TOML writing (the standard library reads TOML but does not write it).


class Raw:
    """A value written into the TOML text verbatim (huge integers, dates, odd number forms)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r})"


def toml_string(text: str) -> str:
    # A JSON string is a TOML basic string, except that TOML also forbids a raw DEL.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_document(doc: dict[str, Any]) -> str:
    """Top-level keys first, then each table as a [section] (deeper tables inline)."""
    lines = [f"{toml_string(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for key, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"\n[{toml_string(key)}]")
            lines += [f"{toml_string(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def check_preset(text: str) -> Scenario | None:
    """The property: a Scenario, or one UserError line that names the source; nothing else."""
    try:
        scenario = parse_preset(text, SOURCE)
    except UserError as exc:
        message = str(exc)
        assert one_line(message), message
        assert message.startswith(SOURCE), message
        return None
    assert isinstance(scenario, Scenario)
    assert scenario.family in FAMILY_CONFIGS and scenario.data_kind in DATA_SPECS
    assert {"lr", "optimizer"} <= set(scenario.remedies)
    for name, value in scenario.remedies.items():
        assert REMEDIES[name].parse(value) == value
    return scenario


# Keys and values the parser knows, so generated documents get past the first checks often.
SCHEMA_KEYS = sorted(
    {"name", "title", "summary", "expect", "seed", "model", "data", "train", "remedies", "family", "kind",
     "synthetic", "batch_size", "steps", "time_every", "stats_every", *REMEDIES}
    | {f for cls in (*FAMILY_CONFIGS.values(), *DATA_SPECS.values()) for f in cls.__dataclass_fields__}
)
WORDS = sorted({*FAMILY_CONFIGS, *DATA_SPECS, "off", "on", "true", "none"} | {c for r in REMEDIES.values() for c in r.choices})

keys = st.one_of(st.sampled_from(SCHEMA_KEYS), st.text(st.characters(blacklist_categories=("Cs",)), max_size=8))
raw_numbers = st.sampled_from(
    [HUGE_INT, "-" + HUGE_INT, TOO_LONG_INT, "9223372036854775808", "-9223372036854775809", "0x7fffffff", "0o17",
     "0b101", "1_000", "+inf", "-nan", "1e400", "-1e400", "5e-324", "1979-05-27", "07:32:00", "1979-05-27T07:32:00Z",
     "'literal'", '"""two\nlines"""', "[]", "{}"]
).map(Raw)
scalars = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2, -1, 2**63 - 1, -(2**63), 10**12 + 1]),
    st.floats(),  # nan and inf included
    st.sampled_from(WORDS),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.booleans(),
    raw_numbers,
)
toml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def schema_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Documents shaped like a preset with arbitrary values: they pass the parser often enough to
    reach every check in it."""
    family = draw(st.one_of(st.sampled_from(sorted(FAMILY_CONFIGS)), scalars))
    kind = draw(st.one_of(st.sampled_from(sorted(DATA_SPECS)), scalars))
    model_fields = sorted(FAMILY_CONFIGS[family].__dataclass_fields__) if family in FAMILY_CONFIGS else ["depth"]
    data_fields = sorted(DATA_SPECS[kind].__dataclass_fields__) if kind in DATA_SPECS else ["samples"]
    number = st.one_of(st.integers(-5, 5000), st.floats(-10, 10), scalars)
    model = {"family": family, **draw(st.dictionaries(st.sampled_from(model_fields), number, max_size=4))}
    data = {"kind": kind, **draw(st.dictionaries(st.sampled_from(data_fields + ["synthetic"]), number, max_size=4))}
    remedy_values = st.one_of(st.sampled_from(WORDS), st.floats(), st.integers(-2, 20), st.booleans(), scalars)
    remedies = draw(st.dictionaries(st.sampled_from(sorted(REMEDIES)), remedy_values, max_size=9))
    if draw(st.booleans()):
        remedies = {"lr": draw(st.floats(0.001, 1)), "optimizer": "sgd", **remedies}
    doc: dict[str, Any] = {"model": model, "data": data, "remedies": remedies}
    if draw(st.booleans()):
        doc["train"] = draw(st.dictionaries(st.sampled_from(["batch_size", "steps", "time_every", "stats_every"]), number, max_size=4))
    doc.update(draw(st.dictionaries(st.sampled_from(["name", "title", "summary", "expect", "seed"]), scalars, max_size=3)))
    if draw(st.integers(0, 9)) == 0:
        doc[draw(keys)] = draw(toml_values)
    return doc


def test_the_toml_writer_reproduces_every_builtin_preset() -> None:
    for path in PRESET_FILES:
        text = path.read_text()
        rewritten = toml_document(tomllib.loads(text))
        assert tomllib.loads(rewritten) == tomllib.loads(text)
        assert parse_preset(rewritten, SOURCE, path.stem) == parse_preset(text, SOURCE, path.stem)


PRESETS_THAT_ONCE_ESCAPED = {
    # tomllib raised ValueError (past 4300 digits), which parse_preset let through.
    "an integer past 4300 digits": "seed = " + TOO_LONG_INT,
    "a model setting past 4300 digits": DEEP_SIGMOID.replace("depth = 20", "depth = " + TOO_LONG_INT),
    # tomllib raised RecursionError.
    "arrays nested past the recursion limit": DEEP_ARRAY,
    # math.isfinite raised OverflowError on an integer too big for a float.
    "a float setting too big for a float": DEEP_SIGMOID.replace("noise = 0.1", "noise = " + HUGE_INT),
    "a rate remedy too big for a float": DEEP_SIGMOID.replace("lr = 0.1", "lr = " + HUGE_INT),
    "a threshold remedy too big for a float": DEEP_SIGMOID.replace('clip = "off"', "clip = " + HUGE_INT),
    # _choice raised TypeError (unhashable).
    "a data kind that is a list": DEEP_SIGMOID.replace('kind = "spirals"', "kind = []"),
    "a family that is a table": DEEP_SIGMOID.replace('family = "mlp"', "family = {}"),
    # The name was printed raw, so the message spanned two lines.
    "an unknown key with a newline in it": '"a\\nb" = 1',
    "an unknown remedy with a newline in it": DEEP_SIGMOID.replace('optimizer = "sgd"', '"optimizer\\n" = "sgd"'),
}


@pytest.mark.parametrize("text", list(PRESETS_THAT_ONCE_ESCAPED.values()), ids=list(PRESETS_THAT_ONCE_ESCAPED))
def test_presets_that_once_escaped_the_parser_are_one_line_user_errors(text: str) -> None:
    with pytest.raises(UserError) as error:
        parse_preset(text, SOURCE)
    assert one_line(str(error.value)) and str(error.value).startswith(SOURCE), str(error.value)


@FAST
@given(st.text())
def test_parse_preset_of_any_text_is_a_scenario_or_a_user_error(text: str) -> None:
    check_preset(text)


@FAST
@given(st.dictionaries(keys, toml_values, max_size=6).map(toml_document))
def test_parse_preset_of_any_toml_document(text: str) -> None:
    check_preset(text)


@FAST
@given(schema_documents().map(toml_document))
def test_parse_preset_of_preset_shaped_documents(text: str) -> None:
    check_preset(text)


@st.composite
def mutated_presets(draw: st.DrawFn) -> str:
    """A built-in preset with one value replaced, one key removed or one key added."""
    path = draw(st.sampled_from(PRESET_FILES))
    doc = tomllib.loads(path.read_text())
    tables = [doc] + [v for v in doc.values() if isinstance(v, dict)]
    table = draw(st.sampled_from(tables))
    action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
    if action == "add" or not table:
        table[draw(keys)] = draw(toml_values)
    else:
        key = draw(st.sampled_from(sorted(table)))
        if action == "delete":
            del table[key]
        else:
            table[key] = draw(toml_values)
    return toml_document(doc)


@FAST
@given(mutated_presets())
def test_parse_preset_of_a_mutated_builtin_preset(text: str) -> None:
    check_preset(text)


@st.composite
def line_mutated_presets(draw: st.DrawFn) -> str:
    """deep-sigmoid.toml with the right-hand side of one ``key = value`` line replaced by any text."""
    lines = DEEP_SIGMOID.splitlines()
    candidates = [i for i, line in enumerate(lines) if " = " in line and not line.startswith("expect")]
    i = draw(st.sampled_from(candidates))
    key = lines[i].partition(" = ")[0]
    lines[i] = f"{key} = " + draw(st.one_of(st.text(max_size=20), toml_values.map(toml_value), raw_numbers.map(lambda r: r.text)))
    return "\n".join(lines) + "\n"


@FAST
@given(line_mutated_presets())
def test_parse_preset_of_deep_sigmoid_with_one_value_rewritten(text: str) -> None:
    check_preset(text)


# ---------------------------------------------------------------------------------------------------
# Recordings

HEADER = SessionHeader(preset="deep-sigmoid", device="cpu", started="2026-01-01T00:00:00+00:00", versions={"torch": "2"})
HEADER_LINE = (json.dumps(to_record(HEADER), separators=(",", ":")) + "\n").encode()

finite_or_not = st.floats(allow_nan=True, allow_infinity=True)
small_ints = st.integers(min_value=0, max_value=10**6)
names = st.text(max_size=6)
remedy_value = st.one_of(st.none(), st.booleans(), st.integers(-5, 100), finite_or_not, st.text(max_size=6))
float_tuples = st.lists(finite_or_not, max_size=5).map(tuple)

events = st.one_of(
    st.builds(RunStarted, run=small_ints, t=finite_or_not, preset=names, layers=st.lists(names, max_size=4).map(tuple),
              remedies=st.dictionaries(names, remedy_value, max_size=3), seed=small_ints, reason=names,
              time_view=st.none() | names, stats=st.none() | names, params=small_ints),
    st.builds(StepMetrics, run=small_ints, step=small_ints, t=finite_or_not, loss=finite_or_not, grad_norm=float_tuples,
              total_norm=finite_or_not, clipped=st.none() | st.booleans(), lr=finite_or_not, step_ms=finite_or_not,
              probe_ms=finite_or_not, time_grad=st.none() | float_tuples, layer_stats=st.none() | float_tuples),
    st.builds(RemedyChanged, run=small_ints, step=small_ints, t=finite_or_not, name=st.sampled_from(sorted(REMEDIES)) | names,
              old=remedy_value, new=remedy_value, structural=st.booleans()),
    st.builds(StateChanged, run=small_ints, step=small_ints, t=finite_or_not, state=st.sampled_from(STATES) | names, message=names),
    st.builds(KeyPressed, run=small_ints, step=small_ints, t=finite_or_not, key=names, action=names),
    st.builds(SessionHeader, preset=names, device=names, started=names, versions=st.dictionaries(names, names, max_size=2),
              version=st.integers(0, 3)),
)

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
              st.sampled_from(["NaN", "Infinity", "-Infinity"]), st.sampled_from(sorted(EVENT_TYPES))),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=10,
)


@st.composite
def record_lines(draw: st.DrawFn) -> str:
    """One line of a recording: a valid record, a record with one field changed, dropped or added,
    any JSON value, a raw token, or any text."""
    choice = draw(st.integers(0, 5))
    if choice <= 2:
        record = to_record(draw(events))
        if choice >= 1:
            field = draw(st.sampled_from(sorted(record)))
            if choice == 1:
                record[field] = draw(json_values)
            else:
                del record[field]
        if draw(st.integers(0, 4)) == 0:
            record[draw(st.text(max_size=5))] = draw(json_values)
        return json.dumps(record)
    if choice == 3:
        return json.dumps(draw(json_values))
    if choice == 4:
        return draw(st.sampled_from(
            ['{"type":"key","run":1,"step":1,"t":' + HUGE_INT + ',"key":"a","action":"x"}',
             '{"type":"step","run":1,"step":' + str(2**64) + ',"t":0,"loss":1,"grad_norm":[1],"total_norm":1}',
             "[" + TOO_LONG_INT + "]", "[" * 5000 + "]" * 5000, '{"type":"step"', "NaN", "-Infinity", "\x00"]))
    return draw(st.text(max_size=30)).replace("\n", " ")


def records_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # NaN equals NaN this way


def check_recording(data: bytes) -> None:
    """The property for a whole file's bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rec.jsonl"
        path.write_bytes(data)
        try:
            result = read_recording(path)
        except RecordingError as exc:
            assert one_line(str(exc)), str(exc)
            return
    assert result.warning is None or one_line(result.warning), result.warning
    for event in [result.header, *result.events]:
        record = to_record(event)
        again = from_record(json.loads(json.dumps(record)))
        assert records_equal(to_record(again), record)
        assert records_equal(to_record(parse_line(json.dumps(record))), record)
    # What the reader accepts must also replay: the History takes every event without a traceback.
    history = History(window=4)
    history.extend(result.events)
    assert len(history.runs) <= history.max_runs


def check_line(line: str) -> None:
    try:
        event = parse_line(line)
    except RecordError as exc:
        assert one_line(str(exc)), str(exc)
        return
    assert type(event) in EVENT_TYPES.values()


def check_growing(lines: list[str], cuts: list[int]) -> None:
    """Reading while the file grows (cut at arbitrary bytes) gives what reading it whole gives."""
    body = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rec.jsonl"
        path.write_bytes(HEADER_LINE)
        reader = RecordingReader(path)
        seen = []
        done = 0
        for cut in sorted({min(c, len(body)) for c in cuts}) + [len(body)]:
            with open(path, "ab") as f:
                f.write(body[done:cut])
            done = cut
            seen += list(reader.read_available())
        reader.finish()
        reader.close()
        whole = read_recording(path)
    assert len(seen) == len(whole.events)
    assert all(records_equal(to_record(a), to_record(b)) for a, b in zip(seen, whole.events))
    assert (reader.warning is None) == (whole.warning is None)


def lines_after_header(*lines: str) -> bytes:
    return HEADER_LINE + "".join(line + "\n" for line in lines).encode()


RUN_LINE = '{"type":"run","run":1,"t":0,"preset":"p","layers":["a"],"remedies":{},"seed":0}'
T_TOO_BIG = '{"type":"key","run":1,"step":1,"t":' + HUGE_INT + ',"key":"a","action":"x"}'
TOO_LONG_LINE = "[" + TOO_LONG_INT + "]"
STEP_TOO_BIG = '{"type":"step","run":1,"step":' + str(2**64) + ',"t":0,"loss":1,"grad_norm":[1],"total_norm":1}'
HEADER_TOO_LONG = ('{"type":"header","preset":"p","device":"cpu","started":"x","version":' + TOO_LONG_INT + "}\n").encode()


# A number too big for a float (OverflowError in _decode_float) and one past 4300 digits (ValueError
# from json.loads) once escaped parse_line and read_recording.
@pytest.mark.parametrize("line", [T_TOO_BIG, TOO_LONG_LINE], ids=["too big for a float", "past 4300 digits"])
def test_record_lines_that_once_escaped_parse_line_are_record_errors(line: str) -> None:
    with pytest.raises(RecordError) as error:
        parse_line(line)
    assert one_line(str(error.value)), str(error.value)


@pytest.mark.parametrize(("line", "cut"), [(T_TOO_BIG, 5), (TOO_LONG_LINE, 3)], ids=["too big for a float", "past 4300 digits"])
def test_recordings_with_a_line_that_once_escaped_replay_up_to_it(line: str, cut: int, tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_bytes(lines_after_header(line))
    result = read_recording(path)
    assert result.events == [] and result.warning is not None and "line 2" in result.warning, result.warning
    check_recording(lines_after_header(line))
    check_growing([line], [cut])  # read while it grows, cut inside the bad number


def test_a_header_whose_version_once_escaped_is_not_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_bytes(HEADER_TOO_LONG)
    with pytest.raises(RecordingError):
        read_recording(path)


# Once the History (the replay's timer) crashed on these: OverflowError on a step past int64, and
# KeyError in the run labels of the loss plot on a remedy this version does not know (a newer vgp-tui, an edited file).
@pytest.mark.parametrize("lines", [(RUN_LINE, STEP_TOO_BIG), (RUN_LINE.replace('"remedies":{}', '"remedies":{"warp":1}'),)],
                         ids=["a step past int64", "an unknown remedy"])
def test_recordings_that_once_crashed_the_history_replay_their_run(lines: tuple[str, ...]) -> None:
    check_recording(lines_after_header(*lines))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rec.jsonl"
        path.write_bytes(lines_after_header(*lines))
        events = read_recording(path).events
    history = History(window=4)
    history.extend(events)
    assert list(history.runs) == [1]


@FAST
@given(st.binary(max_size=400).map(lambda body: HEADER_LINE + body))
def test_read_recording_of_any_bytes_after_a_header(data: bytes) -> None:
    check_recording(data)


@FAST
@given(st.tuples(st.lists(record_lines(), max_size=8), st.sampled_from(["", "\n"])).map(
    lambda t: HEADER_LINE + ("\n".join(t[0]) + t[1]).encode("utf-8", "surrogatepass")))
def test_read_recording_of_json_lines_after_a_header(data: bytes) -> None:
    check_recording(data)


@FAST
@given(st.one_of(st.binary(max_size=300), record_lines().map(lambda s: (s + "\n").encode("utf-8", "surrogatepass"))))
def test_read_recording_of_any_whole_file(data: bytes) -> None:
    check_recording(data)


@FAST
@given(st.one_of(st.text(), record_lines()))
def test_parse_line_raises_only_record_error(line: str) -> None:
    check_line(line)


@QUICK
@given(st.lists(record_lines(), max_size=8), st.lists(st.integers(0, 400), max_size=6))
def test_reading_while_the_file_grows_gives_what_reading_it_whole_gives(lines: list[str], cuts: list[int]) -> None:
    check_growing(lines, cuts)


# ---------------------------------------------------------------------------------------------------
# Remedies

raw_remedy_inputs = st.one_of(
    st.text(max_size=12),
    st.sampled_from([" on ", "OFF", "None", "0", "1", "2", "16", "17", "1e-8", "1e400", "nan", "inf", "-0", "0.5", "2.0",
                     "1_000", "relu", " Adam ", "he"] + [c for r in REMEDIES.values() for c in r.choices]),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False).map(str),
)


def accepted(remedy: Remedy, value: Any) -> bool:
    if remedy.value_type == "choice":
        return value in remedy.choices
    if remedy.value_type == "switch":
        return isinstance(value, bool)
    if remedy.value_type == "count":
        return type(value) is int and remedy.minimum <= value <= remedy.maximum
    if value is None:
        return remedy.value_type == "threshold"
    return type(value) is float and math.isfinite(value) and remedy.minimum < value <= remedy.maximum


def check_remedy(name: str, raw: Any) -> None:
    remedy = REMEDIES[name]
    try:
        value = remedy.parse(raw, "--remedy")
    except UserError as exc:
        assert one_line(str(exc)) and str(exc).startswith("--remedy: "), str(exc)
        return
    assert accepted(remedy, value), value
    assert remedy.parse(value) == value  # its own output is accepted unchanged
    shown = remedy.parse(remedy.format(value))  # what the remedies bar shows reads back
    if isinstance(value, float):
        assert shown == pytest.approx(value, rel=1e-5)
    else:
        assert shown == value
    following = remedy.next_value(value)  # what its key does
    assert accepted(remedy, following) and remedy.parse(following) == following


# Remedy.parse once raised OverflowError (math.isfinite) on an int too big for a float.
@pytest.mark.parametrize(("name", "raw"), [("lr", 10**400), ("clip", -(10**400))])
def test_a_remedy_value_that_once_overflowed_is_a_user_error(name: str, raw: int) -> None:
    with pytest.raises(UserError, match="^--remedy: "):
        REMEDIES[name].parse(raw, "--remedy")


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(REMEDIES)), raw_remedy_inputs)
def test_remedy_parse_accepts_its_own_output_or_raises_user_error(name: str, raw: Any) -> None:
    check_remedy(name, raw)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([n for n, r in REMEDIES.items() if r.value_type in ("rate", "threshold")]),
       st.floats(min_value=1e-12, max_value=1e12), st.sampled_from([0.5, 2.0]), st.integers(1, 30))
def test_scaling_a_rate_or_threshold_stays_an_accepted_value(name: str, start: float, factor: float, presses: int) -> None:
    """The [ ] + - keys, pressed many times from any sane value, never produce a value parse rejects."""
    remedy = REMEDIES[name]
    value = remedy.parse(min(start, remedy.maximum))
    for _ in range(presses):
        value = remedy.scaled(value, factor)
        assert accepted(remedy, value), value


# ---------------------------------------------------------------------------------------------------
# MultiResolutionSeries

values32 = st.floats(width=32)  # what the trainer measures (float32); NaN and inf included


@st.composite
def series_input(draw: st.DrawFn) -> tuple[int, int, np.ndarray, np.ndarray]:
    channels = draw(st.integers(1, 3))
    window = draw(st.sampled_from([2, 4, 8, 16]))
    n = draw(st.integers(0, 400))
    if draw(st.booleans()):
        start = draw(st.integers(0, 10**12))
        steps = np.arange(start, start + n, dtype=np.int64)  # how the trainer counts
    else:
        gaps = draw(st.lists(st.integers(1, 10**6), min_size=n, max_size=n))
        steps = np.cumsum(np.asarray(gaps, dtype=np.int64)) if n else np.empty(0, np.int64)
    pool = draw(st.lists(values32, min_size=1, max_size=8))  # few distinct values: NaN/inf show up often
    picks = draw(st.lists(st.integers(0, len(pool) - 1), min_size=n * channels, max_size=n * channels))
    rows = np.asarray([pool[i] for i in picks], dtype=np.float64).reshape(n, channels)
    if draw(st.booleans()):
        rows = np.asarray(draw(st.lists(values32, min_size=n * channels, max_size=n * channels)), dtype=np.float64).reshape(n, channels)
    return channels, window, steps, rows


def expected_buckets(steps: np.ndarray, rows: np.ndarray, first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, ...]:
    """Min, max, mean and count of the appended rows whose step lies in each bucket."""
    lo = np.searchsorted(steps, first, side="left")
    hi = np.searchsorted(steps, last, side="right")
    low = np.stack([rows[a:b].astype(np.float32).min(axis=0) for a, b in zip(lo, hi)]).astype(np.float64)
    high = np.stack([rows[a:b].astype(np.float32).max(axis=0) for a, b in zip(lo, hi)]).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        mean = np.stack([rows[a:b].sum(axis=0) / (b - a) for a, b in zip(lo, hi)])
    return low, high, mean, hi - lo


def check_view(view: Any, steps: np.ndarray, rows: np.ndarray, consecutive: bool) -> None:
    first, last = view.first_step, view.last_step
    assert np.all(first <= last)
    assert np.all(last[:-1] < first[1:])  # ordered, no overlap
    if consecutive:
        assert np.all(first[1:] == last[:-1] + 1)  # and no gap
    assert first[0] == steps[0] and last[-1] == steps[-1]
    bucket = np.searchsorted(first, steps, side="right") - 1
    assert np.all(steps <= last[bucket])  # every appended step lies in a bucket ...
    counts = np.bincount(bucket, minlength=len(first))
    assert np.all(counts >= 1) and counts.sum() == len(steps)  # ... exactly one, and none is empty
    low, high, mean, n = expected_buckets(steps, rows, first, last)
    assert np.array_equal(n, counts)
    np.testing.assert_array_equal(view.low, low)  # NaN in a bucket shows as NaN, like the min of numpy
    np.testing.assert_array_equal(view.high, high)
    scale = np.maximum(np.abs(np.nan_to_num(low, posinf=0, neginf=0)), np.abs(np.nan_to_num(high, posinf=0, neginf=0)))
    finite = np.isfinite(mean)
    np.testing.assert_array_equal(np.isnan(view.mean), np.isnan(mean))
    np.testing.assert_array_equal(view.mean[~finite & ~np.isnan(mean)], mean[~finite & ~np.isnan(mean)])
    tol = 1e-12 * scale * n[:, None] + 1e-300
    with np.errstate(invalid="ignore"):
        assert np.all(np.abs(view.mean - mean)[finite] <= tol[finite])
    ok = np.isfinite(view.low) & np.isfinite(view.high) & np.isfinite(view.mean)
    assert np.all((view.low <= view.mean + tol)[ok]) and np.all((view.mean <= view.high + tol)[ok])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(series_input(), st.integers(1, 40))
def test_series_buckets_cover_every_step_once_with_their_min_max_and_mean(data: Any, max_points: int) -> None:
    channels, window, steps, rows = data
    s = MultiResolutionSeries(channels, window)
    with np.errstate(invalid="ignore"):  # inf + -inf merges to NaN, as it should
        for step, row in zip(steps.tolist(), rows):
            s.append(step, row)
    assert s.steps == len(steps)
    # Counts add up level by level, and memory is bounded: every level under 2 * window buckets, and
    # the top level's buckets span at least window / 2 * 2**level steps, so levels grow with log2(n).
    assert sum(int(lv.count[: lv.size].sum()) for lv in s.levels) == len(steps)
    assert all(lv.size < 2 * window for lv in s.levels)
    assert len(s.levels) <= max(1, 1 + math.floor(math.log2(2 * max(len(steps), 1) / window)))
    assert s.nbytes() == len(s.levels) * s.levels[0].nbytes()
    with np.errstate(invalid="ignore"):
        view, small = s.view(), s.view(max_points)
    if not len(steps):
        assert len(view) == 0
        return
    consecutive = bool(np.all(np.diff(steps) == 1))
    check_view(view, steps, rows, consecutive)
    assert 1 <= len(small) <= max_points
    check_view(small, steps, rows, consecutive)


@QUICK
@given(st.lists(st.one_of(
    st.tuples(st.just("run"), st.integers(1, 12), st.integers(1, 3)),
    st.tuples(st.just("step"), st.integers(1, 12), st.integers(1, 3)),
    st.tuples(st.just("remedy"), st.integers(1, 12), st.booleans()),
), max_size=60))
def test_history_keeps_at_most_max_runs_and_ignores_steps_it_cannot_place(script: list[tuple[Any, ...]]) -> None:
    history = History(window=4, max_runs=3)
    step = 0
    for kind, run, arg in script:
        step += 1
        if kind == "run":
            history.add(RunStarted(run=run, t=step, preset="p", layers=tuple(f"fc{i}" for i in range(arg)), remedies={"lr": 0.1}, seed=0))
        elif kind == "step":
            history.add(StepMetrics(run=run, step=step, t=step, loss=1.0, grad_norm=(1.0,) * arg, total_norm=1.0))
        else:
            history.add(RemedyChanged(run=run, step=step, t=step, name="lr", old=0.1, new=0.2, structural=arg))
        assert len(history.runs) <= 3
        for r in history.runs.values():
            assert r.series.channels == 2 + len(r.layers)
    assert history.nbytes() == sum(r.series.nbytes() for r in history.runs.values())
