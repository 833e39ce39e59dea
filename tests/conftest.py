"""Shared test set-up: user folders (presets, data cache, log) point into a temporary folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """User presets, caches and logs go to a temporary folder, never the developer's home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("VGP_TUI_PRESETS", str(home / "presets"))
    monkeypatch.setenv("VGP_TUI_DATA", str(home / "data"))
    monkeypatch.setenv("VGP_TUI_LOG", str(home / "vgp-tui.log"))
