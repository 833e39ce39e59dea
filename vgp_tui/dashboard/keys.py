"""Every key of the dashboard. The remedy keys come from the remedy registry, so a new remedy needs
no edit here; the others are listed once, in the order the footer shows them."""

from __future__ import annotations

from collections.abc import Mapping

from textual.binding import Binding

from vgp_tui.dashboard.layer_actions import PAGE
from vgp_tui.engine.remedies import REMEDIES, Remedy

KEY_NAMES = {"+": "plus", "-": "minus", "[": "left_square_bracket", "]": "right_square_bracket",
             "<": "less_than_sign", ">": "greater_than_sign", "?": "question_mark"}
"""Textual's names for the keys a remedy may use."""

LIVE_ONLY = frozenset({"toggle_remedy", "scale_remedy", "apply_fix", "step_once", "restart", "pick_preset"})
"""Actions that change a run: offered live, refused (with a word why) in a replay."""
REPLAY_ONLY = frozenset({"seek", "speed", "replay_jump"})
"""Actions that move through a recording."""

BURST_QUIET_SECONDS = 0.05
"""Keys closer together than this are one burst (a key held down repeats every 30 ms or so): a burst
is answered once, by its last toast, and its remedy changes reach the session as one change. Textual
clears only the toasts already mounted, and in a terminal each key's toast was still mounting when the
next key cleared it (a held key stacked nine); 'a' pressed eleven times started eleven runs, whose
empty ghosts pushed the run to compare against out of the legend."""


def burst_quiet_seconds() -> float:
    """:data:`BURST_QUIET_SECONDS`, read at each key (a test sets it longer, for a loaded machine)."""
    return BURST_QUIET_SECONDS

FIX_KEYS = 9
"""Keys 1-9 apply the diagnosis line's numbered fixes (it offers fewer; a key it does not offer says so)."""


def key_name(key: str) -> str:
    return KEY_NAMES.get(key, key)


def remedy_bindings(registry: Mapping[str, Remedy] = REMEDIES) -> list[Binding]:
    """Each remedy's toggle key and scale keys. Hidden from the footer: the remedies bar shows them
    with their values; ``check_action`` disables those the preset does not take."""
    bindings = []
    for remedy in registry.values():
        if remedy.key:
            bindings.append(Binding(key_name(remedy.key), f"toggle_remedy('{remedy.name}')",
                                    f"{remedy.name}: next value", show=False))
        for key, factor in remedy.scale_keys:
            text = f"{remedy.name} ×{factor:g}" if factor >= 1 else f"{remedy.name} ÷{1 / factor:g}"
            # (the tooltip is the palette's title: "learning" found nothing where the keys say "lr")
            bindings.append(Binding(key_name(key), f"scale_remedy('{remedy.name}', {factor})", text, show=False,
                                    tooltip=f"{text}: {remedy.help.split(' (')[0]}"))
    return bindings


def fix_bindings() -> list[Binding]:
    return [Binding(str(n), f"apply_fix({n})", f"fix {n}", show=False) for n in range(1, FIX_KEYS + 1)]


def app_bindings(registry: Mapping[str, Remedy] = REMEDIES) -> list[Binding]:
    """All of them. Short descriptions, so that at 80 columns the footer still ends with "q quit";
    the help screen and the command palette show the tooltip where there is one."""
    return [
        *remedy_bindings(registry),
        *fix_bindings(),
        Binding("space", "toggle_pause", "pause", tooltip="pause/resume"),
        Binding("n", "step_once", "step", tooltip="one step while paused"),
        Binding("left", "seek(-10)", "-10 s", tooltip="back 10 s"),
        Binding("right", "seek(10)", "+10 s", tooltip="on 10 s"),
        Binding("less_than_sign", "speed(0.5)", "slower"),
        Binding("greater_than_sign", "speed(2)", "faster"),
        Binding("home", "replay_jump('start')", "start", show=False, tooltip="back to the first record"),
        Binding("end", "replay_jump('end')", "end", show=False, tooltip="to the last record (live, with --follow)"),
        Binding("r", "restart", "restart"),
        Binding("p", "pick_preset", "preset"),
        Binding("y", "toggle_log", "log", tooltip="log/lin loss axis"),
        Binding("h", "cycle_ghosts", "ghosts", tooltip="ghosts: the earlier runs on the loss plot, all, the last or none"),
        Binding("z", "layer_view('every')", "layers", show=False,
                tooltip="one row per layer (scroll with ↑ ↓), or every layer fitted, merged by block"),
        Binding("w", "layer_view('worst')", "worst", show=False, tooltip="layers from the least healthy first"),
        Binding("up", "scroll_layers(-1)", "layers ↑", show=False),
        Binding("down", "scroll_layers(1)", "layers ↓", show=False),
        Binding("pageup", f"scroll_layers({-PAGE})", "layers page ↑", show=False),
        Binding("pagedown", f"scroll_layers({PAGE})", "layers page ↓", show=False),
        Binding("question_mark", "help", "help"),
        Binding("ctrl+s", "screenshot", "screenshot", show=False),
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]


def action_name(binding: Binding) -> tuple[str, tuple[str, ...]]:
    """``("scale_remedy", ("lr", "2.0"))`` for ``scale_remedy('lr', 2.0)``."""
    action, _, rest = binding.action.partition("(")
    return action, tuple(p.strip(" '\")") for p in rest.split(",")) if rest else ()
