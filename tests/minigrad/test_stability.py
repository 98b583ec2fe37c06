"""sigmoid and tanh at large |x|: no overflow warning, finite values and gradients, accurate.
Non-finite inputs pass through unchanged (nan stays nan, ±inf saturates; nothing is clamped).

References come from Python's math module, evaluated in forms that cannot overflow for the drawn
range. Tolerances: values rtol 1e-12; gradients rtol 1e-9 plus atol 1e-15 (for x beyond ~37,
σ(x) rounds to 1 in float64, so σ(1 - σ) is 0 where the true value is below 1e-16).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad
from minigrad import Tensor
from tests.minigrad.helpers import assert_close

LARGE = np.array([-1000.0, -745.0, -50.0, -1.0, 0.0, 1.0, 50.0, 745.0, 1000.0])


@pytest.fixture
def warnings_are_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def sigmoid_reference(x: float) -> float:
    e = math.exp(-abs(x))  # ≤ 1: never overflows
    return 1 / (1 + e) if x >= 0 else e / (1 + e)


def sigmoid_gradient_reference(x: float) -> float:
    e = math.exp(-abs(x))  # σ'(x) = e^-|x| / (1 + e^-|x|)², symmetric in x
    return e / (1 + e) ** 2


def tanh_gradient_reference(x: float) -> float:
    e = math.exp(-2 * abs(x))  # 1 - tanh² = 4e^-2|x| / (1 + e^-2|x|)²
    return 4 * e / (1 + e) ** 2


@pytest.mark.usefixtures("warnings_are_errors")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_at_large_inputs(dtype: type) -> None:
    x = Tensor(LARGE.astype(dtype), requires_grad=True)
    s = x.sigmoid()
    s.sum().backward()
    assert np.all(np.isfinite(s.numpy()))
    assert np.all(np.isfinite(x.grad.numpy()))
    assert s.numpy()[0] == 0.0
    assert s.numpy()[-1] == 1.0
    assert s.numpy()[4] == 0.5
    tol = 1e-12 if dtype == np.float64 else 1e-6
    expected = [sigmoid_reference(float(v)) for v in LARGE.astype(dtype)]
    tiny = float(np.finfo(dtype).tiny)  # below it float32 underflows to 0 where float64 does not
    assert_close(s, expected, tol, tiny, what="sigmoid")
    gradient = [sigmoid_gradient_reference(float(v)) for v in LARGE.astype(dtype)]
    assert_close(x.grad, gradient, 1e3 * tol, 1e-15, what="sigmoid gradient")


@pytest.mark.usefixtures("warnings_are_errors")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tanh_at_large_inputs(dtype: type) -> None:
    x = Tensor(LARGE.astype(dtype), requires_grad=True)
    t = x.tanh()
    t.sum().backward()
    assert np.all(np.isfinite(t.numpy()))
    assert np.all(np.isfinite(x.grad.numpy()))
    assert t.numpy()[0] == -1.0
    assert t.numpy()[-1] == 1.0
    tol = 1e-12 if dtype == np.float64 else 1e-6
    expected = [math.tanh(float(v)) for v in LARGE.astype(dtype)]
    assert_close(t, expected, tol, 0, what="tanh")
    gradient = [tanh_gradient_reference(float(v)) for v in LARGE.astype(dtype)]
    assert_close(x.grad, gradient, 1e3 * tol, 1e-15, what="tanh gradient")


@pytest.mark.usefixtures("warnings_are_errors")
def test_sigmoid_of_a_large_logit_inside_a_loss() -> None:
    """A saturated unit in a loss: value and gradient stay finite, the gradient is ~0."""
    w = Tensor(200.0, requires_grad=True)
    x = np.array([-5.0, 5.0])
    loss = (((w * x).sigmoid() - np.array([0.0, 1.0])) ** 2).mean()
    loss.backward()
    assert math.isfinite(loss.item())
    assert loss.item() < 1e-300
    assert w.grad.item() == pytest.approx(0.0, abs=1e-300)


@given(
    values=st.lists(st.floats(-700, 700), min_size=1, max_size=8),
)
def test_sigmoid_and_tanh_match_math_everywhere(values: list[float]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = Tensor(np.array(values), requires_grad=True)
        x.sigmoid().sum().backward()
        sigmoid_gradient = x.grad
        x.zero_grad()
        x.tanh().sum().backward()
    assert_close(x.sigmoid(), [sigmoid_reference(v) for v in values], 1e-12, 0, what="sigmoid")
    assert_close(x.tanh(), [math.tanh(v) for v in values], 1e-12, 0, what="tanh")
    expected = [sigmoid_gradient_reference(v) for v in values]
    assert_close(sigmoid_gradient, expected, 1e-9, 1e-15, what="sigmoid gradient")
    expected = [tanh_gradient_reference(v) for v in values]
    assert_close(x.grad, expected, 1e-9, 1e-15, what="tanh gradient")


NON_FINITE = np.array([np.nan, np.inf, -np.inf, 2.0])


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        pytest.param(lambda t: t.sigmoid(), [np.nan, 1.0, 0.0, 0.8807970779778823], id="sigmoid"),
        pytest.param(lambda t: t.tanh(), [np.nan, 1.0, -1.0, 0.9640275800758169], id="tanh"),
        pytest.param(lambda t: t.relu(), [np.nan, np.inf, 0.0, 2.0], id="relu"),
        pytest.param(lambda t: t.abs(), [np.nan, np.inf, np.inf, 2.0], id="abs"),
        pytest.param(lambda t: -t, [np.nan, -np.inf, np.inf, -2.0], id="neg"),
        pytest.param(lambda t: t * 2.0 + 1.0, [np.nan, np.inf, -np.inf, 5.0], id="affine"),
        pytest.param(lambda t: t.exp(), [np.nan, np.inf, 0.0, math.exp(2.0)], id="exp"),
    ],
)
def test_non_finite_values_pass_through(
    op: Callable[[Tensor], Tensor], expected: list[float]
) -> None:
    out = op(Tensor(NON_FINITE.copy()))
    assert_close(out, expected, 1e-15, 0, what="value")


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "abs"])
def test_nan_input_gives_nan_gradient_and_leaves_the_others_alone(name: str) -> None:
    x = Tensor(np.array([np.nan, 0.5]), requires_grad=True)
    getattr(x, name)().sum().backward()
    assert np.isnan(x.grad.numpy()[0])  # not clamped to 0
    assert np.isfinite(x.grad.numpy()[1])
    assert x.grad.numpy()[1] != 0.0


# ---- softmax, logsumexp, logaddexp and the losses at any scale ----------------------------------
@pytest.mark.usefixtures("warnings_are_errors")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [1.0, 1e4, 1e30])
def test_softmax_family_at_any_scale(dtype: type, scale: float) -> None:
    x = Tensor(np.array([[1.0, 0.0, -1.0], [0.5, 0.5, -2.0]], dtype=dtype) * dtype(scale),
               requires_grad=True)  # fmt: skip
    rows = x.data.astype(np.float64)
    peak = rows.max(axis=-1, keepdims=True)
    log_total = np.log(np.exp(rows - peak).sum(axis=-1, keepdims=True))
    lse = minigrad.logsumexp(x, axis=-1)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    assert_close(lse, (peak + log_total)[:, 0], tol, 0, what="logsumexp")
    log_p = minigrad.log_softmax(x, axis=-1)  # ln 2 survives beside 1e30: shifted first
    assert_close(log_p, (rows - peak) - log_total, tol, tol, what="log_softmax")
    p = minigrad.softmax(x, axis=-1)
    assert_close(p.sum(axis=-1), [1.0, 1.0], tol, 0, what="softmax sums to 1")
    (lse.sum() + (p * x).sum() + log_p.sum()).backward()
    assert np.all(np.isfinite(x.grad.data))
    assert x.grad.dtype == dtype


@pytest.mark.usefixtures("warnings_are_errors")
def test_logsumexp_with_minus_infinity_entries() -> None:
    x = Tensor([-np.inf, 0.0, -np.inf], requires_grad=True)
    lse = minigrad.logsumexp(x)
    assert lse.item() == 0.0
    lse.backward()
    assert x.grad.data.tolist() == [0.0, 1.0, 0.0]


@pytest.mark.usefixtures("warnings_are_errors")
def test_logaddexp_and_the_losses_at_large_logits() -> None:
    a = Tensor([1000.0, -1000.0, 5.0], requires_grad=True)
    b = Tensor([1000.0, 1000.0, 5.0], requires_grad=True)
    out = minigrad.logaddexp(a, b)
    assert_close(out, [1000 + math.log(2), 1000.0, 5 + math.log(2)], 1e-15, 0)
    out.sum().backward()
    assert_close(a.grad, [0.5, 0.0, 0.5], 0, 0)
    assert_close(b.grad, [0.5, 1.0, 0.5], 0, 0)

    z = Tensor([800.0, -800.0, 0.0], requires_grad=True)
    bce = minigrad.binary_cross_entropy_with_logits(z, [0.0, 1.0, 1.0])
    assert_close(bce, (800 + 800 + math.log(2)) / 3, 1e-15, 0)
    bce.backward()
    assert_close(z.grad, [1 / 3, -1 / 3, (0.5 - 1) / 3], 1e-15, 0)

    logits = Tensor([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]], requires_grad=True)
    ce = minigrad.cross_entropy(logits, [1, 2])
    assert_close(ce, (1e4 + math.log(3)) / 2, 1e-15, 0)
    ce.backward()
    assert_close(logits.grad, [[0.5, -0.5, 0.0], [1 / 6, 1 / 6, -1 / 3]], 1e-15, 1e-16)


def test_cross_entropy_checks_its_labels() -> None:
    logits = Tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match="whole numbers"):
        minigrad.cross_entropy(logits, [0.5, 1.0])
    with pytest.raises(ValueError, match=r"\(3,\) do not match"):
        minigrad.cross_entropy(logits, [0, 1, 2])
    assert minigrad.cross_entropy(logits, Tensor([0.0, 2.0])).item() == pytest.approx(math.log(3))
