"""Numbers and text as the screen writes them: one helper each, used by every panel and message."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from vgp_tui.text import (
    ELLIPSIS,
    clip_end,
    fold_long_words,
    format_norm,
    plural,
    short_number,
    thousands,
    three_significant,
    two_significant,
)


def test_text_too_long_is_cut_at_the_end_with_an_ellipsis() -> None:
    label = "run 1: activation=sigmoid init=default"
    assert clip_end(label, 20) == "run 1: activation=s" + ELLIPSIS
    assert len(clip_end(label, 20)) == 20
    assert clip_end("run 1: clip=off", 20) == "run 1: clip=off"  # fits: unchanged
    assert clip_end("abc", 3) == "abc"
    assert clip_end("abcd", 1) == ELLIPSIS
    assert clip_end("abcd", 0) == "" and clip_end("abcd", -2) == ""


def test_a_word_longer_than_the_width_is_folded_into_whole_pieces_and_nothing_else_changes() -> None:
    assert fold_long_words("saved in /a/bbbbbbbbbb/c/\nname.svg", 8) == "saved in /a/bbbbb\nbbbbb/c/\nname.svg"
    assert fold_long_words("x" * 20, 8) == "xxxxxxxx\nxxxxxxxx\nxxxx"
    assert fold_long_words("short words stay  as they are\n\nend", 8) == "short words stay  as they are\n\nend"
    assert fold_long_words("abc", 0) == "abc"


@pytest.mark.parametrize(("n", "text"), [(0, "0"), (999, "999"), (1000, "1 000"), (12400, "12 400"), (1234567, "1 234 567")])
def test_thousands_are_separated_by_a_space(n: int, text: str) -> None:
    assert thousands(n) == text


def test_plural() -> None:
    assert plural(1, "step") == "1 step"
    assert plural(0, "step") == "0 steps" and plural(2, "step") == "2 steps"


@pytest.mark.parametrize(
    ("value", "text"),
    [(3e-5, "3e-5"), (1.2e-12, "1e-12"), (0.25, "2e-1"), (3.0, "3e+0"), (20.0, "2e+1"), (4e12, "4e+12"),
     (0.0, "0"), (math.nan, "NaN"), (math.inf, "Inf")],
)
def test_a_norm_is_one_significant_digit(value: float, text: str) -> None:
    assert format_norm(value) == text


def test_a_norm_without_the_sign_of_a_small_positive_exponent() -> None:
    assert format_norm(3.0, signed_exponent=False) == "3e0"
    assert format_norm(20.0, signed_exponent=False) == "2e1"
    assert format_norm(3e-5, signed_exponent=False) == "3e-5"


@pytest.mark.parametrize(("value", "text"), [(0.2, "0.2"), (1.5, "1.5"), (300.0, "300"), (1e-5, "1e-5"), (1500000.0, "1.5e6")])
def test_a_tick_value_is_as_short_as_it_can_be(value: float, text: str) -> None:
    assert short_number(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(3e-11, "3e-11"), (0.25, "0.25"), (0.3, "0.3"), (12.0, "12"), (4.56e4, "4.6e4"), (0.0042, "4.2e-3"), (1.0, "1"),
     (0.0, "0"), (math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")],
)
def test_two_significant_digits_for_the_diagnosis(value: float, text: str) -> None:
    assert two_significant(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.123456, "0.123"), (1234.0, "1.23e+03"), (2.0, "2"), (math.nan, "NaN"), (math.inf, "Inf"), (-math.inf, "-Inf")],
)
def test_three_significant_digits_for_messages(value: float, text: str) -> None:
    assert three_significant(value) == text


def test_the_module_imports_nothing_heavy() -> None:
    code = "import sys, vgp_tui.text; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    assert not loaded & {"textual", "rich", "torch", "numpy"}
