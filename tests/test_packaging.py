"""The wheel ships models/ and presets/ inside vgp_tui, never as a bare top-level `models`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _build_wheel(out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT), "-w", str(out)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("vgp_tui-*.whl")
    return wheel


def test_wheel_layout_and_running_beside_a_users_models_py(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names}
    assert "models" not in top_level and "presets" not in top_level
    assert "vgp_tui/models/mlp.py" in names
    assert "vgp_tui/presets/deep-sigmoid.toml" in names

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    project = tmp_path / "my_project"
    project.mkdir()
    (project / "models.py").write_text("WHO = 'the user'\n")
    script = (
        "import models, vgp_tui, vgp_tui.models, vgp_tui.scenario as s\n"
        "assert models.WHO == 'the user', models.__file__\n"
        f"assert vgp_tui.__file__.startswith({str(site)!r}), vgp_tui.__file__\n"
        "from vgp_tui.models import build_model\n"
        "from vgp_tui.models.configs import Task\n"
        "sc = s.load_preset('deep-sigmoid')\n"
        "net = build_model(sc.family, sc.model, sc.remedies, Task('classify', (2,), 3))\n"
        "print(type(net).__module__, len(s.builtin_names()))\n"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["vgp_tui.models.mlp", "5"]
