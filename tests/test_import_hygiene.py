"""The engine, models and data code run without any UI: importing them must not import Textual.

And the command line's fast paths (--help, presets) must not import torch.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEADLESS_MODULES = [
    "vgp_tui.engine.session",
    "vgp_tui.engine.trainer",
    "vgp_tui.engine.probe",
    "vgp_tui.engine.history",
    "vgp_tui.engine.recording",
    "vgp_tui.models.mlp",
    "vgp_tui.models.sequence",
    "vgp_tui.models.resnet",
    "vgp_tui.models.sentiment",
    "vgp_tui.data.loading",
    "vgp_tui.data.synthetic",
    "vgp_tui.data.cifar",
    "vgp_tui.data.imdb",
    "vgp_tui.summary",
    "vgp_tui.diagnosis",
]


def _modules_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


@pytest.mark.parametrize("module", HEADLESS_MODULES)
def test_headless_code_does_not_import_textual(module: str) -> None:
    loaded = _modules_after(f"import {module}")
    assert module in loaded
    assert not {m for m in loaded if m == "textual" or m.startswith("textual.")}
    assert "rich" not in loaded


def test_preset_listing_path_does_not_import_torch() -> None:
    loaded = _modules_after("import vgp_tui.cli, vgp_tui.scenario as s; [s.load_preset(n) for n in s.builtin_names()]")
    assert "torch" not in loaded
    assert "textual" not in loaded


def test_import_vgp_tui_imports_no_training_framework() -> None:
    """The integrations are optional extras: importing vgp-tui (or the integrations package) loads none."""
    code = (
        "import sys, vgp_tui, vgp_tui.integrations; from vgp_tui import Recorder, GradientProbe;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('transformers', 'accelerate', 'huggingface_hub', 'lightning', 'pytorch_lightning', 'lightning_fabric'));"
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("framework", "module", "extra"), [
    ("transformers", "vgp_tui.integrations.huggingface", "huggingface"),
    ("lightning", "vgp_tui.integrations.lightning", "lightning"),
])
def test_without_its_framework_an_integration_names_the_extra(framework: str, module: str, extra: str) -> None:
    code = f"import sys; sys.modules['{framework}'] = None; import {module}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"pip install 'vgp-tui[{extra}]'" in done.stderr


def test_no_import_cycle_among_the_packages_modules() -> None:
    """Module-level and function-level imports alike: a cycle hidden inside a function is still one."""
    import ast
    from pathlib import Path

    root = Path(__file__).parent.parent
    modules: dict[str, Path] = {}
    for folder, package in ((root / "vgp_tui", "vgp_tui"), (root / "models", "vgp_tui.models")):
        for path in folder.rglob("*.py"):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            modules[".".join([package, *parts])] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                graph[name] |= {t for t in (target, *(f"{target}.{a.name}" for a in node.names)) if t in modules}
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name in modules}
        graph[name].discard(name)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    cycles = sorted(name for name in modules if reaches(name, name, set()))
    assert not cycles, cycles
