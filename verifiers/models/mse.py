"""The linear model, its mean-squared-error loss and the hand-derived derivatives, in numpy.

Model: ``y ≈ X·w + b`` with N points, d features, the scalar `b` and the vector `w` (d,).
Loss: ``L(b, w) = (1/N) Σ_i r_i²`` with the residual ``r_i = y_i - (X_i·w + b)``.
By the chain rule, ``∂r_i/∂b = -1`` and ``∂r_i/∂w = -X_i``, so

    dL/db = -(2/N) Σ_i r_i              dL/dw = -(2/N) Σ_i X_i r_i

and differentiating once more (r is linear in b and w, so the Hessian does not depend on them)

    H = (2/N) [[N, 1ᵀX], [Xᵀ1, XᵀX]]     (d = 1: 2 [[1, mean x], [mean x, mean x²]]).

Parameters are also handled as one flat vector ``θ = (b, w_1, ..., w_d)``. Sums over points are
taken a chunk of rows at a time (:mod:`verifiers.chunks`): temporary arrays stay small on large
inputs, and so does the rounding error of each running total.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from verifiers.chunks import on_one_blas_thread, row_chunks
from verifiers.models.base import Model, Optimum, Parameter, Params, Scales, Slip

__all__ = [
    "MSEModel",
    "gradient",
    "gradient_scales",
    "hessian",
    "hessian_scales",
    "least_squares",
    "loss",
    "loss_and_gradient",
    "loss_scale",
    "parameter_names",
    "residual",
]


def residual(b: float, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``r = y - (X·w + b)``, one entry per point.

    Computed in place, into the one array ``X·w`` creates: a plain expression would hold three
    arrays of N numbers at once.
    """
    r = _times(X, w)
    r += b
    np.subtract(y, r, out=r)
    return r


def _times(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``X·w``. Fast path: with one feature each entry is the single product ``x_i·w``, which
    numpy computes about 10x faster than the matrix product (OpenBLAS takes an N×1 matrix a
    row at a time); one product per entry, so the result is the same bit for bit."""
    if X.shape[1] == 1:
        return X[:, 0] * w[0]
    return X @ w


def _transposed_times(X: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``Xᵀ·r`` (fast path for one feature: the dot product ``x·r``, about 2x faster)."""
    if X.shape[1] == 1:
        return np.dot(X[:, 0], r).reshape(1)
    return X.T @ r


def loss_and_gradient(
    b: float, w: np.ndarray, X: np.ndarray, y: np.ndarray
) -> tuple[float, float, np.ndarray]:
    """The loss and the hand-derived gradient together: ``(1/N) Σ r_i²``, ``-(2/N) Σ r_i`` and
    ``-(2/N) Σ X_i r_i``, from one pass over the rows.

    The same formulas as :func:`loss` and :func:`gradient`; each chunk's residual is made once
    and all three sums are taken while it is still in the CPU cache (one read of the data per
    descent step instead of two). Returned in the data's dtype.
    """
    n = len(y)
    zero = X.dtype.type(0)
    sum_rr, sum_r, sum_xr = zero, zero, np.zeros(X.shape[1], dtype=X.dtype)
    for rows in row_chunks(n):
        r = residual(b, w, X[rows], y[rows])
        sum_rr += np.dot(r, r)
        sum_r += r.sum()
        sum_xr += _transposed_times(X[rows], r)
    return sum_rr / n, -(2 / n) * sum_r, -(2 / n) * sum_xr


def loss(b: float, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error ``(1/N) Σ r_i²``."""
    total = 0.0
    for rows in row_chunks(len(y)):
        r = residual(b, w, X[rows], y[rows])
        total += np.dot(r, r)
    return total / len(y)


def gradient(b: float, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The hand-derived gradient ``(dL/db, dL/dw) = (-(2/N) Σ r_i, -(2/N) Σ X_i r_i)``."""
    return _gradient_of(lambda rows: residual(b, w, X[rows], y[rows]), X)


def _gradient_of(
    residual_of: Callable[[slice], np.ndarray], X: np.ndarray
) -> tuple[float, np.ndarray]:
    """``(-(2/N) Σ r_i, -(2/N) Σ X_i r_i)`` with the residuals of each chunk from `residual_of`."""
    n = len(X)
    sum_r, sum_xr = 0.0, np.zeros(X.shape[1], dtype=X.dtype)
    for rows in row_chunks(n):
        r = residual_of(rows)
        sum_r += r.sum()
        sum_xr += _transposed_times(X[rows], r)
    return -(2 / n) * sum_r, -(2 / n) * sum_xr


@on_one_blas_thread
def hessian(X: np.ndarray) -> np.ndarray:
    """The closed-form Hessian ``(2/N) [[N, 1ᵀX], [Xᵀ1, XᵀX]]`` over θ = (b, w)."""
    n, d = X.shape
    H = np.zeros((d + 1, d + 1), dtype=X.dtype)
    H[0, 0] = n
    for rows in row_chunks(n):
        column_sums = X[rows].sum(axis=0)
        H[0, 1:] += column_sums
        H[1:, 1:] += X[rows].T @ X[rows]
    H[1:, 0] = H[0, 1:]
    return (2 / n) * H


@on_one_blas_thread
def hessian_scales(X: np.ndarray) -> np.ndarray:
    """Σ|terms| of each Hessian entry: the closed form applied to |X| (a chunk at a time)."""
    n, d = X.shape
    total = np.zeros((d + 1, d + 1))
    total[0, 0] = n
    for rows in row_chunks(n):
        absolute = np.abs(X[rows]).astype(np.float64, copy=False)
        total[0, 1:] += absolute.sum(axis=0)
        total[1:, 1:] += absolute.T @ absolute
    total[1:, 0] = total[0, 1:]
    return (2 / n) * total


# Above this many rows the least-squares problem is first reduced chunk by chunk (see below).
LSTSQ_CHUNK_ROWS = 1 << 18


@on_one_blas_thread
def least_squares(X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The minimiser of L by ``numpy.linalg.lstsq`` (the minimum-norm one when not unique).

    With A = [1, X], lstsq minimises ``|A θ - y|``. On large inputs A is not built whole: each
    chunk of rows is reduced by a QR factorisation to a small triangle, the triangles are
    reduced again, and lstsq solves the final (d+1)-row system, which has the same solutions
    because an orthogonal Q preserves lengths.
    """
    if len(y) <= LSTSQ_CHUNK_ROWS:
        design, target = _augmented(X, y)[:, :-1], np.asarray(y, dtype=np.float64)
    else:
        stacked = np.vstack(
            [
                np.linalg.qr(_augmented(X[rows], y[rows]), mode="r")
                for rows in row_chunks(len(y), LSTSQ_CHUNK_ROWS)
            ]
        )
        reduced = np.linalg.qr(stacked, mode="r")
        design, target = reduced[:, :-1], reduced[:, -1]
    theta = np.linalg.lstsq(design, target, rcond=None)[0]
    return float(theta[0]), theta[1:]


def _augmented(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[1, X, y]`` in float64: the design matrix with the target as its last column."""
    return np.column_stack([np.ones(len(y)), X, y]).astype(np.float64, copy=False)


@on_one_blas_thread
def _term_sums(b: float, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """``Σ_i s_i²`` and ``(Σ_i s_i, Σ_i |X_i| s_i)`` for ``s_i = |y_i| + Σ_j |X_ij w_j| + |b|``.

    s_i is how big the numbers of point i are before its residual cancels.
    """
    absolute_w = np.abs(np.asarray(w, dtype=np.float64))
    squares, sums = 0.0, np.zeros(X.shape[1] + 1)
    for rows in row_chunks(len(y)):
        absolute_X = np.abs(X[rows]).astype(np.float64, copy=False)
        size = np.abs(y[rows]).astype(np.float64, copy=False) + absolute_X @ absolute_w
        size += abs(float(b))
        squares += float(size @ size)
        sums += np.concatenate([[size.sum()], absolute_X.T @ size])
    return squares, sums


def gradient_scales(b: float, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The size of the summed terms of each gradient component, over θ = (b, w).

    Rounding errors in ``Σ_i t_i`` are proportional to ``Σ_i |t_i|``, not to the (possibly tiny)
    sum, and each residual carries the rounding of the numbers it is made from. So the absolute
    tolerance of a gradient component scales with ``(2/N) Σ_i |x_i| (|y_i| + |X_i·w| + |b|)``
    (``x_i = 1`` for b). At the optimum, where the gradient is nearly zero, this stays large.
    """
    return (2 / len(y)) * _term_sums(b, w, X, y)[1]


def loss_scale(b: float, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    """The size of the summed terms of the loss: ``(1/N) Σ_i (|y_i| + |X_i·w| + |b|)²``."""
    return _term_sums(b, w, X, y)[0] / len(y)


def parameter_names(features: int) -> list[str]:
    """Names of θ's entries: ``b, w`` for one feature, ``b, w[0], w[1], ...`` for more."""
    return ["b", "w"] if features == 1 else ["b", *(f"w[{j}]" for j in range(features))]


class MSEModel(Model):
    """``y ≈ X·w + b`` by least squares: the seed's model (see the module docstring)."""

    name = "mse"
    summary = "mean squared error of y ≈ X·w + b (the reference example)"
    formula = "model y ≈ X·w + b, loss L = mean((y - (X·w + b))²)"
    constant_hessian = True
    # The reference example's rate (its data's Hessian allows at most 4e-4).
    default_lr = 1e-4
    shardable = True
    manual_signature = "gradient(b, w, X, y) -> (dL/db, dL/dw)"

    def parameter_shapes(self) -> list[Parameter]:
        return [Parameter("b", ()), Parameter("w", (self.data.features,))]

    def labels(self) -> list[str]:
        return parameter_names(self.data.features)

    def row_losses(self, params: Params, X: Any, y: Any, xp: Any) -> Any:
        r = y - (X @ params["w"] + params["b"])
        return r * r

    def hand_gradient(self, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        grad_b, grad_w = gradient(params["b"], params["w"], self.data.X, self.data.y)
        return {"b": np.asarray(grad_b), "w": grad_w}

    def hand_loss_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """:meth:`hand_loss` and the flat hand gradient at θ from one pass over the data (see
        :func:`loss_and_gradient`); the gradient stays in the data's dtype."""
        theta = np.asarray(theta, dtype=self.data.dtype)
        value, grad_b, grad_w = loss_and_gradient(theta[0], theta[1:], self.data.X, self.data.y)
        return float(value), np.concatenate([np.reshape(grad_b, 1), grad_w])

    def hand_hessian(self, theta: np.ndarray) -> np.ndarray:
        cached = getattr(self, "_hessian", None)
        if cached is None:
            cached = self._hessian = hessian(self.data.X)
        return cached

    def optimum(self) -> Optimum:
        b, w = least_squares(self.data.X, self.data.y)
        return Optimum(np.concatenate([[b], w]), self.optimum_name)

    @property
    def optimum_name(self) -> str:
        return "least-squares optimum"

    def scales(self, theta: np.ndarray) -> Scales:
        b, w = float(theta[0]), np.asarray(theta[1:], dtype=np.float64)
        squares, sums = _term_sums(b, w, self.data.X, self.data.y)
        n = self.data.rows
        return Scales(squares / n, (2 / n) * sums)

    def hessian_scales(self, theta: np.ndarray) -> np.ndarray:
        return hessian_scales(self.data.X)

    def slips(self) -> list[Slip]:
        """A term left out of the residual (the constant factors are the diagnosis's own)."""
        X, y = self.data.X, self.data.y

        def without(kind: str) -> Callable[[np.ndarray], np.ndarray]:
            def residual_of(theta: np.ndarray, rows: slice) -> np.ndarray:
                b, w = theta[0], theta[1:]
                if kind == "b":
                    return y[rows] - X[rows] @ w
                if kind == "w":
                    return y[rows] - b
                return -(X[rows] @ w + b)

            def wrong(theta: np.ndarray) -> np.ndarray:
                theta = np.asarray(theta, dtype=np.float64)
                grad_b, grad_w = _gradient_of(lambda rows: residual_of(theta, rows), X)
                return np.concatenate([[grad_b], grad_w])

            return wrong

        return [
            Slip("missing-b", "b is left out of the residual (r = y - X·w)", without("b")),
            Slip("missing-w", "X·w is left out of the residual (r = y - b)", without("w")),
            Slip("missing-y", "y is left out of the residual (r = -(X·w + b))", without("y")),
        ]
