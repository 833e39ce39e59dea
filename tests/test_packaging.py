"""The package is the product: the wheel, installed as `pip install .` or pipx would, runs the whole app.

The ``installed`` fixture (tests/conftest.py, shared with the end-to-end test) builds the wheel from a
copy of the sources and installs it, not editable, into a fresh virtual environment that borrows
this one's dependencies but never runs this checkout's editable import hook. Every command then runs
from a folder outside the checkout.
"""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from pathlib import Path

from conftest import MAPPED, ROOT, Installed  # the shared wheel fixture and the folders it ships

# What ships from the MAPPED folders.
SHIPPED = (".py", ".tcss", ".toml")
ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[@-Z\\-_]")


def _shipped_sources() -> list[str]:
    """Paths, as in the wheel, of the tracked files under vgp_tui/, models/ and presets/ that must ship."""
    listed = subprocess.run(["git", "ls-files", "-z", "--", *MAPPED], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode == 0 and listed.stdout:
        files = [Path(name) for name in listed.stdout.split("\0") if name]
    else:  # not a git checkout (an unpacked sdist): every file on disk
        files = [p.relative_to(ROOT) for folder in MAPPED for p in (ROOT / folder).rglob("*") if p.is_file()]
    shipped = []
    for path in files:
        if path.suffix in SHIPPED and "__pycache__" not in path.parts and (ROOT / path).exists():
            top, *rest = path.parts
            shipped.append("/".join([MAPPED[top], *rest]))
    return sorted(shipped)


def test_the_wheel_holds_every_module_and_data_file(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    sources = _shipped_sources()
    assert "vgp_tui/dashboard/app.tcss" in sources and "vgp_tui/presets/deep-sigmoid.toml" in sources
    missing = [path for path in sources if path not in names]
    assert not missing, f"not in the wheel (add the package to pyproject.toml's packages): {missing}"
    # models/ and presets/ install inside vgp_tui, never as a bare top-level `models` package.
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"vgp_tui"}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    entry_points = zipfile.ZipFile(installed.wheel).read(
        next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    ).decode()
    assert "vgp-tui = vgp_tui.cli:main" in entry_points


def test_every_module_imports_from_the_installed_copy(installed: Installed) -> None:
    modules = sorted(
        name[: -len(".py")].replace("/", ".").removesuffix(".__init__")
        for name in zipfile.ZipFile(installed.wheel).namelist()
        if name.endswith(".py") and not name.endswith("__main__.py")  # importing __main__ runs the app
    )
    script = (
        "import importlib, json, sys\n"
        "import models\n"
        "found = {name: importlib.import_module(name).__file__ for name in json.loads(sys.argv[1])}\n"
        "from importlib.resources import files\n"
        "found['app.tcss'] = str(files('vgp_tui.dashboard') / 'app.tcss')\n"
        "found['user models'] = models.WHO\n"
        "print(json.dumps(found))\n"
    )
    found = json.loads(installed.run(installed.python, "-c", script, json.dumps(modules)).stdout)
    assert found.pop("user models") == "the user"  # a user's models.py is not shadowed
    assert "vgp_tui.dashboard.app" in found and "vgp_tui.models.mlp" in found
    elsewhere = {name: path for name, path in found.items() if not path.startswith(str(installed.site_packages))}
    assert not elsewhere, f"imported from outside the installed wheel: {elsewhere}"
    assert Path(found["app.tcss"]).is_file()


def test_headless_run_through_the_console_script(installed: Installed) -> None:
    done = installed.run(installed.python.parent / "vgp-tui", "run", "--preset", "deep-sigmoid", "--steps", "5")
    assert "ratio first/last" in done.stdout and "5 steps" in done.stdout


def test_dashboard_frame_from_a_recording(installed: Installed) -> None:
    installed.run(installed.python, "-m", "vgp_tui", "replay", "run.jsonl", "--screenshot-at", "20", "-o", "shot.svg")
    svg = (installed.work / "shot.svg").read_text()
    assert "heatmap" in svg and "deep-sigmoid" in svg


def test_screencast_from_a_recording(installed: Installed) -> None:
    installed.run(
        installed.python, "-m", "vgp_tui", "cast", "run.jsonl", "-o", "demo.cast", "--size", "100x30", "--speed", "50"
    )
    lines = (installed.work / "demo.cast").read_text().splitlines()
    assert json.loads(lines[0])["version"] == 2
    text = ANSI.sub("", "".join(json.loads(line)[2] for line in lines[1:]))
    assert "Gradient heatmap" in text and "deep-sigmoid" in text
