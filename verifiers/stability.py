"""Why the descent ends where it does: the Hessian's eigenvalues, the stable learning rates and
how far the optimum is in iterations.

For the MSE the Hessian H is constant, so gradient descent is linear: the error ``e = θ - θ*``
evolves as ``e_{k+1} = (I - lr·H) e_k``. Along the eigenvector of eigenvalue λ it shrinks by
``|1 - lr·λ|`` per step: the descent is stable only when ``lr < 2/λ_max``, and the direction of
the smallest λ shrinks slowest. With a condition number ``λ_max/λ_min`` in the tens of thousands,
any stable rate leaves that direction almost untouched after 1000 steps.

The Hessian is computed in floating point, so its eigenvalues carry rounding error. Each entry
is a sum of terms, off by at most ``atol·Σ|terms| + rtol·|H_ij|`` (the run's tolerance, with the
model's :meth:`~verifiers.models.base.Model.hessian_scales`); an error matrix E bounded
entrywise by that matrix M moves every eigenvalue by at most ``‖E‖₂ <= ‖M‖₂`` (Weyl), and the
eigensolver adds a few ε·‖H‖ of its own. Eigenvalues within that bound of zero are zero: the
loss is flat along their directions (a saturated loss, redundant parameters), and the sign and
size the arithmetic gave them mean nothing. The conditioning and the stable-rate bound come from
the others only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from verifiers.compare import Tolerance

__all__ = ["Stability", "analyse", "eigenvalue_rounding", "iterations_to_reach"]

# The distance from the optimum that counts as "there".
NEAR = 1e-6
# The eigensolver's own error, in units of n·ε·‖H‖ (LAPACK's bound is a modest multiple of it).
SOLVER_ERROR = 8


@dataclass
class Stability:
    eigenvalues: np.ndarray  # ascending; those within `rounding` of zero are exactly 0
    condition_number: float  # inf when H is singular
    max_stable_lr: float  # 2 / λ_max (inf when no eigenvalue is above zero)
    lr: float
    iterations_to_optimum: int | None  # None: never, or unknown (a Hessian that varies)
    constant: bool = True  # the Hessian is the same everywhere (the MSE, ridge)
    where: str = ""  # where a varying Hessian was taken ("at the optimum")
    notes: list[str] = field(default_factory=list)
    rounding: float = 0.0  # how far rounding can move an eigenvalue (see the module docstring)
    computed: np.ndarray | None = None  # the eigenvalues as the arithmetic gave them

    @property
    def stable(self) -> bool:
        return self.lr < self.max_stable_lr

    @property
    def zeros(self) -> int:
        """How many eigenvalues are zero within rounding (the flat directions)."""
        return int(np.count_nonzero(self.eigenvalues == 0))

    @property
    def negative(self) -> bool:
        """Whether some eigenvalue is below zero by more than rounding (negative curvature)."""
        return bool(self.eigenvalues.size) and float(self.eigenvalues[0]) < 0


def eigenvalue_rounding(
    H: np.ndarray,
    eigenvalues: np.ndarray,
    scales: np.ndarray | None = None,
    tolerance: Tolerance | None = None,
) -> float:
    """How far rounding can move an eigenvalue of the computed Hessian `H`: the spectral norm of
    the entrywise error bound ``atol·scales + rtol·|H|`` (when the Hessian's term sizes `scales`
    and the run's `tolerance` are known), plus the eigensolver's own error."""
    H = np.asarray(H, dtype=np.float64)
    n = H.shape[0]
    eps = float(np.finfo(np.float64).eps)
    size = float(np.max(np.abs(eigenvalues))) if np.size(eigenvalues) else 0.0
    bound = SOLVER_ERROR * n * eps * size
    if scales is not None and tolerance is not None:
        M = tolerance.atol * np.abs(np.broadcast_to(scales, H.shape)) + tolerance.rtol * np.abs(H)
        M = (M + M.T) / 2
        if np.isfinite(M).all():
            # A non-negative matrix's spectral norm is its largest eigenvalue (Perron).
            bound += float(np.linalg.eigvalsh(M)[-1])
    return bound


def iterations_to_reach(
    H: np.ndarray,
    lr: float,
    start: np.ndarray,
    optimum: np.ndarray,
    near: float = NEAR,
    rounding: float = 0.0,
) -> int | None:
    """Fewest steps after which ``|θ_k - θ*| <= near``, from the eigen-decomposition of H.

    In H's eigenbasis the error's components are ``c_i (1 - lr λ_i)^k``; the distance is
    non-increasing in k when every ``|1 - lr λ_i| < 1``, so a bisection finds the first k.
    Eigenvalues within `rounding` of zero are zero (those components never shrink). Returns
    None when some component that is not already small never shrinks.
    """
    eigenvalues, vectors = np.linalg.eigh((np.asarray(H, dtype=np.float64) + np.transpose(H)) / 2)
    eigenvalues = np.where(np.abs(eigenvalues) <= rounding, 0.0, eigenvalues)
    c = vectors.T @ (np.asarray(start, dtype=np.float64) - optimum)
    rho = np.abs(1 - lr * eigenvalues)

    def distance(k: int) -> float:
        with np.errstate(under="ignore"):
            return float(np.sqrt(np.sum((c * rho ** float(k)) ** 2)))

    if distance(0) <= near:
        return 0
    stuck = (rho >= 1) & (np.abs(c) > near / math.sqrt(c.size))
    if stuck.any():
        return None
    low, high = 0, 1
    while distance(high) > near:
        low, high = high, high * 2
        if high > 1 << 62:
            return None
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if distance(middle) <= near else (middle, high)
    return high


def analyse(
    H: np.ndarray,
    lr: float,
    start: np.ndarray,
    optimum: np.ndarray | None,
    constant: bool = True,
    where: str = "",
    scales: np.ndarray | None = None,
    tolerance: Tolerance | None = None,
) -> Stability:
    """Eigenvalues, conditioning, the stable-rate bound and the iterations needed, for `lr`.

    `H` is the Hessian: constant for the MSE and ridge, for which the iterations to the optimum
    follow exactly; for other losses it is the Hessian at one point (`where` says which), and the
    bound holds near that point only. `scales` (the sizes of the terms summed into each entry,
    :meth:`~verifiers.models.base.Model.hessian_scales`) and the run's `tolerance` say how far
    rounding can move an eigenvalue: those within that of zero are zero, and the conditioning
    and the bound come from the others (see :func:`eigenvalue_rounding`).
    """
    H = np.asarray(H, dtype=np.float64)
    computed = np.linalg.eigvalsh((H + H.T) / 2)
    rounding = eigenvalue_rounding(H, computed, scales, tolerance)
    eigenvalues = np.where(np.abs(computed) <= rounding, 0.0, computed)
    largest = float(eigenvalues[-1])
    smallest = float(eigenvalues[0])
    reach = None
    if constant and optimum is not None:
        reach = iterations_to_reach(H, lr, start, optimum, rounding=rounding)
    stability = Stability(
        eigenvalues=eigenvalues,
        condition_number=largest / smallest if smallest > 0 else math.inf,
        max_stable_lr=2 / largest if largest > 0 else math.inf,
        lr=lr,
        iterations_to_optimum=reach,
        constant=constant,
        where=where,
        rounding=rounding,
        computed=computed,
    )
    if not stability.stable:
        near = "" if constant else f" (the Hessian {where})"
        stability.notes.append(
            f"warning: --lr {lr:g} is above the largest stable learning rate "
            f"2/λ_max = {stability.max_stable_lr:.6g}{near}; expect the descent to diverge"
        )
    return stability
