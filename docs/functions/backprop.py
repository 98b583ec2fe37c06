"""Backpropagation through two layers, step by step, checked step by step with taps
(python -m verifiers.check docs/functions/backprop.py).

    Z1 = X·W1 + b1      (N, H)     every row of the data X (N, d)
    A1 = tanh(Z1)       (N, H)
    Z2 = A1·W2 + b2     (N, k)
    L  = (1/N) Σ (Z2 - Y)²         summed over rows and outputs: one number

forward marks each intermediate with tap("Z1", ...): the gradient may then return dL/dZ1 too,
and every engine checks it. The steps backward, each from the one before:

    dZ2 = 2 (Z2 - Y) / N
    dW2 = A1ᵀ·dZ2,  db2 = Σ_rows dZ2
    dA1 = dZ2·W2ᵀ
    dZ1 = dA1 · (1 - A1²)          tanh'(z) = 1 - tanh²(z): written with the output A1
    dW1 = Xᵀ·dZ1,   db1 = Σ_rows dZ1

The data X and Y are listed in constants: no derivative is taken with respect to them.
`gradient_slip` writes tanh' with the input, 1 - Z1²: the first wrong step is dZ1, and dW1 and
db1, computed from it, are wrong too.
"""

import numpy as np

inputs = {"X": (8, 3), "Y": (8, 2), "W1": (3, 5), "b1": (5,), "W2": (5, 2), "b2": (2,)}
constants = ("X", "Y")


def forward(X, Y, W1, b1, W2, b2, *, xp, tap):
    Z1 = tap("Z1", X @ W1 + b1)
    A1 = tap("A1", xp.tanh(Z1))
    Z2 = tap("Z2", A1 @ W2 + b2)
    return xp.sum((Z2 - Y) ** 2) / X.shape[0]


def gradient(X, Y, W1, b1, W2, b2):
    """The right backprop, every step returned."""
    Z1 = X @ W1 + b1
    A1 = np.tanh(Z1)
    Z2 = A1 @ W2 + b2
    dZ2 = 2 * (Z2 - Y) / len(X)
    dA1 = dZ2 @ W2.T
    dZ1 = dA1 * (1 - A1**2)
    return {
        "Z2": dZ2, "A1": dA1, "Z1": dZ1,
        "W2": A1.T @ dZ2, "b2": dZ2.sum(axis=0), "W1": X.T @ dZ1, "b1": dZ1.sum(axis=0),
    }  # fmt: skip


def gradient_slip(X, Y, W1, b1, W2, b2):
    """The classic slip: tanh' written with the input Z1 where the output A1 belongs."""
    Z1 = X @ W1 + b1
    A1 = np.tanh(Z1)
    Z2 = A1 @ W2 + b2
    dZ2 = 2 * (Z2 - Y) / len(X)
    dA1 = dZ2 @ W2.T
    dZ1 = dA1 * (1 - Z1**2)  # should be 1 - A1**2
    return {
        "Z2": dZ2, "A1": dA1, "Z1": dZ1,
        "W2": A1.T @ dZ2, "b2": dZ2.sum(axis=0), "W1": X.T @ dZ1, "b1": dZ1.sum(axis=0),
    }  # fmt: skip
