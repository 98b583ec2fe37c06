"""Ridge regression by hand: the mean squared error plus the penalty λ‖w‖² (docs/models/ridge.md).

    L(b, w) = (1/N) Σ_i r_i² + λ Σ_j w_j²,    r_i = y_i - (x_i·w + b)

    dL/db = -(2/N) Σ_i r_i          (b is not penalised)
    dL/dw = -(2/N) Xᵀr + 2λw        (d(λw²)/dw = 2λw)

λ must match the run's --l2 (default 0.1).
"""

L2 = 0.1  # λ, the --l2 of the run


def gradient(b, w, X, y):
    """The right formula: the MSE's gradient plus 2λw for w, nothing more for b."""
    r = y - (X @ w + b)  # (N,) residuals
    return -2 * r.mean(), -2 * X.T @ r / len(y) + 2 * L2 * w


def slip(b, w, X, y):
    """The classic slip: d(λw²)/dw taken as λw, the 2 forgotten."""
    r = y - (X @ w + b)
    return -2 * r.mean(), -2 * X.T @ r / len(y) + L2 * w
