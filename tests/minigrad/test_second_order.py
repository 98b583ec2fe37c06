"""Second derivatives: Hessians and Hessian-vector products through ``grad(create_graph=True)``.

References: second central differences of a numpy forward (numpy-only, HESSIAN_FD_* tolerances),
``torch.autograd.functional.hessian`` / ``hvp`` and ``jax.hessian`` / forward-over-reverse jvp
(ENGINE_* tolerances), and closed forms where the maths is short (MSE, cubes, exponentials).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigrad import Tensor, grad
from tests.minigrad.helpers import (
    ELEMENTWISE_CASES,
    ENGINE_ATOL,
    ENGINE_EXAMPLES,
    ENGINE_RTOL,
    HESSIAN_FD_RTOL,
    LABELS,
    MINIGRAD_OPS,
    NUMPY_OPS,
    TARGETS,
    TARGETS_01,
    THRESHOLD,
    Case,
    arrays_in,
    assert_close,
    hessian_fd_atol,
    minigrad_hessian,
    numeric_hessian,
)

_RNG = np.random.default_rng(20240601)
_X = _RNG.uniform(-2, 2, 5)
_Y = 3 * _X - 1 + _RNG.normal(0, 0.5, 5)
_A = _RNG.normal(size=(2, 3))
_B = _RNG.normal(size=(4, 4))


def _mse_in_b_w(ops: Any, theta: Any) -> Any:
    b, w = theta[0], theta[1]
    return ops.mean((ops.const(_Y) - (w * ops.const(_X) + b)) ** 2)


def _exp_log(ops: Any, t: Any) -> Any:
    return ops.sum(ops.exp(0.5 * t) * ops.log(t * t + 1.0)) / t[0]


def _tanh_sigmoid(ops: Any, t: Any) -> Any:
    swapped = t.reshape(2, 2).T.reshape(4)  # a permutation every library spells the same way
    return ops.sum(ops.tanh(t) * ops.sigmoid(2.0 * swapped)) + ops.tanh(t[0] * t[1])


def _pow_tensor_exponent(ops: Any, t: Any) -> Any:
    return ops.sum(t[:2] ** t[2:]) + t[0] ** 3 / t[3] + 2.0 ** t[1] - t[2] ** -0.5


def _matmul(ops: Any, t: Any) -> Any:
    m = t.reshape(2, 2)
    return (
        ops.sum((m @ ops.const(_A)) ** 2)
        + t @ ops.const(_B) @ t
        + ops.sum(ops.exp(0.1 * (m.T @ m)))
    )


def _broadcast_and_reduce(ops: Any, t: Any) -> Any:
    column, row = t[:3].reshape(3, 1), t[3:].reshape(1, 4)
    centred = column * row - ops.mean(column * row, axis=0, keepdims=True)
    return ops.sum(centred**2) + ops.sum(column / (row**2 + 1.0)) * ops.mean(row)


def _kinks_away_from_zero(ops: Any, t: Any) -> Any:
    return ops.sum(ops.relu(t) * ops.abs(t) * t + ops.abs(t) ** 1.5)


_C = _RNG.normal(size=(2, 2))


def _smooth_new_ops(ops: Any, t: Any) -> Any:
    return ops.sum(ops.sqrt(t * t + 1.0) * ops.sin(t) + ops.cos(t) * ops.log1p(t * t))


def _softmax_family(ops: Any, t: Any) -> Any:
    m = t.reshape(2, 2)
    return (
        ops.sum(ops.softmax(m, axis=-1) * ops.const(_C))
        + ops.logsumexp(t)
        + ops.sum(ops.log_softmax(m, axis=0) ** 2)
    )


def _piecewise(ops: Any, t: Any) -> Any:
    a, b = t[:2], t[2:]
    branches = ops.where(a > THRESHOLD, a**3, b * a)
    return (
        ops.sum(ops.maximum(a, b) ** 2 + ops.minimum(a, b) * a + branches)
        + ops.max(t * t)
        + ops.sum(ops.clip(t, -0.7, 0.8) ** 2)
    )


def _batched_matmul(ops: Any, t: Any) -> Any:
    stack = t.reshape(2, 2, 2)
    return ops.sum((stack @ stack) ** 2) + ops.sum(ops.tanh(stack @ t[:2]))


def _losses(ops: Any, t: Any) -> Any:
    logits = t.reshape(3, 4)
    return (
        ops.cross_entropy(logits, LABELS)
        + ops.bce_with_logits(logits, TARGETS_01)
        + ops.mse_loss(logits, TARGETS)
    )


def _joins(ops: Any, t: Any) -> Any:
    joined = ops.concat([t[:2] * t[2:], t**2], axis=0)
    stacked = ops.stack([t, ops.exp(0.5 * t)], axis=0)
    return ops.sum(joined**2) + ops.sum(stacked[1] * t) + ops.sum(ops.expand_dims(t, 0) ** 3)


# (name, f(ops, theta), size of theta, domain of theta)
FUNCTIONS = [
    ("mse(b,w)", _mse_in_b_w, 2, "real"),
    ("exp-log", _exp_log, 4, "nonzero"),
    ("tanh-sigmoid", _tanh_sigmoid, 4, "real"),
    ("pow-tensor-exponent", _pow_tensor_exponent, 4, "positive"),
    ("matmul", _matmul, 4, "real"),
    ("broadcast-reduce", _broadcast_and_reduce, 7, "real"),
    ("relu-abs", _kinks_away_from_zero, 4, "nonzero"),
    ("sqrt-sin-cos-log1p", _smooth_new_ops, 4, "real"),
    ("softmax-logsumexp", _softmax_family, 4, "real"),
    ("max-min-where-clip", _piecewise, 4, "spread"),
    ("batched-matmul", _batched_matmul, 8, "real"),
    ("losses", _losses, 12, "real"),
    ("concat-stack", _joins, 4, "real"),
]
FUNCTION_PARAMS = [pytest.param(f, n, domain, id=name) for name, f, n, domain in FUNCTIONS]


def _numpy_hessian(f: Callable[..., Any], theta: np.ndarray) -> np.ndarray:
    return numeric_hessian(lambda t: f(NUMPY_OPS, t), theta)


@pytest.mark.parametrize(("f", "n", "domain"), FUNCTION_PARAMS)
@given(data=st.data())
def test_hessian_matches_second_differences(
    f: Callable[..., Any], n: int, domain: str, data: st.DataObject
) -> None:
    theta = data.draw(arrays_in((n,), domain), label="theta")
    hessian = minigrad_hessian(f, theta)
    assert_close(hessian, hessian.T, 1e-12, 1e-12, what="symmetry of the Hessian")
    expected = _numpy_hessian(f, theta)
    atol = hessian_fd_atol(lambda t: f(NUMPY_OPS, t), theta)
    assert_close(hessian, expected, HESSIAN_FD_RTOL, atol, what="Hessian")


def _fixed_points(n: int, domain: str, count: int) -> list[np.ndarray]:
    """Deterministic points with no special structure (hypothesis starts at zeros, where many
    second derivatives vanish); the engines are slow enough that a few points must do."""
    rng = np.random.default_rng(n * 1000 + len(domain))
    magnitudes = rng.uniform(0.3, 2.5, size=(count, n))
    if domain in ("positive", "base"):
        return list(magnitudes)
    return list(magnitudes * rng.choice([-1.0, 1.0], size=(count, n)))


@pytest.mark.parametrize(("f", "n", "domain"), FUNCTION_PARAMS)
def test_hessian_matches_reference_engine(
    engine: Any, f: Callable[..., Any], n: int, domain: str
) -> None:
    points = _fixed_points(n, domain, 3)
    for theta, expected in zip(points, engine.hessians(f, points), strict=True):
        assert_close(minigrad_hessian(f, theta), expected, ENGINE_RTOL, ENGINE_ATOL, what="Hessian")


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in ELEMENTWISE_CASES])
@given(data=st.data())
def test_elementwise_second_derivative(case: Case, data: st.DataObject) -> None:
    """Each elementwise op's second derivative: the Hessian of Σ f(x) is diag(f''(x))."""
    (domain,) = case.domains
    theta = data.draw(arrays_in((4,), domain), label="x")

    def total(ops: Any, x: Any) -> Any:
        return ops.sum(case.fn(ops, x))

    hessian = minigrad_hessian(total, theta)
    atol = hessian_fd_atol(lambda t: total(NUMPY_OPS, t), theta)
    assert_close(hessian, _numpy_hessian(total, theta), HESSIAN_FD_RTOL, atol)
    assert np.count_nonzero(hessian - np.diag(np.diag(hessian))) == 0


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in ELEMENTWISE_CASES])
@settings(max_examples=min(ENGINE_EXAMPLES, 3))
@given(data=st.data())
def test_elementwise_second_derivative_matches_torch(
    torch_engine: Any, case: Case, data: st.DataObject
) -> None:
    (domain,) = case.domains
    theta = data.draw(arrays_in((4,), domain), label="x")

    def total(ops: Any, x: Any) -> Any:
        return ops.sum(case.fn(ops, x))

    expected = torch_engine.hessian(total, theta)
    assert_close(minigrad_hessian(total, theta), expected, ENGINE_RTOL, ENGINE_ATOL)


@pytest.mark.parametrize(
    ("f", "third"),
    [
        pytest.param(lambda x: x**3, lambda x: 6 + 0 * x, id="x**3"),
        pytest.param(lambda x: x.exp(), np.exp, id="exp"),
        pytest.param(lambda x: x.log(), lambda x: 2 / x**3, id="log"),
        pytest.param(lambda x: x.sigmoid(), None, id="sigmoid"),
    ],
)
def test_third_derivative(f: Callable[[Tensor], Tensor], third: Any) -> None:
    """Gradients of gradients of gradients: create_graph on every pass but the last."""
    values = np.array([0.3, 1.1, 2.5])
    x = Tensor(values, requires_grad=True)
    first = grad(f(x).sum(), x, create_graph=True)
    second = grad(first.sum(), x, create_graph=True)
    third_derivative = grad(second.sum(), x)
    if third is None:  # σ''' = σ(1-σ)(1 - 6σ + 6σ²)
        s = 1 / (1 + np.exp(-values))
        expected = s * (1 - s) * (1 - 6 * s + 6 * s**2)
    else:
        expected = third(values)
    assert_close(third_derivative, expected, 1e-12, 1e-12, what="third derivative")


# ---- Hessian-vector products --------------------------------------------------------------------
HVP_PARAMS = [p for p in FUNCTION_PARAMS if p.id in ("exp-log", "tanh-sigmoid", "matmul")]


def _minigrad_hvps(f: Callable[..., Any], theta: np.ndarray, v: np.ndarray) -> list[Tensor]:
    """H·v two ways, without forming H: grad(g, x, grad_output=v) and grad(Σ g·v, x)."""
    x = Tensor(theta, requires_grad=True)
    g = grad(f(MINIGRAD_OPS, x), x, create_graph=True)
    assert g.requires_grad  # recorded, so it can be differentiated again
    return [grad(g, x, grad_output=v), grad((g * v).sum(), x)]


@pytest.mark.parametrize(("f", "n", "domain"), HVP_PARAMS)
@given(data=st.data())
def test_hessian_vector_product(
    f: Callable[..., Any], n: int, domain: str, data: st.DataObject
) -> None:
    theta = data.draw(arrays_in((n,), domain), label="theta")
    v = data.draw(arrays_in((n,), "cotangent"), label="v")
    expected = _numpy_hessian(f, theta) @ v
    # each entry of H is off by up to atol, and H·v sums n of them weighted by v
    atol = hessian_fd_atol(lambda t: f(NUMPY_OPS, t), theta) * max(1.0, float(np.abs(v).sum()))
    for hv, how in zip(_minigrad_hvps(f, theta, v), ("grad_output", "sum"), strict=True):
        assert_close(hv, expected, HESSIAN_FD_RTOL, atol, what=f"H·v ({how})")


@pytest.mark.parametrize(("f", "n", "domain"), HVP_PARAMS)
def test_hessian_vector_product_matches_reference_engine(
    engine: Any, f: Callable[..., Any], n: int, domain: str
) -> None:
    """torch.autograd.functional.hvp (double backward) and jax's jvp of grad (forward mode)."""
    theta, v = _fixed_points(n, domain, 2)
    expected = engine.hvp(f, theta, v)
    for hv, how in zip(_minigrad_hvps(f, theta, v), ("grad_output", "sum"), strict=True):
        assert_close(hv, expected, ENGINE_RTOL, ENGINE_ATOL, what=f"H·v ({how})")
