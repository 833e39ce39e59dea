"""The one-way road from the training thread to the screen.

The session's sink puts event lists on a queue (never blocks, never waits for the UI); the app's
timer drains it on the UI thread. A :class:`NewSession` marker in the same queue tells the app that
the events after it belong to another preset, so it can start a fresh History at exactly that point.
"""

from __future__ import annotations

import queue
from typing import Any

from vgp_tui.source import Item, NewSession, Notice

__all__ = ["EventFeed", "Item", "NewSession", "Notice"]


class EventFeed:
    """A thread-safe queue of events; ``put`` is a session sink, ``drain`` runs on the UI thread."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[list[Item]] = queue.SimpleQueue()

    def put(self, items: list[Any]) -> None:
        self._queue.put(items)

    __call__ = put

    def drain(self, limit: int = 100_000) -> list[Item]:
        """Everything queued so far (up to ``limit`` items, the rest stays for the next tick)."""
        out: list[Item] = []
        while len(out) < limit:
            try:
                out.extend(self._queue.get_nowait())
            except queue.Empty:
                break
        return out
