"""minigrad.numpy: one loss written against the array API standard runs on every engine.

The losses are written once, as a learner writes them, and run on minigrad's namespace, numpy
and torch through array-api-compat, and jax.numpy; values and gradients must agree (float64:
ENGINE tolerances). Each namespace function is compared with array-api-compat's numpy, and its
recorded rules are checked with check_graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import minigrad
import minigrad.numpy as mxp
from minigrad import Tensor, check_graph, grad
from tests.minigrad.helpers import ENGINE_ATOL, ENGINE_RTOL, assert_close


# ---- the losses, written once --------------------------------------------------------------------
def mse(b: Any, w: Any, X: Any, y: Any, xp: Any) -> Any:
    r = y - (X @ w + b)
    return xp.mean(r**2)


def huber(b: Any, w: Any, X: Any, y: Any, xp: Any) -> Any:
    r = y - (X @ w + b)
    return xp.mean(xp.where(xp.abs(r) <= 1.0, 0.5 * r**2, xp.abs(r) - 0.5))


def logistic(b: Any, w: Any, X: Any, y: Any, xp: Any) -> Any:
    z = X @ w + b
    return xp.mean(xp.log1p(xp.exp(-xp.abs(z))) + xp.maximum(z, 0) - y * z)


def ridge_columns(b: Any, w: Any, X: Any, y: Any, xp: Any) -> Any:
    """More of the namespace: sums over an axis, sqrt, stack, a matrix transpose."""
    r = y - (X @ w + b)
    spread = xp.sum((X - xp.mean(X, axis=0)) ** 2, axis=0)
    both = xp.stack([r, 2.0 * r], axis=0)
    return (
        xp.sum(both**2) / 40.0
        + 0.1 * xp.sum(xp.sqrt(spread + 1.0) * w**2)
        + xp.sum(xp.matrix_transpose(both) ** 2) * 0.0
    )


LOSSES = [mse, huber, logistic, ridge_columns]


def _data(loss: Callable[..., Any]) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, 3))
    w = np.array([0.5, -1.0, 2.0])
    y = (rng.random(20) < 0.5).astype(float) if loss is logistic else X @ w + rng.normal(size=20)
    return np.array(0.25), np.array([0.1, -0.3, 0.2]), X, y


def _minigrad(loss: Callable[..., Any], dtype: type) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    b0, w0, X, y = (a.astype(dtype) for a in _data(loss))
    b = Tensor(b0, requires_grad=True)
    w = Tensor(w0, requires_grad=True)
    value = loss(b, w, mxp.asarray(X), mxp.asarray(y), mxp)
    return value, grad(value, (b, w))


@pytest.mark.parametrize("loss", LOSSES, ids=lambda f: f.__name__)
def test_a_loss_matches_torch_through_array_api_compat(loss: Callable[..., Any]) -> None:
    torch = pytest.importorskip("torch")
    compat = pytest.importorskip("array_api_compat")
    b0, w0, X, y = _data(loss)
    b = torch.tensor(b0, requires_grad=True)
    w = torch.tensor(w0, requires_grad=True)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    value = loss(b, w, Xt, yt, compat.array_namespace(Xt))
    value.backward()
    mine, (gb, gw) = _minigrad(loss, np.float64)
    assert_close(mine, value.detach().numpy(), ENGINE_RTOL, ENGINE_ATOL, what="loss")
    assert_close(gb, b.grad.numpy(), ENGINE_RTOL, ENGINE_ATOL, what="dL/db")
    assert_close(gw, w.grad.numpy(), ENGINE_RTOL, ENGINE_ATOL, what="dL/dw")
    numpy_value = loss(*_data(loss), compat.array_namespace(X))  # the same lines on numpy
    assert_close(mine, numpy_value, ENGINE_RTOL, ENGINE_ATOL, what="loss on numpy")


@pytest.mark.parametrize("loss", LOSSES, ids=lambda f: f.__name__)
def test_a_loss_matches_jax_numpy(loss: Callable[..., Any], jax_engine: Any) -> None:
    jax, jnp = jax_engine.jax, jax_engine.jax.numpy
    with jax_engine.x64():
        b0, w0, X, y = (jnp.asarray(a) for a in _data(loss))
        value, (gb, gw) = jax.value_and_grad(lambda b, w: loss(b, w, X, y, jnp), argnums=(0, 1))(
            b0, w0
        )
    mine, (my_gb, my_gw) = _minigrad(loss, np.float64)
    assert_close(mine, np.asarray(value), ENGINE_RTOL, ENGINE_ATOL, what="loss")
    assert_close(my_gb, np.asarray(gb), ENGINE_RTOL, ENGINE_ATOL, what="dL/db")
    assert_close(my_gw, np.asarray(gw), ENGINE_RTOL, ENGINE_ATOL, what="dL/dw")


@pytest.mark.parametrize("loss", LOSSES, ids=lambda f: f.__name__)
def test_a_float32_loss_stays_float32(loss: Callable[..., Any]) -> None:
    """Python numbers in the loss (1.0, 0.5, 0) take the tensors' dtype, as in numpy."""
    value, (gb, gw) = _minigrad(loss, np.float32)
    assert (value.dtype, gb.dtype, gw.dtype) == (np.float32,) * 3
    reference, (_, rw) = _minigrad(loss, np.float64)
    assert_close(value, reference, 1e-5, 1e-6, what="loss")
    assert_close(gw, rw, 1e-4, 1e-5, what="dL/dw")
    X, y = (mxp.asarray(a.astype(np.float32)) for a in _data(loss)[2:])
    b = Tensor(np.float32(0.25), requires_grad=True)
    assert check_graph(loss(b, Tensor(gw.data, requires_grad=True), X, y, mxp)) == []


def test_the_namespace_is_found_through_array_api_compat() -> None:
    compat = pytest.importorskip("array_api_compat")
    t = Tensor([1.0, 2.0])
    assert t.__array_namespace__() is mxp
    assert compat.array_namespace(t) is mxp
    assert minigrad.numpy is mxp


def test_a_missing_function_is_named_with_what_is_supported() -> None:
    with pytest.raises(AttributeError, match=r"has no 'fft' \(an array API extension") as error:
        mxp.fft  # noqa: B018
    assert "mean, meshgrid, min, minimum" in str(error.value)
    with pytest.raises(AttributeError, match=r"has no 'nonsense' \(unknown\)"):
        mxp.nonsense  # noqa: B018
    for name in mxp.__all__:
        assert hasattr(mxp, name), name


# ---- every function against array-api-compat's numpy, its rules against check_graph --------------
def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {
        "a": rng.normal(size=(3, 4)),
        "b": rng.normal(size=(4,)),
        "p": rng.uniform(0.5, 2.0, size=(3, 4)),
        "m": rng.normal(size=(2, 4, 3)),
    }


FUNCTIONS: list[tuple[str, Callable[..., Any]]] = [
    (name, lambda xp, a, b, p, m, name=name: getattr(xp, name)(a))
    for name in ("abs", "negative", "positive", "exp", "expm1", "sin", "cos", "tanh", "sign",
                 "square", "isnan", "isinf", "isfinite")
] + [
    (name, lambda xp, a, b, p, m, name=name: getattr(xp, name)(p))
    for name in ("log", "log1p", "log2", "log10", "sqrt", "tan")
] + [
    (name, lambda xp, a, b, p, m, name=name: getattr(xp, name)(a, b))
    for name in ("add", "subtract", "multiply", "divide", "maximum", "minimum", "logaddexp",
                 "equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
] + [
    ("pow", lambda xp, a, b, p, m: xp.pow(p, b)),
    ("pow scalar", lambda xp, a, b, p, m: xp.pow(p, 2)),
    ("where", lambda xp, a, b, p, m: xp.where(a > 0, a, b)),
    ("clip", lambda xp, a, b, p, m: xp.clip(a, min=-0.5, max=0.7)),
    ("sum", lambda xp, a, b, p, m: xp.sum(m, axis=(0, 2))),
    ("mean", lambda xp, a, b, p, m: xp.mean(m, axis=1, keepdims=True)),
    ("max", lambda xp, a, b, p, m: xp.max(a, axis=-1)),
    ("min", lambda xp, a, b, p, m: xp.min(a)),
    ("var", lambda xp, a, b, p, m: xp.var(a, axis=0, correction=1)),
    ("std", lambda xp, a, b, p, m: xp.std(a)),
    ("all", lambda xp, a, b, p, m: xp.all(a > -5.0, axis=0)),
    ("any", lambda xp, a, b, p, m: xp.any(a > 1.0)),
    ("logical", lambda xp, a, b, p, m: xp.logical_or(xp.logical_and(a > 0, a < 1), a < -1)),
    ("logical_not", lambda xp, a, b, p, m: xp.logical_not(a > -1)),
    ("matmul", lambda xp, a, b, p, m: xp.matmul(m, a)),
    ("vecdot", lambda xp, a, b, p, m: xp.vecdot(a, b)),
    ("matrix_transpose", lambda xp, a, b, p, m: xp.matrix_transpose(m)),
    ("permute_dims", lambda xp, a, b, p, m: xp.permute_dims(m, (2, 0, 1))),
    ("reshape", lambda xp, a, b, p, m: xp.reshape(m, (4, 6))),
    ("squeeze", lambda xp, a, b, p, m: xp.squeeze(xp.reshape(a, (3, 1, 4)), axis=1)),
    ("expand_dims", lambda xp, a, b, p, m: xp.expand_dims(a, axis=1)),
    ("broadcast_to", lambda xp, a, b, p, m: xp.broadcast_to(b, (2, 3, 4))),
    ("concat", lambda xp, a, b, p, m: xp.concat([a, p], axis=0)),
    ("concat(None)", lambda xp, a, b, p, m: xp.concat([a, b], axis=None)),
    ("stack", lambda xp, a, b, p, m: xp.stack([a, p], axis=1)),
    ("flip", lambda xp, a, b, p, m: xp.flip(m, axis=(0, 2))),
    ("astype", lambda xp, a, b, p, m: xp.astype(a, xp.float32)),
    ("zeros_like", lambda xp, a, b, p, m: xp.zeros_like(a) + a),
    ("ones_like", lambda xp, a, b, p, m: xp.ones_like(a) * a),
    ("full_like", lambda xp, a, b, p, m: xp.full_like(a, 2.0) * a),
    ("creation", lambda xp, a, b, p, m: xp.zeros((2, 3)) + xp.ones((2, 3)) + xp.full((2, 3), 2)),
    ("eye", lambda xp, a, b, p, m: xp.eye(3, 4, k=1) * a),
    ("arange", lambda xp, a, b, p, m: xp.arange(4) * b + xp.linspace(0, 1, 4)),
    ("asarray", lambda xp, a, b, p, m: xp.asarray([1.0, 2.0]) * xp.asarray(b[:2])),
]  # fmt: skip


@pytest.mark.parametrize(("name", "f"), FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_each_function_matches_numpy_and_its_rules_check_out(
    name: str, f: Callable[..., Any]
) -> None:
    compat = pytest.importorskip("array_api_compat")
    arrays = _inputs()
    expected = np.asarray(f(compat.array_namespace(arrays["a"]), **arrays))
    tensors = {k: Tensor(v, requires_grad=True) for k, v in arrays.items()}
    result = f(mxp, **tensors)
    assert isinstance(result, Tensor)
    assert result.shape == expected.shape
    assert result.dtype == expected.dtype
    assert_close(result, expected, 1e-14, 1e-15, what=name)
    if result.requires_grad:
        assert check_graph(result) == []


@pytest.mark.parametrize("dtype", [mxp.float32, np.dtype("float32")], ids=["type", "dtype"])
def test_creation_functions_take_the_dtype_asked_for(dtype: Any) -> None:
    like = mxp.zeros((2,), dtype=dtype)
    made = [
        like,
        mxp.ones((2,), dtype=dtype),
        mxp.empty((2,), dtype=dtype),
        mxp.full((2,), 1.5, dtype=dtype),
        mxp.eye(2, dtype=dtype),
        mxp.arange(3, dtype=dtype),
        mxp.linspace(0, 1, 3, dtype=dtype),
        mxp.zeros_like(like),
        mxp.ones_like(like),
        mxp.full_like(like, 2.0),
        mxp.asarray([1.0], dtype=dtype),
    ]
    assert all(t.dtype == np.float32 for t in made)
    assert mxp.zeros((2,)).dtype == np.float64  # the default
