"""Combining the shards' results into one gradient, and saying when a combination is wrong.

Every shard k of n_k rows returns the sums ``S_k = Σ_{i in k} ∂ℓ_i/∂θ`` (and of the loss). The
true gradient of the mean loss over all N rows is

    ∇L = (1/N) Σ_k S_k                               (combine_true)

whatever the shard sizes. The classic slip is to let each worker normalise its own loss, then
average the K workers' means:

    (1/K) Σ_k S_k / n_k                              (combine_mean_of_means)

which gives each row of shard k the weight ``1/(K n_k)`` instead of ``1/N``. When every shard
has N/K rows these are the same number; when they differ, rows of the smaller shards count more
and the gradient is off. A user-written combination (:func:`load_combination`) is checked
against the true one in the same way (:func:`check_combination`).

numpy only.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from verifiers.compare import Difference, Tolerance, worst_difference
from verifiers.distributed.shards import ShardPart, shard_rows
from verifiers.engines.base import Evaluation
from verifiers.isolation import UserCodeError, user_call

__all__ = [
    "Combination",
    "CombinationCheck",
    "CombinationError",
    "check_combination",
    "check_mean_of_means",
    "combine_mean_of_means",
    "combine_true",
    "explain_mean_of_means",
    "load_combination",
    "shard_inputs",
]

# A user's combination: the shards' results (see shard_inputs) -> (dL/db, dL/dw).
Combination = Callable[[list[dict]], tuple[float, np.ndarray]]


class CombinationError(ValueError):
    """A combination that cannot be loaded, raises, or returns something of the wrong shape."""


def combine_true(parts: Sequence[ShardPart], rows: int | None = None) -> Evaluation:
    """The loss and gradient of the whole data set: the shards' sums added, over N.

    `rows` is N; by default the shards' rows added up (pass it to catch a dropped shard).
    """
    n = sum(p.rows for p in parts) if rows is None else rows
    loss = sum(p.loss_sum for p in parts) / n
    gradient = np.sum([p.gradient_sum for p in parts], axis=0) / n
    return Evaluation(float(loss), np.asarray(gradient, dtype=np.float64))


def combine_mean_of_means(parts: Sequence[ShardPart]) -> Evaluation:
    """The classic slip: the mean over shards of each shard's own mean loss and gradient."""
    loss = np.mean([p.loss_mean for p in parts])
    gradient = np.mean([p.gradient_mean for p in parts], axis=0)
    return Evaluation(float(loss), np.asarray(gradient, dtype=np.float64))


def shard_inputs(parts: Sequence[ShardPart]) -> list[dict]:
    """What a user's combination receives: one dict per shard, in rank order.

    Keys: ``rows`` (n_k); ``loss_sum``, ``grad_b_sum`` (a float) and ``grad_w_sum`` (shape
    (d,)): sums over the shard's rows of the per-row loss and of its gradient; ``loss_mean``,
    ``grad_b_mean``, ``grad_w_mean``: the same divided by n_k, i.e. the shard's own mean loss
    and its gradient (what a worker that normalises its own loss computes).
    """
    return [
        {
            "rows": p.rows,
            "loss_sum": float(p.loss_sum),
            "grad_b_sum": float(p.gradient_sum[0]),
            "grad_w_sum": p.gradient_sum[1:].copy(),
            "loss_mean": float(p.loss_mean),
            "grad_b_mean": float(p.gradient_mean[0]),
            "grad_w_mean": p.gradient_mean[1:].copy(),
        }
        for p in parts
    ]


def load_combination(spec: str, option: str = "--combine") -> Combination:
    """Import `function` from `file.py`, given as ``"file.py:function"`` (like ``--manual``).

    The function takes the list of :func:`shard_inputs` dicts and returns ``(dL/db, dL/dw)``: a
    float and an array of shape (d,). `option` names the command-line option in messages.
    """
    from verifiers.user_formula import FormulaLoadError, load_formula

    try:
        return load_formula(spec)  # the same importer as --manual; only the messages differ
    except FormulaLoadError as error:
        message = str(error).replace("--manual", option, 1)
        raise CombinationError(message) from None


def apply_combination(
    function: Combination, parts: Sequence[ShardPart], label: str = "the combination"
) -> np.ndarray:
    """The flat gradient ``(dL/db, dL/dw...)`` a combination returns, or CombinationError.

    The combination is user code named `label` (see :mod:`verifiers.isolation`): a
    ``BaseException`` other than an ``Exception`` is a UserCodeError, not a wrong combination.
    """
    features = parts[0].gradient_sum.size - 1

    def combined() -> np.ndarray:  # reading what it returned may run user code too
        grad_b, grad_w = function(shard_inputs(parts))
        return np.concatenate(
            [np.asarray(grad_b, np.float64).reshape(1), np.asarray(grad_w, np.float64).reshape(-1)]
        )

    try:
        gradient = user_call(label, combined)
    except UserCodeError:
        raise
    except Exception as error:
        raise CombinationError(f"the combination raised {type(error).__name__}: {error}") from None
    if gradient.shape != (features + 1,):
        raise CombinationError(
            f"the combination must return (dL/db, dL/dw) with dL/dw of shape ({features},); "
            f"it returned {gradient.size - 1} value(s) for dL/dw"
        )
    return gradient


@dataclass
class CombinationCheck:
    """How one combination of the shards' results compares with the true gradient."""

    name: str  # "mean of per-shard means", or the user's "file.py:function"
    gradient: np.ndarray | None  # what it gave (None when it failed)
    expected: np.ndarray  # the true combination
    difference: Difference | None  # its worst element against the true gradient
    explanation: str  # in words, for a learner
    error: str | None = None  # it raised or returned the wrong shape

    @property
    def ok(self) -> bool:
        return self.error is None and self.difference is not None and self.difference.ok


def check_combination(
    function: Combination,
    parts: Sequence[ShardPart],
    *,
    tolerance: Tolerance,
    scale: np.ndarray | None = None,
    names: list[str] | None = None,
    name: str = "the combination",
    label: str | None = None,
) -> CombinationCheck:
    """Run a user's combination on the shards' results and compare it with the true gradient.

    `scale` is Σ|terms| of each gradient component (see :mod:`verifiers.compare`); by default
    the size of the shard sums being combined, ``Σ_k |S_k| / N``, a lower bound of it. `label`
    names the user code where it ends the run (default: `name`).
    """
    expected = combine_true(parts).gradient
    labels = _labels(names, expected.size)
    try:
        gradient = apply_combination(function, parts, label or name)
    except CombinationError as error:
        return CombinationCheck(name, None, expected, None, f"{name}: {error}", str(error))
    difference = worst_difference(gradient, expected, _scale(parts, scale), tolerance, labels)
    if difference.ok:
        words = f"{name} agrees with the true combination (sums added, over N)"
    else:
        words = f"{name} is wrong: {difference.describe()} against the true combination"
        if np.allclose(gradient, combine_mean_of_means(parts).gradient, rtol=1e-12, atol=0):
            words += "; it is the mean of the shards' means: " + explain_mean_of_means(parts, names)
    return CombinationCheck(name, gradient, expected, difference, words)


def check_mean_of_means(
    parts: Sequence[ShardPart],
    *,
    tolerance: Tolerance,
    scale: np.ndarray | None = None,
    names: list[str] | None = None,
) -> CombinationCheck:
    """The classic slip, checked and explained (it is caught when the shards are uneven)."""
    expected = combine_true(parts).gradient
    gradient = combine_mean_of_means(parts).gradient
    labels = _labels(names, expected.size)
    difference = worst_difference(gradient, expected, _scale(parts, scale), tolerance, labels)
    explanation = explain_mean_of_means(parts, names, difference)
    return CombinationCheck("mean of per-shard means", gradient, expected, difference, explanation)


def explain_mean_of_means(
    parts: Sequence[ShardPart],
    names: list[str] | None = None,
    difference: Difference | None = None,
) -> str:
    """In words a learner understands: how far the mean of the shards' means is from the truth.

    With `difference` (from the tolerance check), it also says whether that is within tolerance.
    """
    sizes = [p.rows for p in parts]
    k, n = len(sizes), sum(sizes)
    expected = combine_true(parts).gradient
    wrong = combine_mean_of_means(parts).gradient
    labels = _labels(names, expected.size)
    if len(set(sizes)) == 1:
        off = _largest_relative(wrong, expected)
        every = "Both" if k == 2 else f"All {_number(k)}"
        return (
            f"{every} shards have {sizes[0]} rows, so the mean of their mean gradients weights "
            f"every row by 1/{n}, exactly as the mean over all rows does: it is right here "
            f"(off by rounding only, {off:.1e} relative). It goes wrong as soon as the shards "
            f"differ in size, as {n + 1} rows over {k} workers would "
            f"({'/'.join(map(str, shard_rows(n + 1, k)))})."
        )
    weights = ", ".join(
        f"each row of {_shards(size, count)} by 1/{k * size}"
        for size, count in sorted(Counter(sizes).items(), reverse=True)
    )
    effects = "; ".join(
        _effect(label, w, e) for label, w, e in zip(labels, wrong, expected, strict=True)
    )
    text = (
        f"The {_number(k)} shards differ in size ({'/'.join(map(str, sizes))} rows), so "
        f"averaging their mean gradients weights {weights}, instead of every row by 1/{n}: rows "
        f"in smaller shards count more. Here that gives {effects}."
    )
    if difference is not None and difference.ok:
        text += (
            " These shards' mean gradients happen to be close, so the error stays within "
            "tolerance on this data; on other data it would not."
        )
    elif difference is not None and math.isfinite(difference.ratio):
        times = (
            f"{difference.ratio:,.0f} times"
            if difference.ratio < 1e6
            else "more than a million times"
        )
        text += f" That is {times} what rounding can explain: a real error, not noise."
    return text + f" The fix: add up the shards' sums and divide by the total row count, {n}."


def _labels(names: list[str] | None, size: int) -> list[str]:
    """``dL/db, dL/dw`` (one feature) or ``dL/db, dL/dw[0], ...``."""
    if names is None:
        names = ["b", "w"] if size == 2 else ["b", *(f"w[{j}]" for j in range(size - 1))]
    return [f"dL/d{name}" for name in names]


def _scale(parts: Sequence[ShardPart], scale: np.ndarray | None) -> np.ndarray:
    if scale is not None:
        return np.asarray(scale, dtype=np.float64)
    n = sum(p.rows for p in parts)
    return np.sum([np.abs(p.gradient_sum) for p in parts], axis=0) / n


def _shards(size: int, count: int) -> str:
    return f"the {size}-row shard" if count == 1 else f"the {_number(count)} {size}-row shards"


_NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def _number(count: int) -> str:
    """Small counts in words, as people write them."""
    return _NUMBERS[count] if count < len(_NUMBERS) else str(count)


def _effect(label: str, wrong: float, expected: float) -> str:
    off = abs(wrong - expected)
    share = f", {100 * off / abs(expected):.2g}%" if expected != 0 else ""
    return f"{label} = {wrong:.6g} instead of {expected:.6g} (off by {off:.3g}{share})"


def _largest_relative(a: np.ndarray, b: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(a == b, 0.0, np.abs(a - b) / np.abs(b))
    return float(np.nan_to_num(relative, nan=np.inf).max())
