"""The per-layer summary that ``vgp-tui run`` prints at the end (as a table or as JSON).

It ends with the dashboard's diagnosis of the last steps (:func:`vgp_tui.diagnosis.diagnose`, the
same words), its numbered fixes written as the ``--remedy`` options that start the run with them.

The numbers describe the finite steps: when the run diverged, the medians, the loss at the end and
the total-norm range are taken over the steps before the divergence (one NaN step would make every
median NaN), and the divergence itself is reported apart: its step and what went non-finite first.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vgp_tui.diagnosis import diagnose
from vgp_tui.engine.events import encode_float
from vgp_tui.engine.history import History
from vgp_tui.engine.remedies import describe, format_value
from vgp_tui.text import plural, three_significant


def _num(x: float) -> float | str:
    """JSON-safe number, written as the recording format writes it (numpy scalars become floats)."""
    return encode_float(float(x))


def _divergence(divergence: Any) -> dict[str, Any] | None:
    """The divergence with its layers by name, as ``layers[].name`` gives them (not as its message
    names them, "layer 21 (head)": a script could not match the two)."""
    if divergence is None:
        return None
    layers, largest = divergence.layers, divergence.largest
    first = divergence.first_nonfinite
    return {
        "step": divergence.step,
        "loss": _num(divergence.loss),
        "total_norm": _num(divergence.total_norm),
        "first_nonfinite": first if first in (None, "loss") else layers[divergence.first_layer],
        "nonfinite_layers": [layers[i] for i in divergence.nonfinite],
        "largest_before": None if largest is None else {
            "step": largest[0], "layer": layers[largest[1]], "grad_norm": _num(largest[2])},
    }


def _diagnosis(history: History) -> dict[str, Any]:
    """The dashboard's verdict on the run's last steps, and its fixes with the remedy values each sets."""
    verdict = diagnose(history.current, history.state, history.message)
    return {
        "kind": verdict.kind,
        "verdict": verdict.verdict,
        "fixes": [{"label": fix.label, "remedies": dict(fix.changes)} for fix in verdict.fixes],
    }


def remedy_options(remedies: dict[str, Any]) -> str:
    """``--remedy activation=relu --remedy init=he``: the options that start a run with ``remedies``."""
    return " ".join(f"--remedy {name}={format_value(name, value)}" for name, value in remedies.items())


def summarize(history: History, session: Any, steps_asked: int | None = None, interrupted: bool = False) -> dict[str, Any]:
    """Numbers of the current run: per-layer median gradient norms, first/last ratio, loss start/end.

    ``interrupted``: a signal stopped it before ``steps_asked``; its state says so ("interrupted"), where
    the session, and the recording, call a run stopped with the steps it made "finished"."""
    run = history.current
    result: dict[str, Any] = {
        "preset": session.scenario.name,
        "preset_origin": getattr(session.scenario, "origin_label", "built-in"),
        "preset_source": session.scenario.source,
        "device": session.device,
        "data": session.data_label,
        "seed": session.seed,
        "steps_asked": steps_asked,
        "state": "interrupted" if interrupted and history.state == "finished" else history.state,
        "message": history.message,
        "diagnosis": _diagnosis(history),
    }
    if run is None or run.latest is None:
        result.update(run=run.run if run else 0, steps=0, finite_steps=0, diverged_at=None, divergence=None, layers=[])
        return result
    divergence = getattr(session, "divergence", None) if history.state == "diverged" else None
    # Steps before this one are finite: a run ends at its first non-finite step.
    end = divergence.step if divergence is not None else run.latest.step + 1
    overview = run.overview().before(end)
    result.update(
        run=run.run,
        steps=run.steps,
        finite_steps=int(min(run.steps, end - 1)),
        diverged_at=divergence.step if divergence is not None else None,
        divergence=_divergence(divergence),
        remedies=dict(run.remedies),
    )
    if not len(overview):
        result["layers"] = []
        return result
    mean, low, high = overview.mean, overview.low, overview.high
    layer_medians = np.median(mean.layers, axis=0)
    tail = run.recent(50, before=end).loss
    loss_end = float(np.mean(tail)) if len(tail) else float(mean.loss[-1])
    first, last = float(layer_medians[0]), float(layer_medians[-1])
    ratio = first / last if last != 0 else math.inf
    latest = run.latest
    result.update(
        loss={"start": _num(run.first.loss if run.first else math.nan), "end": _num(loss_end)},
        layers=[{"name": name, "grad_norm_median": _num(v)} for name, v in zip(run.layers, layer_medians)],
        first_layer={"name": run.layers[0], "grad_norm_median": _num(first)},
        last_layer={"name": run.layers[-1], "grad_norm_median": _num(last)},
        first_to_last_ratio=_num(ratio),
        total_norm={"min": _num(np.min(low.total)), "median": _num(np.median(mean.total)),
                    "max": _num(np.max(high.total))},
        clipped_steps=run.clipped_steps if run.clip_steps else None,
        steps_per_second=_num(1000.0 / latest.step_ms) if latest.step_ms > 0 else None,
        probe_share=_num(latest.probe_ms / latest.step_ms) if latest.step_ms > 0 else None,
        elapsed_seconds=_num(history.elapsed),
    )
    return result


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):  # NaN and the infinities as JSON carries them: spelled as everywhere else
        try:
            return three_significant(float(x))
        except ValueError:
            return x
    return three_significant(x)


def summary_table(s: dict[str, Any]) -> str:
    """The summary as the text table printed after a headless run."""
    preset = s["preset"]
    if s.get("preset_origin", "built-in") != "built-in":  # say which file, when it is not the shipped one
        preset += f" ({s['preset_origin']}: {s['preset_source']})"
    lines = [f"{preset} on {s['device']} · {s.get('data', '')} · seed {s['seed']} · run {s['run']}"]
    if s.get("remedies"):
        lines.append(f"remedies: {describe(s['remedies'])}")
    if not s.get("layers"):
        if s.get("diverged_at"):
            lines.append(f"no finite step before the divergence at step {s['diverged_at']}")
        else:
            lines.append("no steps were trained")
        if s.get("message"):
            lines.append(s["message"])
        return "\n".join(lines + _diagnosis_lines(s))
    name_width = max(len(layer["name"]) for layer in s["layers"])
    last = s["last_layer"]["grad_norm_median"]
    lines.append("")
    if s.get("diverged_at"):
        lines.append(f"medians over {_span(s['finite_steps'])}, before the divergence at step {s['diverged_at']}")
    else:  # (the diagnosis below reads the last steps: its ratio is another figure of the same thing)
        lines.append(f"medians over the whole run, {plural(s['finite_steps'], 'step')}")
    lines.append(f"{'layer'.ljust(name_width)}  median |grad|   vs last layer")
    for layer in s["layers"]:
        value = layer["grad_norm_median"]
        rel = value / last if isinstance(value, float) and isinstance(last, float) and last else None
        lines.append(f"{layer['name'].ljust(name_width)}  {_fmt(value):>13}   {_fmt(rel):>13}")
    lines.append("")
    lines.append(
        f"first layer {s['first_layer']['name']}: {_fmt(s['first_layer']['grad_norm_median'])}   "
        f"last layer {s['last_layer']['name']}: {_fmt(last)}   ratio first/last: {_fmt(s['first_to_last_ratio'])}"
    )
    tn = s["total_norm"]
    lines.append(f"total gradient norm: min {_fmt(tn['min'])}  median {_fmt(tn['median'])}  max {_fmt(tn['max'])}")
    steps = plural(s["steps"], "step")
    if s.get("diverged_at"):
        steps += f" (diverged at step {s['diverged_at']})"
    lines.append(f"loss: start {_fmt(s['loss']['start'])}  end {_fmt(s['loss']['end'])}   "
                 f"{steps}   {_fmt(s['steps_per_second'])} steps/s")
    if s.get("message"):
        lines.append(s["message"])
    return "\n".join(lines + _diagnosis_lines(s))


def _diagnosis_lines(s: dict[str, Any]) -> list[str]:
    """The verdict (unless the message above already says it: a divergence, an error) and the fixes."""
    diagnosis = s.get("diagnosis")
    if not diagnosis:
        return []
    lines = []
    if diagnosis["kind"] not in ("diverged", "error", "waiting"):
        lines.append(f"diagnosis: {diagnosis['verdict']}")
    fixes = [f"[{i}] {remedy_options(fix['remedies'])}" for i, fix in enumerate(diagnosis["fixes"], 1)]
    if fixes:
        lines.append("to try: " + "   ".join(fixes))
    return lines


def _span(finite_steps: int) -> str:
    return "step 1" if finite_steps == 1 else f"steps 1-{finite_steps}"
