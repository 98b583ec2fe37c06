"""Logistic regression by hand: the mean binary cross-entropy (docs/models/logistic.md).

    z = X·w + b,  p = σ(z) = 1 / (1 + e^(-z)),  labels y in {0, 1}
    L(b, w) = (1/N) Σ_i ln(1 + e^(z_i)) - y_i z_i

    dL/db = (1/N) Σ_i (p_i - y_i)   (d/dz ln(1 + e^z) = σ(z): no σ' survives)
    dL/dw = (1/N) Xᵀ(p - y)

The same "prediction minus target" as the MSE's residual, without its 2.
"""

import numpy as np


def gradient(b, w, X, y):
    """The right formula: prediction minus label, averaged (and weighted by x for w)."""
    p = 1 / (1 + np.exp(-(X @ w + b)))  # σ(z); fine for moderate z
    r = p - y  # (N,)
    return r.mean(), X.T @ r / len(y)


def slip(b, w, X, y):
    """The classic slip: a factor σ(1 - σ) carried over from the squared error of σ(z).
    The cross-entropy's logarithm cancels it."""
    p = 1 / (1 + np.exp(-(X @ w + b)))
    r = (p - y) * p * (1 - p)
    return r.mean(), X.T @ r / len(y)
