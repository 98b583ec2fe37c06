"""One test per bug of issue 21, found by running minigrad against torch and jax.

Each failed before its fix; the expected values are written out from the calculus or taken from
what torch and jax give (said where so).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import minigrad
import minigrad.numpy as xp
from minigrad import Tensor, check_graph, grad, mse_loss, operation
from tests.minigrad.helpers import assert_close


# ---- the square's fast path on an empty tensor --------------------------------------------------
@pytest.mark.parametrize(
    "loss",
    [
        pytest.param(lambda x: (x**2).sum(), id="x**2"),
        pytest.param(lambda x: xp.sum(xp.square(x)), id="square"),
        pytest.param(lambda x: (x**2).mean() * 0.0 + mse_loss(x, np.zeros(0)), id="mse_loss"),
    ],
)
def test_the_square_of_an_empty_tensor_has_an_empty_gradient(loss: object) -> None:
    x = Tensor(np.zeros(0), requires_grad=True)
    out = loss(x)  # type: ignore[operator]
    out.backward()
    assert x.grad is not None
    assert x.grad.shape == (0,)
    assert x.grad.dtype == np.float64


# ---- clip with lo > hi --------------------------------------------------------------------------
def test_clip_with_its_bounds_crossed_sends_the_gradient_to_the_upper_bound() -> None:
    """numpy and torch give hi everywhere; torch and jax: dlo = 0, dhi = n, dx = 0."""
    x = Tensor([0.0, 1.0, 2.0], requires_grad=True)
    lo = Tensor(2.0, requires_grad=True)
    hi = Tensor(1.0, requires_grad=True)
    out = minigrad.clip(x, lo, hi)
    assert out.data.tolist() == [1.0, 1.0, 1.0]
    out.sum().backward()
    assert lo.grad.item() == 0.0
    assert hi.grad.item() == 3.0
    assert x.grad.data.tolist() == [0.0, 0.0, 0.0]


# ---- check_graph on large linear ops and on ties ------------------------------------------------
def _doubling(x: Tensor, wrong_at: int) -> Tensor:
    """2x with a rule that is twice too large at one element."""
    factor = np.full(x.shape, 2.0)
    factor.reshape(-1)[wrong_at] = 4.0
    return operation(
        "double", 2 * x.data, (x,), lambda g, out: g * Tensor(factor), forward=lambda a: 2 * a
    )


@pytest.mark.parametrize("size", [1_000, 100_000])
def test_a_wrong_rule_of_a_large_linear_op_is_found(size: int) -> None:
    x = Tensor(np.random.default_rng(0).normal(size=size), requires_grad=True)
    findings = check_graph(_doubling(x, wrong_at=size // 3).sum())
    assert [f.op for f in findings] == ["double"]
    assert "direction" in findings[0].problem
    assert check_graph((x * 2.0).sum()) == []  # the right rule of the same op is not flagged


def test_a_max_rule_giving_every_tied_element_the_whole_gradient_is_found() -> None:
    values = np.array([3.0, 1.0, 3.0, -2.0])

    def greedy_max(x: Tensor) -> Tensor:
        winners = Tensor((x.data == x.data.max()).astype(float))
        return operation(
            "greedy max", x.data.max(), (x,), lambda g, out: g * winners, forward=np.max
        )

    x = Tensor(values, requires_grad=True)
    findings = check_graph(greedy_max(x) * 1.5)
    assert [f.op for f in findings] == ["greedy max"]
    assert "tied" in findings[0].problem
    # moving both tied elements together: the rule says twice what the forward does
    assert findings[0].rule == pytest.approx(2 * findings[0].numeric, rel=1e-6)
    assert check_graph(x.max() * 1.5) == []  # the built-in rule shares the tie


def test_the_relative_error_is_readable_when_the_slope_is_zero() -> None:
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    flat = operation(
        "flat", np.zeros(3), (x,), lambda g, out: g * 0.5, forward=lambda a: np.zeros_like(a)
    )
    (finding,) = check_graph(flat.sum())
    assert finding.numeric == 0.0
    assert 0.25 <= abs(finding.rule) <= 0.75  # half the random cotangent, in ±[0.5, 1.5]
    assert 1 <= finding.error <= 1000  # measured against 1% of the rule's size, not 1e-300
    assert "e+2" not in str(finding)


# ---- micrograd's first example: += on a recorded result -----------------------------------------
def test_micrograd_first_lines_rebind_as_in_micrograd() -> None:
    a = Tensor(-4.0, requires_grad=True)
    b = Tensor(2.0, requires_grad=True)
    c = a + b
    c += c + 1
    c += 1 + c + (-a)  # c = 4(a + b) + 3 - a = 3a + 4b + 3
    c.backward()
    assert (a.grad.item(), b.grad.item()) == (3.0, 4.0)


def test_micrograd_readme_example_gives_its_numbers() -> None:
    a = Tensor(-4.0, requires_grad=True)
    b = Tensor(2.0, requires_grad=True)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    assert f"{g.item():.4f}" == "24.7041"
    g.backward()
    assert f"{a.grad.item():.4f}" == "138.8338"
    assert f"{b.grad.item():.4f}" == "645.5773"


def test_in_place_on_a_leaf_that_requires_grad_is_still_refused() -> None:
    w = Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        w += 1.0


# ---- NaN reaches the gradient -------------------------------------------------------------------
def test_max_with_a_nan_has_a_nan_gradient_as_torch_and_jax() -> None:
    x = Tensor([1.0, math.nan, 3.0], requires_grad=True)
    x.max().backward()
    assert np.isnan(x.grad.data).all()


def test_relu_at_nan_has_a_nan_slope() -> None:
    x = Tensor([math.nan, 2.0, -1.0], requires_grad=True)
    x.relu().sum().backward()
    assert np.isnan(x.grad.data[0])
    assert x.grad.data[1:].tolist() == [1.0, 0.0]


# ---- smaller ------------------------------------------------------------------------------------
@pytest.mark.parametrize("correction", [2, 3])
def test_var_with_correction_at_least_n_is_infinite_as_in_numpy(correction: int) -> None:
    values = np.array([1.0, 2.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.var(values, ddof=correction)
    got = xp.var(Tensor(values), correction=correction)
    assert got.item() == expected == math.inf
    zero = xp.var(Tensor([5.0, 5.0]), correction=2)
    assert math.isnan(zero.item())  # 0 · inf, as numpy's 0 / 0


def test_concatenate_with_no_axis_flattens_first() -> None:
    a = Tensor(np.arange(4.0).reshape(2, 2), requires_grad=True)
    b = Tensor([10.0, 11.0], requires_grad=True)
    out = minigrad.concatenate([a, b], axis=None)
    assert out.data.tolist() == [0.0, 1.0, 2.0, 3.0, 10.0, 11.0]
    (out * Tensor(np.arange(6.0))).sum().backward()
    assert_close(a.grad, [[0.0, 1.0], [2.0, 3.0]], 0, 0)
    assert_close(b.grad, [4.0, 5.0], 0, 0)


def test_expm1_is_accurate_for_tiny_arguments() -> None:
    x = Tensor(np.array([1e-10, -3e-12]), requires_grad=True)
    y = xp.expm1(x)
    assert_close(y, np.expm1(x.data), 1e-15, 0)  # exp(x) - 1 is off by ~1e-7 relative here
    dy = grad(y.sum(), x)
    assert_close(dy, np.exp(x.data), 1e-15, 0)


# ---- integers and booleans flow through the namespace -------------------------------------------
def test_indices_masks_and_labels_keep_their_dtypes_and_gradients_reach_the_floats() -> None:
    x = Tensor([[0.5, 3.0, -1.0], [2.0, -4.0, 1.0]], requires_grad=True)
    best = xp.argmax(x, axis=1)
    assert best.dtype == np.int64
    assert best.tolist() == [1, 0]
    assert (best + 1).dtype == np.int64  # a Python int keeps the integer dtype
    picked = xp.take_along_axis(x, xp.expand_dims(best, axis=1), axis=1)
    mask = x > 0.0
    assert mask.dtype == np.bool_
    (xp.sum(picked) + xp.sum(x[mask])).backward()
    assert_close(x.grad, [[1.0, 2.0, 0.0], [2.0, 0.0, 1.0]], 0, 0)
    labels = xp.asarray([2, 0])
    assert labels.dtype == np.int64
    assert minigrad.cross_entropy(x, labels).dtype == np.float64
    order = xp.argsort(x, axis=1, descending=True)
    assert order.tolist() == [[1, 0, 2], [0, 2, 1]]
    assert xp.sort(x, axis=1).requires_grad
    assert xp.count_nonzero(mask).item() == 4
