"""The gradient flow bars, the layer grouping and labels every panel shares, and the panels at the
sizes people use: one scale of health with the diagnosis, every layer reachable, no empty bands."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from textual.app import App, ComposeResult

from vgp_tui.dashboard import make_app
from vgp_tui.dashboard.flow import GradientFlow
from vgp_tui.dashboard.heatmap import GradientHeatmap, merge_layers
from vgp_tui.dashboard.layers import layer_groups, short_name
from vgp_tui.diagnosis import diagnose
from vgp_tui.engine.events import RunStarted, StateChanged, StepMetrics
from vgp_tui.engine.history import History
from vgp_tui.engine.session import Session
from vgp_tui.scenario import load_preset

RESNET = (
    "stem",
    *(f"layer{s}.{b}.conv{c}" for s in range(1, 5) for b in range(2) for c in (1, 2)),
    "layer2.0.shortcut",
    "fc",
)
RNN = ("cell.input", "cell.recurrent", "head")


def run_events(layers: tuple[str, ...], norms: list[float], steps: int = 60, time_grad: tuple[float, ...] | None = None,
               time_view: str | None = None) -> list[Any]:
    """A run of ``steps`` identical steps with these per-layer norms."""
    events: list[Any] = [RunStarted(run=1, t=0.0, preset="test", layers=layers, remedies={}, seed=0, time_view=time_view)]
    for step in range(1, steps + 1):
        events.append(StepMetrics(run=1, step=step, t=0.01 * step, loss=1.0, grad_norm=tuple(norms),
                                  total_norm=math.sqrt(sum(v * v for v in norms)),
                                  time_grad=time_grad if step % 10 == 0 else None))
    return events


def history_of(events: list[Any]) -> History:
    history = History()
    history.extend(events)
    return history


class FlowApp(App[None]):
    CSS = "GradientFlow { height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield GradientFlow()


def bar_colours(flow: GradientFlow, width: int = 40, height: int = 20) -> list[str]:
    """The colour of each bar (the second segment of each row)."""
    return [str(row[1].style.color.name) if row[1].style and row[1].style.color else "" for row in flow.lines(width, height)]


def flow_labels(flow: GradientFlow, width: int, height: int) -> list[str]:
    return [row[0].text.strip() for row in flow.lines(width, height)]


# -- one scale of health -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "kind", "red"),
    [(9e-2, "healthy", False), (5e-3, "healthy", False), (1e-5, "vanishing", True), (5e3, "exploding", True)],
)
async def test_a_bar_is_red_exactly_when_the_diagnosis_calls_the_layer_vanishing_or_exploding(
    first: float, kind: str, red: bool
) -> None:
    history = history_of(run_events(("fc0", "fc1", "head"), [first, 0.5, 1.0]))
    assert diagnose(history.current).kind == kind
    app = FlowApp()
    async with app.run_test(size=(60, 12)):
        flow = app.query_one(GradientFlow)
        flow.show(history.current)
        colours = bar_colours(flow)
        assert (colours[0] == "red") is red, colours
        assert colours[2] == "green"  # the reference layer itself is healthy by definition


async def test_a_layer_that_never_got_a_gradient_is_no_alarm_in_the_flow() -> None:
    """Its 0 was drawn in the alarm's bold magenta (read as red) beside its muted label."""
    history = history_of(run_events(("fc0", "spare", "fc1", "head"), [0.2, 0.0, 0.5, 1.0]))
    app = FlowApp()
    async with app.run_test(size=(60, 12)):
        flow = app.query_one(GradientFlow)
        flow.show(history.current)
        rows = flow.lines(40, 20)
        assert rows[1][1].text.strip() == "·" and rows[1][1].style.dim and not rows[1][1].style.bold
        history = history_of(run_events(("fc0", "fc1", "head"), [math.nan, 0.5, 1.0]))  # a NaN is an alarm
        flow.show(history.current)
        assert flow.lines(40, 20)[0][1].style.bold


# -- one grouping, readable labels ---------------------------------------------------------------------


def test_groups_keep_the_first_and_last_layer_on_their_own_rows() -> None:
    for count in (3, 18, 20, 41):
        for rows in range(3, count + 1):
            groups = layer_groups(count, rows)
            assert len(groups) == rows and groups[0] == (0, 0) and groups[-1] == (count - 1, count - 1)
            assert [a for a, _ in groups[1:]] == [b + 1 for _, b in groups[:-1]]  # contiguous, all covered


async def test_the_flow_groups_the_layers_as_the_heatmap_does_and_shows_fc() -> None:
    norms = list(np.geomspace(1e-7, 1e-1, len(RESNET)))
    history = history_of(run_events(RESNET, norms))
    app = FlowApp()
    async with app.run_test(size=(80, 24)):
        flow = app.query_one(GradientFlow)
        flow.show(history.current)
        for rows in (5, 7, 12):
            _, heat = merge_layers(np.zeros((1, len(RESNET))), RESNET, rows)
            shown = flow_labels(flow, 80, rows)
            assert len(shown) == len(heat) <= rows
            assert shown == [short_name(label, len(text)) for label, text in zip(heat, shown)]
            assert shown[-1] == "fc" and shown[0] == "stem"


def test_long_names_are_shortened_readably_and_a_cut_ends_in_an_ellipsis() -> None:
    assert short_name("layer2.0.shortcut", 14) == "l2.0.shortcut"
    assert short_name("layer3.1.conv2", 14) == "layer3.1.conv2"
    assert short_name("encoder.layers.11.attention.output.dense", 20) == "e.l.11.a.o.dense"
    assert short_name("encoder.layers.11.attention.output.dense", 14) == "…11.a.o.dense"
    assert short_name("layer1.0.conv1–1.1.conv2", 14) == "l1.0.c1–1.1.c2"
    for name in (*RESNET, "encoder.layers.11.attention.output.dense", "embedding", "fc0–19"):
        for width in range(1, 25):
            short = short_name(name, width)
            assert len(short) <= width
            assert short == name or "…" in short or "." not in short_name(name, 99) or len(short) < len(name)


async def test_the_names_of_one_panel_are_abbreviated_alike() -> None:
    """Each name was shortened only as much as it had to be: a 24-block transformer's panel read
    "t.h.0.attn.c_attn" beside "transformer.h.0.ln_1", one module named two ways."""
    from vgp_tui.dashboard.layers import abbreviation_level

    names = ("transformer.wte", "transformer.h.0.ln_1", "transformer.h.0.attn.c_attn", "transformer.ln_f")
    assert short_name(names[1], 20) == "transformer.h.0.ln_1"  # fits on its own
    level = abbreviation_level([(name, 20) for name in names])
    assert [short_name(name, 20, level) for name in names] == ["t.wte", "t.h.0.ln_1", "t.h.0.attn.c_attn", "t.ln_f"]
    assert short_name("step", 20, level) == "step" and short_name("fc0–19", 20, level) == "fc0–19"
    app = FlowApp()
    async with app.run_test(size=(80, 24)):
        flow = app.query_one(GradientFlow)
        flow.show(history_of(run_events(names, [0.2, 1e-4, 4e-4, 0.02])).current)
        shown = flow_labels(flow, 34, 10)  # a label column of about 20 cells
    assert shown == ["t.wte", "t.h.0.ln_1", "t.h.0.attn.c_attn", "t.ln_f"], shown


async def test_flow_labels_are_shortened_not_cut_silently() -> None:
    history = history_of(run_events(RESNET, [0.1] * len(RESNET)))
    app = FlowApp()
    async with app.run_test(size=(80, 24)):
        flow = app.query_one(GradientFlow)
        flow.show(history.current)
        labels = flow_labels(flow, 26, 40)
        assert "l2.0.shortcut" in labels and "layer2.0.short" not in labels


# -- the panels in the real dashboard, at the sizes people use --------------------------------------------


async def _dashboard(size: tuple[int, int], events: list[Any], preset: str = "rnn-clipping") -> tuple[Any, Any]:
    app = make_app(Session(load_preset(preset), device="cpu"), train=False)
    return app, app.run_test(size=size)


def _text(widget: Any) -> list[str]:
    return [widget.render_line(y).text for y in range(widget.size.height)]


async def test_at_80x24_the_flow_shows_all_three_rnn_layers_and_the_time_panel_shows_data() -> None:
    time_grad = tuple(np.geomspace(1e-8, 1.0, 50))
    app = make_app(Session(load_preset("rnn-clipping"), device="cpu"), train=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.feed.put(run_events(RNN, [1e-2, 2e-2, 5e-2], steps=30, time_grad=time_grad, time_view="dL/dh_t"))
        app.refresh_panels()
        await pilot.pause()
        app.refresh_panels()
        await pilot.pause()
        flow = "\n".join(_text(app.query_one(GradientFlow)))
        assert all(short_name(n, 20) in flow or n in flow for n in ("cell.input", "head")), flow
        assert "recurrent" in flow, flow
        time_panel = app.query_one("#time")
        time_panel.show(app.history)
        await pilot.pause()
        shown = "\n".join(_text(time_panel))
        assert any(ch in shown for ch in "▁▂▃▄▅▆▇█"), shown  # the curve, as blocks
        assert "t=1" in shown and "t=50" in shown
        await pilot.press("q")


async def test_the_time_panel_says_why_it_has_no_data() -> None:
    app = make_app(Session(load_preset("rnn-clipping"), device="cpu"), train=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.feed.put(run_events(RNN, [1e-2, 2e-2, 5e-2], steps=5, time_view="dL/dh_t"))
        app.refresh_panels()
        await pilot.pause()
        time_panel = app.query_one("#time")
        time_panel.show(app.history)
        await pilot.pause()
        assert "no data yet" in " ".join(_text(time_panel))
        app.feed.put([StateChanged(run=1, step=5, t=0.1, state="diverged", message="diverged")])
        app.refresh_panels()
        time_panel.show(app.history)
        await pilot.pause()
        assert "stopped at step 5" in " ".join(" ".join(_text(time_panel)).split())
        await pilot.press("q")


@pytest.mark.parametrize("size", [(200, 60), (120, 40), (80, 24)])
async def test_a_three_layer_heatmap_leaves_no_empty_band(size: tuple[int, int]) -> None:
    app = make_app(Session(load_preset("rnn-clipping"), device="cpu"), train=False)
    async with app.run_test(size=size) as pilot:
        app.feed.put(run_events(RNN, [1e-2, 2e-2, 5e-2], steps=30, time_view="dL/dh_t"))
        app.refresh_panels()
        await pilot.pause()
        heatmap = app.query_one(GradientHeatmap)
        lines = _text(heatmap)
        assert lines and lines[-1].strip().startswith("|g|"), lines  # the scale is the last line: no band below
        assert lines[-2].strip().startswith("step")
        if size[1] >= 40:
            assert len(lines) >= 3 * 2 + 2  # with room, each layer gets more than one line
        await pilot.press("q")


async def test_the_resnet_flow_shows_fc_at_every_size() -> None:
    norms = list(np.geomspace(1e-7, 1e-1, len(RESNET)))
    for size in ((80, 24), (120, 40), (200, 60)):
        app = make_app(Session(load_preset("rnn-clipping"), device="cpu"), train=False)
        async with app.run_test(size=size) as pilot:
            app.feed.put(run_events(RESNET, norms, steps=20))
            app.refresh_panels()
            await pilot.pause()
            lines = [line.strip() for line in _text(app.query_one(GradientFlow))]
            assert any(line.startswith("fc ") for line in lines), (size, lines)
            assert any(line.startswith("stem ") for line in lines), (size, lines)
            await pilot.press("q")


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
async def test_the_help_screen_fits_its_keys_and_the_activation_plot_at_every_size(size: tuple[int, int]) -> None:
    """Every key and its whole description inside the box (at 80x24 the descriptions wrap: they used
    to run under the scrollbar, "every laye"), and the activation plot at a readable width: beside the
    keys where there is room, else under them (beside them it got ten columns at 120x40 and one at
    80x24, where its note, a word a line, made the body two hundred lines long). At 80x24 the body
    scrolls to its last line; at 120x40 the keys fit without scrolling."""
    from vgp_tui.dashboard.screens import ActivationPlot, HelpScreen

    app = make_app(Session(load_preset("deep-sigmoid"), device="cpu"), train=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        body = app.screen.query_one("#help-body")
        keys = app.screen.query_one("#help-keys")
        plot = app.screen.query_one(ActivationPlot)
        inside = body.scrollable_content_region
        assert keys.region.x >= inside.x and keys.region.right <= inside.right, (keys.region, inside)
        assert plot.region.width >= 60 and plot.region.right <= inside.right, (plot.region, inside)
        beside = size[0] >= 150
        assert (plot.region.x >= keys.region.right) == beside and (plot.region.y >= keys.region.bottom) != beside
        assert body.virtual_size.height < 60  # the keys and one plot with its note, nothing a word a line
        if size == (80, 24):
            assert keys.region.bottom > body.region.bottom  # taller than the screen…
            await pilot.press("end")
            await pilot.pause()
            assert body.scroll_y == body.max_scroll_y > 0  # …and the keys scroll it to its last line
        elif size == (120, 40):
            assert keys.region.bottom <= body.region.bottom  # every key without scrolling
        await pilot.press("escape")
        await pilot.press("q")


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
async def test_the_flow_title_is_never_cut(size: tuple[int, int]) -> None:
    """At 80 columns Textual cut "Gradient flow · |g| now" to "|g| n…"; the longest title that fits is shown."""
    app = make_app(Session(load_preset("deep-sigmoid"), device="cpu"), train=False)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        flow = app.query_one(GradientFlow)
        screen = app.screen._compositor.render_strips()  # what the terminal is sent
        top = screen[flow.region.y].text[flow.region.x : flow.region.right]
        assert "Gradient flow" in top and "…" not in top, top
        if size[0] >= 120:
            assert "Gradient flow · |g| now" in top, top
        await pilot.press("q")
