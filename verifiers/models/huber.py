"""Robust regression: ``y ≈ X·w + b`` by the Huber loss, and its hand-derived gradient.

Loss, with the residual ``r_i = y_i - (X_i·w + b)`` and a threshold δ (``--delta``)::

    L = (1/N) Σ_i h(r_i),   h(r) = r²/2            where |r| <= δ
                            h(r) = δ·(|r| - δ/2)   where |r| >  δ

Small residuals are squared, large ones count only linearly, so a few outliers cannot pull the
fit far. The two pieces meet with the same value and the same slope at |r| = δ, so L has a
gradient everywhere: h'(r) = ψ(r) = clip(r, -δ, δ), and by the chain rule (∂r_i/∂b = -1,
∂r_i/∂w = -X_i)

    dL/db = -(1/N) Σ_i ψ(r_i)          dL/dw = -(1/N) Σ_i X_i ψ(r_i)

The second derivative h'' is 1 inside the band and 0 outside (it jumps at |r| = δ), so the
Hessian ``(1/N) Σ_{|r_i| <= δ} [1, X_i]ᵀ[1, X_i]`` counts only the rows inside the band and
changes with θ. The optimum has no closed form: iteratively reweighted least squares (each row
weighted by ψ(r)/r, the least-squares problem that agrees with L's gradient at the current θ)
gets close, and Newton's method finishes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from verifiers.chunks import row_chunks
from verifiers.models.base import Model, ModelOption, Optimum, Parameter, Params, Scales, Slip
from verifiers.models.mse import least_squares, parameter_names
from verifiers.models.newton import NewtonProblem, newton, steps

__all__ = ["HuberModel"]

# Reweighted least squares steps before Newton's method takes over.
REWEIGHTED_STEPS = 50


class HuberModel(Model):
    """``y ≈ X·w + b`` by the Huber loss (see the module docstring for the derivation)."""

    name = "huber"
    summary = "robust regression: mean Huber loss of y - (X·w + b), quadratic within ±δ (--delta)"
    default_lr = 1e-3
    shardable = True  # b and w: their shapes follow from the features alone
    manual_signature = "gradient(b, w, X, y) -> (dL/db, dL/dw)"
    options = (
        ModelOption(
            "delta",
            1.0,
            "the threshold δ of the Huber loss: residuals within ±δ are squared, larger ones "
            "count linearly (--model huber only)",
            "the threshold δ of the loss",
            strictly_positive=True,
        ),
    )

    @property
    def delta(self) -> float:
        return float(self.option("delta"))

    @property
    def formula(self) -> str:  # an instance's own: it shows δ
        return (
            "model y ≈ X·w + b, loss L = mean(huber(y - (X·w + b))), huber(r) = r²/2 for "
            f"|r| <= {self.delta:g}, else {self.delta:g}·(|r| - {self.delta:g}/2)"
        )

    def parameter_shapes(self) -> list[Parameter]:
        return [Parameter("b", ()), Parameter("w", (self.data.features,))]

    def labels(self) -> list[str]:
        return parameter_names(self.data.features)

    def work(self) -> float:
        return float(self.data.rows) * (self.data.features + 6)

    def row_losses(self, params: Params, X: Any, y: Any, xp: Any) -> Any:
        r = y - (X @ params["w"] + params["b"])
        size = xp.abs(r)
        delta = self.delta
        return xp.where(size <= delta, 0.5 * r * r, delta * (size - 0.5 * delta))

    # ---- hand formulas ------------------------------------------------------------------------
    def _residuals(self, theta: np.ndarray, rows: slice) -> np.ndarray:
        X, y = self.data.X[rows], self.data.y[rows]
        return y - (X @ theta[1:] + theta[0])

    def _gradient_with(self, theta: np.ndarray, psi: Callable[[np.ndarray], np.ndarray]):
        """``-(1/N) (Σ ψ(r_i), Σ X_i ψ(r_i))`` a chunk of rows at a time, for any ψ."""
        theta = np.asarray(theta)
        X = self.data.X
        total = np.zeros(theta.size, dtype=np.result_type(X, theta))
        for rows in row_chunks(self.data.rows):
            p = psi(self._residuals(theta, rows))
            total[0] += p.sum()
            total[1:] += X[rows].T @ p
        return -total / self.data.rows

    def hand_gradient(self, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        theta = np.concatenate([np.reshape(params["b"], 1), np.asarray(params["w"])])
        delta = self.delta
        flat = self._gradient_with(theta, lambda r: np.clip(r, -delta, delta))
        return {"b": np.asarray(flat[0]), "w": flat[1:]}

    def hand_hessian(self, theta: np.ndarray) -> np.ndarray:
        """``(1/N) Σ_{|r_i| <= δ} [1, X_i]ᵀ[1, X_i]``: the rows inside the band only."""
        theta = np.asarray(theta)
        X = self.data.X
        d = self.data.features
        H = np.zeros((d + 1, d + 1), dtype=np.result_type(X, theta))
        for rows in row_chunks(self.data.rows):
            inside = np.abs(self._residuals(theta, rows)) <= self.delta
            design = np.column_stack([np.ones(int(inside.sum()), dtype=X.dtype), X[rows][inside]])
            H += design.T @ design
        return H / self.data.rows

    # ---- the optimum --------------------------------------------------------------------------
    def optimum(self) -> Optimum:
        cached = getattr(self, "_optimum", None)
        if cached is None:
            cached = self._optimum = self._solve()
        return cached

    def _solve(self) -> Optimum:
        X = self.data.X.astype(np.float64)
        y = self.data.y.astype(np.float64)
        b, w = least_squares(X, y)
        theta = np.concatenate([[b], w])
        design = np.column_stack([np.ones(len(y)), X])
        for _ in range(REWEIGHTED_STEPS):  # least squares, each row weighted by ψ(r)/r
            r = y - design @ theta
            size = np.abs(r)
            weight = np.where(size <= self.delta, 1.0, self.delta / np.maximum(size, 1e-300))
            root = np.sqrt(weight)
            theta = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)[0]
        problem = NewtonProblem(
            loss=self.hand_loss,
            gradient=lambda t: self._gradient_with(
                t, lambda r: np.clip(r, -self.delta, self.delta)
            ),
            hessian=self.hand_hessian,
            gradient_scales=lambda t: self.scales_at(t).gradient,
            loss_scale=lambda t: self.scales_at(t).loss,
            separated=lambda t: False,
            rows=self.data.rows,
        )
        result = newton(problem, theta)
        if result.theta is None:
            return Optimum(
                None,
                note=f"Newton's method did not converge in {steps(result.iterations)} after "
                f"{REWEIGHTED_STEPS} reweighted least-squares steps: no optimum is computed",
            )
        how = "reweighted least squares" + (
            f", then Newton's method, {steps(result.iterations)}" if result.iterations else ""
        )
        return Optimum(result.theta, self.optimum_name, how)

    @property
    def optimum_name(self) -> str:
        return "Huber optimum"

    # ---- tolerance scales ---------------------------------------------------------------------
    def scales(self, theta: np.ndarray) -> Scales:
        """Σ|terms|: each row's residual carries the rounding of the numbers it is made from,
        ``s_i = |y_i| + Σ_j |X_ij w_j| + |b|``; ψ passes it on inside the band (slope 1) and
        not outside (slope 0). So dL/dw_j's terms are ``|X_ij| (|ψ_i| + s_i·[|r_i| <= δ])``, and
        the loss's ``h(r_i) + |ψ_i|·s_i``."""
        theta = np.asarray(theta, dtype=np.float64)
        absolute_w = np.abs(theta[1:])
        loss, gradient = 0.0, np.zeros(theta.size)
        for rows in row_chunks(self.data.rows):
            X = self.data.X[rows].astype(np.float64)
            y = self.data.y[rows].astype(np.float64)
            r = y - (X @ theta[1:] + theta[0])
            size = np.abs(y) + np.abs(X) @ absolute_w + abs(theta[0])
            psi = np.abs(np.clip(r, -self.delta, self.delta))
            inside = np.abs(r) <= self.delta
            h = np.where(inside, 0.5 * r * r, self.delta * (np.abs(r) - 0.5 * self.delta))
            loss += float(np.sum(h + psi * size))
            term = psi + size * inside
            gradient += np.concatenate([[term.sum()], np.abs(X).T @ term])
        return Scales(loss / self.data.rows, gradient / self.data.rows)

    def hessian_scales(self, theta: np.ndarray) -> np.ndarray:
        """The Hessian's form applied to |X| over every row (a row near the band's edge may
        fall on either side of it)."""
        total = np.zeros((self.size, self.size))
        for rows in row_chunks(self.data.rows):
            design = np.column_stack([np.ones(rows.stop - rows.start), np.abs(self.data.X[rows])])
            total += design.T @ design
        return total / self.data.rows

    # ---- classic slips ------------------------------------------------------------------------
    def slips(self) -> list[Slip]:
        delta = self.delta

        def wrong(psi: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
            return lambda theta: self._gradient_with(np.asarray(theta, dtype=np.float64), psi)

        return [
            Slip(
                "unclipped",
                "the residual is not clipped to ±δ: that is the MSE's derivative r, not the "
                "Huber loss's ψ(r) = clip(r, -δ, δ)",
                wrong(lambda r: r),
            ),
            Slip(
                "sign-without-delta",
                "outside the band it uses sign(r) where δ·sign(r) belongs: the slope of "
                "δ·(|r| - δ/2) is δ",
                wrong(lambda r: np.where(np.abs(r) <= delta, r, np.sign(r))),
            ),
            Slip(
                "doubled-square",
                "inside the band it uses 2r where r belongs: the derivative of r²/2 is r "
                "(the 2 of the MSE's r² is halved away)",
                wrong(lambda r: np.where(np.abs(r) <= delta, 2 * r, delta * np.sign(r))),
            ),
        ]
