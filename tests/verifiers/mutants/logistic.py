"""Mutants of logistic regression's hand gradient, ``--model logistic``.

``L = mean(ln(1 + e^z) - y·z)``, ``z = X·w + b``; the right formula is ``(1/N) Σ (σ - y)`` and
``(1/N) Xᵀ(σ - y)``. Checked on ``data/binary.csv``: two features of unit scale, labels 0/1,
optimum b ≈ 1.0, w ≈ (2.0, -1.2). A fair region is |b|, |w_j| up to about 30 (logits up to
about ±100, where σ is 0 or 1 to the last bit but the loss is still an ordinary number).
"""

from __future__ import annotations

import numpy as np

from tests.verifiers.mutants.base import BINARY_CSV, Maker, sigmoid


def _grad(r: np.ndarray, X: np.ndarray) -> tuple[float, np.ndarray]:
    """``((1/N) Σ r, (1/N) Xᵀr)`` for the per-row derivatives r = dℓ/dz."""
    return r.mean(), X.T @ r / len(r)


def gradient(b, w, X, y):
    """The right formula."""
    return _grad(sigmoid(X @ w + b) - y, X)


def naive(b, w, X, y):
    """Also right: σ written as 1/(1 + e^-z), which overflows to the right limit (0) far out."""
    with np.errstate(over="ignore"):
        p = 1 / (1 + np.exp(-(X @ w + b)))
    return _grad(p - y, X)


# ---- the model's own slips -----------------------------------------------------------------------
def flipped_residual(b, w, X, y):
    return _grad(y - sigmoid(X @ w + b), X)


def sigmoid_prime(b, w, X, y):
    p = sigmoid(X @ w + b)
    return _grad((p - y) * p * (1 - p), X)


def mse_of_sigmoid(b, w, X, y):
    p = sigmoid(X @ w + b)
    return _grad(2 * (p - y) * p * (1 - p), X)


def linear_residual(b, w, X, y):
    return _grad(X @ w + b - y, X)


def no_x(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb, np.full_like(gw, gb)


# ---- factors, signs, terms, order ----------------------------------------------------------------
def doubled(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return 2 * gb, 2 * gw


def halved_w(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb, gw / 2


def summed(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb * len(y), gw * len(y)


def exponent_sign(b, w, X, y):
    return _grad(sigmoid(-(X @ w + b)) - y, X)


def flipped_b(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return -gb, gw


def missing_b(b, w, X, y):
    return _grad(sigmoid(X @ w) - y, X)


def reversed_w(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb, gw[::-1]


def b_w0_swapped(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gw[0], np.array([gb, gw[1]])


def float32(b, w, X, y):
    z = X.astype(np.float32) @ w.astype(np.float32) + np.float32(b)
    r = (1 / (1 + np.exp(-z)) - y.astype(np.float32)).astype(np.float32)
    return r.mean(), X.astype(np.float32).T @ r / np.float32(len(y))


# ---- tiny relative errors ------------------------------------------------------------------------
def relative_1e6_b(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb * (1 + 1e-6), gw


def relative_1e8_w(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb, gw * [1 + 1e-8, 1]


def relative_1e10_w(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb, gw * [1, 1 + 1e-10]


# ---- region-limited ------------------------------------------------------------------------------
def abs_b(b, w, X, y):
    return _grad(sigmoid(X @ w + abs(b)) - y, X)


def opposite_b_w0(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return (2 * gb if b * w[0] < 0 else gb), gw


def same_sign_w(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb, (gw[::-1] if w[0] * w[1] > 0 else gw)


def clipped_w(b, w, X, y):
    return _grad(sigmoid(X @ np.clip(w, -5, 5) + b) - y, X)


def band_w0(b, w, X, y):
    w = np.where((w > -1) & (w < 0), [0.0, w[1]], w)
    return _grad(sigmoid(X @ w + b) - y, X)


def pruned_w(b, w, X, y):
    return _grad(sigmoid(X @ np.where(np.abs(w) < 1e-3, 0.0, w) + b) - y, X)


def clipped_13(b, w, X, y):
    return _grad(sigmoid(np.clip(X @ w + b, -13, 13)) - y, X)


def clipped_20(b, w, X, y):
    return _grad(sigmoid(np.clip(X @ w + b, -20, 20)) - y, X)


def exp_clipped(b, w, X, y):
    p = 1 / (1 + np.exp(np.clip(-(X @ w + b), -10, 10)))
    return _grad(p - y, X)


def outlier_dropped(b, w, X, y):
    keep = np.arange(len(y)) != np.argmax(np.abs(X).max(axis=1))
    return _grad(np.where(keep, sigmoid(X @ w + b) - y, 0.0), X)


def zero_rows_sigmoid_prime(b, w, X, y):
    p = sigmoid(X @ w + b)
    return _grad(np.where(y == 0, p * p * (1 - p), p - y), X)


def zero_rows_halved(b, w, X, y):
    p = sigmoid(X @ w + b)
    return _grad(np.where(y == 0, p / 2, p - y), X)


M = Maker("logistic", globals(), BINARY_CSV)

GENERIC = [1.0, 2.0, -1.2]  # about the optimum
FAR = [0.5, 8.0, -6.0]  # logits beyond ±13 on many rows

RIGHT = [
    M("gradient", "right", "the right formula", witness=FAR),
    M("naive", "right", "the right formula with σ written naively", witness=FAR),
]

MUTANTS = [
    M("flipped_residual", "slip", "(y - σ) for (σ - y)"),
    M("sigmoid_prime", "slip", "a factor σ(1 - σ) kept from an MSE-of-sigmoid derivation"),
    M("mse_of_sigmoid", "slip", "the MSE-of-sigmoid gradient 2(σ - y)σ(1 - σ)"),
    M("linear_residual", "slip", "z - y: the sigmoid left out"),
    M("no_x", "slip", "dL/dw without the x_i: it equals dL/db"),
    M("doubled", "factor", "both derivatives doubled"),
    M("halved_w", "factor", "dL/dw halved"),
    M("summed", "sum-mean", "Σ where the mean belongs: N times the true gradient"),
    M(
        "exponent_sign",
        "sign",
        "σ(-z) for σ(z): the sign in the exponent lost",
        witness=GENERIC,
    ),
    M("flipped_b", "sign", "dL/db's sign flipped"),
    M("missing_b", "missing-term", "b left out of the logit (z = X·w)", witness=GENERIC),
    M("reversed_w", "swap", "dL/dw's two components in reverse order"),
    M("b_w0_swapped", "swap", "dL/db and dL/dw[0] in each other's place"),
    M("float32", "float32", "the whole formula in float32"),
    M("relative_1e6_b", "tiny", "dL/db 1e-6 too large (relative)"),
    M("relative_1e8_w", "tiny", "dL/dw[0] 1e-8 too large (relative)"),
    M("relative_1e10_w", "tiny", "dL/dw[1] 1e-10 too large (relative)"),
    M(
        "abs_b",
        "sign-pattern",
        "|b| in the logit: wrong only where b < 0 (fair: b from -30 to 0)",
        witness=[-1.0, 2.0, -1.2],
    ),
    M(
        "opposite_b_w0",
        "sign-pattern",
        "dL/db doubled where b·w[0] < 0 (contrived)",
        witness=[-1.0, 2.0, -1.2],
    ),
    M(
        "same_sign_w",
        "sign-pattern",
        "dL/dw's components swapped where w[0]·w[1] > 0 (contrived; the optimum has them of "
        "opposite signs)",
        witness=[1.0, 2.0, 1.2],
    ),
    M(
        "clipped_w",
        "far-out",
        "w clipped to ±5 'for stability': wrong only where some |w_j| > 5 (fair: up to 30)",
        witness=FAR,
    ),
    M(
        "band_w0",
        "thin-band",
        "w[0] taken as 0 for -1 < w[0] < 0 (fair: w[0] of either sign, any size)",
        witness=[1.0, -0.5, -1.2],
    ),
    M(
        "pruned_w",
        "near-zero",
        "w_j taken as 0 where |w_j| < 1e-3: right at w = 0, wrong just off it",
        witness=[1.0, 5e-4, -1.2],
    ),
    M(
        "clipped_13",
        "extreme-rows",
        "the logit clipped to ±13 'for stability': σ off by up to 2.3e-6 on rows with |z| > 13",
        witness=FAR,
    ),
    M(
        "clipped_20",
        "extreme-rows",
        "the logit clipped to ±20: σ off by up to 2.1e-9 on rows with |z| > 20",
        witness=FAR,
    ),
    M(
        "exp_clipped",
        "extreme-rows",
        "e^-z computed with its exponent clipped to ±10 'against overflow': σ off by up to "
        "4.5e-5 on rows with |z| > 10",
        witness=FAR,
    ),
    M(
        "outlier_dropped",
        "extreme-rows",
        "the row with the largest |x| left out of the sums",
    ),
    M(
        "zero_rows_sigmoid_prime",
        "label-rows",
        "on rows with y == 0 the residual carries a factor σ(1 - σ) too many",
    ),
    M(
        "zero_rows_halved",
        "label-rows",
        "rows with y == 0 weighted by 1/2 ('class balance' the loss does not have)",
    ),
]
