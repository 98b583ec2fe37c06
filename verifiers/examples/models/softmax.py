"""Softmax regression by hand: k classes, the mean cross-entropy (docs/models/softmax.md).

    Z = X·W + b                     W (d, k), b (k,): one score per row and class
    P = softmax(Z) row by row       Y the one-hot rows of the labels y (0, 1, ..., k-1)
    L(W, b) = (1/N) Σ_i -ln P_i,label

    dL/dW = (1/N) Xᵀ(P - Y)          (d, k), like W
    dL/db = (1/N) Σ_i (P_i - Y_i)    (k,), like b

params maps "W" and "b" to arrays; the result maps them to their gradients.
"""

import numpy as np


def probabilities(params, X):
    """P = softmax(X·W + b), with each row's largest score subtracted so nothing overflows."""
    Z = X @ params["W"] + params["b"]  # (N, k)
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    return P / P.sum(axis=1, keepdims=True)


def gradient(params, X, y):
    """The right formula: probabilities minus one-hot targets."""
    P = probabilities(params, X)
    Y = np.eye(P.shape[1])[y.astype(int)]  # (N, k) one-hot rows from the labels
    R = P - Y
    return {"W": X.T @ R / len(y), "b": R.mean(axis=0)}


def slip(params, X, y):
    """The classic slip: the one-hot forgotten, P where P - Y belongs (the -z_label term of
    the loss was not differentiated)."""
    P = probabilities(params, X)
    return {"W": X.T @ P / len(y), "b": P.mean(axis=0)}
