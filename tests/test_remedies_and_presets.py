"""The remedy registry and preset validation: every mistake is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from vgp_tui.engine.remedies import REMEDIES, apply_overrides, get_remedy, parse_assignment
from vgp_tui.errors import UserError
from vgp_tui.scenario import builtin_names, load_preset, parse_preset

GOOD = Path(__file__).parent.parent / "presets" / "deep-sigmoid.toml"


def test_registry_keys_are_unique_and_every_builtin_preset_loads() -> None:
    keys = [r.key for r in REMEDIES.values()]
    assert len(keys) == len(set(keys))
    assert builtin_names() == ["deep-relu", "deep-sigmoid", "resnet-cifar10", "rnn-clipping", "sentiment-lstm"]
    for name in builtin_names():
        scenario = load_preset(name)
        assert scenario.name == name
        assert scenario.expect and scenario.summary
        for remedy in scenario.remedies:
            assert scenario.family in REMEDIES[remedy].families


def test_presets_cite_their_papers() -> None:
    cites = {
        "deep-sigmoid": "Glorot & Bengio (2010)",
        "deep-relu": "He et al. (2015)",
        "rnn-clipping": "Pascanu",
        "sentiment-lstm": "Hochreiter & Schmidhuber (1997)",
        "resnet-cifar10": "He et al. (2016)",
    }
    for name, cite in cites.items():
        assert cite in load_preset(name).expect


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("activation", "ReLU", "relu"),
        ("batchnorm", "on", True),
        ("batchnorm", False, False),
        ("clip", "off", None),
        ("clip", "0", None),
        ("clip", "0.5", 0.5),
        ("lr", 1, 1.0),
        ("accumulate", "4", 4),
    ],
)
def test_parse_values(name: str, raw: object, expected: object) -> None:
    assert REMEDIES[name].parse(raw) == expected


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("activation", "relu6", "allowed: sigmoid, tanh, relu"),
        ("activation", "rellu", "did you mean 'relu'"),
        ("lr", "-1", "allowed: a number > 0"),
        ("lr", "nan", "allowed"),
        ("clip", "-1", "allowed: off or a number > 0"),
        ("accumulate", "2.5", "whole number"),
        ("accumulate", "0", "whole number"),
        ("batchnorm", "maybe", "on or off"),
    ],
)
def test_bad_values(name: str, raw: object, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        REMEDIES[name].parse(raw)
    assert "\n" not in str(info.value)


def test_key_actions() -> None:
    assert REMEDIES["activation"].next_value("sigmoid") == "tanh"
    assert REMEDIES["activation"].next_value("relu") == "sigmoid"
    assert REMEDIES["batchnorm"].next_value(False) is True
    assert REMEDIES["clip"].next_value(None) == 1.0
    assert REMEDIES["clip"].next_value(2.0) is None
    assert REMEDIES["accumulate"].next_value(8) == 16
    assert REMEDIES["accumulate"].next_value(16) == 1
    assert REMEDIES["clip"].scaled(1.0, 0.5) == 0.5
    assert REMEDIES["lr"].scaled(0.1, 2) == 0.2
    clip = 1.0
    for _ in range(10):  # the powers of two that ] makes stay whole (.3g made 1024 into 1020)
        clip = REMEDIES["clip"].scaled(clip, 2.0)
    assert clip == 1024.0 and REMEDIES["clip"].format(clip) == "1024"
    assert REMEDIES["lr"].scaled(0.1 * 3, 1.0) == 0.3  # (float noise rounded away)
    for _ in range(1100):  # ] held down: it stops at its largest, never reaching inf (doubled past 1e308)
        clip = REMEDIES["clip"].scaled(clip, 2.0)
    assert clip == 1e12
    with pytest.raises(UserError, match="allowed: off or a number > 0 and <= 1e"):
        REMEDIES["clip"].parse("1e13")


def test_unknown_remedy_suggests() -> None:
    with pytest.raises(UserError, match="did you mean 'activation'"):
        get_remedy("activaton")


def test_overrides_only_for_remedies_that_apply() -> None:
    scenario = load_preset("rnn-clipping")
    with pytest.raises(UserError, match="'activation' does not apply to preset 'rnn-clipping'"):
        apply_overrides(scenario.remedies, {"activation": "relu"}, scenario.name)
    assert apply_overrides(scenario.remedies, {"cell": "lstm"}, scenario.name)["cell"] == "lstm"


@pytest.mark.parametrize("text", ["activation", "=relu", "activation="])
def test_bad_assignment(text: str) -> None:
    with pytest.raises(UserError, match="NAME=VALUE"):
        parse_assignment(text)


def _edit(old: str, new: str) -> str:
    text = GOOD.read_text()
    assert old in text
    return text.replace(old, new)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("this is = = not toml", "not valid TOML"),
        (_edit("depth = 20", "depth = 0"), r"\[model\] key 'depth' must be from 1 to 500, got 0"),
        (_edit("depth = 20", 'depth = "deep"'), r"\[model\] key 'depth' must be a whole number"),
        (_edit("depth = 20", "dept = 20"), r"\[model\] unknown key 'dept'.*did you mean 'depth'"),
        (_edit("depth = 20", "dpeth = 20"), r"did you mean 'depth'\?$"),  # not "depth or width"
        (_edit("lr = 0.1", "lr = -0.1"), "remedy 'lr' cannot be -0.1"),
        (_edit("batch_size = 128", "batch_size = 100000"), "batch_size 100000 is larger than the data"),
        (_edit('family = "mlp"', 'family = "transformer"'), "key 'family' must be one of mlp, sequence, resnet, sentiment"),
        (_edit('kind = "spirals"', 'kind = "mnist"'), "key 'kind' must be one of"),
        (_edit('kind = "spirals"', 'kind = "adding"').replace("noise = 0.1", "length = 5").replace("classes = 3\n", ""),
         r"a \[model\] family 'mlp' cannot take \[data\] kind 'adding': it trains on 'spirals'"),
        (_edit('activation = "sigmoid"', 'cell = "lstm"'), "'cell' does not apply to a mlp model"),
        (_edit('activation = "sigmoid"', 'actvation = "relu"'), "unknown remedy 'actvation'"),
        (_edit("seed = 0", "seed = -1"), "key 'seed' must be a whole number from 0 to 4294967295"),
        (_edit("noise = 0.1", "noise = inf"), "key 'noise' must be a number"),
        (_edit("seed = 0", "colour = 1"), "unknown key 'colour'"),
        (_edit('lr = 0.1', ''), "missing 'lr'"),
    ],
)
def test_bad_preset_files(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        parse_preset(text, "my.toml")
    assert str(info.value).startswith("my.toml: ")
    assert "\n" not in str(info.value)


def test_unknown_preset_name_suggests() -> None:
    with pytest.raises(UserError, match="did you mean 'deep-sigmoid'"):
        load_preset("deep-sigmod")


def test_user_preset_by_path_and_from_user_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "shallow.toml"
    mine.write_text(_edit("depth = 20", "depth = 3").replace('name = "deep-sigmoid"', 'name = "shallow"'))
    assert load_preset(str(mine)).model.depth == 3
    monkeypatch.setenv("VGP_TUI_PRESETS", str(tmp_path))
    assert load_preset("shallow").model.depth == 3
    from vgp_tui.scenario import available_names

    assert "shallow" in available_names()
    with pytest.raises(UserError, match="does not exist"):
        load_preset(str(tmp_path / "missing.toml"))


def test_a_preset_is_named_after_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vgp_tui.scenario import available_names

    monkeypatch.setenv("VGP_TUI_PRESETS", str(tmp_path))
    (tmp_path / "mismatch.toml").write_text('name = "other"\n' + GOOD.read_text())
    (tmp_path / "agrees.toml").write_text('name = "agrees"\n' + GOOD.read_text())
    (tmp_path / "nameless.toml").write_text(GOOD.read_text())
    assert available_names()[-3:] == ["agrees", "mismatch", "nameless"]
    with pytest.raises(UserError) as info:
        load_preset("mismatch")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'mismatch.toml'}: key 'name' is 'other'")
    assert "named after its file ('mismatch')" in message and "\n" not in message
    with pytest.raises(UserError, match="unknown preset 'other'"):
        load_preset("other")
    with pytest.raises(UserError, match="key 'name' is 'other'"):
        load_preset(str(tmp_path / "mismatch.toml"))  # the same rule for a path
    assert load_preset("agrees").name == "agrees"
    assert load_preset("nameless").name == "nameless"
    assert load_preset(str(tmp_path / "nameless.toml")).name == "nameless"


def test_builtin_presets_carry_no_name_line_so_a_copy_keeps_working(tmp_path: Path) -> None:
    # Copying a built-in preset under a new name is the documented way to make one's own.
    for name in builtin_names():
        copy = tmp_path / f"my-{name}.toml"
        copy.write_text((GOOD.parent / f"{name}.toml").read_text())
        assert load_preset(str(copy)).name == f"my-{name}"


def test_user_preset_that_shadows_a_builtin_one_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builtin = load_preset("deep-sigmoid")
    assert (builtin.origin, builtin.shadows_builtin, builtin.origin_label) == ("built-in", False, "built-in")
    monkeypatch.setenv("VGP_TUI_PRESETS", str(tmp_path))
    (tmp_path / "deep-sigmoid.toml").write_text(_edit("depth = 20", "depth = 3"))
    (tmp_path / "mine.toml").write_text(GOOD.read_text())
    shadow = load_preset("deep-sigmoid")
    assert shadow.model.depth == 3 and shadow.source == str(tmp_path / "deep-sigmoid.toml")
    assert (shadow.origin, shadow.shadows_builtin, shadow.origin_label) == ("user", True, "user, shadows built-in")
    mine = load_preset("mine")
    assert (mine.origin, mine.shadows_builtin) == ("user", False)
    from vgp_tui.scenario import available_names

    assert available_names().count("deep-sigmoid") == 1


async def test_a_new_remedy_is_one_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake remedy added to REMEDIES alone shows in the keys, the bar, the help, the diagnosis's
    wording and preset validation, with no other edit."""
    from pathlib import Path

    from vgp_tui.dashboard.app import VgpApp
    from vgp_tui.dashboard.keys import app_bindings
    from vgp_tui.diagnosis import _fix
    from vgp_tui.engine.remedies import REMEDIES, Remedy, structural_for
    from vgp_tui.engine.session import Session
    from vgp_tui.errors import UserError
    from vgp_tui.scenario import parse_preset

    fake = Remedy("dropout", "d", "structural", "switch", frozenset({"mlp"}), "drop units at random")
    monkeypatch.setitem(REMEDIES, "dropout", fake)

    text = (Path(__file__).parent.parent / "presets" / "deep-sigmoid.toml").read_text()
    scenario = parse_preset(text.replace('optimizer = "sgd"', 'optimizer = "sgd"\ndropout = true'), "test")
    assert scenario.remedies["dropout"] is True  # preset validation takes it ...
    with pytest.raises(UserError, match="remedy 'dropout' cannot be 3; allowed: on or off"):
        parse_preset(text.replace('optimizer = "sgd"', 'optimizer = "sgd"\ndropout = 3'), "test")  # ... and checks it
    assert "dropout" in structural_for("mlp")  # the model builder is handed it

    bindings = app_bindings()
    assert any(b.key == "d" and b.action == "toggle_remedy('dropout')" for b in bindings)
    assert _fix({"dropout": False}, dropout=True).label == "dropout on"  # how a fix would name it

    # The app's BINDINGS are built from the registry when its class is made: a class made now has the new one.
    app_class = type("AppWithDropout", (VgpApp,), {"BINDINGS": bindings})
    app = app_class(Session(scenario, device="cpu"), train=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        bar = str(app.query_one("#remedies").render())
        assert " d " in bar and "dropout on" in bar.replace("  ", " ")
        await pilot.press("question_mark")
        await pilot.pause()
        assert ("d", "dropout: next value") in app.screen.keys
        await pilot.press("escape")
        await pilot.press("d")
        await pilot.pause()
        assert app.remedies["dropout"] is False  # the key does what the registry says


def test_a_preset_path_without_its_extension_is_pointed_at_the_file(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(GOOD.read_text())
    with pytest.raises(UserError, match=r"does not exist \(did you mean .*mine\.toml\?\)$"):
        load_preset(str(tmp_path / "mine"))
