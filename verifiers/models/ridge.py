"""Ridge regression: the MSE of ``y ≈ X·w + b`` plus the penalty ``λ‖w‖²``, by hand.

Loss: ``L(b, w) = (1/N) Σ_i r_i² + λ Σ_j w_j²`` with the residual ``r_i = y_i - (X_i·w + b)``.
The intercept b is not penalised: shifting every y by a constant should shift b, not cost
anything. The penalty is not a sum over rows, so it is added once, after the mean.

The first part is the MSE (see :mod:`verifiers.models.mse`); the penalty's derivative is
``∂(λ w_j²)/∂w_j = 2λ w_j`` and it does not involve b, so

    dL/db = -(2/N) Σ_i r_i              dL/dw = -(2/N) Σ_i X_i r_i + 2λ w

Differentiating again, the penalty adds ``2λ`` to the diagonal of the w block and nothing else:

    H = (2/N) [[N, 1ᵀX], [Xᵀ1, XᵀX]] + 2λ [[0, 0], [0, I]]

It does not depend on (b, w): the Hessian is constant, as for the MSE, and with λ > 0 it is
positive definite even when the features are dependent, so the optimum is unique. Setting the
gradient to 0 gives the normal equations ``[[N, 1ᵀX], [Xᵀ1, XᵀX + NλI]] θ = [1ᵀy, Xᵀy]``; they
are the least-squares problem of the design ``[1, X]`` stacked on the rows ``[0, √(Nλ)·I]``
with targets ``[y, 0]``, which is how :func:`ridge_solution` solves them (without squaring the
condition number, as forming the normal equations would).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from verifiers.chunks import row_chunks
from verifiers.models import mse
from verifiers.models.base import ModelOption, Optimum, Params, Scales, Slip

__all__ = ["RidgeModel", "ridge_solution"]


def ridge_solution(X: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
    """The minimiser ``(b, w)`` of ``(1/N)‖y - X·w - b‖² + λ‖w‖²`` (float64).

    Each chunk of ``[1, X, y]`` is reduced to a small triangle by a QR factorisation (an
    orthogonal Q keeps every length, so the reduced rows have the same least-squares
    solutions); the triangles are stacked with the penalty rows ``[0, √(Nλ)·I, 0]`` and solved
    by lstsq. With λ = 0 it is the least-squares optimum (the minimum-norm one if not unique).
    """
    n, d = X.shape
    blocks = []
    for rows in row_chunks(n):
        augmented = np.column_stack([np.ones(rows.stop - rows.start), X[rows], y[rows]])
        blocks.append(np.linalg.qr(augmented.astype(np.float64, copy=False), mode="r"))
    penalty = np.zeros((d, d + 2))
    penalty[:, 1:-1] = math.sqrt(n * l2) * np.eye(d)
    system = np.vstack([*blocks, penalty])
    theta = np.linalg.lstsq(system[:, :-1], system[:, -1], rcond=None)[0]
    return float(theta[0]), theta[1:]


class RidgeModel(mse.MSEModel):
    """The MSE plus ``λ‖w‖²`` (``--l2 λ``); see the module docstring for the derivation."""

    name = "ridge"
    summary = "mean squared error of y ≈ X·w + b plus λ‖w‖² (--l2)"
    constant_hessian = True
    # The workers add up the MSE's row losses; the penalty, no row's, is added once after.
    shardable = True
    options = (
        ModelOption(
            "l2",
            0.1,
            "the weight λ of ridge's penalty λ·|w|² (--model ridge only)",
            "the weight of the penalty λ·|w|²",
        ),
    )

    @property
    def l2(self) -> float:
        return float(self.option("l2"))

    @property
    def optimum_name(self) -> str:
        return "ridge optimum"

    def notes(self) -> list[str]:
        """With λ > 0 the penalty makes the Hessian regular whatever the data."""
        return super().notes() if self.l2 == 0 else []

    @property
    def formula(self) -> str:  # an instance's own: it shows λ
        return f"model y ≈ X·w + b, loss L = mean((y - (X·w + b))²) + {self.l2:g}·‖w‖²"

    def penalty(self, params: Params, xp: Any) -> Any:
        w = params["w"]
        return self.l2 * xp.sum(w * w)

    def hand_gradient(self, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        gradient = super().hand_gradient(params)
        gradient["w"] = gradient["w"] + 2 * self.l2 * np.asarray(params["w"])
        return gradient

    def hand_loss_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The MSE's one-pass loss and gradient plus the penalty's ``λ‖w‖²`` and ``2λw``."""
        value, gradient = super().hand_loss_and_gradient(theta)
        w = np.asarray(theta, dtype=self.data.dtype)[1:]
        gradient[1:] += 2 * self.l2 * w
        return value + self.l2 * float(w @ w), gradient

    def hand_hessian(self, theta: np.ndarray) -> np.ndarray:
        H = super().hand_hessian(theta).copy()
        d = self.data.features
        H[1:, 1:] += 2 * self.l2 * np.eye(d, dtype=H.dtype)
        return H

    def optimum(self) -> Optimum:
        b, w = ridge_solution(self.data.X, self.data.y, self.l2)
        return Optimum(np.concatenate([[b], w]), self.optimum_name, "the normal equations")

    def scales(self, theta: np.ndarray) -> Scales:
        """The MSE's Σ|terms|, plus ``λ Σ w_j²`` for the loss and ``2λ|w_j|`` for dL/dw_j."""
        scales = super().scales(theta)
        w = np.abs(np.asarray(theta[1:], dtype=np.float64))
        gradient = scales.gradient.copy()
        gradient[1:] += 2 * self.l2 * w
        return Scales(scales.loss + self.l2 * float(w @ w), gradient)

    def hessian_scales(self, theta: np.ndarray) -> np.ndarray:
        total = super().hessian_scales(theta).copy()
        total[1:, 1:] += 2 * self.l2 * np.eye(self.data.features)
        return total

    def slips(self) -> list[Slip]:
        """The MSE's residual slips (with the penalty right), then the penalty's own slips."""
        l2 = self.l2

        def plus_penalty(gradient: Callable[[np.ndarray], np.ndarray]):
            def wrong(theta: np.ndarray) -> np.ndarray:
                theta = np.asarray(theta, dtype=np.float64)
                return gradient(theta) + 2 * l2 * np.concatenate([[0.0], theta[1:]])

            return wrong

        residual_slips = [
            Slip(s.key, s.explanation, plus_penalty(s.gradient)) for s in super().slips()
        ]

        def mse_gradient(theta: np.ndarray) -> np.ndarray:
            params = self.unflatten(np.asarray(theta, dtype=np.float64))
            plain = mse.MSEModel.hand_gradient(self, params)
            return np.concatenate([np.reshape(plain["b"], 1), plain["w"]]).astype(np.float64)

        def penalty_slip(factor_w: float, factor_b: float) -> Callable[[np.ndarray], np.ndarray]:
            def wrong(theta: np.ndarray) -> np.ndarray:
                theta = np.asarray(theta, dtype=np.float64)
                extra = np.concatenate([[factor_b * theta[0]], factor_w * theta[1:]])
                return mse_gradient(theta) + l2 * extra

            return wrong

        if l2 == 0:  # every penalty slip would equal the true gradient
            return residual_slips
        return [
            *residual_slips,
            Slip(
                "penalty-missing",
                "the penalty's derivative 2λw is missing (the gradient of the plain MSE)",
                penalty_slip(0.0, 0.0),
            ),
            Slip(
                "penalty-half",
                "the penalty's derivative is λw: the 2 from d(w²)/dw = 2w is missing",
                penalty_slip(1.0, 0.0),
            ),
            Slip(
                "penalty-on-b",
                "the intercept is penalised too (2λb added to dL/db); λ‖w‖² does not involve b",
                penalty_slip(2.0, 2.0),
            ),
        ]
