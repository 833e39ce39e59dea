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
