"""The one exception type for user mistakes.

Anything the user can fix (a bad preset file, an unknown remedy, a missing data set, a device that is
not there) raises :class:`UserError` with a single line that names the thing, what was wrong and what
is allowed. The command line prints that line and exits with status 2; the dashboard shows it as a
notification. Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake the user can fix; ``str(err)`` is the whole message, one line."""

    exit_code = 2


class DataMissing(UserError):
    """A preset's real data set is not at hand, and the labelled synthetic stand-in would do instead.

    ``str(err)`` is the command line's message (how to get the data, or ``--synthetic``); ``dataset``
    names the data set and ``why`` says in a few words where it was looked for, so that the dashboard
    can offer the stand-in in its own words: it has no command line to pass ``--synthetic`` on."""

    def __init__(self, message: str, *, dataset: str, why: str) -> None:
        super().__init__(message)
        self.dataset = dataset
        self.why = why


def closest(word: str, choices: Iterable[str]) -> str:
    """A ", did you mean 'x'?" suffix when one of ``choices`` is close to ``word``, else ""."""
    matches = difflib.get_close_matches(word, list(choices), n=2, cutoff=0.6)
    if not matches:
        return ""
    # A second name only when it is about as close as the best: "dpeth" is depth, not "depth or width".
    best = difflib.SequenceMatcher(None, word, matches[0]).ratio()
    matches = [m for m in matches if difflib.SequenceMatcher(None, word, m).ratio() >= best - 0.1]
    return "; did you mean " + " or ".join(f"'{m}'" for m in matches) + "?"
