"""Logistic regression: mean binary cross-entropy of ``σ(X·w + b)`` on labels 0/1, by hand.

Model: the probability that row i has label 1 is ``p_i = σ(z_i)``, with the logit
``z_i = X_i·w + b`` and the sigmoid ``σ(z) = 1/(1 + e⁻ᶻ)``.
Loss: the mean negative log-likelihood (binary cross-entropy)

    L(b, w) = (1/N) Σ_i ℓ_i,     ℓ_i = -y_i ln σ(z_i) - (1 - y_i) ln(1 - σ(z_i)).

Written in the logit, with ``ln σ(z) = -ln(1 + e⁻ᶻ)`` and ``ln(1 - σ(z)) = -z - ln(1 + e⁻ᶻ)``,
it simplifies to ``ℓ_i = ln(1 + eᶻ) - y_i z_i`` (the softplus of z, minus y·z). This form is
what every engine computes, stably at any scale: ``ln(1 + eᶻ) = max(z, 0) + ln(1 + e^-|z|)``,
whose exponential never overflows (the engines write ``-|z|`` and ``max(z, 0)`` with a `where`
on ``z > 0``, so that every engine's derivatives at z = 0 come out right).

The gradient. Two facts about σ do all the work: ``d/dz ln(1 + eᶻ) = eᶻ/(1 + eᶻ) = σ(z)`` and
``σ'(z) = σ(z)(1 - σ(z))``. So ``dℓ_i/dz_i = σ(z_i) - y_i``: the predicted probability minus the
label, the same "prediction minus target" as the MSE's residual (without its 2). By the chain
rule, with ``∂z_i/∂b = 1`` and ``∂z_i/∂w = X_i``,

    dL/db = (1/N) Σ_i (σ_i - y_i)            dL/dw = (1/N) Xᵀ(σ - y)

and differentiating ``σ_i - y_i`` once more gives ``σ_i(1 - σ_i)``, so with ``a_i = [1, X_i]``

    H = (1/N) Σ_i σ_i(1 - σ_i) a_i a_iᵀ = (1/N) [1 X]ᵀ diag(σ(1 - σ)) [1 X].

H is positive semi-definite (a sum of outer products with positive weights): the loss is
convex, and any point where the gradient vanishes is the minimum. There is no closed form for
it; Newton's method (:mod:`verifiers.models.newton`) finds it. When a line ``z = 0`` separates
the two labels perfectly, there is no finite minimum: scaling (b, w) up lowers every ℓ_i toward
0 forever, and the optimum is reported as missing, with the reason.

The classic slips: ``(y - σ)`` in place of ``(σ - y)`` (the sign of ``-ln σ`` lost); a factor
``σ(1 - σ)`` carried over from differentiating the MSE of ``σ(z)`` instead of the
cross-entropy; the linear model's residual ``z - y`` with the sigmoid left out; a sum where the
mean belongs (the missing 1/N, which the diagnosis finds as the constant factor N).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from verifiers.chunks import row_chunks
from verifiers.data import DataError, Dataset
from verifiers.models.base import Model, Optimum, Parameter, Params, Scales, Slip, saturating
from verifiers.models.mse import parameter_names
from verifiers.models.newton import NewtonProblem, newton, separated, steps

__all__ = [
    "LogisticModel",
    "gradient",
    "hessian",
    "label_error",
    "loss",
    "sigmoid",
]


def label_error(data: Dataset, row: int, message: str) -> DataError:
    """A DataError naming the file and the line of data row `row` (or the row, for arrays)."""
    line = data.line_of(row)
    if line is None:
        message = f"row {row} (counting from 0): {message}"
    return DataError(data.path, message, line)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``σ(z) = 1/(1 + e⁻ᶻ)`` without overflow: ``e^-|z|`` is at most 1 on both sides of 0."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _logits(theta: np.ndarray, X: np.ndarray) -> np.ndarray:
    z = X @ theta[1:]
    z += theta[0]
    return z


def _sums(X: np.ndarray, theta: np.ndarray, weights: Callable[[np.ndarray, slice], np.ndarray]):
    """``(1/N) (Σ_i r_i, Xᵀr)`` as one flat vector, with ``r = weights(z, rows)`` per chunk."""
    n = len(X)
    total = np.zeros(X.shape[1] + 1, dtype=np.result_type(X, theta))
    for rows in row_chunks(n):
        r = weights(_logits(theta, X[rows]), rows)
        total[0] += r.sum()
        total[1:] += X[rows].T @ r
    return total / n


def gradient(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The hand-derived gradient ``(1/N) (Σ (σ_i - y_i), Xᵀ(σ - y))`` over θ = (b, w)."""
    return _sums(X, theta, lambda z, rows: sigmoid(z) - y[rows])


def loss(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    """``(1/N) Σ (ln(1 + e^z_i) - y_i z_i)``, with the softplus written stably."""
    total = 0.0
    for rows in row_chunks(len(X)):
        z = _logits(theta, X[rows])
        total += float(np.sum(np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))) - y[rows] * z))
    return total / len(X)


def hessian(theta: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``(1/N) [1 X]ᵀ diag(σ(1 - σ)) [1 X]``; σ(1 - σ) as σ(z)·σ(-z), exact where σ ≈ 1."""
    n, d = X.shape
    H = np.zeros((d + 1, d + 1), dtype=np.result_type(X, theta))
    for rows in row_chunks(n):
        z = _logits(theta, X[rows])
        weight = sigmoid(z) * sigmoid(-z)
        design = np.column_stack([np.ones_like(z), X[rows]])
        H += design.T @ (weight[:, None] * design)
    return H / n


class LogisticModel(Model):
    """Binary cross-entropy of ``σ(X·w + b)`` (see the module docstring for the derivation)."""

    name = "logistic"
    summary = "logistic regression: mean binary cross-entropy of σ(X·w + b), labels 0/1"
    formula = "model P(y = 1) = σ(X·w + b), loss L = mean(ln(1 + e^z) - y·z), z = X·w + b"
    shardable = True
    example = "data/binary.csv"
    manual_signature = "gradient(b, w, X, y) -> (dL/db, dL/dw)"

    def work(self) -> float:
        return float(self.data.rows) * (self.data.features + 23)  # an exp and a log per row

    def extreme_points(self, directions: np.ndarray) -> tuple[list[np.ndarray], str]:
        """θ's whose largest |z| over the rows is 20 and 60: σ saturates (a logit clipped "for
        stability" shows there), yet e^|z| stays finite even in float32."""
        X = self.data.X.astype(np.float64)
        points = saturating(directions, lambda t: np.abs(X @ t[1:] + t[0]), (20.0, 60.0))
        return points, "|z| = |X·w + b| up to 20 and 60"

    def parameter_shapes(self) -> list[Parameter]:
        return [Parameter("b", ()), Parameter("w", (self.data.features,))]

    def labels(self) -> list[str]:
        return parameter_names(self.data.features)

    def check_data(self) -> None:
        """Labels must be exactly 0 or 1 (the first other value is named with its line)."""
        y = self.data.y
        bad = np.flatnonzero((y != 0) & (y != 1))
        if bad.size:
            row = int(bad[0])
            raise label_error(
                self.data,
                row,
                f"the label (last column) must be 0 or 1 for logistic regression, not {y[row]:g}",
            )

    def row_losses(self, params: Params, X: Any, y: Any, xp: Any) -> Any:
        z = X @ params["w"] + params["b"]
        positive = z > 0
        # ln(1 + eᶻ) = max(z, 0) + ln(1 + e^-|z|), with max and -|z| chosen by the sign of z
        softplus = xp.where(positive, z, xp.zeros_like(z)) + xp.log1p(
            xp.exp(xp.where(positive, -z, z))
        )
        return softplus - y * z

    def predict(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """The probability of label 1, ``σ(X·w + b)``."""
        return sigmoid(_logits(np.asarray(theta, dtype=np.float64), X))

    # ---- hand formulas ------------------------------------------------------------------------
    def hand_gradient(self, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        theta = self._theta(params)
        flat = gradient(theta, self.data.X, self.data.y)
        return {"b": flat[0], "w": flat[1:]}

    def hand_hessian(self, theta: np.ndarray) -> np.ndarray:
        return hessian(np.asarray(theta, dtype=self.data.dtype), self.data.X)

    def _theta(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        w = np.asarray(params["w"])
        return np.concatenate([np.reshape(np.asarray(params["b"], dtype=w.dtype), 1), w])

    # ---- the optimum --------------------------------------------------------------------------
    def optimum(self) -> Optimum:
        cached = getattr(self, "_optimum", None)
        if cached is None:
            cached = self._optimum = self._newton()
        return cached

    def _newton(self) -> Optimum:
        y = self.data.y
        if np.all(y == y[0]):
            return Optimum(
                None,
                note=f"every label is {y[0]:g}: the loss keeps decreasing as b moves toward "
                f"{'+' if y[0] == 1 else '-'}∞, so there is no finite optimum",
            )
        X = self.data.X.astype(np.float64, copy=False)
        y = y.astype(np.float64, copy=False)
        sign = 2 * y - 1
        absolute_X = np.abs(X)

        def on_their_side(theta: np.ndarray) -> bool:
            sizes = absolute_X @ np.abs(theta[1:]) + abs(theta[0])
            return separated(sign * _logits(theta, X), sizes)

        problem = NewtonProblem(
            loss=lambda t: loss(t, X, y),
            gradient=lambda t: gradient(t, X, y),
            hessian=lambda t: hessian(t, X),
            gradient_scales=lambda t: self.scales_at(t).gradient,
            loss_scale=lambda t: self.scales_at(t).loss,
            separated=on_their_side,
            rows=len(y),
        )
        result = newton(problem, np.zeros(self.size))
        if result.theta is not None:
            return Optimum(result.theta, how=f"Newton's method, {steps(result.iterations)}")
        if result.reason == "separable":
            return Optimum(
                None,
                note="the labels are linearly separable (after "
                f"{steps(result.iterations)} of Newton's method every row is on its side of "
                "the boundary X·w + b = 0, or on it): the loss keeps decreasing as |w| grows, "
                "so there is no finite optimum",
            )
        return Optimum(
            None,
            note=f"Newton's method did not converge in {steps(result.iterations)} (the labels "
            "may be nearly separable, with the loss decreasing as |w| grows): no optimum is "
            "computed",
        )

    # ---- tolerance scales ---------------------------------------------------------------------
    def _row_sizes(self, theta: np.ndarray, rows: slice) -> tuple[np.ndarray, ...]:
        """Per row: z, its Σ|terms| s = |X|·|w| + |b|, σ(z), σ(-|z|) and |y| (float64)."""
        X = np.abs(self.data.X[rows]).astype(np.float64, copy=False)
        y = np.abs(self.data.y[rows]).astype(np.float64, copy=False)
        z = _logits(theta, self.data.X[rows].astype(np.float64, copy=False))
        s = X @ np.abs(theta[1:]) + abs(theta[0])
        return X, y, z, s, sigmoid(z), sigmoid(-np.abs(z))

    def scales(self, theta: np.ndarray) -> Scales:
        """Σ|terms|, including the rounding each row's logit carries (about ε·s_i).

        Loss: ``(1 + |y_i|)·s_i + ln(1 + e^-|z_i|)`` per row (max(z, 0) and y·z are each at
        most s_i, and each carries z's rounding). Gradient: each row's ``σ_i - y_i`` is made of
        σ_i, |y_i| and, in the engines' softplus derivative, ``σ(-|z_i|)``; z's rounding adds
        ``σ'·s_i ≤ σ(-|z_i|)·s_i``. dL/dw_j weighs it by |X_ij|.
        """
        theta = np.asarray(theta, dtype=np.float64)
        n = self.data.rows
        loss_total, total = 0.0, np.zeros(self.size)
        for rows in self.chunks:
            X, y, z, s, p, small = self._row_sizes(theta, rows)
            loss_total += float(np.sum((1 + y) * s + np.log1p(np.exp(-np.abs(z)))))
            u = p + y + small * (1 + s)
            total[0] += u.sum()
            total[1:] += X.T @ u
        return Scales(loss_total / n, total / n)

    def hessian_scales(self, theta: np.ndarray) -> np.ndarray:
        """``(1/N) Σ c_i |a_i||a_i|ᵀ``: the engines' second derivative of the softplus is
        ``σ(-|z|) - σ(-|z|)²``, so ``c_i = σ(-|z|) + σ(-|z|)² + σ(-|z|)·s_i`` (z's rounding)."""
        theta = np.asarray(theta, dtype=np.float64)
        total = np.zeros((self.size, self.size))
        for rows in self.chunks:
            X, _, _, s, _, small = self._row_sizes(theta, rows)
            c = small + small**2 + small * s
            design = np.column_stack([np.ones(len(c)), X])
            total += design.T @ (c[:, None] * design)
        return total / self.data.rows

    # ---- classic slips ------------------------------------------------------------------------
    def slips(self) -> list[Slip]:
        """Each slip's wrong gradient, computed in float64 from the same logits."""
        X, y = self.data.X, self.data.y

        def wrong(residual: Callable[[np.ndarray, np.ndarray], np.ndarray]):
            def gradient_of(theta: np.ndarray) -> np.ndarray:
                theta = np.asarray(theta, dtype=np.float64)
                return _sums(
                    X,
                    theta,
                    lambda z, rows: residual(z.astype(np.float64), y[rows].astype(np.float64)),
                )

            return gradient_of

        def prime(z: np.ndarray) -> np.ndarray:
            return sigmoid(z) * sigmoid(-z)

        return [
            Slip(
                "flipped-residual",
                "it uses (y - σ) where (σ - y) belongs: the derivative of -ln σ(z) is "
                "-(1 - σ), so the signs flip",
                wrong(lambda z, y: y - sigmoid(z)),
            ),
            Slip(
                "sigmoid-prime",
                "it has a factor σ(1 - σ) too many: carried over from the mean squared error "
                "of σ(z); the cross-entropy's derivative in z is just σ - y",
                wrong(lambda z, y: (sigmoid(z) - y) * prime(z)),
            ),
            Slip(
                "mse-of-sigmoid",
                "it is the gradient of the mean squared error of σ(z), 2(σ - y)·σ(1 - σ), not "
                "of the cross-entropy, whose derivative in z is just σ - y",
                wrong(lambda z, y: 2 * (sigmoid(z) - y) * prime(z)),
            ),
            Slip(
                "linear-residual",
                "it uses the linear model's residual (z - y), with the sigmoid left out: the "
                "residual is σ(z) - y",
                wrong(lambda z, y: z - y),
            ),
        ]
