"""The mean squared error of the line y ≈ X·w + b, by hand.

    L(b, w) = (1/N) Σ_i r_i²,    r_i = y_i - (x_i·w + b)    the residual

    dL/db = -(2/N) Σ_i r_i          (∂r_i/∂b = -1; the 2 comes down from the square)
    dL/dw = -(2/N) Xᵀr              (∂r_i/∂w = -x_i)

Run with --model mse (the default) on data/data.csv; docs/gradient-descent.md derives it.
"""


def gradient(b, w, X, y):
    """The right formula: b a float, w (d,), X (N, d), y (N,)."""
    r = y - (X @ w + b)  # (N,) residuals
    return -2 * r.mean(), -2 * X.T @ r / len(y)


def slip(b, w, X, y):
    """The classic slip: the 2 from d(r²)/dr = 2r forgotten, so both derivatives are halved."""
    r = y - (X @ w + b)
    return -r.mean(), -X.T @ r / len(y)
