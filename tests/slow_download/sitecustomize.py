"""Loaded at start-up by every Python process of a test's ``vgp-tui serve`` (the test puts this folder
on PYTHONPATH): a tab's app answers the server's first request for a chunk of a download
``VGP_TUI_TEST_CHUNK_DELAY`` seconds late, as a tab's process on a loaded machine does."""

import os
import time

_DELAY = float(os.environ.get("VGP_TUI_TEST_CHUNK_DELAY") or 0)

if _DELAY:
    from textual.drivers import web_driver

    _answer = web_driver.WebDriver.on_meta

    def _late_answer(self, packet_type, payload):  # type: ignore[no-untyped-def]
        if packet_type == "deliver_chunk_request" and not getattr(self, "_answered_late", False):
            self._answered_late = True
            time.sleep(_DELAY)  # (the driver's input thread: the app itself goes on drawing)
        return _answer(self, packet_type, payload)

    web_driver.WebDriver.on_meta = _late_answer
