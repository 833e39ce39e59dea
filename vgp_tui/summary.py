"""The per-layer summary that ``vgp-tui run`` prints at the end (as a table or as JSON)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vgp_tui.engine.events import encode_float
from vgp_tui.engine.history import FIRST_LAYER, LOSS, TOTAL, History


def _num(x: float) -> float | str:
    """JSON-safe number, written as the recording format writes it (numpy scalars become floats)."""
    return encode_float(float(x))


def summarize(history: History, session: Any) -> dict[str, Any]:
    """Numbers of the current run: per-layer median gradient norms, first/last ratio, loss start/end."""
    run = history.current
    result: dict[str, Any] = {
        "preset": session.scenario.name,
        "device": session.device,
        "data": session.data_label,
        "seed": session.seed,
        "state": history.state,
        "message": history.message,
    }
    if run is None or run.latest is None:
        result.update(run=run.run if run else 0, steps=0, layers=[])
        return result
    view = run.series.view()
    medians = np.median(view.mean, axis=0)
    layer_medians = medians[FIRST_LAYER:]
    recent = run.series.levels[0]
    tail = recent.total[max(0, recent.size - 50) : recent.size, LOSS]
    loss_end = float(np.mean(tail)) if len(tail) else run.latest.loss
    first, last = float(layer_medians[0]), float(layer_medians[-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = first / last if last != 0 else math.inf
    totals = view.mean[:, TOTAL]
    latest = run.latest
    result.update(
        run=run.run,
        steps=run.steps,
        remedies={k: v for k, v in run.remedies.items()},
        loss={"start": _num(run.first.loss if run.first else math.nan), "end": _num(loss_end)},
        layers=[{"name": name, "grad_norm_median": _num(v)} for name, v in zip(run.layers, layer_medians)],
        first_layer={"name": run.layers[0], "grad_norm_median": _num(first)},
        last_layer={"name": run.layers[-1], "grad_norm_median": _num(last)},
        first_to_last_ratio=_num(ratio),
        total_norm={"min": _num(np.min(view.low[:, TOTAL])), "median": _num(np.median(totals)),
                    "max": _num(np.max(view.high[:, TOTAL]))},
        clipped_steps=run.clipped_steps if run.clip_steps else None,
        steps_per_second=_num(1000.0 / latest.step_ms) if latest.step_ms > 0 else None,
        probe_share=_num(latest.probe_ms / latest.step_ms) if latest.step_ms > 0 else None,
        elapsed_seconds=_num(history.elapsed),
    )
    return result


def _fmt(x: Any) -> str:
    if isinstance(x, str):
        return x
    if x is None:
        return "-"
    return f"{x:.3g}"


def summary_table(s: dict[str, Any]) -> str:
    """The summary as the text table printed after a headless run."""
    lines = [f"{s['preset']} on {s['device']} · {s.get('data', '')} · seed {s['seed']} · run {s['run']}"]
    if not s.get("layers"):
        lines.append("no steps were trained")
        if s.get("message"):
            lines.append(s["message"])
        return "\n".join(lines)
    lines.append("remedies: " + " ".join(f"{k}={'off' if v is None else v}" for k, v in s["remedies"].items()))
    name_width = max(len(layer["name"]) for layer in s["layers"])
    last = s["last_layer"]["grad_norm_median"]
    lines.append("")
    lines.append(f"{'layer'.ljust(name_width)}  median |grad|   vs last layer")
    for layer in s["layers"]:
        value = layer["grad_norm_median"]
        rel = value / last if isinstance(value, float) and isinstance(last, float) and last else math.nan
        lines.append(f"{layer['name'].ljust(name_width)}  {_fmt(value):>13}   {_fmt(rel):>13}")
    lines.append("")
    lines.append(
        f"first layer {s['first_layer']['name']}: {_fmt(s['first_layer']['grad_norm_median'])}   "
        f"last layer {s['last_layer']['name']}: {_fmt(last)}   ratio first/last: {_fmt(s['first_to_last_ratio'])}"
    )
    tn = s["total_norm"]
    lines.append(f"total gradient norm: min {_fmt(tn['min'])}  median {_fmt(tn['median'])}  max {_fmt(tn['max'])}")
    lines.append(f"loss: start {_fmt(s['loss']['start'])}  end {_fmt(s['loss']['end'])}   "
                 f"steps {s['steps']}   {_fmt(s['steps_per_second'])} steps/s")
    if s.get("message"):
        lines.append(s["message"])
    return "\n".join(lines)
