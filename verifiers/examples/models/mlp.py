"""Backpropagation by hand through one hidden layer of tanh units (docs/models/mlp.md).

    Z = X·W1 + b1    (N, H)     W1 (d, H), b1 (H,)
    A = tanh(Z)      (N, H)
    ŷ = A·W2 + b2    (N,)       W2 (H,), b2 a number
    L = (1/N) Σ_i (ŷ_i - y_i)²

params maps "W1", "b1", "W2", "b2" to arrays; the result maps them to their gradients,
each shaped like its parameter.
"""

import numpy as np


def gradient(params, X, y):
    """The right formula: the five steps of backpropagation."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    A = np.tanh(X @ W1 + b1)  # (N, H) forward pass
    d_out = 2 * (A @ W2 + b2 - y) / len(y)  # (N,)   1. dL/dŷ
    d_A = np.outer(d_out, W2)  # (N, H)               3. dL/dA (step 2 is in the return)
    d_Z = d_A * (1 - A**2)  # (N, H)                  4. dL/dZ: tanh' = 1 - tanh² = 1 - A²
    return {
        "W1": X.T @ d_Z,  # (d, H)                    5. like W1
        "b1": d_Z.sum(axis=0),  # (H,)                   summed over rows, not averaged
        "W2": A.T @ d_out,  # (H,)                    2.
        "b2": d_out.sum(),
    }


def slip(params, X, y):
    """The classic slip: step 4 left out, as if the hidden layer were linear (no tanh')."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    A = np.tanh(X @ W1 + b1)
    d_out = 2 * (A @ W2 + b2 - y) / len(y)
    d_Z = np.outer(d_out, W2)  # dL/dA passed straight through: the (1 - A²) is missing
    return {"W1": X.T @ d_Z, "b1": d_Z.sum(axis=0), "W2": A.T @ d_out, "b2": d_out.sum()}
