"""Presets: TOML files that describe a scenario, validated into a :class:`Scenario`.

A preset names a model family and its settings, a data kind and its settings, the training settings,
the remedies that apply with their starting values, and a "what you should see" text citing the paper
it reproduces. Built-in presets ship in ``vgp_tui/presets``; users add their own by passing a path, or
by putting ``NAME.toml`` in the user preset folder (``$VGP_TUI_PRESETS`` or
``~/.config/vgp-tui/presets``).

A preset's name is its file's name without ``.toml``: the name ``vgp-tui presets`` lists is the one
``--preset`` takes, whatever the file says. A ``name =`` key is optional and, when present, must be
that name; one that disagrees is an error naming the file (not a warning: the name is what the user
types, and a warning would scroll by or hide behind the dashboard, leaving two names for one file).
A user preset named like a built-in one replaces it for ``--preset NAME``; the Scenario says so
(``shadows_builtin``), and so does the preset table.

Every mistake in a file becomes one UserError line naming the file, the key and what is allowed. This
module imports no torch, so listing presets stays fast.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import MISSING, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from vgp_tui.data.specs import DATA_SPECS
from vgp_tui.engine.remedies import REMEDIES, RemedyValue
from vgp_tui.errors import UserError, closest
from vgp_tui.models.configs import FAMILY_CONFIGS

DEFAULT_PRESET = "deep-sigmoid"


@dataclass(frozen=True)
class TrainSpec:
    """How a run trains: batch size, default length, and how often to sample the costlier views."""

    batch_size: int = field(default=128, metadata={"min": 1, "max": 1_000_000})
    steps: int = field(default=0, metadata={"min": 0, "max": 10**12})
    """Optimizer steps per run; 0 trains until stopped."""
    time_every: int = field(default=10, metadata={"min": 1, "max": 10**6})
    """Measure the per-time-step gradient view every this many steps (recurrent presets)."""
    stats_every: int = field(default=10, metadata={"min": 1, "max": 10**6})
    """Measure dead/saturated unit fractions every this many steps."""


@dataclass(frozen=True)
class Scenario:
    """A validated preset."""

    name: str
    title: str
    summary: str
    """One line: what the preset shows."""
    expect: str
    """What you should see, citing the paper it reproduces."""
    source: str
    """Where it was read from (a path or ``built-in``), for messages."""
    family: str
    model: Any
    """The family's config dataclass (``vgp_tui.models.configs``)."""
    data_kind: str
    data: Any
    """The data kind's spec dataclass (``vgp_tui.data.specs``)."""
    train: TrainSpec
    remedies: dict[str, RemedyValue]
    """Starting values of every remedy that applies, in registry order."""
    seed: int = 0
    synthetic: bool = False
    """Use the labelled synthetic stand-in instead of the real data set."""
    origin: str = "user"
    """``built-in`` (shipped with vgp-tui) or ``user`` (a file of the user's: a path or the user folder)."""
    shadows_builtin: bool = False
    """A user preset named like a built-in one, which ``--preset NAME`` now loads instead of it."""

    @property
    def origin_label(self) -> str:
        """``built-in``, ``user``, or ``user, shadows built-in``: for the preset table and the screen."""
        return "user, shadows built-in" if self.shadows_builtin else self.origin


_TOP_KEYS = {"name", "title", "summary", "expect", "seed", "model", "data", "train", "remedies"}


def user_preset_dir() -> Path:
    env = os.environ.get("VGP_TUI_PRESETS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vgp-tui" / "presets"


def builtin_names() -> list[str]:
    files = resources.files("vgp_tui.presets")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def user_names() -> list[str]:
    """Names of the presets in the user folder (file names without ``.toml``)."""
    folder = user_preset_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.toml") if p.is_file())


def available_names() -> list[str]:
    """Built-in preset names followed by the user's own (a user file may shadow a built-in: it is
    listed once, where the built-in one is)."""
    names = builtin_names()
    names += [name for name in user_names() if name not in names]
    return names


DATA_FOR: dict[str, tuple[str, ...]] = {
    "mlp": ("spirals",),  # points in the plane
    "sequence": ("adding",),  # sequences of (value, marker) pairs
    "resnet": ("cifar10",),  # 32x32 colour images
    "sentiment": ("imdb",),  # token ids
}
"""The data kinds each model family takes (any other pair fails at its first forward)."""


def load_preset(name_or_path: str) -> Scenario:
    """Load a preset by name (user folder first, then built-in) or by path to a TOML file."""
    looks_like_path = name_or_path.endswith(".toml") or os.sep in name_or_path or "/" in name_or_path
    if looks_like_path:
        path = Path(name_or_path).expanduser()
        if path.is_dir():
            raise UserError(f"--preset {name_or_path} is a folder: give a preset's name or its .toml file")
        if not path.is_file():
            stem = Path(name_or_path).stem
            if path.suffix != ".toml" and path.with_name(path.name + ".toml").is_file():
                hint = f" (did you mean {name_or_path}.toml?)"
            elif name_or_path.endswith(".toml") and os.sep not in name_or_path and stem in available_names():
                hint = f" (a preset by name goes without the extension: --preset {stem})"
            else:
                hint = ""
            raise UserError(f"preset file '{name_or_path}' does not exist{hint}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{path}: not a preset file (a preset is TOML text in UTF-8)") from None
        except OSError as exc:
            raise UserError(f"{path}: cannot read preset file ({exc.strerror or exc})") from None
        scenario = parse_preset(text, str(path), name=path.stem)
        return replace(scenario, origin="user", shadows_builtin=path.stem in builtin_names())
    user_file = user_preset_dir() / f"{name_or_path}.toml"
    if user_file.is_file():
        return load_preset(str(user_file))
    resource = resources.files("vgp_tui.presets") / f"{name_or_path}.toml"
    if not resource.is_file():
        names = available_names()
        raise UserError(
            f"unknown preset '{name_or_path}'; available: {', '.join(names)}" + closest(name_or_path, names)
        )
    scenario = parse_preset(resource.read_text(encoding="utf-8"), f"built-in preset {name_or_path}", name_or_path)
    return replace(scenario, origin="built-in")


def parse_preset(text: str, source: str, name: str | None = None) -> Scenario:
    """Validate TOML ``text`` into a Scenario; ``source`` names it in error messages.

    ``name`` is the preset's name (its file's name without ``.toml``); a ``name`` key in the text
    must agree with it. Without it (text that is not a file) the key, or ``custom``, is the name.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{source}: not valid TOML ({exc})") from None
    except ValueError:  # tomllib's int() of a number past 4300 digits
        raise UserError(f"{source}: not valid TOML (a number has too many digits)") from None
    except RecursionError:
        raise UserError(f"{source}: not valid TOML (arrays or tables nested too deeply)") from None
    _reject_unknown(doc, _TOP_KEYS, source, "")
    written = _text(doc, "name", source, name or "custom")
    if name is not None and written != name:
        raise UserError(
            f"{source}: key 'name' is {written!r}, but a preset is named after its file ({name!r}); "
            "delete the name line, or rename the file"
        )
    name = written
    model_table = _table(doc, "model", source)
    data_table = _table(doc, "data", source)
    family = _choice(model_table, "family", FAMILY_CONFIGS, source, "[model]")
    data_kind = _choice(data_table, "kind", DATA_SPECS, source, "[data]")
    if data_kind not in DATA_FOR[family]:
        raise UserError(f"{source}: a [model] family '{family}' cannot take [data] kind '{data_kind}': "
                        f"it trains on {' or '.join(repr(k) for k in DATA_FOR[family])}")
    synthetic = data_table.get("synthetic", False)
    if not isinstance(synthetic, bool):
        raise UserError(f"{source}: [data] key 'synthetic' must be true or false, got {synthetic!r}")
    model = _build(FAMILY_CONFIGS[family], model_table, source, "[model]", skip={"family"})
    data = _build(DATA_SPECS[data_kind], data_table, source, "[data]", skip={"kind", "synthetic"})
    train = _build(TrainSpec, _table(doc, "train", source, required=False), source, "[train]")
    samples = getattr(data, "samples", 0)
    if samples and train.batch_size > samples:
        raise UserError(
            f"{source}: [train] batch_size {train.batch_size} is larger than the data "
            f"([data] samples = {samples}); use at most {samples}"
        )
    remedies = _remedies(_table(doc, "remedies", source), family, source)
    seed = doc.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        # (torch's CPU generator keeps the low 32 bits: a larger seed would train as another one)
        raise UserError(f"{source}: key 'seed' must be a whole number from 0 to {2**32 - 1}, got {seed!r}")
    return Scenario(
        name=name,
        title=_text(doc, "title", source, name),
        summary=_text(doc, "summary", source, ""),
        expect=_text(doc, "expect", source, ""),
        source=source,
        family=family,
        model=model,
        data_kind=data_kind,
        data=data,
        train=train,
        remedies=remedies,
        seed=seed,
        synthetic=synthetic,
    )


def _reject_unknown(table: dict[str, Any], allowed: set[str] | list[str], source: str, where: str) -> None:
    for key in table:
        if key not in allowed:
            place = f"{where} " if where else ""
            raise UserError(
                f"{source}: {place}unknown key {key!r}; allowed: {', '.join(sorted(allowed))}"
                + closest(key, allowed)
            )


def _table(doc: dict[str, Any], key: str, source: str, required: bool = True) -> dict[str, Any]:
    value = doc.get(key)
    if value is None:
        if required:
            raise UserError(f"{source}: missing table [{key}]")
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{source}: '{key}' must be a table ([{key}])")
    return value


def _text(doc: dict[str, Any], key: str, source: str, default: str) -> str:
    value = doc.get(key, default)
    if not isinstance(value, str):
        raise UserError(f"{source}: key '{key}' must be text, got {value!r}")
    return value.strip()


def _choice(table: dict[str, Any], key: str, options: dict[str, Any], source: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or value not in options:  # a list or table is not hashable
        raise UserError(
            f"{source}: {where} key '{key}' must be one of {', '.join(options)}, got {value!r}"
            + (closest(value, options) if isinstance(value, str) else "")
        )
    return value


def _build(cls: type, table: dict[str, Any], source: str, where: str, skip: set[str] = frozenset()) -> Any:  # type: ignore[assignment]
    """Instantiate dataclass ``cls`` from ``table``, checking names, types and bounds."""
    known = {f.name: f for f in fields(cls)}
    _reject_unknown({k: v for k, v in table.items() if k not in skip}, set(known), source, where)
    values: dict[str, Any] = {}
    for name, f in known.items():
        if name not in table:
            if f.default is MISSING:
                raise UserError(f"{source}: {where} missing key '{name}'")
            continue
        values[name] = _check_value(table[name], f, source, f"{where} key '{name}'")
    return cls(**values)


def _check_value(value: Any, f: Any, source: str, label: str) -> Any:
    kind = str(f.type)
    low, high = f.metadata.get("min"), f.metadata.get("max")
    span = f" from {low:g} to {high:g}" if low is not None else ""
    if kind == "bool":
        if not isinstance(value, bool):
            raise UserError(f"{source}: {label} must be true or false, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{source}: {label} must be a whole number{span}, got {value!r}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(_as_float(value)):
            raise UserError(f"{source}: {label} must be a number{span}, got {value!r}")
        value = float(value)
    else:  # pragma: no cover - every config field is bool, int or float
        raise TypeError(f"unsupported config field type {kind}")
    if low is not None and not low <= value <= high:
        raise UserError(f"{source}: {label} must be{span}, got {value!r}")
    return value


def _as_float(value: int | float) -> float:
    """``float(value)``, with an int too large for a float as infinity (so it is rejected, not raised)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _remedies(table: dict[str, Any], family: str, source: str) -> dict[str, RemedyValue]:
    values: dict[str, RemedyValue] = {}
    for name, raw in table.items():
        remedy = REMEDIES.get(name)
        if remedy is None:
            raise UserError(
                f"{source}: [remedies] unknown remedy {name!r}; known: {', '.join(REMEDIES)}"
                + closest(name, REMEDIES)
            )
        if family not in remedy.families:
            raise UserError(
                f"{source}: [remedies] '{name}' does not apply to a {family} model; "
                f"it applies to: {', '.join(sorted(remedy.families))}"
            )
        values[name] = remedy.parse(raw, f"{source}: [remedies]")
    for required in ("lr", "optimizer"):
        if required not in values:
            raise UserError(f"{source}: [remedies] missing '{required}' (every preset sets it)")
    # Registry order, so the remedies bar and run labels read the same for every preset.
    return {name: values[name] for name in REMEDIES if name in values}
