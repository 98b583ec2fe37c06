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


def steps(params, X, y):
    """The right formula, returning its intermediates too: dZ2 (= dL/dŷ), dA1 and dZ1, each
    checked against every engine when the gradient is wrong, to find the first wrong step."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    A1 = np.tanh(X @ W1 + b1)
    d_Z2 = 2 * (A1 @ W2 + b2 - y) / len(y)
    d_A1 = np.outer(d_Z2, W2)
    d_Z1 = d_A1 * (1 - A1**2)
    return {
        "W1": X.T @ d_Z1, "b1": d_Z1.sum(axis=0), "W2": A1.T @ d_Z2, "b2": d_Z2.sum(),
        "dZ2": d_Z2, "dA1": d_A1, "dZ1": d_Z1,
    }  # fmt: skip


def steps_slip(params, X, y):
    """A slip located to its step: tanh' written with Z1 = X·W1 + b1 where A1 = tanh(Z1)
    belongs. dZ2 and dA1 are right; dZ1 is the first wrong step."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    Z1 = X @ W1 + b1
    A1 = np.tanh(Z1)
    d_Z2 = 2 * (A1 @ W2 + b2 - y) / len(y)
    d_A1 = np.outer(d_Z2, W2)
    d_Z1 = d_A1 * (1 - Z1**2)  # should be 1 - A1**2
    return {
        "W1": X.T @ d_Z1, "b1": d_Z1.sum(axis=0), "W2": A1.T @ d_Z2, "b2": d_Z2.sum(),
        "dZ2": d_Z2, "dA1": d_A1, "dZ1": d_Z1,
    }  # fmt: skip
