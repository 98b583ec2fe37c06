"""Mutants of backpropagation through one tanh hidden layer, ``--model mlp`` (``--hidden 8``).

``Z = X·W1 + b1``, ``A = tanh(Z)``, ``ŷ = A·W2 + b2``, ``L = mean((ŷ - y)²)``; the right formula
is the five steps of backpropagation. Checked on ``data/wave.csv`` (one feature from -3 to 3,
y = sin(x) + noise; θ = W1 (1 × 8), b1 (8), W2 (8), b2, 25 entries, from random weights drawn
with the seed) and ``wave3.csv`` (three features, ``--hidden 3``, so a transposed W1 has W1's
shape). A fair region is weights up to about 10 (units driven deep into saturation, |Z| up to
about 30) and biases of either sign up to about 10.
"""

from __future__ import annotations

import numpy as np

from tests.verifiers.mutants.base import WAVE3_CSV, WAVE_CSV, Maker


def backprop(params, X, y, tanh=np.tanh, tanh_prime=None):
    """The five steps, with the pieces a mutant may replace: `tanh` (A from Z) and `tanh_prime`
    (tanh' from Z and A; by default 1 - A²). A mutant that computes with other parameter values
    than it is given passes those (``{**params, "b2": 0.0}``)."""
    W1, b1, W2, b2 = (params[n] for n in ("W1", "b1", "W2", "b2"))
    Z = X @ W1 + b1
    A = tanh(Z)
    d_out = 2 * (A @ W2 + b2 - y) / len(y)
    d_Z = np.outer(d_out, W2) * (1 - A * A if tanh_prime is None else tanh_prime(Z, A))
    return {"W1": X.T @ d_Z, "b1": d_Z.sum(axis=0), "W2": A.T @ d_out, "b2": d_out.sum()}


def gradient(params, X, y):
    """The right formula."""
    return backprop(params, X, y)


def _times(g: dict, **factors) -> dict:
    return {name: value * factors.get(name, 1) for name, value in g.items()}


# ---- the model's own slips -----------------------------------------------------------------------
def missing_tanh_prime(params, X, y):
    return backprop(params, X, y, tanh_prime=lambda Z, A: 1.0)


def tanh_prime_of_z(params, X, y):
    return backprop(params, X, y, tanh_prime=lambda Z, A: 1 - Z * Z)


def tanh_prime_unsquared(params, X, y):
    return backprop(params, X, y, tanh_prime=lambda Z, A: 1 - A)


def missing_w2(params, X, y):
    A = np.tanh(X @ params["W1"] + params["b1"])
    d_out = 2 * (A @ params["W2"] + params["b2"] - y) / len(y)
    d_Z = d_out[:, None] * (1 - A * A)
    return {"W1": X.T @ d_Z, "b1": d_Z.sum(axis=0), "W2": A.T @ d_out, "b2": d_out.sum()}


def transposed_w1(params, X, y):
    g = gradient(params, X, y)
    return {**g, "W1": g["W1"].T.copy()}


def b1_averaged(params, X, y):
    g = gradient(params, X, y)
    return _times(g, b1=1 / len(y))


# ---- factors, signs, terms, order ----------------------------------------------------------------
def halved(params, X, y):
    return _times(gradient(params, X, y), W1=0.5, b1=0.5, W2=0.5, b2=0.5)


def summed(params, X, y):
    n = len(y)
    return _times(gradient(params, X, y), W1=n, b1=n, W2=n, b2=n)


def doubled_b2(params, X, y):
    return _times(gradient(params, X, y), b2=2)


def flipped(params, X, y):
    return _times(gradient(params, X, y), W1=-1, b1=-1, W2=-1, b2=-1)


def missing_b2(params, X, y):
    return backprop({**params, "b2": 0.0}, X, y)


def pre_activation_w2(params, X, y):
    g = gradient(params, X, y)
    Z = X @ params["W1"] + params["b1"]
    A = np.tanh(Z)
    d_out = 2 * (A @ params["W2"] + params["b2"] - y) / len(y)
    return {**g, "W2": Z.T @ d_out}


def float32(params, X, y):
    p32 = {name: np.asarray(value, dtype=np.float32) for name, value in params.items()}
    return backprop(p32, X.astype(np.float32), y.astype(np.float32))


# ---- tiny relative errors ------------------------------------------------------------------------
def _relative(params, X, y, name, index, eps):
    g = gradient(params, X, y)
    value = np.array(g[name], dtype=np.float64)
    value[index] *= 1 + eps
    return {**g, name: value}


def relative_1e6_w2(params, X, y):
    return _relative(params, X, y, "W2", 0, 1e-6)


def relative_1e8_w1(params, X, y):
    return _relative(params, X, y, "W1", (0, 3), 1e-8)


def relative_1e10_b2(params, X, y):
    return _relative(params, X, y, "b2", (), 1e-10)


# ---- region-limited ------------------------------------------------------------------------------
def abs_b2(params, X, y):
    return backprop({**params, "b2": abs(params["b2"])}, X, y)


def opposite_b2_w2(params, X, y):
    g = gradient(params, X, y)
    if params["b2"] * params["W2"][0] < 0:
        return _times(g, W2=2)
    return g


def clipped_w1(params, X, y):
    return backprop({**params, "W1": np.clip(params["W1"], -5, 5)}, X, y)


def band_b2(params, X, y):
    b2 = params["b2"]
    return backprop({**params, "b2": 0.0 if 0 < b2 < 0.5 else b2}, X, y)


def pruned_w2(params, X, y):
    W2 = params["W2"]
    return backprop({**params, "W2": np.where(np.abs(W2) < 1e-3, 0.0, W2)}, X, y)


def tanh_saturated(params, X, y):
    return backprop(params, X, y, tanh=lambda Z: np.where(np.abs(Z) > 3, np.sign(Z), np.tanh(Z)))


def tanh_prime_dead(params, X, y):
    return backprop(params, X, y, tanh_prime=lambda Z, A: np.where(np.abs(Z) > 5, 0.0, 1 - A * A))


def outlier_dropped(params, X, y):
    keep = np.arange(len(y)) != np.argmax(np.abs(X).max(axis=1))
    g = backprop(params, X[keep], y[keep])
    share = (len(y) - 1) / len(y)  # the rows kept, divided by N - 1 inside: scaled back to N
    return _times(g, W1=share, b1=share, W2=share, b2=share)


def abs_target(params, X, y):
    return backprop(params, X, np.abs(y))


# ---- witnesses: the default start (random weights, zero biases) moved into each region -----------
H = 8  # the default --hidden
W1, B1, W2, B2 = slice(0, H), slice(H, 2 * H), slice(2 * H, 3 * H), 3 * H


def _moved(**changes):
    def witness(start: np.ndarray) -> np.ndarray:
        theta = np.array(start, dtype=np.float64)
        theta[B1] = np.linspace(-1, 1, H)  # biases of both signs, so no unit sits at Z = x·W1
        theta[B2] = 0.3
        for name, value in changes.items():
            part = {"W1": W1, "b1": B1, "W2": W2, "b2": B2}[name]
            theta[part] = value(theta[part]) if callable(value) else value
        return theta

    return witness


M = Maker("mlp", globals(), WAVE_CSV)

GENERIC = _moved()

RIGHT = [
    M("gradient", "right", "the right formula", witness=_moved(W1=lambda w: 8 * w)),
    M("gradient", "right", "the right formula, three features and units", data=WAVE3_CSV, hidden=3),
]

MUTANTS = [
    M("missing_tanh_prime", "slip", "step 4 left out: δZ = δA, no (1 - A²)"),
    M("tanh_prime_of_z", "slip", "1 - Z² for 1 - tanh²(Z)"),
    M("tanh_prime_unsquared", "slip", "1 - A for 1 - A²"),
    M("missing_w2", "slip", "step 3 without W2: δA_ih = δŷ_i"),
    M(
        "transposed_w1",
        "slip",
        "δZᵀ·X for Xᵀ·δZ: W1's gradient transposed (three features, three units)",
        data=WAVE3_CSV,
        hidden=3,
    ),
    M("b1_averaged", "sum-mean", "dL/db1 a mean over rows (δŷ already holds the 1/N)"),
    M("halved", "factor", "the 2 of step 1 forgotten: every derivative halved"),
    M("summed", "sum-mean", "the 1/N of step 1 forgotten: N times every derivative"),
    M("doubled_b2", "factor", "dL/db2 doubled"),
    M("flipped", "sign", "y - ŷ for ŷ - y: every sign flipped"),
    M("missing_b2", "missing-term", "b2 left out of the forward pass", witness=GENERIC),
    M("pre_activation_w2", "swap", "dL/dW2 = Zᵀ·δŷ: Z where A belongs", witness=GENERIC),
    M("float32", "float32", "the whole formula in float32"),
    M("relative_1e6_w2", "tiny", "dL/dW2[0] 1e-6 too large (relative)"),
    M("relative_1e8_w1", "tiny", "dL/dW1[0,3] 1e-8 too large (relative)"),
    M("relative_1e10_b2", "tiny", "dL/db2 1e-10 too large (relative)", witness=GENERIC),
    M(
        "abs_b2",
        "sign-pattern",
        "|b2| in the output: wrong only where b2 < 0",
        witness=_moved(b2=-0.3),
    ),
    M(
        "opposite_b2_w2",
        "sign-pattern",
        "dL/dW2 doubled where b2·W2[0] < 0 (contrived)",
        witness=_moved(W2=lambda w: np.where(np.arange(H) == 0, -abs(w), w)),
    ),
    M(
        "clipped_w1",
        "far-out",
        "W1 clipped to ±5 'for stability': wrong only where some |W1_h| > 5 (fair: up to 10)",
        witness=_moved(W1=lambda w: 8 * w),
    ),
    M(
        "band_b2",
        "thin-band",
        "b2 taken as 0 for 0 < b2 < 0.5 (fair: b2 of either sign, any size)",
        witness=GENERIC,
    ),
    M(
        "pruned_w2",
        "near-zero",
        "W2_h taken as 0 where |W2_h| < 1e-3: right at W2_h = 0, wrong just off it",
        witness=_moved(W2=lambda w: np.where(np.arange(H) == 0, 5e-4, w)),
    ),
    M(
        "tanh_saturated",
        "extreme-rows",
        "tanh(Z) replaced by sign(Z) where |Z| > 3 ('saturated'): A off by up to 5e-3 there",
        witness=_moved(W1=lambda w: 4 * w),
    ),
    M(
        "tanh_prime_dead",
        "extreme-rows",
        "tanh' taken as 0 where |Z| > 5 ('dead units'): off by up to 1.8e-4 there",
        witness=_moved(W1=lambda w: 4 * w),
    ),
    M(
        "outlier_dropped",
        "extreme-rows",
        "the row with the largest |x| left out of the sums",
        witness=GENERIC,
    ),
    M(
        "abs_target",
        "label-rows",
        "|y| for y: wrong on the rows with y < 0",
    ),
]
