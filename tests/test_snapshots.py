"""Pictures of the whole dashboard, drawn from a recorded session so they are the same every time.

The fixture tests/fixtures/deep-sigmoid.jsonl holds 300 steps of deep-sigmoid (clip switched on at
step 151), then a run with relu and He init. The app does not train here: the recorded events go
through the same feed the training thread uses. Update the pictures only with the pinned test
environment (`pip install -e '.[test]'` pins textual, textual-plotext, plotext and rich):
`pytest tests/test_snapshots.py --snapshot-update`, then look at them before committing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vgp_tui.dashboard import make_app, make_replay_app
from vgp_tui.engine.recording import read_recording
from vgp_tui.engine.session import Session
from vgp_tui.scenario import load_preset

FIXTURE = Path(__file__).parent / "fixtures" / "deep-sigmoid.jsonl"


def recorded_app() -> Any:
    session = Session(load_preset("deep-sigmoid"), device="cpu")
    return make_app(session, train=False)


async def settle(pilot: Any) -> None:
    """Refresh the panels until the layout stops changing, as the app's own 0.2 s tick would.

    A refresh can change what is laid out (the diagnosis line's height, the layer rows the two layer
    panels share), and the rows the panels share are computed from the sizes of the layout before.
    Under the full suite's load a picture was taken in between: once one row off, once with all 21
    layers merged into one row (the tick fixes that within 0.2 s on a screen; a picture is an instant).
    """
    from vgp_tui.dashboard.flow import GradientFlow
    from vgp_tui.dashboard.heatmap import GradientHeatmap

    app = pilot.app
    seen = None
    for _ in range(6):
        app.refresh_panels()
        await pilot.pause()
        flow, heatmap = app.query_one(GradientFlow), app.query_one(GradientHeatmap)
        now = (flow.size, heatmap.size, flow.row_limit, heatmap.row_limit)
        if now == seen:
            return
        seen = now


async def feed_recording(pilot: Any) -> None:
    result = read_recording(FIXTURE)
    assert result.warning is None
    pilot.app.feed.put(result.events)
    await pilot.pause()
    await settle(pilot)


async def test_the_layer_panels_share_their_rows_from_the_first_frame_and_after_a_resize() -> None:
    """The rows the two layer panels share are worked out when their sizes are laid out, not at the
    next 0.2 s tick: a new run's first frames once showed them from the sizes before the layout
    (every layer merged into one row, or each panel merging the layers its own way)."""
    from vgp_tui.dashboard.flow import GradientFlow
    from vgp_tui.dashboard.heatmap import GradientHeatmap

    def shared(app: Any) -> tuple[int | None, int | None, int | None]:
        flow, heatmap = app.query_one(GradientFlow), app.query_one(GradientHeatmap)
        rows = min(flow.size.height, heatmap.layer_rows())
        want = rows if 0 < rows < len(app.history.current.layers) else None
        return flow.row_limit, heatmap.row_limit, want

    app = recorded_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.feed.put(read_recording(FIXTURE).events)
        app.refresh_panels()  # the first frame of the run, then no tick: only the layout's events
        await pilot.pause()
        limit, same, want = shared(app)
        assert limit == same == want == 13  # 21 layers on the heatmap's 13 rows, in both panels
        await pilot.resize_terminal(200, 60)
        await pilot.pause()
        limit, same, want = shared(app)
        assert limit == same == want and want != 13


async def test_panels_drawn_for_their_size_are_drawn_again_when_it_changes() -> None:
    """The heatmap resamples the steps to its width and the diagnosis wraps to its own: laid out at a
    new size (not only when the terminal is resized), each draws again at once, whatever its cadence.
    A picture once showed a heatmap of 8 columns and a diagnosis cut to fit 20, drawn before the layout."""
    from vgp_tui.dashboard.diagnosis_line import DiagnosisLine
    from vgp_tui.dashboard.heatmap import GradientHeatmap

    app = recorded_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.feed.put(read_recording(FIXTURE).events)
        await settle(pilot)
        heatmap, line = app.query_one(GradientHeatmap), app.query_one(DiagnosisLine)
        assert len(heatmap._values) == heatmap.size.width - 12 and line._width == line.size.width - 2
        before = (heatmap.size.width, line.size.width)
        heatmap.styles.width = 70
        line.styles.width = 50
        await pilot.pause()
        assert (heatmap.size.width, line.size.width) != before  # (their content, inside the frame)
        assert len(heatmap._values) == heatmap.size.width - 12 and line._width == line.size.width - 2


class TestDashboardPictures:
    """The dashboard fed from the recorded fixture, at the smallest and a common terminal size."""

    @pytest.mark.parametrize("size", [(80, 24), (120, 40)])
    def test_dashboard(self, snap_compare: Any, size: tuple[int, int]) -> None:
        assert snap_compare(recorded_app(), terminal_size=size, run_before=feed_recording)

    def test_help_screen(self, snap_compare: Any) -> None:
        async def open_help(pilot: Any) -> None:
            await feed_recording(pilot)
            await pilot.press("question_mark")
            await pilot.pause()

        assert snap_compare(recorded_app(), terminal_size=(120, 40), run_before=open_help)

    @pytest.mark.parametrize("size", [(80, 24), (120, 40)])
    def test_six_ghosts_and_a_diverged_one(self, snap_compare: Any, size: tuple[int, int]) -> None:
        from test_loss_plot import ghost_events

        async def feed_ghosts(pilot: Any) -> None:
            from vgp_tui.engine.events import RemedyChanged

            from vgp_tui.dashboard.remedies_bar import RemediesBar

            events = ghost_events()
            pilot.app.feed.put(events)
            await pilot.pause()
            await settle(pilot)
            # A live app's remedies are what its keys set, not the session's reports of them: set them
            # as the keys that made run 8's live change would have.
            run8 = [e for e in events if isinstance(e, RemedyChanged) and e.run == 8]
            pilot.app.remedies.update({e.name: e.new for e in run8})
            pilot.app.query_one(RemediesBar).show(pilot.app.remedies)
            pilot.app.clear_notifications()  # run 4's divergence toast: timed, so not in a fixed picture
            await pilot.pause()

        assert snap_compare(recorded_app(), terminal_size=size, run_before=feed_ghosts)

    def test_replay_footer_offers_replay_keys_at_80x24(self, snap_compare: Any) -> None:
        async def play_to_the_end(pilot: Any) -> None:
            app = pilot.app
            while not app.session.ended:
                await pilot.pause(0.05)
            await settle(pilot)
            app.clear_notifications()
            await pilot.pause()

        app = make_replay_app(str(FIXTURE), speed=1024)
        assert snap_compare(app, terminal_size=(80, 24), run_before=play_to_the_end)

    def test_too_small(self, snap_compare: Any) -> None:
        assert snap_compare(recorded_app(), terminal_size=(60, 20), run_before=feed_recording)
