"""Newton's method for the convex losses without a closed-form optimum (logistic, softmax).

Each step solves ``H·s = ∇L`` and moves ``θ ← θ - t·s``, halving t until the loss drops by at
least a small share of what the local quadratic model promises (backtracking on the Armijo
condition), so a step that overshoots is never taken. Near the optimum t = 1 is accepted and the
gradient shrinks quadratically: a few steps take it to rounding level.

The step is a least-squares solution (``numpy.linalg.lstsq``): where H is singular (softmax's
scores can all be shifted by the same amount without changing the loss; dependent features) it
is the shortest step, which keeps θ out of the directions that change nothing. From θ = 0 the
result is then the minimiser of smallest norm, the one gradient descent from 0 also approaches.

Convergence is checked, not assumed: θ is returned only when every gradient component is within
the verifier's own tolerance of zero, ``|g_j| <= atol·Σ|terms|_j`` (see
:mod:`verifiers.compare`). The loss may have no finite minimiser at all (separable classes):
`separated(θ)` says when θ puts every row on its right side of the boundary or on it, and at
least one strictly on its right side. Then there is none: along the ray tθ, t > 1, no row's
loss grows and the strict row's keeps falling, from any starting point, so no point is lowest. (A
row "on" the boundary is one whose score is within rounding of it: with classes that overlap
only at the boundary, Newton's steps grow forever while the gradient falls below rounding.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from verifiers.compare import Tolerance

__all__ = ["NewtonProblem", "NewtonResult", "newton", "separated", "steps"]

# A score within this many ε·Σ|terms| of the boundary is on it (see `separated`).
BOUNDARY_EPS = 64


def separated(margins: np.ndarray, sizes: np.ndarray) -> bool:
    """Whether every margin is >= 0 and one is > 0, up to rounding (``BOUNDARY_EPS·ε·sizes``).

    A row's margin is how far its own class's score is past the boundary (negative: on the
    wrong side); `sizes` are the Σ|terms| of the scores, whose rounding decides what "on the
    boundary" means.
    """
    slack = BOUNDARY_EPS * float(np.finfo(np.float64).eps) * sizes
    return bool(np.all(margins >= -slack) and np.any(margins > slack))


def steps(count: int) -> str:
    """``1 step``, ``7 steps``: for the notes that say how Newton's method went."""
    return f"{count} step" if count == 1 else f"{count} steps"


# Steps before giving up: from θ = 0 a convex loss like these needs a handful, rarely 20.
MAX_ITERATIONS = 100
# The Armijo constant: accept a step that achieves this share of the predicted decrease.
ARMIJO = 1e-4
# Halvings of the step before the line search gives up (t = 2⁻⁶⁰ moves nothing any more).
HALVINGS = 60


@dataclass
class NewtonProblem:
    """The loss, its gradient, Hessian and Σ|terms| of the gradient, all in float64 at θ."""

    loss: Callable[[np.ndarray], float]
    gradient: Callable[[np.ndarray], np.ndarray]
    hessian: Callable[[np.ndarray], np.ndarray]
    gradient_scales: Callable[[np.ndarray], np.ndarray]
    loss_scale: Callable[[np.ndarray], float]
    separated: Callable[[np.ndarray], bool]
    rows: int


@dataclass
class NewtonResult:
    theta: np.ndarray | None  # None: no optimum found (why is in `reason`)
    iterations: int
    reason: str = ""  # "separable" or "stalled" when theta is None


def newton(problem: NewtonProblem, start: np.ndarray) -> NewtonResult:
    """Minimise from `start`; θ when the gradient is zero within tolerance, else None and why."""
    atol = Tolerance.for_dtype(np.float64, problem.rows).atol
    eps = float(np.finfo(np.float64).eps)
    theta = np.asarray(start, dtype=np.float64).copy()
    loss = problem.loss(theta)
    for iteration in range(MAX_ITERATIONS + 1):
        if problem.separated(theta):
            return NewtonResult(None, iteration, "separable")
        gradient = problem.gradient(theta)
        if np.all(np.abs(gradient) <= atol * problem.gradient_scales(theta)):
            return NewtonResult(theta, iteration)
        if iteration == MAX_ITERATIONS:
            break
        step = np.linalg.lstsq(problem.hessian(theta), gradient, rcond=None)[0]
        predicted = float(gradient @ step)  # > 0: H is positive semi-definite
        # A loss that changes by less than its own rounding has not changed.
        noise = 4 * eps * problem.loss_scale(theta)
        t = 1.0
        for _ in range(HALVINGS):
            candidate = theta - t * step
            new_loss = problem.loss(candidate)
            if np.isfinite(new_loss) and new_loss <= loss - ARMIJO * t * predicted + noise:
                break
            t /= 2
        else:
            break  # no step lowers the loss: stalled
        theta, loss = candidate, new_loss
    return NewtonResult(None, iteration, "stalled")
