"""The mean cross-entropy of a softmax, with the log-sum-exp trick: gradient and Hessian-vector
product by hand (python -m verifiers.check docs/functions/softmax_cross_entropy.py).

For N rows of scores z (k classes each) and integer labels:

    L = (1/N) Σ_i (logsumexp(z_i) - z_i[label_i])
    logsumexp(z) = m + log Σ_j exp(z_j - m),  m = max_j z_j      (no exp overflows: z_j - m <= 0)

The shift by m changes nothing mathematically (its derivatives cancel), so by hand:

    dL/dz = (P - Y) / N          P = softmax(z) row by row, Y the one-hot labels
    H·v   = (P·v - P·Σ_j P_j v_j) / N     per row (the softmax's Jacobian, diag(P) - P Pᵀ)

The labels are integers: data, with no derivative. `gradient_slip` forgets the 1/N of the mean.
"""

import numpy as np


def inputs(rng):
    """Scores of a few units' size, and one label per row (a constrained input: a function)."""
    return {"z": 3 * rng.standard_normal((6, 4)), "labels": rng.integers(0, 4, size=6)}


def forward(z, labels, *, xp):
    m = xp.max(z, axis=1, keepdims=True)
    logsumexp = m + xp.log(xp.sum(xp.exp(z - m), axis=1, keepdims=True))
    onehot = xp.astype(labels[:, None] == xp.arange(z.shape[1]), z.dtype)
    return xp.mean(xp.sum(onehot * (logsumexp - z), axis=1))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def gradient(z, labels):
    """The right gradient."""
    onehot = np.eye(z.shape[1])[labels]
    return {"z": (_softmax(z) - onehot) / len(z)}


def hvp(v, z, labels):
    """The right Hessian-vector product."""
    P = _softmax(z)
    return {"z": (P * v["z"] - P * (P * v["z"]).sum(axis=1, keepdims=True)) / len(z)}


def gradient_slip(z, labels):
    """The classic slip: the 1/N of the mean forgotten (the gradient of the sum)."""
    onehot = np.eye(z.shape[1])[labels]
    return {"z": _softmax(z) - onehot}
