"""Mutants of ridge regression's hand gradient, ``--model ridge`` (``--l2 0.1``, the default).

``L = mean((y - (X·w + b))²) + λ‖w‖²``; the right formula is the MSE's plus ``2λw`` for w and
nothing for b. On ``data/data.csv`` the penalty's share of dL/dw is small (0.2·w against a
data term of thousands), which is what the penalty's slips have to be caught through. Fair
region as for the MSE: |b| up to about 1,000, |w| up to about 30.
"""

from __future__ import annotations

import numpy as np

from tests.verifiers.mutants.base import DATA_CSV, MULTI_CSV, ZEROS_CSV, Maker

L2 = 0.1  # λ: the default --l2


def _mse(r: np.ndarray, X: np.ndarray) -> tuple[float, np.ndarray]:
    return -2 * r.mean(), -2 * X.T @ r / len(r)


def _with_penalty(b, w, X, y, penalty):
    gb, gw = _mse(y - (X @ w + b), X)
    return gb, gw + penalty


def gradient(b, w, X, y):
    """The right formula."""
    return _with_penalty(b, w, X, y, 2 * L2 * w)


def penalty_missing(b, w, X, y):
    return _with_penalty(b, w, X, y, 0 * w)


def penalty_half(b, w, X, y):
    return _with_penalty(b, w, X, y, L2 * w)


def penalty_on_b(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb + 2 * L2 * b, gw


def penalty_doubled(b, w, X, y):
    return _with_penalty(b, w, X, y, 4 * L2 * w)


def penalty_over_n(b, w, X, y):
    return _with_penalty(b, w, X, y, 2 * L2 * w / len(y))


def penalty_lambda_squared(b, w, X, y):
    return _with_penalty(b, w, X, y, 2 * L2**2 * w)


def penalty_flipped(b, w, X, y):
    return _with_penalty(b, w, X, y, -2 * L2 * w)


def summed(b, w, X, y):
    gb, gw = _mse(y - (X @ w + b), X)
    return gb * len(y), gw * len(y) + 2 * L2 * w


def missing_b(b, w, X, y):
    gb, gw = _mse(y - X @ w, X)
    return gb, gw + 2 * L2 * w


def swapped(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gw[0], np.array([gb])


def float32(b, w, X, y):
    X32, y32, w32 = X.astype(np.float32), y.astype(np.float32), w.astype(np.float32)
    r = y32 - (X32 @ w32 + np.float32(b))
    n = np.float32(len(y))
    return -2 * r.mean(), -2 * X32.T @ r / n + np.float32(2 * L2) * w32


def relative_1e8_w(b, w, X, y):
    gb, gw = gradient(b, w, X, y)
    return gb, gw * (1 + 1e-8)


def penalty_relative_1e6(b, w, X, y):
    return _with_penalty(b, w, X, y, 2 * L2 * w * (1 + 1e-6))


def penalty_abs(b, w, X, y):
    return _with_penalty(b, w, X, y, 2 * L2 * np.abs(w))


def penalty_clipped(b, w, X, y):
    return _with_penalty(b, w, X, y, 2 * L2 * np.clip(w, -5, 5))


def penalty_band(b, w, X, y):
    return _with_penalty(b, w, X, y, np.where((w > -1) & (w < 0), 0.0, 2 * L2 * w))


def penalty_l1_near_zero(b, w, X, y):
    return _with_penalty(b, w, X, y, np.where(np.abs(w) < 1e-3, L2 * np.sign(w), 2 * L2 * w))


def outlier_dropped(b, w, X, y):
    keep = np.arange(len(y)) != np.argmax(np.abs(X).max(axis=1))
    gb, gw = _mse(np.where(keep, y - (X @ w + b), 0.0), X)
    return gb, gw + 2 * L2 * w


def zero_rows_skipped(b, w, X, y):
    gb, gw = _mse(np.where(y == 0, 0.0, y - (X @ w + b)), X)
    return gb, gw + 2 * L2 * w


M = Maker("ridge", globals(), DATA_CSV)

RIGHT = [
    M("gradient", "right", "the right formula", witness=[8.0, 1.3]),
    M("gradient", "right", "the right formula, three features", data=MULTI_CSV),
    M("gradient", "right", "the right formula, y == 0 on half the rows", data=ZEROS_CSV),
]

GENERIC = [8.0, 1.3]  # near the optimum, where w is not 0 and the penalty's slips show

MUTANTS = [
    M("penalty_missing", "slip", "the penalty's 2λw left out", witness=GENERIC),
    M("penalty_half", "slip", "λw for 2λw: the 2 from d(w²)/dw forgotten", witness=GENERIC),
    M("penalty_on_b", "slip", "2λb added to dL/db: b is not penalised", witness=GENERIC),
    M("penalty_doubled", "factor", "4λw for 2λw", witness=GENERIC),
    M("penalty_over_n", "factor", "2λw/N: the penalty averaged like the rows", witness=GENERIC),
    M("penalty_lambda_squared", "factor", "2λ²w for 2λw", witness=GENERIC),
    M("penalty_flipped", "sign", "-2λw for 2λw", witness=GENERIC),
    M("summed", "sum-mean", "the data term a sum over rows (penalty right)"),
    M("missing_b", "missing-term", "b left out of the residual", witness=GENERIC),
    M("swapped", "swap", "dL/db and dL/dw returned in each other's place"),
    M("float32", "float32", "the whole formula in float32"),
    M("relative_1e8_w", "tiny", "dL/dw 1e-8 too large (relative)"),
    M(
        "penalty_relative_1e6",
        "tiny",
        "the penalty's derivative 1e-6 too large (relative): about 3e-11 of dL/dw near the optimum",
        witness=GENERIC,
    ),
    M(
        "penalty_abs",
        "sign-pattern",
        "2λ|w| for 2λw: wrong only where w < 0 (fair: w from -30 to 0)",
        witness=[8.0, -1.0],
    ),
    M(
        "penalty_clipped",
        "far-out",
        "the penalty's derivative with w clipped to ±5: wrong only where |w| > 5 (fair: |w| "
        "up to 30)",
        witness=[0.0, 6.0],
    ),
    M(
        "penalty_band",
        "thin-band",
        "no penalty derivative for -1 < w < 0 (fair: w of either sign, any size)",
        witness=[8.0, -0.5],
    ),
    M(
        "penalty_l1_near_zero",
        "near-zero",
        "λ·sign(w) (an L1 habit) where |w| < 1e-3: right at w = 0, wrong just off it",
        witness=[8.0, 5e-4],
    ),
    M("outlier_dropped", "extreme-rows", "the row with the largest |x| left out of the sums"),
    M(
        "zero_rows_skipped",
        "label-rows",
        "rows with y == 0 treated as missing (residual 0)",
        data=ZEROS_CSV,
        witness=[1.0, 1.0],
    ),
]
