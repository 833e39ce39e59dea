"""The check both integration tests make: a recording's steps equal a plain-PyTorch reference replay."""

from __future__ import annotations

import pytest

from vgp_tui.engine.events import StepMetrics

Reference = list[tuple[float, list[float], float, bool]]
"""Per optimizer step: (loss, per-layer norms, total norm, whether clipping scaled the gradient)."""


def assert_steps_match(steps: list[StepMetrics], reference: Reference, lr: float) -> None:
    """Steps numbered from 1, each with the reference's loss, norms, total and clipping, and ``lr``;
    the reference must clip some steps and not others, or clipping would be untested."""
    assert [s.step for s in steps] == list(range(1, len(reference) + 1))
    for s, (loss, norms, total, clipped) in zip(steps, reference):
        assert s.loss == pytest.approx(loss, rel=1e-5)
        assert list(s.grad_norm) == pytest.approx(norms, rel=1e-5, abs=0)  # (approx allows 1e-12 by default)
        assert s.total_norm == pytest.approx(total, rel=1e-5)
        assert s.clipped is clipped
        assert s.lr == pytest.approx(lr)
    assert {c for *_, c in reference} == {True, False}, "the clip threshold should clip some steps and not others"
