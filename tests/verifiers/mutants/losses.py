"""Mutants of hand gradients for users' own losses of the linear model (``--loss``).

Each loss is ``loss(b, w, X, y, xp)`` written once against the array API, with the residual
``r = y - (X·w + b)``; its right gradient is ``dL/db = -mean(g)``, ``dL/dw = -Xᵀg/N`` with
``g = dℓ/dr`` per row. Three of them are the MSE written the ways that cannot take a complex
step (``xp.vecdot(r, r)`` conjugates its first argument, ``xp.linalg.vector_norm`` takes an
absolute value, ``xp.astype`` to a real dtype drops the imaginary part): numeric then falls back
to central differences, the situation of issue 18's first cause. The others (pseudo-Huber,
log-cosh, Huber, the mean absolute error) can be complex-stepped.

Data: ``data/data.csv`` (residuals of tens at the start), ``small.csv`` (features of about
1e-3) and ``zeros.csv`` (y == 0 on half the rows). Fair regions as for the MSE on each.
"""

from __future__ import annotations

import math

import numpy as np

from tests.verifiers.mutants.base import DATA_CSV, SMALL_CSV, ZEROS_CSV, Maker

DELTA_PSEUDO = 5.0  # the pseudo-Huber loss's δ
DELTA_HUBER = 10.0  # the Huber loss's δ


# ---- the losses ----------------------------------------------------------------------------------
def mse_vecdot(b, w, X, y, xp):
    r = y - (X @ w + b)
    return xp.vecdot(r, r) / r.shape[0]


def mse_norm(b, w, X, y, xp):
    r = y - (X @ w + b)
    return xp.linalg.vector_norm(r) ** 2 / r.shape[0]


def mse_astype(b, w, X, y, xp):
    r = y - (X @ w + b)
    return xp.mean(xp.astype(r * r, xp.float64))


def pseudo_huber(b, w, X, y, xp):
    r = y - (X @ w + b)
    return xp.mean(DELTA_PSEUDO**2 * (xp.sqrt(1 + (r / DELTA_PSEUDO) ** 2) - 1))


def log_cosh(b, w, X, y, xp):
    r = y - (X @ w + b)
    # ln cosh r = ln(eʳ + e⁻ʳ) - ln 2, without overflow. (Written with |r| instead, as
    # |r| + ln(1 + e^-2|r|) - ln 2, the engines' Hessians disagree at r = 0: see the report.)
    return xp.mean(xp.logaddexp(r, -r) - math.log(2))


def huber(b, w, X, y, xp):
    r = y - (X @ w + b)
    a = xp.abs(r)
    return xp.mean(xp.where(a <= DELTA_HUBER, 0.5 * r**2, DELTA_HUBER * (a - 0.5 * DELTA_HUBER)))


def mae(b, w, X, y, xp):
    r = y - (X @ w + b)
    return xp.mean(xp.abs(r))


# ---- dℓ/dr per row, right and wrong --------------------------------------------------------------
def _from_rows(g: np.ndarray, X: np.ndarray) -> tuple[float, np.ndarray]:
    """``(-mean(g), -Xᵀg/N)``: dL/db and dL/dw from dℓ/dr per row (∂r/∂b = -1, ∂r/∂w = -x)."""
    return -g.mean(), -X.T @ g / len(g)


def _residual(b, w, X, y):
    return y - (X @ w + b)


def _mse_rows(r):
    return 2 * r


def _pseudo_rows(r):
    return r / np.sqrt(1 + (r / DELTA_PSEUDO) ** 2)


def _huber_rows(r):
    return np.where(np.abs(r) <= DELTA_HUBER, r, DELTA_HUBER * np.sign(r))


def mse_gradient(b, w, X, y):
    """The right gradient of the three ways of writing the MSE."""
    return _from_rows(_mse_rows(_residual(b, w, X, y)), X)


def pseudo_huber_gradient(b, w, X, y):
    return _from_rows(_pseudo_rows(_residual(b, w, X, y)), X)


def log_cosh_gradient(b, w, X, y):
    return _from_rows(np.tanh(_residual(b, w, X, y)), X)


def huber_gradient(b, w, X, y):
    return _from_rows(_huber_rows(_residual(b, w, X, y)), X)


def mae_gradient(b, w, X, y):
    return _from_rows(np.sign(_residual(b, w, X, y)), X)


# ---- the MSE that cannot be complex-stepped: numeric is then central differences -----------------
def mse_doubled_w(b, w, X, y):
    gb, gw = mse_gradient(b, w, X, y)
    return gb, 2 * gw


def mse_doubled(b, w, X, y):
    gb, gw = mse_gradient(b, w, X, y)
    return 2 * gb, 2 * gw


def mse_halved_w(b, w, X, y):
    gb, gw = mse_gradient(b, w, X, y)
    return gb, gw / 2


def mse_summed(b, w, X, y):
    gb, gw = mse_gradient(b, w, X, y)
    return gb * len(y), gw * len(y)


def mse_flipped_b(b, w, X, y):
    gb, gw = mse_gradient(b, w, X, y)
    return -gb, gw


def mse_missing_b(b, w, X, y):
    return _from_rows(2 * (y - X @ w), X)


def mse_swapped(b, w, X, y):
    gb, gw = mse_gradient(b, w, X, y)
    return gw[0], np.array([gb])


def mse_relative_1e6_w(b, w, X, y):
    gb, gw = mse_gradient(b, w, X, y)
    return gb, gw * (1 + 1e-6)


def mse_relative_1e8_b(b, w, X, y):
    gb, gw = mse_gradient(b, w, X, y)
    return gb * (1 + 1e-8), gw


def mse_relative_1e9_w(b, w, X, y):
    gb, gw = mse_gradient(b, w, X, y)
    return gb, gw * (1 + 1e-9)


def mse_relative_1e10_w(b, w, X, y):
    gb, gw = mse_gradient(b, w, X, y)
    return gb, gw * (1 + 1e-10)


def mse_opposite_signs(b, w, X, y):
    gb, gw = mse_gradient(b, w, X, y)
    return gb, (2 * gw if b * w[0] < 0 else gw)


def mse_clipped_w(b, w, X, y):
    return mse_gradient(b, np.clip(w, -5, 5), X, y)


# ---- pseudo-Huber --------------------------------------------------------------------------------
def pseudo_huber_doubled(b, w, X, y):
    gb, gw = pseudo_huber_gradient(b, w, X, y)
    return 2 * gb, 2 * gw


def pseudo_huber_mse_rows(b, w, X, y):
    return _from_rows(_residual(b, w, X, y), X)


def pseudo_huber_delta_squared(b, w, X, y):
    gb, gw = pseudo_huber_gradient(b, w, X, y)
    return DELTA_PSEUDO**2 * gb, DELTA_PSEUDO**2 * gw


def pseudo_huber_flipped(b, w, X, y):
    gb, gw = pseudo_huber_gradient(b, w, X, y)
    return -gb, -gw


def pseudo_huber_swapped(b, w, X, y):
    gb, gw = pseudo_huber_gradient(b, w, X, y)
    return gw[0], np.array([gb])


def pseudo_huber_float32(b, w, X, y):
    X32, y32, d = X.astype(np.float32), y.astype(np.float32), np.float32(DELTA_PSEUDO)
    r = y32 - (X32 @ w.astype(np.float32) + np.float32(b))
    g = r / np.sqrt(1 + (r / d) ** 2)
    return -g.mean(), -X32.T @ g / np.float32(len(y))


def pseudo_huber_relative_1e8_w(b, w, X, y):
    gb, gw = pseudo_huber_gradient(b, w, X, y)
    return gb, gw * (1 + 1e-8)


def pseudo_huber_band_w(b, w, X, y):
    return pseudo_huber_gradient(b, np.where((w > -1) & (w < 0), 0.0, w), X, y)


def pseudo_huber_asymptote(b, w, X, y):
    r = _residual(b, w, X, y)
    return _from_rows(np.where(np.abs(r) > 50, DELTA_PSEUDO * np.sign(r), _pseudo_rows(r)), X)


def pseudo_huber_zero_rows_halved(b, w, X, y):
    g = _pseudo_rows(_residual(b, w, X, y))
    return _from_rows(np.where(y == 0, g / 2, g), X)


# ---- log-cosh ------------------------------------------------------------------------------------
def log_cosh_sinh(b, w, X, y):
    return _from_rows(np.sinh(np.clip(_residual(b, w, X, y), -700, 700)), X)


def log_cosh_summed(b, w, X, y):
    gb, gw = log_cosh_gradient(b, w, X, y)
    return gb * len(y), gw * len(y)


def log_cosh_saturated(b, w, X, y):
    r = _residual(b, w, X, y)
    return _from_rows(np.where(np.abs(r) > 5, np.sign(r), np.tanh(r)), X)


def log_cosh_pruned_w(b, w, X, y):
    return log_cosh_gradient(b, np.where(np.abs(w) < 1e-3, 0.0, w), X, y)


def log_cosh_clipped_b(b, w, X, y):
    return log_cosh_gradient(float(np.clip(b, -50, 50)), w, X, y)


# ---- Huber ---------------------------------------------------------------------------------------
def huber_unsigned(b, w, X, y):
    r = _residual(b, w, X, y)
    return _from_rows(np.where(np.abs(r) <= DELTA_HUBER, r, DELTA_HUBER), X)


def huber_quadratic_doubled(b, w, X, y):
    r = _residual(b, w, X, y)
    return _from_rows(np.where(np.abs(r) <= DELTA_HUBER, 2 * r, DELTA_HUBER * np.sign(r)), X)


def huber_boundary(b, w, X, y):
    r = _residual(b, w, X, y)
    return _from_rows(np.where(np.abs(r) <= 2 * DELTA_HUBER, r, DELTA_HUBER * np.sign(r)), X)


def huber_no_x(b, w, X, y):
    gb, gw = huber_gradient(b, w, X, y)
    return gb, np.full_like(gw, gb)


def huber_abs_b(b, w, X, y):
    return huber_gradient(abs(b), w, X, y)


def huber_zero_rows_skipped(b, w, X, y):
    g = _huber_rows(_residual(b, w, X, y))
    return _from_rows(np.where(y == 0, 0.0, g), X)


# ---- the mean absolute error ---------------------------------------------------------------------
def mae_mse_rows(b, w, X, y):
    return _from_rows(_residual(b, w, X, y), X)


def mae_flipped(b, w, X, y):
    gb, gw = mae_gradient(b, w, X, y)
    return -gb, -gw


def mae_smoothed(b, w, X, y):
    r = _residual(b, w, X, y)
    return _from_rows(r / np.maximum(np.abs(r), 1.0), X)


M = Maker("loss", globals(), DATA_CSV)

GENERIC = [8.0, 1.3]  # near the least-squares optimum of data.csv

RIGHT = [
    M("mse_gradient", "right", "the MSE written with xp.vecdot", loss="mse_vecdot"),
    M("mse_gradient", "right", "with xp.vecdot, small features", loss="mse_vecdot", data=SMALL_CSV),
    M("mse_gradient", "right", "the MSE written with xp.linalg.vector_norm", loss="mse_norm"),
    M("mse_gradient", "right", "with vector_norm, small features", loss="mse_norm", data=SMALL_CSV),
    M("mse_gradient", "right", "the MSE written with xp.astype", loss="mse_astype"),
    M("mse_gradient", "right", "with xp.astype, small features", loss="mse_astype", data=SMALL_CSV),
    M("pseudo_huber_gradient", "right", "the pseudo-Huber loss", loss="pseudo_huber"),
    M(
        "pseudo_huber_gradient",
        "right",
        "the pseudo-Huber loss, y == 0 on half the rows",
        loss="pseudo_huber",
        data=ZEROS_CSV,
    ),
    M("log_cosh_gradient", "right", "the log-cosh loss", loss="log_cosh"),
    M(
        "log_cosh_gradient",
        "right",
        "the log-cosh loss, y == 0 on half the rows",
        loss="log_cosh",
        data=ZEROS_CSV,
    ),
    M("huber_gradient", "right", "the Huber loss", loss="huber"),
    M(
        "huber_gradient",
        "right",
        "the Huber loss, y == 0 on half the rows",
        loss="huber",
        data=ZEROS_CSV,
    ),
    M("mae_gradient", "right", "the mean absolute error", loss="mae", witness=GENERIC),
]


MUTANTS = [
    # the MSE numeric cannot complex-step (issue 18's first cause)
    M(
        "mse_doubled_w",
        "factor",
        "vecdot MSE, features small against the targets: dL/dw doubled",
        loss="mse_vecdot",
        data=SMALL_CSV,
    ),
    M("mse_doubled", "factor", "vecdot MSE: both derivatives doubled", loss="mse_vecdot"),
    M(
        "mse_halved_w",
        "factor",
        "vector_norm MSE, small features: dL/dw halved",
        loss="mse_norm",
        data=SMALL_CSV,
    ),
    M(
        "mse_summed",
        "sum-mean",
        "astype MSE, small features: a sum where the mean belongs",
        loss="mse_astype",
        data=SMALL_CSV,
    ),
    M("mse_flipped_b", "sign", "vecdot MSE: dL/db's sign flipped", loss="mse_vecdot"),
    M(
        "mse_missing_b",
        "missing-term",
        "vector_norm MSE: b left out of the residual",
        loss="mse_norm",
        witness=GENERIC,
    ),
    M("mse_swapped", "swap", "vecdot MSE: dL/db and dL/dw swapped", loss="mse_vecdot"),
    M(
        "mse_relative_1e6_w",
        "tiny",
        "vecdot MSE: dL/dw 1e-6 too large (relative)",
        loss="mse_vecdot",
    ),
    M(
        "mse_relative_1e8_b",
        "tiny",
        "vecdot MSE: dL/db 1e-8 too large (relative; the built-in models catch 1e-13)",
        loss="mse_vecdot",
    ),
    M(
        "mse_relative_1e9_w",
        "tiny",
        "astype MSE: dL/dw 1e-9 too large (relative)",
        loss="mse_astype",
    ),
    M(
        "mse_relative_1e10_w",
        "tiny",
        "vector_norm MSE: dL/dw 1e-10 too large (relative)",
        loss="mse_norm",
    ),
    M(
        "mse_opposite_signs",
        "sign-pattern",
        "vector_norm MSE: dL/dw doubled where b·w < 0 (contrived)",
        loss="mse_norm",
        witness=[-8.0, 1.3],
    ),
    M(
        "mse_clipped_w",
        "far-out",
        "astype MSE: w clipped to ±5 'for stability' (fair: |w| up to 30)",
        loss="mse_astype",
        witness=[0.0, 6.0],
    ),
    # pseudo-Huber (complex step works)
    M("pseudo_huber_doubled", "factor", "pseudo-Huber: both doubled", loss="pseudo_huber"),
    M(
        "pseudo_huber_mse_rows",
        "slip",
        "pseudo-Huber: r where r/√(1 + (r/δ)²) belongs (the MSE's derivative, halved)",
        loss="pseudo_huber",
    ),
    M(
        "pseudo_huber_delta_squared",
        "factor",
        "pseudo-Huber: the δ² of the loss kept in front of the derivative",
        loss="pseudo_huber",
    ),
    M("pseudo_huber_float32", "float32", "pseudo-Huber: in float32", loss="pseudo_huber"),
    M("pseudo_huber_flipped", "sign", "pseudo-Huber: every sign flipped", loss="pseudo_huber"),
    M("pseudo_huber_swapped", "swap", "pseudo-Huber: dL/db and dL/dw swapped", loss="pseudo_huber"),
    M(
        "pseudo_huber_relative_1e8_w",
        "tiny",
        "pseudo-Huber: dL/dw 1e-8 too large (relative)",
        loss="pseudo_huber",
    ),
    M(
        "pseudo_huber_band_w",
        "thin-band",
        "pseudo-Huber: w taken as 0 for -1 < w < 0",
        loss="pseudo_huber",
        witness=[8.0, -0.5],
    ),
    M(
        "pseudo_huber_asymptote",
        "extreme-rows",
        "pseudo-Huber: δ·sign(r), the asymptote, on rows with |r| > 50 (off by 5e-3 there)",
        loss="pseudo_huber",
    ),
    M(
        "pseudo_huber_zero_rows_halved",
        "label-rows",
        "pseudo-Huber: rows with y == 0 weighted by 1/2",
        loss="pseudo_huber",
        data=ZEROS_CSV,
        witness=[1.0, 1.0],
    ),
    # log-cosh
    M(
        "log_cosh_sinh",
        "slip",
        "log-cosh: sinh(r), the derivative of cosh with the log's 1/cosh forgotten",
        loss="log_cosh",
    ),
    M("log_cosh_summed", "sum-mean", "log-cosh: a sum where the mean belongs", loss="log_cosh"),
    M(
        "log_cosh_saturated",
        "extreme-rows",
        "log-cosh: tanh(r) replaced by sign(r) where |r| > 5 (off by up to 1e-4 there; y "
        "reaches 11)",
        loss="log_cosh",
        data=ZEROS_CSV,
        witness=[0.0, 0.0],
    ),
    M(
        "log_cosh_pruned_w",
        "near-zero",
        "log-cosh: w taken as 0 where |w| < 1e-3: right at w = 0, wrong just off it",
        loss="log_cosh",
        data=ZEROS_CSV,
        witness=[1.0, 5e-4],
    ),
    M(
        "log_cosh_clipped_b",
        "far-out",
        "log-cosh: b clipped to ±50: wrong only where |b| > 50 and some rows lie within about "
        "18 of the line (further out tanh(r) is ±1 to the last bit); fair: |b| up to 1,000 with "
        "w bringing the line back through the data",
        loss="log_cosh",
        witness=[60.0, 1.0],
    ),
    # Huber
    M(
        "huber_unsigned",
        "extreme-rows",
        "Huber: δ for δ·sign(r) in the linear zone: wrong on rows with r < -δ",
        loss="huber",
        witness=GENERIC,
    ),
    M(
        "huber_quadratic_doubled",
        "thin-band",
        "Huber: 2r for r in the quadratic zone |r| <= δ",
        loss="huber",
        witness=GENERIC,
    ),
    M(
        "huber_boundary",
        "thin-band",
        "Huber: the zones' boundary at 2δ: wrong on rows with δ < |r| <= 2δ",
        loss="huber",
        witness=GENERIC,
    ),
    M("huber_no_x", "missing-term", "Huber: dL/dw without the x_i", loss="huber"),
    M(
        "huber_abs_b",
        "sign-pattern",
        "Huber: |b| for b: wrong only where b < 0 and some rows lie within δ = 10 of the line "
        "(the linear zone's δ·sign(r) does not see b)",
        loss="huber",
        witness=[-5.0, 1.3],
    ),
    M(
        "huber_zero_rows_skipped",
        "label-rows",
        "Huber: rows with y == 0 treated as missing",
        loss="huber",
        data=ZEROS_CSV,
        witness=[1.0, 1.0],
    ),
    # the mean absolute error
    M("mae_mse_rows", "slip", "MAE: r where sign(r) belongs", loss="mae"),
    M("mae_flipped", "sign", "MAE: every sign flipped", loss="mae"),
    M(
        "mae_smoothed",
        "near-zero",
        "MAE: r/max(|r|, 1) for sign(r): wrong only on rows with |r| < 1",
        loss="mae",
        witness=GENERIC,
    ),
]
