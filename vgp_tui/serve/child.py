"""What each browser tab runs under ``vgp-tui serve``: the ordinary command line (``replay --follow``
or the live dashboard), drawn by Textual's web driver instead of a terminal.

``python -m vgp_tui.serve.child ARGS`` is ``vgp-tui ARGS`` with one difference: the dashboard's
refusal to draw without a terminal is lifted. That check stops ``ssh host vgp-tui`` (no -t) from
writing escape codes into a pipe no one reads; here stdin and stdout are pipes on purpose, carrying
textual-serve's packets to a browser where someone is watching.
"""

from __future__ import annotations

import os
import sys

# The driver textual-serve sets for the processes it starts (textual_serve.app_service).
WEB_DRIVER = "textual.drivers.web_driver:WebDriver"


def main(argv: list[str] | None = None) -> None:
    import vgp_tui.dashboard as dashboard
    from vgp_tui.cli import main as cli_main

    if os.environ.get("TEXTUAL_DRIVER") == WEB_DRIVER:  # run by hand, it stays the plain command line
        dashboard.require_terminal = _browser_is_the_terminal
    cli_main(sys.argv[1:] if argv is None else argv)


def _browser_is_the_terminal(what: str = "the dashboard") -> None:
    """In place of :func:`vgp_tui.dashboard.require_terminal`: the browser tab is the terminal."""


if __name__ == "__main__":
    main()
