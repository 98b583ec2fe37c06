"""Your own loss with --loss: the mean log-cosh of the residual, and its gradient by hand.

    r_i = y_i - (x_i·w + b)                  the residual
    L(b, w) = (1/N) Σ_i ln cosh(r_i)         ≈ r²/2 for small r, ≈ |r| - ln 2 for large r

log-cosh is a smooth robust loss: quadratic near 0 like the MSE, linear far out like the mean
absolute error, so outliers pull less. It is not one of the built-in models: `loss` below is
written once against the array API, and every engine differentiates it.

    d ln cosh(r)/dr = sinh(r)/cosh(r) = tanh(r)
    dL/db = (1/N) Σ_i tanh(r_i) · ∂r_i/∂b = -(1/N) Σ_i tanh(r_i)      (∂r_i/∂b = -1)
    dL/dw = -(1/N) Xᵀ tanh(r)                                        (∂r_i/∂w = -x_i)

Run with --loss docs/models/examples/log_cosh.py:loss on data/data.csv, and check `gradient`
or `slip` with --manual (the README's section "Your own loss" walks through it).
"""

import math

import numpy as np


def loss(b, w, X, y, xp):
    """The loss, for every engine: `xp` is the engine's array namespace (numpy, torch, jax.numpy,
    minigrad's), b a scalar array, w (d,), X (N, d), y (N,)."""
    r = y - (X @ w + b)
    # ln cosh r = ln((eʳ + e⁻ʳ)/2), computed without overflow: cosh(r) is infinite beyond |r| ≈ 710
    return xp.mean(xp.logaddexp(r, -r) - math.log(2))


def gradient(b, w, X, y):
    """The right formula, in numpy: b a float, w (d,), X (N, d), y (N,)."""
    t = np.tanh(y - (X @ w + b))  # (N,) d ln cosh(r)/dr
    return -t.mean(), -X.T @ t / len(y)


def slip(b, w, X, y):
    """The classic slip: tanh(r) is the derivative in r, but the chain rule's ∂r/∂b = -1 (and
    ∂r/∂w = -x) is forgotten, so every derivative has the wrong sign."""
    t = np.tanh(y - (X @ w + b))
    return t.mean(), X.T @ t / len(y)
