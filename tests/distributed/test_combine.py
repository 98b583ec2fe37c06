"""Combining the shards' sums: the true combination, the classic slip, a user's own. numpy only."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.distributed.helpers import DATA_CSV, labels
from verifiers.compare import Tolerance, worst_difference
from verifiers.data import load_csv
from verifiers.distributed import (
    CombinationError,
    ShardPart,
    check_combination,
    check_mean_of_means,
    combine_mean_of_means,
    combine_true,
    load_combination,
    shard_bounds,
    shard_inputs,
    shard_rows,
)
from verifiers.models.mse import gradient, gradient_scales, loss


def parts_of(X: np.ndarray, y: np.ndarray, theta: np.ndarray, workers: int) -> list[ShardPart]:
    """Each shard's sums of per-row loss and gradient, from the hand formula (a mean × rows)."""
    parts = []
    for rows in shard_bounds(len(y), workers):
        n = rows.stop - rows.start
        grad_b, grad_w = gradient(theta[0], theta[1:], X[rows], y[rows])
        parts.append(
            ShardPart(
                rows=n,
                loss_sum=n * loss(theta[0], theta[1:], X[rows], y[rows]),
                gradient_sum=n * np.concatenate([[grad_b], grad_w]),
            )
        )
    return parts


def reference_data(rows: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = load_csv(DATA_CSV)
    return data.X[:rows], data.y[:rows], np.array([0.5, 1.0])


def scale(X: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    return gradient_scales(theta[0], theta[1:], X, y)


TOLERANCE = Tolerance.for_dtype("float64", 100)


@pytest.mark.parametrize(
    ("rows", "workers", "sizes"),
    [
        (100, 3, [34, 33, 33]),
        (100, 2, [50, 50]),
        (7, 3, [3, 2, 2]),
        (5, 5, [1] * 5),
        (2, 3, [1, 1, 0]),
    ],
)
def test_shard_rows(rows: int, workers: int, sizes: list[int]) -> None:
    assert shard_rows(rows, workers) == sizes
    bounds = shard_bounds(rows, workers)
    assert [b.stop - b.start for b in bounds] == sizes
    assert bounds[0].start == 0
    assert bounds[-1].stop == rows


@given(st.integers(0, 10_000), st.integers(1, 64))
def test_shards_are_contiguous_and_as_even_as_can_be(rows: int, workers: int) -> None:
    sizes = shard_rows(rows, workers)
    assert sum(sizes) == rows
    assert len(sizes) == workers
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)  # the first shards take the extra rows
    bounds = shard_bounds(rows, workers)
    assert all(a.stop == b.start for a, b in itertools.pairwise(bounds))


def test_shard_rows_refuses_no_workers() -> None:
    with pytest.raises(ValueError, match="workers must be 1 or more"):
        shard_rows(10, 0)


@given(
    rows=st.integers(2, 60),
    workers=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_true_combination_is_the_whole_gradient(rows: int, workers: int, seed: int) -> None:
    workers = min(workers, rows)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 2))
    y = rng.normal(size=rows)
    theta = rng.normal(size=3)
    parts = parts_of(X, y, theta, workers)
    grad_b, grad_w = gradient(theta[0], theta[1:], X, y)
    combined = combine_true(parts)
    tolerance = Tolerance.for_dtype("float64", rows)
    difference = worst_difference(
        combined.gradient, np.concatenate([[grad_b], grad_w]), scale(X, y, theta), tolerance,
        labels(2),
    )  # fmt: skip
    assert difference.ok, difference.describe()
    assert combined.loss == pytest.approx(loss(theta[0], theta[1:], X, y), rel=1e-12)
    if rows % workers == 0:  # even shards: the mean of means is right too
        check = check_mean_of_means(parts, tolerance=tolerance, scale=scale(X, y, theta))
        assert check.ok, check.explanation


def test_a_dropped_shard_is_caught_by_the_global_row_count() -> None:
    X, y, theta = reference_data()
    parts = parts_of(X, y, theta, 4)
    truth = combine_true(parts).gradient
    dropped = combine_true(parts[:-1], rows=100).gradient
    difference = worst_difference(dropped, truth, scale(X, y, theta), TOLERANCE, labels(1))
    assert not difference.ok


def test_mean_of_means_on_uneven_shards_is_caught_and_explained() -> None:
    X, y, theta = reference_data()
    parts = parts_of(X, y, theta, 3)
    check = check_mean_of_means(parts, tolerance=TOLERANCE, scale=scale(X, y, theta))
    assert not check.ok
    assert check.difference is not None
    assert check.difference.where in ("dL/db", "dL/dw")
    expected = (
        "The three shards differ in size (34/33/33 rows), so averaging their mean gradients "
        "weights each row of the 34-row shard by 1/102, each row of the two 33-row shards by "
        "1/99, instead of every row by 1/100: rows in smaller shards count more."
    )
    assert check.explanation.startswith(expected)
    mean_of_means = combine_mean_of_means(parts).gradient
    off = abs(mean_of_means[1] - check.expected[1]) / abs(check.expected[1])
    assert f"dL/dw = {mean_of_means[1]:.6g} instead of {check.expected[1]:.6g}" in check.explanation
    assert f"{100 * off:.2g}%)" in check.explanation
    assert "more than a million times what rounding can explain" in check.explanation
    assert check.explanation.endswith("divide by the total row count, 100.")


def test_mean_of_means_on_even_shards_is_exact() -> None:
    X, y, theta = reference_data(99)
    parts = parts_of(X, y, theta, 3)
    check = check_mean_of_means(
        parts, tolerance=Tolerance.for_dtype("float64", 99), scale=scale(X, y, theta)
    )
    assert check.ok
    assert check.explanation.startswith(
        "All three shards have 33 rows, so the mean of their mean gradients weights every row by "
        "1/99, exactly as the mean over all rows does: it is right here"
    )
    assert "100 rows over 3 workers would (34/33/33)" in check.explanation


def test_mean_of_means_of_equal_shard_means_is_within_tolerance_and_says_why() -> None:
    """Uneven shards whose mean gradients coincide: not caught here, and the words say so."""
    equal = [  # 3 and 2 rows, both with mean gradient (1, 2)
        ShardPart(rows=3, loss_sum=3.0, gradient_sum=np.array([3.0, 6.0])),
        ShardPart(rows=2, loss_sum=2.0, gradient_sum=np.array([2.0, 4.0])),
    ]
    check = check_mean_of_means(equal, tolerance=TOLERANCE)
    assert check.ok
    assert "differ in size (3/2 rows)" in check.explanation
    assert "happen to be close" in check.explanation


def write(tmp_path: Path, code: str) -> str:
    path = tmp_path / "combination.py"
    path.write_text(textwrap.dedent(code))
    return f"{path}:combine"


RIGHT = """
    def combine(parts):
        n = sum(p["rows"] for p in parts)
        return sum(p["grad_b_sum"] for p in parts) / n, sum(p["grad_w_sum"] for p in parts) / n
"""
MEAN_OF_MEANS = """
    def combine(parts):
        k = len(parts)
        return sum(p["grad_b_mean"] for p in parts) / k, sum(p["grad_w_mean"] for p in parts) / k
"""
SUM_NOT_MEAN = """
    def combine(parts):  # all_reduce(SUM) of the per-shard means, never divided by K
        return sum(p["grad_b_mean"] for p in parts), sum(p["grad_w_mean"] for p in parts)
"""


def test_a_right_user_combination_passes(tmp_path: Path) -> None:
    X, y, theta = reference_data()
    parts = parts_of(X, y, theta, 3)
    combination = load_combination(write(tmp_path, RIGHT))
    check = check_combination(
        combination, parts, tolerance=TOLERANCE, scale=scale(X, y, theta), name="mine"
    )
    assert check.ok, check.explanation
    assert check.explanation == "mine agrees with the true combination (sums added, over N)"


def test_the_user_mean_of_means_is_caught_and_recognised(tmp_path: Path) -> None:
    X, y, theta = reference_data()
    parts = parts_of(X, y, theta, 3)
    check = check_combination(
        load_combination(write(tmp_path, MEAN_OF_MEANS)), parts, tolerance=TOLERANCE,
        scale=scale(X, y, theta), name="mine",
    )  # fmt: skip
    assert not check.ok
    assert check.explanation.startswith("mine is wrong: dL/d")
    assert "it is the mean of the shards' means: The three shards differ" in check.explanation


def test_a_sum_where_the_mean_belongs_is_caught_even_on_even_shards(tmp_path: Path) -> None:
    X, y, theta = reference_data()
    parts = parts_of(X, y, theta, 2)
    check = check_combination(
        load_combination(write(tmp_path, SUM_NOT_MEAN)), parts, tolerance=TOLERANCE,
        scale=scale(X, y, theta),
    )  # fmt: skip
    assert not check.ok
    assert "mean of the shards' means" not in check.explanation


def test_the_hook_receives_each_shards_sums_and_means(tmp_path: Path) -> None:
    parts = [
        ShardPart(rows=2, loss_sum=4.0, gradient_sum=np.array([2.0, 6.0])),
        ShardPart(rows=1, loss_sum=1.0, gradient_sum=np.array([1.0, 3.0])),
    ]
    inputs = shard_inputs(parts)
    assert inputs[0]["rows"] == 2
    assert inputs[0]["loss_sum"] == 4.0
    assert inputs[0]["loss_mean"] == 2.0
    assert inputs[0]["grad_b_sum"] == 2.0
    assert inputs[0]["grad_b_mean"] == 1.0
    np.testing.assert_array_equal(inputs[0]["grad_w_sum"], [6.0])
    np.testing.assert_array_equal(inputs[0]["grad_w_mean"], [3.0])


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("def combine(parts):\n    raise KeyError('rows')\n", "the combination raised KeyError"),
        ("def combine(parts):\n    return 1.0\n", "the combination raised TypeError"),
        (
            "import numpy as np\ndef combine(parts):\n    return 1.0, np.zeros(3)\n",
            "dL/dw of shape (1,); it returned 3 value(s)",
        ),
    ],
)
def test_a_broken_combination_is_reported(tmp_path: Path, code: str, error: str) -> None:
    X, y, theta = reference_data()
    parts = parts_of(X, y, theta, 3)
    check = check_combination(load_combination(write(tmp_path, code)), parts, tolerance=TOLERANCE)
    assert not check.ok
    assert check.gradient is None
    assert check.error is not None
    assert error in check.error


def test_load_errors_name_the_option(tmp_path: Path) -> None:
    with pytest.raises(CombinationError, match=r"^--combine .*missing\.py does not exist"):
        load_combination(f"{tmp_path / 'missing.py'}:combine")
    with pytest.raises(CombinationError, match=r"^--shard-hook .*: expected FILE\.py:FUNCTION"):
        load_combination("nothing", option="--shard-hook")
    with pytest.raises(CombinationError, match="has no function named 'other'"):
        load_combination(write(tmp_path, RIGHT).replace(":combine", ":other"))
