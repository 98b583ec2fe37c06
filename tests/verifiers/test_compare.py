"""Tolerances from the dtype, and the worst element with both values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from verifiers.compare import Difference, Tolerance, worst_difference


def test_tolerances_follow_the_dtype_and_the_row_count():
    t64 = Tolerance.for_dtype("float64", 100)
    t32 = Tolerance.for_dtype("float32", 100)
    assert t64.rtol == 64 * np.finfo(np.float64).eps
    # 8ε(√min(N, 65536) + √⌈N/65536⌉): one chunk of 100 rows
    assert t64.atol == 8 * np.finfo(np.float64).eps * (10 + 1)
    assert t32.rtol == 64 * np.finfo(np.float32).eps
    # 10⁶ rows: 16 chunks of at most 65,536 rows; the chunk's √65536 = 256 dominates
    t32_big = Tolerance.for_dtype("float32", 10**6)
    assert t32_big.atol == pytest.approx(8 * np.finfo(np.float32).eps * (256 + 4))
    assert t32_big.atol + t32_big.rtol < 1e-3 / 3  # a 0.1% error stays well outside
    assert Tolerance.for_dtype("float64", 100, rtol=1e-3).rtol == 1e-3
    assert t64.scaled(10).atol == pytest.approx(10 * t64.atol)


def test_tied_elements_report_the_first_whatever_the_last_bits():
    tolerance = Tolerance(rtol=1e-14, atol=1e-14)
    expected = np.array([-145.47010110737293, -7370.7029735910555])
    for wobble in (1 - 2e-16, 1.0, 1 + 2e-16):  # the last bit of a BLAS sum, either way
        actual = expected * 0.5 * np.array([1.0, wobble])
        difference = worst_difference(actual, expected, np.abs(expected), tolerance, ["b", "w"])
        assert difference.where == "b"
        actual = expected * 0.5 * np.array([wobble, 1.0])
        difference = worst_difference(actual, expected, np.abs(expected), tolerance, ["b", "w"])
        assert difference.where == "b"


def test_worst_element_is_the_one_using_most_of_its_allowance():
    tolerance = Tolerance(rtol=0.0, atol=1e-10)
    # Element 1 has the larger absolute difference but a much larger scale.
    difference = worst_difference(
        np.array([1.0 + 1e-11, 1000.0 + 1e-9, 5.0]),
        np.array([1.0, 1000.0, 5.0]),
        np.array([1.0, 1e3, 1.0]),
        tolerance,
        ["a", "b", "c"],
    )
    assert difference.where == "a"
    assert difference.ok
    assert difference.ratio == pytest.approx(0.1, rel=1e-4)
    assert difference.expected == 1.0
    assert difference.actual == 1.0 + 1e-11


def test_a_mismatch_reports_both_values_and_the_difference():
    difference = worst_difference(
        np.array([2.0, -7370.0]), np.array([2.0, -7371.0]), 1.0, Tolerance(1e-12, 1e-12), ["x", "y"]
    )
    assert not difference.ok
    assert difference.describe() == (
        "y: -7370.0 vs -7371.0 (difference 1, relative 0.000136, allowed 7.37e-09)"
    )


def test_non_finite_values():
    tolerance = Tolerance(1e-12, 1e-12)
    same = worst_difference(
        np.array([np.inf, np.nan]), np.array([np.inf, np.nan]), 1.0, tolerance, ["i", "n"]
    )
    assert same.ok
    one_nan = worst_difference(
        np.array([1.0, np.nan]), np.array([1.0, 2.0]), 1.0, tolerance, ["a", "b"]
    )
    assert one_nan.where == "b"
    assert not one_nan.ok
    assert math.isinf(Difference("z", 1.0, 0.0, 1.0).relative)


def test_shapes_must_match():
    with pytest.raises(ValueError, match="cannot compare shapes"):
        worst_difference(np.zeros(2), np.zeros(3), 1.0, Tolerance(0, 0), ["a", "b"])
