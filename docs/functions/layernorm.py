"""Layer normalisation's backward pass, by hand
(python -m verifiers.check docs/functions/layernorm.py).

Each row x (of d numbers) is normalised, then scaled and shifted by gamma and beta (d each):

    μ = mean(x)           σ = √(mean((x - μ)²) + ε)
    x̂ = (x - μ) / σ       y = x̂·gamma + beta        (every row; gamma and beta broadcast)

Backward, for a cotangent g shaped like y (the gradient arriving from above):

    dbeta  = Σ_rows g                    beta is added to every row: sum over the rows
    dgamma = Σ_rows g·x̂                  the same for gamma, times what it multiplies
    dx̂     = g·gamma
    dx     = (dx̂ - mean(dx̂) - x̂·mean(dx̂·x̂)) / σ       (per row: μ and σ depend on x too)

The last line is the one people derive wrong most often; its two subtracted means are what μ
and σ contribute. `vjp_slip` shows another classic: gamma's gradient left at the shape of y.
"""

import numpy as np

EPSILON = 1e-5
inputs = {"x": (4, 6), "gamma": (6,), "beta": (6,)}


def forward(x, gamma, beta, *, xp):
    mu = xp.mean(x, axis=-1, keepdims=True)
    sigma = xp.sqrt(xp.mean((x - mu) ** 2, axis=-1, keepdims=True) + EPSILON)
    return (x - mu) / sigma * gamma + beta


def _normalised(x):
    mu = x.mean(axis=-1, keepdims=True)
    sigma = np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + EPSILON)
    return (x - mu) / sigma, sigma


def vjp(g, x, gamma, beta):
    """The right backward pass."""
    x_hat, sigma = _normalised(x)
    d_x_hat = g * gamma
    d_x = (
        d_x_hat
        - d_x_hat.mean(axis=-1, keepdims=True)
        - x_hat * (d_x_hat * x_hat).mean(axis=-1, keepdims=True)
    ) / sigma
    return {"x": d_x, "gamma": (g * x_hat).sum(axis=0), "beta": g.sum(axis=0)}


def vjp_slip(g, x, gamma, beta):
    """The classic slip: gamma is broadcast over the rows, and its gradient is not summed back."""
    right = vjp(g, x, gamma, beta)
    x_hat, _ = _normalised(x)
    return {**right, "gamma": g * x_hat}  # shape (4, 6): the sum over axis 0 is missing
