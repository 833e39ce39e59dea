"""The dashboard's log file: tracebacks of training faults go here, never on the screen."""

from __future__ import annotations

import logging
import os
from pathlib import Path


def log_path() -> Path:
    """``$VGP_TUI_LOG``, else ``$XDG_STATE_HOME/vgp-tui/vgp-tui.log`` (``~/.local/state`` by default)."""
    env = os.environ.get("VGP_TUI_LOG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "vgp-tui" / "vgp-tui.log"


def configure_logging() -> None:
    """Send the ``vgp_tui`` logger to the log file (or nowhere, when the folder cannot be written)."""
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("vgp_tui")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
