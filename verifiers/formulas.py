"""The linear model, its mean-squared-error loss and the hand-derived derivatives, in numpy.

Model: ``y ≈ X·w + b`` with N points, d features, the scalar `b` and the vector `w` (d,).
Loss: ``L(b, w) = (1/N) Σ_i r_i²`` with the residual ``r_i = y_i - (X_i·w + b)``.
By the chain rule, ``∂r_i/∂b = -1`` and ``∂r_i/∂w = -X_i``, so

    dL/db = -(2/N) Σ_i r_i              dL/dw = -(2/N) Σ_i X_i r_i

and differentiating once more (r is linear in b and w, so the Hessian does not depend on them)

    H = (2/N) [[N, 1ᵀX], [Xᵀ1, XᵀX]]     (d = 1: 2 [[1, mean x], [mean x, mean x²]]).

Parameters are also handled as one flat vector ``θ = (b, w_1, ..., w_d)``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "gradient",
    "gradient_of_residual",
    "gradient_scales",
    "hessian",
    "hessian_scales",
    "least_squares",
    "loss",
    "loss_scale",
    "parameter_names",
    "residual",
]


# The scales below are sums over points, taken this many rows at a time so that their temporary
# arrays stay small on large inputs.
SCALE_CHUNK_ROWS = 1 << 16


def residual(b: float, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``r = y - (X·w + b)``, one entry per point.

    Computed in place, into the one array ``X·w`` creates: on large data a plain expression
    would hold three arrays of N numbers at once.
    """
    r = X @ w
    r += b
    np.subtract(y, r, out=r)
    return r


def loss(b: float, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error ``(1/N) Σ r_i²``."""
    r = residual(b, w, X, y)
    return (r @ r) / len(y)


def gradient(b: float, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The hand-derived gradient ``(dL/db, dL/dw)``, vectorised."""
    return gradient_of_residual(residual(b, w, X, y), X)


def gradient_of_residual(r: np.ndarray, X: np.ndarray) -> tuple[float, np.ndarray]:
    """``(-(2/N) Σ r_i, -(2/N) Σ X_i r_i)``: the hand-derived gradient, given the residuals."""
    n = len(r)
    return -(2 / n) * r.sum(), -(2 / n) * (X.T @ r)


def hessian(X: np.ndarray) -> np.ndarray:
    """The closed-form Hessian ``(2/N) [[N, 1ᵀX], [Xᵀ1, XᵀX]]`` over θ = (b, w)."""
    n, d = X.shape
    column_sums = X.sum(axis=0)
    H = np.empty((d + 1, d + 1), dtype=X.dtype)
    H[0, 0] = n
    H[0, 1:] = H[1:, 0] = column_sums
    H[1:, 1:] = X.T @ X
    return (2 / n) * H


def hessian_scales(X: np.ndarray) -> np.ndarray:
    """Σ|terms| of each Hessian entry: the closed form applied to |X| (a chunk at a time)."""
    n, d = X.shape
    total = np.zeros((d + 1, d + 1))
    for start in range(0, n, SCALE_CHUNK_ROWS):
        absolute = np.abs(X[start : start + SCALE_CHUNK_ROWS]).astype(np.float64, copy=False)
        # hessian() of a chunk is (2/rows)·[...]: undo its mean so the chunks add up to sums
        total += hessian(absolute) * (len(absolute) / 2)
    return (2 / n) * total


# Above this many rows the least-squares problem is first reduced chunk by chunk (see below).
LSTSQ_CHUNK_ROWS = 1 << 18


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
                for rows in (
                    slice(start, start + LSTSQ_CHUNK_ROWS)
                    for start in range(0, len(y), LSTSQ_CHUNK_ROWS)
                )
            ]
        )
        reduced = np.linalg.qr(stacked, mode="r")
        design, target = reduced[:, :-1], reduced[:, -1]
    theta = np.linalg.lstsq(design, target, rcond=None)[0]
    return float(theta[0]), theta[1:]


def _augmented(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[1, X, y]`` in float64: the design matrix with the target as its last column."""
    return np.column_stack([np.ones(len(y)), X, y]).astype(np.float64, copy=False)


def _term_sums(b: float, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """``Σ_i s_i²`` and ``(Σ_i s_i, Σ_i |X_i| s_i)`` for ``s_i = |y_i| + Σ_j |X_ij w_j| + |b|``.

    s_i is how big the numbers of point i are before its residual cancels.
    """
    absolute_w = np.abs(np.asarray(w, dtype=np.float64))
    squares, sums = 0.0, np.zeros(X.shape[1] + 1)
    for start in range(0, len(y), SCALE_CHUNK_ROWS):
        rows = slice(start, start + SCALE_CHUNK_ROWS)
        absolute_X = np.abs(X[rows])
        size = np.abs(y[rows]) + absolute_X @ absolute_w + abs(float(b))
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
