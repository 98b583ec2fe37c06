"""Is the sharded result the single-process result? The project's tolerance rules, applied.

A sharded run does the same arithmetic as a single process in another order: each worker sums
its own rows, then the all-reduce adds the K partial sums. That is one more way of bracketing
the same sum, and no running total is longer than in the single process, so its rounding error
has the same bound, a multiple of ``ε Σ|terms|``. No extra allowance is needed: the loss and
gradient at θ0 are judged with the run's tolerance (:meth:`Tolerance.for_dtype
<verifiers.compare.Tolerance.for_dtype>`, whatever it is at the time), and the descent with that
tolerance widened by ``√(iterations + 1)``, exactly as the engines are judged against each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from verifiers.compare import Difference, Tolerance, worst_difference
from verifiers.distributed.shards import ShardedResult
from verifiers.engines.base import Evaluation, Trajectory

__all__ = ["ShardedComparison", "compare_with_single"]


@dataclass
class ShardedComparison:
    """The worst element of the gradient check at θ0 and of the descent check."""

    gradient: Difference
    descent: Difference

    @property
    def ok(self) -> bool:
        return self.gradient.ok and self.descent.ok


def compare_with_single(
    result: ShardedResult,
    evaluation: Evaluation,
    trajectory: Trajectory,
    *,
    tolerance: Tolerance,
    gradient_scale: np.ndarray,
    loss_scale: float,
    iterations: int,
    theta0: np.ndarray,
    names: list[str] | None = None,
) -> ShardedComparison:
    """Compare a sharded run with a single-process one (the expected values).

    `gradient_scale` is Σ|terms| of ``(loss, dL/db, dL/dw...)`` at θ0 (the loss's first);
    `loss_scale` is Σ|terms| of the loss along the descent (the largest of its value at θ0 and
    at the final θ, as for the engines).
    """
    size = result.gradient.size
    if names is None:
        names = ["b", "w"] if size == 2 else ["b", *(f"w[{j}]" for j in range(size - 1))]
    gradient = worst_difference(
        np.concatenate([[result.loss], result.gradient]),
        np.concatenate([[evaluation.loss], evaluation.gradient]),
        gradient_scale,
        tolerance,
        ["loss at start"] + [f"dL/d{name} at start" for name in names],
    )
    return ShardedComparison(
        gradient,
        _compare_descents(
            result.descent, trajectory, tolerance, loss_scale, iterations, theta0, names
        ),
    )


def _compare_descents(
    actual: Trajectory,
    expected: Trajectory,
    tolerance: Tolerance,
    loss_scale: float,
    iterations: int,
    theta0: np.ndarray,
    names: list[str],
) -> Difference:
    if actual.diverged_at != expected.diverged_at:
        return Difference(
            "iteration at which the descent diverged (None: it did not)",
            _nan_if_none(actual.diverged_at),
            _nan_if_none(expected.diverged_at),
            0.0,
        )
    # Rounding accumulates over the steps like a random walk: widen by √(steps + 1).
    widened = tolerance.scaled(math.sqrt(iterations + 1))
    steps = min(actual.steps, expected.steps)
    worst = worst_difference(
        actual.losses[: steps + 1],
        expected.losses[: steps + 1],
        loss_scale,
        widened,
        [f"loss after {k} steps" for k in range(steps + 1)],
    )
    theta_scale = max(np.abs(expected.theta).max(), np.abs(theta0).max())
    final = worst_difference(
        actual.theta, expected.theta, theta_scale, widened, [f"final {n}" for n in names]
    )
    return max((worst, final), key=lambda d: d.ratio)


def _nan_if_none(value: int | None) -> float:
    return math.nan if value is None else float(value)
