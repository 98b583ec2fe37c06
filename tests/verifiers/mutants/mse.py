"""Mutants of the MSE's hand gradient, ``--model mse``: ``L = mean((y - (X·w + b))²)``.

The right formula is ``dL/db = -(2/N) Σ r_i``, ``dL/dw = -(2/N) Xᵀr`` with ``r = y - (X·w + b)``.
Checked on ``data/data.csv`` (x from 25 to 70, y from 30 to 120, optimum b ≈ 8.0, w ≈ 1.32),
``multi.csv`` (three features) and ``zeros.csv`` (y == 0 on half the rows). On data.csv a fair
region is |b| up to about 1,000 and |w| up to about 30: predictions within a few times the
largest y.
"""

from __future__ import annotations

import numpy as np

from tests.verifiers.mutants.base import DATA_CSV, MULTI_CSV, ZEROS_CSV, Maker


def _grad(r: np.ndarray, X: np.ndarray) -> tuple[float, np.ndarray]:
    """``(-(2/N) Σ r, -(2/N) Xᵀr)`` for residuals r."""
    return -2 * r.mean(), -2 * X.T @ r / len(r)


def gradient(b, w, X, y):
    """The right formula."""
    return _grad(y - (X @ w + b), X)


# ---- constant factors, signs, sums ---------------------------------------------------------------
def doubled(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return 2 * gb, 2 * gw


def halved(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb / 2, gw / 2


def over_n_twice(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb / len(y), gw / len(y)


def summed(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb * len(y), gw * len(y)


def summed_w(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb, gw * len(y)


def flipped(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return -gb, -gw


def flipped_b(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return -gb, gw


# ---- terms left out, swapped ---------------------------------------------------------------------
def missing_b(b, w, X, y):
    return _grad(y - X @ w, X)


def missing_w(b, w, X, y):
    return _grad(y - b, X)


def missing_y(b, w, X, y):
    return _grad(-(X @ w + b), X)


def swapped(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gw[0], np.array([gb])


def reversed_w(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb, gw[::-1]


# ---- the model's own slips -----------------------------------------------------------------------
def no_x(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb, np.full_like(gw, gb)


def product_of_means(b, w, X, y):
    r = y - (X @ w + b)
    return -2 * r.mean(), -2 * X.mean(axis=0) * r.mean()


def float32(b, w, X, y):
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    r = y32 - (X32 @ w.astype(np.float32) + np.float32(b))
    return -2 * r.mean(), -2 * X32.T @ r / np.float32(len(y))


# ---- tiny relative errors ------------------------------------------------------------------------
def relative_1e6_w(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb, gw * (1 + 1e-6)


def relative_1e8_b(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb * (1 + 1e-8), gw


def relative_1e10_w(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb, gw * (1 + 1e-10)


# ---- region-limited ------------------------------------------------------------------------------
def abs_b(b, w, X, y):
    return _grad(y - (X @ w + abs(b)), X)


def abs_w(b, w, X, y):
    return _grad(y - (X @ np.abs(w) + b), X)


def opposite_signs(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb, (2 * gw if b * w[0] < 0 else gw)


def mixed_w01(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    if w[0] * w[1] < 0:
        gw = gw[[1, 0, 2]]
    return gb, gw


def clipped_w(b, w, X, y):
    return _grad(y - (X @ np.clip(w, -5, 5) + b), X)


def clipped_b(b, w, X, y):
    return _grad(y - (X @ w + np.clip(b, -50, 50)), X)


def damped_far(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    if np.hypot(b, np.linalg.norm(w)) > 100:
        return gb / 2, gw / 2
    return gb, gw


def band_w(b, w, X, y):
    return _grad(y - (X @ np.where((w > -1) & (w < 0), 0.0, w) + b), X)


def band_b(b, w, X, y):
    return _grad(y - (X @ w + (0.0 if 0 < b < 0.5 else b)), X)


def pruned_w(b, w, X, y):
    return _grad(y - (X @ np.where(np.abs(w) < 1e-3, 0.0, w) + b), X)


def frozen_w(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb, np.where(np.abs(w) < 1e-3, 0.0, gw)


def outlier_dropped(b, w, X, y):
    keep = np.arange(len(y)) != np.argmax(np.abs(X).max(axis=1))
    r = np.where(keep, y - (X @ w + b), 0.0)
    return _grad(r, X)


def residual_clipped(b, w, X, y):
    return _grad(np.clip(y - (X @ w + b), -100, 100), X)


def winsorized_x(b, w, X, y):
    r = y - (X @ w + b)
    return -2 * r.mean(), -2 * np.minimum(X, 65).T @ r / len(y)


def zero_rows_skipped(b, w, X, y):
    return _grad(np.where(y == 0, 0.0, y - (X @ w + b)), X)


def zero_rows_not_counted(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    share = len(y) / np.count_nonzero(y)
    return gb * share, gw * share


M = Maker("mse", globals(), DATA_CSV)

RIGHT = [
    M("gradient", "right", "the right formula", witness=[8.0, 1.3]),
    M("gradient", "right", "the right formula, three features", data=MULTI_CSV),
    M("gradient", "right", "the right formula, y == 0 on half the rows", data=ZEROS_CSV),
]

MUTANTS = [
    M("doubled", "factor", "both derivatives doubled (the square's 2 counted twice)"),
    M("halved", "factor", "the 2 from d(r²)/dr forgotten: both derivatives halved"),
    M("over_n_twice", "factor", "divided by N twice: 1/N of the true gradient"),
    M("summed", "sum-mean", "Σ where (1/N) Σ belongs: N times the true gradient"),
    M("summed_w", "sum-mean", "dL/dw a sum over rows, dL/db a mean"),
    M("flipped", "sign", "∂r/∂θ taken as +1, +x: every sign flipped"),
    M("flipped_b", "sign", "∂r/∂b taken as +1: dL/db's sign flipped"),
    M(
        "missing_b",
        "missing-term",
        "b left out of the residual (r = y - X·w)",
        witness=[8.0, 1.3],
    ),
    M(
        "missing_w",
        "missing-term",
        "X·w left out of the residual (r = y - b)",
        witness=[8.0, 1.3],
    ),
    M("missing_y", "missing-term", "y left out of the residual (r = -(X·w + b))"),
    M("swapped", "swap", "dL/db and dL/dw returned in each other's place"),
    M(
        "reversed_w",
        "swap",
        "dL/dw's components in reverse feature order (x3, x2, x1)",
        data=MULTI_CSV,
    ),
    M("no_x", "slip", "dL/dw without the x_i: it equals dL/db"),
    M("product_of_means", "slip", "mean(x·r) taken as mean(x)·mean(r)"),
    M("float32", "float32", "the whole formula in float32 (about 1e-7 relative)"),
    M("relative_1e6_w", "tiny", "dL/dw 1e-6 too large (relative)"),
    M("relative_1e8_b", "tiny", "dL/db 1e-8 too large (relative)"),
    M("relative_1e10_w", "tiny", "dL/dw 1e-10 too large (relative)"),
    M(
        "abs_b",
        "sign-pattern",
        "|b| in the residual: wrong only where b < 0 (fair: b from -1,000 to 0)",
        witness=[-5.0, 1.3],
    ),
    M(
        "abs_w",
        "sign-pattern",
        "X·|w| in the residual: wrong only where w < 0 (fair: w from -30 to 0)",
        witness=[8.0, -1.0],
    ),
    M(
        "opposite_signs",
        "sign-pattern",
        "dL/dw doubled where b·w < 0 (contrived; fair: either sign of b with the other of w)",
        witness=[-8.0, 1.3],
    ),
    M(
        "mixed_w01",
        "sign-pattern",
        "dL/dw[0] and dL/dw[1] swapped where w[0]·w[1] < 0 (contrived; the optimum has them "
        "of one sign; fair: any sign pattern of the three w's)",
        data=MULTI_CSV,
        witness=[3.0, 1.5, -2.0, 0.5],
    ),
    M(
        "clipped_w",
        "far-out",
        "w clipped to ±5 'for stability': wrong only where |w| > 5 (fair: |w| up to 30, "
        "predictions up to a few times y)",
        witness=[0.0, 6.0],
    ),
    M(
        "clipped_b",
        "far-out",
        "b clipped to ±50: wrong only where |b| > 50 (fair: |b| up to 1,000; y reaches 120)",
        witness=[60.0, 1.0],
    ),
    M(
        "damped_far",
        "far-out",
        "the gradient halved where ‖θ‖ > 100 (fair: ‖θ‖ up to 1,000, the scale of y·10)",
        witness=[120.0, 1.0],
    ),
    M(
        "band_w",
        "thin-band",
        "w taken as 0 in the residual for -1 < w < 0 (fair: w of either sign, any size)",
        witness=[8.0, -0.5],
    ),
    M(
        "band_b",
        "thin-band",
        "b taken as 0 in the residual for 0 < b < 0.5 (fair: b of any size)",
        witness=[0.3, 1.3],
    ),
    M(
        "pruned_w",
        "near-zero",
        "w taken as 0 in the residual where |w| < 1e-3 ('pruning'): right at w = 0 exactly, "
        "wrong just off it (fair: |w| down to 1e-4)",
        witness=[8.0, 5e-4],
    ),
    M(
        "frozen_w",
        "near-zero",
        "dL/dw set to 0 where |w| < 1e-3 ('a dead weight'), w = 0 included",
        witness=[8.0, 0.0],
    ),
    M(
        "outlier_dropped",
        "extreme-rows",
        "the row with the largest |x| left out of the sums (still divided by N)",
    ),
    M(
        "residual_clipped",
        "extreme-rows",
        "residuals clipped to ±100 'against outliers': wrong only on rows with |r| > 100",
        witness=[0.0, 0.0],
    ),
    M(
        "winsorized_x",
        "extreme-rows",
        "x capped at 65 in dL/dw 'against outliers': wrong on the rows with x > 65",
    ),
    M(
        "zero_rows_skipped",
        "label-rows",
        "rows with y == 0 treated as missing (residual 0): right at the start (prediction 0), "
        "wrong wherever the prediction on those rows is not 0",
        data=ZEROS_CSV,
        witness=[1.0, 1.0],
    ),
    M(
        "zero_rows_not_counted",
        "label-rows",
        "the mean taken over the rows with y != 0 only",
        data=ZEROS_CSV,
    ),
]
