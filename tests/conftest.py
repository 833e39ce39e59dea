"""Shared test set-up: user folders point into a temporary folder; a listener for notifications;
the built wheel, installed into a fresh virtual environment (built once per test session)."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """User presets, caches and logs go to a temporary folder, never the developer's home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("VGP_TUI_PRESETS", str(home / "presets"))
    monkeypatch.setenv("VGP_TUI_DATA", str(home / "data"))
    monkeypatch.setenv("VGP_TUI_LOG", str(home / "vgp-tui.log"))


@pytest.fixture
def listen() -> Any:
    """``listen(app)`` returns a list that collects every notification ``app`` shows. Call it before
    the app starts: on a loaded machine the first timer tick, which may already notify (a recorded
    key, a truncated file, a failed recording), can come before ``run_test`` hands over the pilot."""

    def start(app: Any) -> list[str]:
        shown: list[str] = []
        real_notify = app.notify
        app.notify = lambda message, *a, **k: (shown.append(str(message)), real_notify(message, *a, **k))
        return shown

    return start


ROOT = Path(__file__).resolve().parent.parent
# Where each source folder goes in the wheel (pyproject.toml's package-dir).
MAPPED = {"vgp_tui": "vgp_tui", "models": "vgp_tui/models", "presets": "vgp_tui/presets"}


@dataclass
class Installed:
    wheel: Path
    python: Path  # the fresh environment's interpreter
    site_packages: Path
    work: Path  # a folder outside the checkout, the current directory of every command
    env: dict[str, str]

    @property
    def script(self) -> Path:
        """The installed ``vgp-tui`` console script."""
        return self.python.parent / ("vgp-tui.exe" if os.name == "nt" else "vgp-tui")

    def run(self, *argv: str | Path, timeout: float = 180, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(a) for a in argv], cwd=cwd or self.work, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"{' '.join(map(str, argv))} exited {done.returncode}:\n{done.stderr[-3000:]}"
        return done


def _checked(*argv: str | Path) -> str:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(map(str, argv))} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel, built from a copy of the sources and installed (not editable) into a fresh venv.

    Session-scoped: building and installing takes a while, and the packaging and end-to-end tests
    share one build. Nothing is written into the checkout, and no stale build/ folder can leak in.
    The environment borrows this one's dependencies (torch, Textual, ...) as plain path entries, so
    this checkout's editable install, whose import hook would serve any vgp_tui submodule missing
    from the wheel straight from the checkout, never runs there.
    """
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "source"
    source.mkdir()
    for entry in ROOT.iterdir():  # the build's own files (pyproject.toml, README.md, ...) and the packages
        if entry.is_file() and entry.suffix != ".whl":
            shutil.copy2(entry, source)
    for folder in MAPPED:
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp / "dist"
    _checked(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", source, "-w", dist)
    (wheel,) = dist.glob("vgp_tui-*.whl")

    env_dir = tmp / "env"
    venv.create(env_dir, with_pip=False, symlinks=os.name != "nt")
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site_packages = Path(_checked(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    # Plain path lines: this environment's packages become importable without running its .pth
    # files, among them the editable install's import hook.
    borrowed = dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    if site.ENABLE_USER_SITE:
        borrowed[site.getusersitepackages()] = None
    (site_packages / "borrowed-dependencies.pth").write_text("".join(f"{p}\n" for p in borrowed))
    _checked(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel)

    work = tmp / "elsewhere"
    work.mkdir()
    (work / "models.py").write_text("WHO = 'the user'\n")  # many ML projects have one
    shutil.copy(ROOT / "tests" / "fixtures" / "deep-sigmoid.jsonl", work / "run.jsonl")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    env.update(
        PATH=f"{python.parent}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(env_dir),
        HOME=str(tmp / "home"),  # the app's log and caches stay out of the user's home
        VGP_TUI_LOG=str(tmp / "vgp-tui.log"),
    )
    return Installed(wheel, python, site_packages, work, env)
