"""History: what the dashboard draws, kept in bounded memory however long training runs.

Each run keeps its loss, total gradient norm and per-layer gradient norms in a
:class:`MultiResolutionSeries`: the most recent steps at full resolution, older steps merged in pairs
level by level (min, max and mean per bucket), so memory grows with the logarithm of the run length
and a plot of the whole run can always be drawn from it. The History is fed events (live or
replayed, it cannot tell) and is read by one thread: the dashboard drains an event queue into it on
its timer, the headless runner feeds it directly, so it needs no lock. Readers take copies with named
channels from :meth:`RunHistory.recent` (the latest steps) and :meth:`RunHistory.overview` (the whole
run). Nothing else in it grows with the number of steps: a run keeps at most MAX_MARKERS markers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from vgp_tui.engine.events import Event, RemedyChanged, RunStarted, SessionHeader, StateChanged, StepMetrics
from vgp_tui.engine.remedies import RemedyValue, format_value


@dataclass
class SeriesView:
    """A downsampled picture of a series: one row per bucket, oldest first."""

    first_step: np.ndarray
    """First step of each bucket (int64, shape (n,))."""
    last_step: np.ndarray
    """Last step of each bucket (int64, shape (n,))."""
    low: np.ndarray
    """Minimum per bucket and channel (float, shape (n, channels)); NaN if any value was NaN."""
    high: np.ndarray
    """Maximum per bucket and channel."""
    mean: np.ndarray
    """Mean per bucket and channel; NaN or inf if any value was."""

    def __len__(self) -> int:
        return len(self.first_step)


class _Level:
    """Buckets of one resolution, stored in preallocated arrays (oldest first)."""

    def __init__(self, capacity: int, channels: int) -> None:
        self.size = 0
        self.first = np.empty(capacity, np.int64)
        self.last = np.empty(capacity, np.int64)
        self.count = np.empty(capacity, np.int64)
        self.low = np.empty((capacity, channels), np.float32)
        self.high = np.empty((capacity, channels), np.float32)
        self.total = np.empty((capacity, channels), np.float64)
        """Sum of the values (the mean is total / count); float64 so long sums stay exact enough."""

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.first, self.last, self.count, self.low, self.high, self.total))


class MultiResolutionSeries:
    """Fixed-width rows appended step by step; recent rows exact, older rows merged in pairs.

    Level 0 holds single steps. When a level holds ``2 * window`` buckets, its oldest ``window``
    buckets are merged pairwise into the next level. Every level therefore holds at most
    ``2 * window`` buckets, and a run of N steps needs about log2(N / window) levels.
    """

    def __init__(self, channels: int, window: int = 1024) -> None:
        if window < 2 or window % 2:
            raise ValueError("window must be an even number >= 2")
        self.channels = channels
        self.window = window
        self.levels: list[_Level] = [_Level(2 * window, channels)]
        self.steps = 0
        self._nonzero = np.zeros(channels, bool)

    def append(self, step: int, values: np.ndarray | list[float]) -> None:
        """Add the row for ``step`` (steps must increase)."""
        level = self.levels[0]
        i = level.size
        row = np.asarray(values, dtype=np.float64)
        level.first[i] = level.last[i] = step
        level.count[i] = 1
        level.low[i] = level.high[i] = row
        level.total[i] = row
        self._nonzero |= level.high[i] != 0  # (as stored: a float64 too small for float32 is a 0)
        level.size += 1
        self.steps += 1
        if level.size == 2 * self.window:
            self._cascade(0)

    def _cascade(self, k: int) -> None:
        src = self.levels[k]
        if k + 1 == len(self.levels):
            self.levels.append(_Level(2 * self.window, self.channels))
        dst = self.levels[k + 1]
        w = self.window
        a, b = slice(0, w, 2), slice(1, w, 2)
        n = w // 2
        j = dst.size
        dst.first[j : j + n] = src.first[a]
        dst.last[j : j + n] = src.last[b]
        dst.count[j : j + n] = src.count[a] + src.count[b]
        # np.minimum/maximum propagate NaN: a bucket that saw a NaN shows it at every resolution.
        dst.low[j : j + n] = np.minimum(src.low[a], src.low[b])
        dst.high[j : j + n] = np.maximum(src.high[a], src.high[b])
        dst.total[j : j + n] = src.total[a] + src.total[b]
        dst.size += n
        for arr in (src.first, src.last, src.count, src.low, src.high, src.total):
            arr[: src.size - w] = arr[w : src.size]
        src.size -= w
        if dst.size == 2 * self.window:
            self._cascade(k + 1)

    def nbytes(self) -> int:
        return sum(level.nbytes() for level in self.levels)

    def ever_nonzero(self, channels: slice) -> np.ndarray:
        """Whether each of ``channels`` held anything but 0 (NaN counts) at any step so far. Kept
        step by step: the panels ask at every redraw, and reading every level's maxima took 0.7 ms
        for a 300-layer run of 100 000 steps."""
        return self._nonzero[channels].copy()

    def view(self, max_points: int | None = None, until: int | None = None) -> SeriesView:
        """All buckets, oldest first, merged down to at most ``max_points`` rows of equal step span;
        with ``until``, only the buckets that start at or before that step."""
        parts = [lv for lv in reversed(self.levels) if lv.size]
        first = np.concatenate([lv.first[: lv.size] for lv in parts]) if parts else np.empty(0, np.int64)
        keep = len(first) if until is None else int(np.searchsorted(first, until, side="right"))
        if not keep:
            empty = np.empty((0, self.channels))
            return SeriesView(np.empty(0, np.int64), np.empty(0, np.int64), empty, empty, empty)
        first = first[:keep]
        last = np.concatenate([lv.last[: lv.size] for lv in parts])[:keep]
        count = np.concatenate([lv.count[: lv.size] for lv in parts])[:keep]
        low = np.concatenate([lv.low[: lv.size] for lv in parts])[:keep]
        high = np.concatenate([lv.high[: lv.size] for lv in parts])[:keep]
        total = np.concatenate([lv.total[: lv.size] for lv in parts])[:keep]
        if max_points is not None and len(first) > max_points > 0:
            edges = np.linspace(first[0], last[-1] + 1, max_points + 1)
            group = np.searchsorted(edges, first, side="right") - 1
            starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
            first = first[starts]
            last = np.r_[last[starts[1:] - 1], last[-1]]
            low = np.minimum.reduceat(low, starts, axis=0)
            high = np.maximum.reduceat(high, starts, axis=0)
            total = np.add.reduceat(total, starts, axis=0)
            count = np.add.reduceat(count, starts)
        with np.errstate(invalid="ignore"):
            mean = total / count[:, None]
        return SeriesView(first, last, low.astype(np.float64), high.astype(np.float64), mean)


LOSS, TOTAL = 0, 1
"""Channel indices of a run's series; per-layer gradient norms follow from channel 2. Readers outside
the dashboard's drawing code use :meth:`RunHistory.recent` and :meth:`RunHistory.overview` instead."""
FIRST_LAYER = 2


@dataclass(frozen=True, eq=False)
class Recent:
    """A run's latest steps at full resolution, oldest first: float64 copies the reader may keep."""

    steps: np.ndarray
    """Step numbers (int64, shape (n,))."""
    loss: np.ndarray
    """Loss of each step (shape (n,))."""
    total: np.ndarray
    """Total gradient norm of each step (shape (n,))."""
    layers: np.ndarray
    """Each layer's gradient norm (shape (n, layers)), input side first."""

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def all_finite(self) -> bool:
        """Whether no loss or gradient norm among these steps is NaN or Inf."""
        return bool(np.isfinite(self.loss).all() and np.isfinite(self.total).all() and np.isfinite(self.layers).all())


@dataclass(frozen=True, eq=False)
class Channels:
    """One statistic (mean, minimum or maximum) of a run's channels per bucket, oldest first."""

    loss: np.ndarray
    """Shape (n,)."""
    total: np.ndarray
    """Total gradient norm, shape (n,)."""
    layers: np.ndarray
    """Per-layer gradient norms, shape (n, layers), input side first."""


@dataclass(frozen=True, eq=False)
class Overview:
    """The whole run, bucket by bucket (recent steps single, older ones merged), oldest first."""

    first_step: np.ndarray
    """First step of each bucket (int64, shape (n,))."""
    last_step: np.ndarray
    """Last step of each bucket (int64, shape (n,))."""
    mean: Channels
    low: Channels
    """Minimum per bucket; NaN where the bucket saw a NaN."""
    high: Channels
    """Maximum per bucket."""

    def __len__(self) -> int:
        return len(self.first_step)

    def before(self, step: int) -> Overview:
        """The buckets that end before ``step`` (a divergence step: what the run was while finite)."""
        keep = self.last_step < step
        return Overview(self.first_step[keep], self.last_step[keep], _pick(self.mean, keep),
                        _pick(self.low, keep), _pick(self.high, keep))


def _channels(values: np.ndarray, layers: int) -> Channels:
    return Channels(values[:, LOSS], values[:, TOTAL], values[:, FIRST_LAYER : FIRST_LAYER + layers])


def _pick(channels: Channels, keep: np.ndarray) -> Channels:
    return Channels(channels.loss[keep], channels.total[keep], channels.layers[keep])


@dataclass
class Marker:
    """Something that happened at a step: a live remedy change, a divergence, an error."""

    step: int
    kind: str
    """remedy, diverged, error, nonfinite (the run's first NaN/Inf, where no divergence was declared)."""
    text: str


MAX_MARKERS = 256
"""Markers a run keeps; far more than a plot can show apart."""


@dataclass(frozen=True)
class NonFinite:
    """The first step of a run at which the loss or a gradient norm was NaN or Inf."""

    step: int
    layer: int | None
    """The non-finite layer nearest the output (back-propagation reaches it first); None when only
    the loss or the total norm was non-finite."""
    what: str
    """``NaN``, ``Inf`` or ``NaN or Inf``: what the layer's (or the loss's) value was."""
    layers: int
    """How many layers were non-finite at that step."""
    growth: float | None = None
    """The last finite total norm before it over the median of those before (up to
    :data:`GROWTH_STEPS` steps): about 1 where the gradient was steady and the NaN came from that
    step's batch or loss, large where it grew into it; None with fewer than :data:`GROWTH_MIN_STEPS`
    finite steps before it (too few to tell)."""


GROWTH_STEPS = 50
"""Steps before a first NaN or Inf whose total norms tell whether the gradient grew into it."""
GROWTH_MIN_STEPS = 5
"""Fewer finite steps than this before it tell nothing (a run that blew up at once grew into it)."""

TIME_SAMPLES = 5
"""Samples of the gradient back through time a diagnosis takes the median of (one every
``time_every`` steps, 10 by default: the last 50 steps, as the layers' medians)."""


@dataclass
class RunHistory:
    """Everything the dashboard needs about one run."""

    run: int
    layers: tuple[str, ...]
    remedies: dict[str, RemedyValue]
    """Current values: live changes during the run update these (and leave a marker)."""
    reason: str
    time_view: str | None
    stats: str | None
    series: MultiResolutionSeries
    markers: list[Marker] = field(default_factory=list)
    """At most :data:`MAX_MARKERS`; beyond that the oldest remedy marker goes (a divergence stays)."""
    marker_count: int = 0
    """Markers ever added: what a panel watches (the list's length stops growing at the cap)."""
    latest: StepMetrics | None = None
    first: StepMetrics | None = None
    latest_time_grad: tuple[float, ...] | None = None
    recent_time_grads: list[tuple[float, ...]] = field(default_factory=list)
    """The last :data:`TIME_SAMPLES` samples of the gradient back through time, oldest first."""
    latest_layer_stats: tuple[float, ...] | None = None
    started_with: dict[str, RemedyValue] = field(default_factory=dict)
    """The remedies the run started with (what tells it apart from the other runs)."""
    stand_in: bool = False
    """It trains on a synthetic stand-in for its preset's real data set (the status line says so)."""
    clip_steps: int = 0
    """Steps taken with clipping on."""
    clipped_steps: int = 0
    """Of those, steps where clipping scaled the gradient down."""
    skipped_steps: int = 0
    """Steps a mixed-precision scaler skipped (their gradient overflowed; nothing was applied)."""
    reached: int = 0
    """The last step the run took, skipped or not: where the status line says it is. (``latest`` is
    the last one drawn; "step 26 · 23 skipped" at a skipped step 27 counted a skip the step had not
    reached.)"""
    first_nonfinite: NonFinite | None = None
    """Where the run first went NaN or Inf (kept for the whole run, however long)."""
    last_nonfinite_step: int | None = None
    """The latest step with a NaN or Inf value (to tell "still" from "recovered")."""

    def time_grad_median(self) -> tuple[float, ...] | None:
        """Each time step's median over the recent samples of the same length as the latest (a
        vanilla RNN's profile swings tenfold from one sample to the next: the diagnosis read from a
        single one flipped between vanishing and reaching back every second or two)."""
        latest = self.latest_time_grad
        if latest is None:
            return None
        same = [g for g in self.recent_time_grads if len(g) == len(latest)] or [latest]
        return tuple(float(v) for v in np.median(np.asarray(same, dtype=np.float64), axis=0))

    def add_marker(self, marker: Marker) -> None:
        self.markers.append(marker)
        self.marker_count += 1
        if len(self.markers) > MAX_MARKERS:  # a schedule logging every step must not grow the History
            oldest = next((m for m in self.markers if m.kind == "remedy"), self.markers[0])
            self.markers.remove(oldest)

    @property
    def steps(self) -> int:
        return self.series.steps

    def recent(self, steps: int, before: int | None = None) -> Recent:
        """The last ``steps`` full-resolution steps (fewer early in a run), only those before step
        ``before`` when it is given."""
        level = self.series.levels[0]
        end = level.size
        if before is not None:  # level 0's steps increase, so the ones before it are a prefix
            end = int(np.searchsorted(level.first[:end], before))
        start = max(0, end - steps)
        # Level 0 holds single steps (count 1), so its running sums are the values themselves.
        rows = level.total[start:end].astype(np.float64)
        return Recent(level.first[start:end].copy(), rows[:, LOSS], rows[:, TOTAL],
                      rows[:, FIRST_LAYER : FIRST_LAYER + len(self.layers)])

    def overview(self, max_points: int | None = None) -> Overview:
        """The whole run, merged down to at most ``max_points`` buckets of equal step span."""
        view = self.series.view(max_points)
        n = len(self.layers)
        return Overview(view.first_step, view.last_step, _channels(view.mean, n), _channels(view.low, n),
                        _channels(view.high, n))


class History:
    """All runs of a session, fed with events, read by the dashboard and the headless summary."""

    def __init__(self, window: int = 1024, max_runs: int = 8) -> None:
        self.window = window
        self.max_runs = max_runs
        """Runs kept (the current one and its most recent ghosts); older runs are forgotten."""
        self.header: SessionHeader | None = None
        self.runs: dict[int, RunHistory] = {}
        self.state = "training"
        self.message = ""
        self.version = 0
        """Increases whenever anything changes, so a reader can skip redrawing."""
        self.elapsed = 0.0
        """Seconds since the session started, as of the latest event."""

    @property
    def current(self) -> RunHistory | None:
        return self.runs[max(self.runs)] if self.runs else None

    def ghosts(self) -> list[RunHistory]:
        """Earlier runs, oldest first."""
        current = self.current
        return [r for r in self.runs.values() if r is not current]

    def extend(self, events: Iterable[Event]) -> None:
        for event in events:
            self.add(event)

    def add(self, event: Event) -> None:
        self.version += 1
        t = getattr(event, "t", None)
        if t is not None:
            self.elapsed = max(self.elapsed, t)
        if isinstance(event, StepMetrics):
            self._add_step(event)
        elif isinstance(event, RunStarted):
            self._add_run(event)
        elif isinstance(event, RemedyChanged):
            run = self.runs.get(event.run)
            if run is not None and not event.structural:
                text = f"{event.name} {format_value(event.name, event.new)}"
                run.add_marker(Marker(event.step, "remedy", text))
                run.remedies[event.name] = event.new
        elif isinstance(event, StateChanged):
            self.state = event.state
            self.message = event.message
            run = self.runs.get(event.run)
            if run is not None and event.state in ("diverged", "error"):
                if run.markers and run.markers[-1].kind == "nonfinite" and run.markers[-1].step == event.step:
                    run.markers.pop()  # the same moment, told better by the session's message
                run.add_marker(Marker(event.step, event.state, event.message))
        elif isinstance(event, SessionHeader):
            self.header = event

    def _add_run(self, event: RunStarted) -> None:
        self.runs[event.run] = RunHistory(
            run=event.run,
            layers=event.layers,
            remedies=dict(event.remedies),
            reason=event.reason,
            time_view=event.time_view,
            stats=event.stats,
            series=MultiResolutionSeries(FIRST_LAYER + len(event.layers), self.window),
            started_with=dict(event.remedies),
            stand_in=event.stand_in,
        )
        while len(self.runs) > self.max_runs:
            del self.runs[min(self.runs)]
        self.state = "training"
        self.message = ""

    def _add_step(self, event: StepMetrics) -> None:
        run = self.runs.get(event.run)
        if run is None or len(event.grad_norm) != len(run.layers):
            return  # a step of a forgotten run, or a malformed one: nothing to draw it against
        run.reached = event.step
        if event.skipped:
            # A mixed-precision scaler found Inf in this step's scaled gradient and did not apply it:
            # no update happened, so it is counted, not drawn and not called a divergence.
            run.skipped_steps += 1
            return
        run.series.append(event.step, [event.loss, event.total_norm, *event.grad_norm])
        if run.first is None:
            run.first = event
        if event.clipped is not None:
            run.clip_steps += 1
            run.clipped_steps += event.clipped
        run.latest = event
        # total_norm is NaN or Inf whenever a layer's norm is, so one check covers the common case.
        if not event.finite:
            run.last_nonfinite_step = event.step
            if run.first_nonfinite is None:
                run.first_nonfinite = _non_finite(event, run.recent(GROWTH_STEPS, before=event.step).total)
                run.add_marker(Marker(event.step, "nonfinite", f"first NaN/Inf at step {event.step}"))
        if event.time_grad is not None:
            run.latest_time_grad = event.time_grad
            run.recent_time_grads = [*run.recent_time_grads[1 - TIME_SAMPLES:], event.time_grad]
        if event.layer_stats is not None:
            run.latest_layer_stats = event.layer_stats

    def nbytes(self) -> int:
        """Bytes held by the series arrays of all runs (the part that grows with run length)."""
        return sum(r.series.nbytes() for r in self.runs.values())


def nonfinite_origin(norms: Sequence[float]) -> tuple[int, int] | None:
    """(the non-finite layer nearest the output, how many layers are non-finite); None where every
    norm is finite. Back-propagation reaches the output side first, and a NaN or Inf born in a layer's
    backward reaches every layer before it: the one nearest the output is where it came from (the
    diagnosis and the Recorder's alarm name this one, so that they name the same)."""
    bad = [i for i, v in enumerate(norms) if not math.isfinite(v)]
    return (bad[-1], len(bad)) if bad else None


def more_layers(count: int) -> str:
    """`` (and 2 more layers)`` after the named one of ``count`` non-finite layers; "" for one."""
    return f" (and {count - 1} more layer{'s' if count > 2 else ''})" if count > 1 else ""


def _non_finite(event: StepMetrics, totals_before: np.ndarray) -> NonFinite:
    finite = totals_before[np.isfinite(totals_before)]
    median = float(np.median(finite)) if len(finite) >= GROWTH_MIN_STEPS else 0.0
    growth = float(finite[-1]) / median if median > 0 else None
    origin = nonfinite_origin(event.grad_norm)
    values = [v for v in event.grad_norm if not math.isfinite(v)] or [
        v for v in (event.loss, event.total_norm) if not math.isfinite(v)]
    nans = sum(math.isnan(v) for v in values)
    what = "NaN" if nans == len(values) else ("Inf" if nans == 0 else "NaN or Inf")
    return NonFinite(event.step, origin[0] if origin else None, what, origin[1] if origin else 0, growth)
