"""Why the descent ends where it does: the Hessian's eigenvalues, the stable learning rates and
how far the optimum is in iterations.

For the MSE the Hessian H is constant, so gradient descent is linear: the error ``e = θ - θ*``
evolves as ``e_{k+1} = (I - lr·H) e_k``. Along the eigenvector of eigenvalue λ it shrinks by
``|1 - lr·λ|`` per step: the descent is stable only when ``lr < 2/λ_max``, and the direction of
the smallest λ shrinks slowest. With a condition number ``λ_max/λ_min`` in the tens of thousands,
any stable rate leaves that direction almost untouched after 1000 steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Stability", "analyse", "iterations_to_reach"]

# The distance from the optimum that counts as "there".
NEAR = 1e-6


@dataclass
class Stability:
    eigenvalues: np.ndarray  # ascending
    condition_number: float  # inf when H is singular
    max_stable_lr: float  # 2 / λ_max
    lr: float
    iterations_to_optimum: int | None  # None: never, or unknown (a Hessian that varies)
    constant: bool = True  # the Hessian is the same everywhere (the MSE, ridge)
    where: str = ""  # where a varying Hessian was taken ("at the optimum")
    notes: list[str] = field(default_factory=list)

    @property
    def stable(self) -> bool:
        return self.lr < self.max_stable_lr


def iterations_to_reach(
    H: np.ndarray, lr: float, start: np.ndarray, optimum: np.ndarray, near: float = NEAR
) -> int | None:
    """Fewest steps after which ``|θ_k - θ*| <= near``, from the eigen-decomposition of H.

    In H's eigenbasis the error's components are ``c_i (1 - lr λ_i)^k``; the distance is
    non-increasing in k when every ``|1 - lr λ_i| < 1``, so a bisection finds the first k.
    Returns None when some component that is not already small never shrinks.
    """
    eigenvalues, vectors = np.linalg.eigh(H)
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
) -> Stability:
    """Eigenvalues, conditioning, the stable-rate bound and the iterations needed, for `lr`.

    `H` is the Hessian: constant for the MSE and ridge, for which the iterations to the optimum
    follow exactly; for other losses it is the Hessian at one point (`where` says which), and the
    bound holds near that point only.
    """
    H = np.asarray(H, dtype=np.float64)
    eigenvalues = np.linalg.eigvalsh((H + H.T) / 2)
    largest = float(eigenvalues[-1])
    # Eigenvalues this close to 0 are rounding noise of a singular H.
    tiny = max(abs(largest), abs(float(eigenvalues[0]))) * 1e-13 * H.shape[0]
    smallest = float(eigenvalues[0]) if eigenvalues[0] > tiny else 0.0
    reach = None
    if constant and optimum is not None:
        reach = iterations_to_reach(H, lr, start, optimum)
    stability = Stability(
        eigenvalues=eigenvalues,
        condition_number=largest / smallest if smallest > 0 else math.inf,
        max_stable_lr=2 / largest if largest > 0 else math.inf,
        lr=lr,
        iterations_to_optimum=reach,
        constant=constant,
        where=where,
    )
    if not stability.stable:
        near = "" if constant else f" (the Hessian {where})"
        stability.notes.append(
            f"warning: --lr {lr:g} is above the largest stable learning rate "
            f"2/λ_max = {stability.max_stable_lr:.6g}{near}; expect the descent to diverge"
        )
    return stability
