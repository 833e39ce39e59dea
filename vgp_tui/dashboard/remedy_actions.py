"""The keys that change remedies: a remedy's own keys and the diagnosis line's numbered fixes.

A mixin of the app (Textual looks ``action_*`` up on it); it sends commands to the session and says
in a toast what the session will do with them.
"""

from __future__ import annotations

from typing import Any

from vgp_tui.dashboard.diagnosis_line import DiagnosisLine
from vgp_tui.dashboard.keys import burst_quiet_seconds
from vgp_tui.dashboard.remedies_bar import RemediesBar
from vgp_tui.engine.commands import NoteKey, SetRemedies
from vgp_tui.engine.history import History
from vgp_tui.engine.remedies import REMEDIES, RemedyValue


class RemedyActions:
    remedies: dict[str, RemedyValue]
    history: History
    only_toast: Any
    query_one: Any
    set_timer: Any
    session: Any
    state_for_keys: Any
    _send: Any
    _unsent: dict[str, tuple[RemedyValue, str, RemedyValue]]
    """Remedy changes of the keys' current burst, by name: the value, the key that set it, and the
    value before the burst (a burst that comes round to it changes nothing)."""
    _unsent_timer: Any

    def action_toggle_remedy(self, name: str) -> None:
        remedy = REMEDIES[name]
        value = remedy.next_value(self.remedies[name])
        self._set_remedy(name, value)

    def action_scale_remedy(self, name: str, factor: float) -> None:
        remedy = REMEDIES[name]
        current = self.remedies.get(name)
        if current is None:
            self.only_toast(f"{name} is off: press {remedy.key or remedy.key_label} to turn it on first", severity="warning")
            return
        key = next((k for k, f in remedy.scale_keys if f == factor), remedy.key)
        value = remedy.scaled(current, factor)
        if value == current:  # at its limit: no change to send, mark or announce as one
            limit = "largest" if factor > 1 else "smallest"
            self.only_toast(f"{name} is at its {limit}, {remedy.format(current)}", severity="warning", timeout=3)
            return
        self._set_remedy(name, value, key)

    def _set_remedy(self, name: str, value: RemedyValue, key: str | None = None) -> None:
        remedy = REMEDIES[name]
        before = self._unsent[name][2] if name in self._unsent else self.remedies[name]
        self.remedies[name] = value  # the bar and the next key read it at once; the session at the burst's end
        self._unsent[name] = (value, key or remedy.key, before)
        if self._unsent_timer is not None:
            self._unsent_timer.stop()
        self._unsent_timer = self.set_timer(burst_quiet_seconds(), self.send_unsent_remedies)
        self.query_one(RemediesBar).show(self.remedies)
        if value == before and not any(v != b for v, _, b in self._unsent.values()):
            # (a toggle pressed round to where it was: it used to announce a fresh run that never came)
            self.only_toast(f"{name} → {remedy.format(value)}: as it was, nothing changes")
            return
        self.only_toast(f"{name} → {remedy.format(value)}: {self._when_it_applies(self._fresh_run())}")

    def _fresh_run(self) -> bool:
        """Whether the burst's changes, once sent, start a fresh run (any structural one does)."""
        return any(REMEDIES[name].structural for name, (value, _, before) in self._unsent.items() if value != before)

    def action_apply_fix(self, number: int) -> None:
        """Apply the diagnosis line's fix ``number`` as one change (one fresh run at most)."""
        shown = self.query_one(DiagnosisLine).shown  # what is on screen is what the keys apply
        fixes = shown.fixes if shown is not None else ()
        if not 1 <= number <= len(fixes):
            offered = f"it offers 1-{len(fixes)}" if fixes else "it offers none now"
            self.only_toast(f"no fix [{number}] in the diagnosis line: {offered}", severity="warning", timeout=4)
            return
        fix = fixes[number - 1]
        changes = {name: value for name, value in fix.changes if self.remedies.get(name) != value}
        if not changes:
            self.only_toast(f"{fix.label} is already set", timeout=4)
            return
        self.remedies.update(changes)
        self._send(SetRemedies(tuple(changes.items()), fix.fresh_run), str(number), f"fix={fix.label}")
        self.query_one(RemediesBar).show(self.remedies)
        fresh = fix.fresh_run or any(REMEDIES[name].structural for name in changes)
        self.only_toast(f"{fix.label}: {self._when_it_applies(fresh)}")

    def send_unsent_remedies(self) -> None:
        """Send the burst's remedy changes as one (called before any other command, to keep the order).
        A value that came round to where it was is not sent: nothing changed."""
        if self._unsent_timer is not None:
            self._unsent_timer.stop()
            self._unsent_timer = None
        unsent, self._unsent = self._unsent, {}
        changed = {name: (value, key) for name, (value, key, before) in unsent.items() if value != before}
        if not changed:
            return
        for name, (value, key) in changed.items():  # each remedy's last key, for the recording's key log
            self.session.send(NoteKey(key, f"{name}={REMEDIES[name].format(value)}"))
        self.session.send(SetRemedies(tuple((name, value) for name, (value, _) in changed.items())))

    def drop_unsent_remedies(self) -> None:
        """Forget the burst's changes: another preset's session took over, with remedies of its own."""
        if self._unsent_timer is not None:
            self._unsent_timer.stop()
            self._unsent_timer = None
        self._unsent = {}

    def _when_it_applies(self, fresh_run: bool) -> str:
        """What the session will do with a remedy change, in the words of the toast."""
        state = self.state_for_keys()
        if fresh_run:
            resumes = ", and trains (it was paused)" if state == "paused" else ""
            return f"a fresh run starts from the same seed{resumes}; the last one stays as a ghost"
        if state in ("diverged", "error"):
            return "a fresh run starts with it (the diverged weights cannot be rescued)"
        if state == "finished":
            return "it applies to the next run (space starts one)"
        if state == "paused":
            return "applies at the next step (space resumes, n steps once)"
        return "applies at the next step"
