"""Mutants of softmax regression's hand gradient, ``--model softmax``.

``L = mean(-ln P_label)``, ``P = softmax(X·W + b)``; the right formula is ``dL/dW = (1/N)
Xᵀ(P - Y)`` and ``dL/db = mean(P - Y)`` with Y the one-hot labels. Checked on
``data/classes.csv`` (two features of unit scale, three classes; W is 2 × 3, θ = W row by row,
then b) and ``classes3.csv`` (three features, so a transposed W has W's shape). A fair region
is entries of W and b up to about 30 (scores up to about ±100).
"""

from __future__ import annotations

import numpy as np

from tests.verifiers.mutants.base import CLASSES3_CSV, CLASSES_CSV, Maker, one_hot, softmax


def _grad(R: np.ndarray, X: np.ndarray) -> dict:
    """``{W: (1/N) XᵀR, b: mean(R)}`` for the per-row derivatives R = dℓ/dz (N, k)."""
    return {"W": X.T @ R / len(R), "b": R.mean(axis=0)}


def _scores(params, X):
    return X @ params["W"] + params["b"]


def _right_residual(params, X, y):
    P = softmax(_scores(params, X))
    return P - one_hot(y, P.shape[1])


def gradient(params, X, y):
    """The right formula."""
    return _grad(_right_residual(params, X, y), X)


# ---- the model's own slips -----------------------------------------------------------------------
def missing_one_hot(params, X, y):
    return _grad(softmax(_scores(params, X)), X)


def labels_as_numbers(params, X, y):
    return _grad(softmax(_scores(params, X)) - y[:, None], X)


def transposed_w(params, X, y):
    R = _right_residual(params, X, y)
    return {"W": R.T @ X / len(y), "b": R.mean(axis=0)}


# ---- factors, signs, terms, order ----------------------------------------------------------------
def flipped(params, X, y):
    return _grad(-_right_residual(params, X, y), X)


def doubled_w(params, X, y):
    g = gradient(params, X, y)
    return {"W": 2 * g["W"], "b": g["b"]}


def over_n_twice_w(params, X, y):
    g = gradient(params, X, y)
    return {"W": g["W"] / len(y), "b": g["b"]}


def summed(params, X, y):
    R = _right_residual(params, X, y)
    return {"W": X.T @ R, "b": R.sum(axis=0)}


def summed_b(params, X, y):
    R = _right_residual(params, X, y)
    return {"W": X.T @ R / len(y), "b": R.sum(axis=0)}


def missing_b(params, X, y):
    P = softmax(X @ params["W"])
    return _grad(P - one_hot(y, P.shape[1]), X)


def wrong_axis(params, X, y):
    Z = _scores(params, X)
    E = np.exp(Z - Z.max(axis=0, keepdims=True))
    P = E / E.sum(axis=0, keepdims=True)
    return _grad(P - one_hot(y, P.shape[1]), X)


def labels_shifted(params, X, y):
    k = params["b"].shape[0]
    return _grad(softmax(_scores(params, X)) - one_hot((y + 1) % k, k), X)


def sigmoid_per_class(params, X, y):
    Z = _scores(params, X)
    P = 1 / (1 + np.exp(-Z))
    return _grad(P - one_hot(y, Z.shape[1]), X)


def float32(params, X, y):
    X32 = X.astype(np.float32)
    Z = X32 @ params["W"].astype(np.float32) + params["b"].astype(np.float32)
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    R = E / E.sum(axis=1, keepdims=True) - one_hot(y, Z.shape[1]).astype(np.float32)
    return {"W": X32.T @ R / np.float32(len(y)), "b": R.mean(axis=0)}


# ---- tiny relative errors ------------------------------------------------------------------------
def relative_1e6_b(params, X, y):
    g = gradient(params, X, y)
    return {"W": g["W"], "b": g["b"] * [1 + 1e-6, 1, 1]}


def relative_1e8_w(params, X, y):
    g = gradient(params, X, y)
    W = g["W"].copy()
    W[0, 0] *= 1 + 1e-8
    return {"W": W, "b": g["b"]}


def relative_1e10_w(params, X, y):
    g = gradient(params, X, y)
    W = g["W"].copy()
    W[1, 2] *= 1 + 1e-10
    return {"W": W, "b": g["b"]}


# ---- region-limited ------------------------------------------------------------------------------
def _with_params(X, y, W, b):
    return gradient({"W": W, "b": b}, X, y)


def abs_b(params, X, y):
    return _with_params(X, y, params["W"], np.abs(params["b"]))


def opposite_w00_b0(params, X, y):
    g = gradient(params, X, y)
    if params["W"][0, 0] * params["b"][0] < 0:
        return {"W": 2 * g["W"], "b": g["b"]}
    return g


def clipped_w(params, X, y):
    return _with_params(X, y, np.clip(params["W"], -5, 5), params["b"])


def band_b(params, X, y):
    b = params["b"]
    return _with_params(X, y, params["W"], np.where((b > 0) & (b < 0.5), 0.0, b))


def pruned_w(params, X, y):
    W = params["W"]
    return _with_params(X, y, np.where(np.abs(W) < 1e-3, 0.0, W), params["b"])


def _clipped_scores(params, X, y, low, high):
    P = softmax(np.clip(_scores(params, X), low, high))
    return _grad(P - one_hot(y, P.shape[1]), X)


def clipped_30(params, X, y):
    return _clipped_scores(params, X, y, -30, 30)


def clipped_13(params, X, y):
    return _clipped_scores(params, X, y, -13, 13)


def exp_floor(params, X, y):
    Z = _scores(params, X)
    E = np.exp(np.maximum(Z - Z.max(axis=1, keepdims=True), -20))
    P = E / E.sum(axis=1, keepdims=True)
    return _grad(P - one_hot(y, P.shape[1]), X)


def outlier_dropped(params, X, y):
    keep = np.arange(len(y)) != np.argmax(np.abs(X).max(axis=1))
    return _grad(_right_residual(params, X, y) * keep[:, None], X)


def last_class_one_hot(params, X, y):
    P = softmax(_scores(params, X))
    k = P.shape[1]
    Y = np.eye(k, k - 1)[y.astype(int)]  # k - 1 columns of one-hot, padded with a zero column
    return _grad(P - np.pad(Y, ((0, 0), (0, 1))), X)


def last_class_rows_dropped(params, X, y):
    R = _right_residual(params, X, y)
    return _grad(np.where((y == y.max())[:, None], 0.0, R), X)


def _scaled(theta_scale: float):
    """A witness: the optimum's neighbourhood scaled, W then b (flat)."""
    base = np.array([2.5, -1.25, -1.25, -0.3, 2.8, -2.5, 0.3, 0.0, -0.3])
    return base * theta_scale


M = Maker("softmax", globals(), CLASSES_CSV)

GENERIC = _scaled(1.0)  # about the optimum
FAR = _scaled(8.0)  # scores beyond ±30 on many rows, with two classes above 30 on some

RIGHT = [
    M("gradient", "right", "the right formula", witness=FAR),
    M("gradient", "right", "the right formula, three features", data=CLASSES3_CSV),
]

MUTANTS = [
    M("missing_one_hot", "slip", "P where P - Y belongs: the one-hot not subtracted"),
    M("labels_as_numbers", "slip", "P - y: the labels subtracted as numbers from every class"),
    M(
        "transposed_w",
        "slip",
        "(P - Y)ᵀX for Xᵀ(P - Y): W's gradient transposed (three features, three classes)",
        data=CLASSES3_CSV,
        witness=lambda start: np.arange(1, 13) / 6 - 1,
    ),
    M("flipped", "sign", "Y - P for P - Y", witness=GENERIC),
    M("doubled_w", "factor", "dL/dW doubled", witness=GENERIC),
    M("over_n_twice_w", "factor", "dL/dW divided by N twice", witness=GENERIC),
    M("summed", "sum-mean", "sums over rows where means belong", witness=GENERIC),
    M("summed_b", "sum-mean", "dL/db a sum over rows, dL/dW a mean", witness=GENERIC),
    M("missing_b", "missing-term", "b left out of the scores (Z = X·W)", witness=GENERIC),
    M("wrong_axis", "swap", "the softmax taken over the rows (axis 0) instead of the classes"),
    M("labels_shifted", "swap", "the one-hot of label + 1: every class's targets in another's"),
    M(
        "sigmoid_per_class",
        "slip",
        "one sigmoid per class (one-vs-rest) in place of the softmax",
    ),
    M("float32", "float32", "the whole formula in float32", witness=GENERIC),
    M("relative_1e6_b", "tiny", "dL/db[0] 1e-6 too large (relative)"),
    M("relative_1e8_w", "tiny", "dL/dW[0,0] 1e-8 too large (relative)"),
    M("relative_1e10_w", "tiny", "dL/dW[1,2] 1e-10 too large (relative)"),
    M(
        "abs_b",
        "sign-pattern",
        "|b| in the scores: wrong only where some b_c < 0",
        witness=GENERIC,
    ),
    M(
        "opposite_w00_b0",
        "sign-pattern",
        "dL/dW doubled where W[0,0]·b[0] < 0 (contrived)",
        witness=_scaled(1.0) * [1, 1, 1, 1, 1, 1, -1, 1, 1],
    ),
    M(
        "clipped_w",
        "far-out",
        "W clipped to ±5 'for stability': wrong only where some |W_jc| > 5 (fair: up to 30)",
        witness=FAR,
    ),
    M(
        "band_b",
        "thin-band",
        "b_c taken as 0 for 0 < b_c < 0.5 (fair: b of either sign, any size)",
        witness=GENERIC,
    ),
    M(
        "pruned_w",
        "near-zero",
        "W_jc taken as 0 where |W_jc| < 1e-3: right at W = 0 (the start), wrong just off it",
        witness=GENERIC * [1, 1, 1, 1, 1, 1e-4, 1, 1, 1],
    ),
    M(
        "clipped_30",
        "extreme-rows",
        "scores clipped to ±30 'for stability': wrong on rows where two classes score above 30 "
        "(or the gap to a score below -30 matters)",
        witness=FAR,
    ),
    M(
        "clipped_13",
        "extreme-rows",
        "scores clipped to ±13: P off by up to about 2e-6 on rows with a score beyond ±13",
        witness=FAR,
    ),
    M(
        "exp_floor",
        "extreme-rows",
        "e^(z - m) floored at e^-20 'against underflow': wrong on rows where a class scores "
        "more than 20 below the top",
        witness=FAR,
    ),
    M("outlier_dropped", "extreme-rows", "the row with the largest |x| left out of the sums"),
    M(
        "last_class_one_hot",
        "label-rows",
        "the one-hot built with k - 1 columns: rows of the largest class get no target",
    ),
    M(
        "last_class_rows_dropped",
        "label-rows",
        "rows whose label is the largest class left out of the sums",
    ),
]
