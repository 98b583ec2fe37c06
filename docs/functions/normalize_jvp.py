"""A forward-mode derivative by hand: the jvp of normalising positive weights to proportions
(python -m verifiers.check docs/functions/normalize_jvp.py).

Each row x of positive numbers becomes proportions that sum to 1:

    s = Σ_j x_j        y = x / s

Forward mode pushes a tangent t (a small change of x) through: the change of y is

    J·t = (t - y·Σ_j t_j) / s            per row

where J is the Jacobian, ∂y_i/∂x_j = (δ_ij - y_i) / s. It is not symmetric, and that is where the
classic slip lies: `jvp_slip` takes the Jacobian's transpose, (t - Σ_j y_j t_j) / s, which is
the reverse-mode formula (a vjp), not the forward one.
"""


def inputs(rng):
    """Positive weights (the domain of the function: a function, not shapes)."""
    return {"x": rng.uniform(0.5, 2.0, size=(3, 5))}


def forward(x, *, xp):
    return x / xp.sum(x, axis=-1, keepdims=True)


def jvp(t, x):
    """The right jvp."""
    s = x.sum(axis=-1, keepdims=True)
    return (t["x"] - x / s * t["x"].sum(axis=-1, keepdims=True)) / s


def jvp_slip(t, x):
    """The classic slip: the Jacobian transposed (the vjp's formula with t for g)."""
    s = x.sum(axis=-1, keepdims=True)
    return (t["x"] - (x / s * t["x"]).sum(axis=-1, keepdims=True)) / s
