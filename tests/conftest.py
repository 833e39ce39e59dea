"""Shared test set-up: user folders point into a temporary folder; a listener for notifications."""

from __future__ import annotations

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
