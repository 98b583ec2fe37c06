"""Shared pieces of the minigrad tests: the comparison helper, finite differences, the op tables.

Every operation is written once, as a function of an `ops` namespace and its inputs, so the same
definition runs on numpy (the reference forward for finite differences), minigrad, torch and jax.
Operators (+ - * / ** @, indexing, .reshape, .T) are spelled directly; functions whose spelling
differs between the libraries (exp, sigmoid, sum with an axis, ...) go through `ops`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st

import minigrad
from minigrad import Tensor, grad

# ---- tolerances (float64 throughout) ------------------------------------------------------------
# Central differences with step h = 1e-6·max(1, |x|): truncation error ~h²·|f'''| ≈ 1e-10 and
# rounding error ~eps·|Σ c·f|/h ≈ 1e-7 for the largest values drawn below.
FD_STEP = 1e-6
FD_RTOL = 1e-6
FD_ATOL = 1e-6
# Second differences with h = 1e-4: error ~eps·|f|/h² + h²·|f''''| ≈ 1e-7.
HESSIAN_FD_STEP = 1e-4
HESSIAN_FD_RTOL = 1e-5
HESSIAN_FD_ATOL = 1e-5  # where |f| is of order one; the rounding grows with |f|: hessian_fd_atol
# Two exact implementations of the same formula differ only by rounding.
ENGINE_RTOL = 1e-10
ENGINE_ATOL = 1e-12
FORWARD_RTOL = 1e-12
FORWARD_ATOL = 1e-14

# The op-by-op comparisons with torch and jax (no jit) draw fewer examples than the profile asks:
# each jax op compiles on first use, and finite differences already explore the values.
ENGINE_EXAMPLES = min(settings.default.max_examples, 5)


# ---- comparison ---------------------------------------------------------------------------------
def assert_close(
    actual: Any, expected: Any, rtol: float, atol: float, what: str = "values"
) -> None:
    """Assert |actual - expected| <= atol + rtol·|expected| elementwise, shapes equal.

    NaNs must sit in the same places. On failure the message names the worst element: its index,
    both values, the difference and the allowance, so a wrong gradient is diagnosed at a glance.
    """
    actual_array = np.asarray(actual.data if isinstance(actual, Tensor) else actual)
    expected_array = np.asarray(expected.data if isinstance(expected, Tensor) else expected)
    assert actual_array.shape == expected_array.shape, (
        f"{what}: shape {actual_array.shape} != expected shape {expected_array.shape}"
    )
    a = actual_array.astype(np.float64)
    e = expected_array.astype(np.float64)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    assert np.array_equal(nan_a, nan_e), (
        f"{what}: NaN at {np.argwhere(nan_a).tolist()}, "
        f"expected NaN at {np.argwhere(nan_e).tolist()}"
    )
    with np.errstate(invalid="ignore"):  # inf - inf where both are the same infinity
        same = (a == e) | (nan_a & nan_e)
        excess = np.where(same, -np.inf, np.abs(a - e) - (atol + rtol * np.abs(e)))
    if excess.size == 0 or np.max(excess) <= 0:
        return
    worst = np.unravel_index(int(np.argmax(excess)), excess.shape)
    index = tuple(int(i) for i in worst)
    bad = int(np.sum(excess > 0))
    raise AssertionError(
        f"{what}: {bad} of {excess.size} elements differ beyond rtol={rtol:g}, atol={atol:g}; "
        f"worst at index {index}: actual {float(a[worst])!r}, expected {float(e[worst])!r}, "
        f"|diff| {abs(a[worst] - e[worst]):.3e} > allowed {atol + rtol * abs(e[worst]):.3e}"
    )


# ---- finite differences -------------------------------------------------------------------------
def numeric_vjp(
    fn: Callable[..., Any], arrays: Sequence[np.ndarray], cotangent: np.ndarray
) -> list[np.ndarray]:
    """Central-difference gradients of Σ cotangent·fn(*arrays) with respect to each array."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]

    def loss(args: list[np.ndarray]) -> float:
        return float(np.sum(cotangent * np.asarray(fn(*args))))

    grads = []
    for array in arrays:
        g = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            x = array[index]
            h = FD_STEP * max(1.0, abs(float(x)))
            array[index] = x + h
            plus = loss(arrays)
            array[index] = x - h
            minus = loss(arrays)
            array[index] = x
            g[index] = (plus - minus) / (2 * h)
        grads.append(g)
    return grads


def numeric_hessian(
    f: Callable[[np.ndarray], Any], theta: np.ndarray, step: float | None = None
) -> np.ndarray:
    """Second central differences of a scalar function of a 1-D array (step HESSIAN_FD_STEP)."""
    n = theta.size
    h = HESSIAN_FD_STEP if step is None else step
    hessian = np.zeros((n, n))
    for i, j in itertools.product(range(n), repeat=2):
        ei = np.zeros(n)
        ej = np.zeros(n)
        ei[i] = h
        ej[j] = h
        hessian[i, j] = (
            float(f(theta + ei + ej))
            - float(f(theta + ei - ej))
            - float(f(theta - ei + ej))
            + float(f(theta - ei - ej))
        ) / (4 * h * h)
    return hessian


def hessian_fd_atol(f: Callable[[np.ndarray], Any], theta: np.ndarray) -> float:
    """HESSIAN_FD_ATOL plus the rounding of numeric_hessian at theta.

    Each of the four values in a second difference is off by a few eps·|f|, and their sum is
    divided by 4h²: allow 16·eps·|f(θ)|/h² (four times the plain bound), so a function whose
    value is in the thousands is not failed for its cancellation.
    """
    value = abs(float(f(theta)))
    eps = float(np.finfo(np.float64).eps)
    return HESSIAN_FD_ATOL + 16 * eps * value / HESSIAN_FD_STEP**2 + hessian_fd_truncation(f, theta)


def hessian_fd_truncation(f: Callable[[np.ndarray], Any], theta: np.ndarray) -> float:
    """Twice the estimated truncation error of numeric_hessian at theta (Richardson: the error
    is c·h², so the step h's Hessian differs from the step 2h's by 3c·h²). Large where the
    fourth derivatives are: at θ = (0.25, ...), f = Σ exp(θ/2)·ln(θ² + 1) / θ₀ is off by 9e-5
    at h = 1e-4."""
    fine = numeric_hessian(f, theta)
    coarse = numeric_hessian(f, theta, 2 * HESSIAN_FD_STEP)
    return 2 * float(np.max(np.abs(coarse - fine), initial=0.0)) / 3


# ---- the four op namespaces ---------------------------------------------------------------------
def _numpy_sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-x))


def _numpy_logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    m = np.max(x, axis=axis, keepdims=True)
    total = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return total if keepdims else np.squeeze(total, axis=axis)


def _numpy_log_softmax(x: Any, axis: int = -1) -> Any:
    return x - _numpy_logsumexp(x, axis=axis, keepdims=True)


def _numpy_cross_entropy(logits: Any, labels: Any) -> Any:
    logp = _numpy_log_softmax(logits, axis=-1)
    picked = np.take_along_axis(logp, np.asarray(labels)[..., None], axis=-1)
    return -np.mean(picked)


def _numpy_bce_with_logits(z: Any, y: Any) -> Any:
    return np.mean(np.logaddexp(0, z) - y * z)


# targets of the loss cases (constants): labels for 3 rows of 4 classes, and 2 x 3 rows
LABELS = np.array([2, 0, 3])
LABELS_2D = np.array([[1, 3, 0], [2, 2, 1]])
TARGETS_01 = np.array([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.5, 1.0], [0.0, 0.25, 1.0, 0.0]])
TARGETS = np.array([[0.5, -1.0, 2.0, 0.0], [1.5, 0.25, -0.5, 1.0], [-2.0, 0.75, 1.0, -0.25]])
THRESHOLD = 0.123456  # the where case's condition: never a value hypothesis draws exactly

NUMPY_OPS = SimpleNamespace(
    name="numpy",
    const=np.asarray,
    sqrt=np.sqrt,
    log1p=np.log1p,
    sin=np.sin,
    cos=np.cos,
    maximum=np.maximum,
    minimum=np.minimum,
    where=np.where,
    clip=np.clip,
    logaddexp=np.logaddexp,
    max=lambda x, axis=None, keepdims=False: np.max(x, axis=axis, keepdims=keepdims),
    min=lambda x, axis=None, keepdims=False: np.min(x, axis=axis, keepdims=keepdims),
    logsumexp=_numpy_logsumexp,
    softmax=lambda x, axis=-1: np.exp(_numpy_log_softmax(x, axis)),
    log_softmax=_numpy_log_softmax,
    concat=lambda xs, axis=0: np.concatenate(xs, axis=axis),
    stack=lambda xs, axis=0: np.stack(xs, axis=axis),
    squeeze=lambda x, axis=None: np.squeeze(x, axis=axis),
    expand_dims=np.expand_dims,
    mse_loss=lambda p, t: np.mean((t - p) ** 2),
    bce_with_logits=_numpy_bce_with_logits,
    cross_entropy=_numpy_cross_entropy,
    exp=np.exp,
    log=np.log,
    tanh=np.tanh,
    sigmoid=_numpy_sigmoid,
    relu=lambda x: np.maximum(x, 0),
    abs=np.abs,
    sum=lambda x, axis=None, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims),
    mean=lambda x, axis=None, keepdims=False: np.mean(x, axis=axis, keepdims=keepdims),
    transpose=lambda x, axes=None: np.transpose(x, axes),
    flip=lambda x: x[::-1],
)

MINIGRAD_OPS = SimpleNamespace(
    name="minigrad",
    const=Tensor,
    sqrt=lambda t: t.sqrt(),
    log1p=lambda t: t.log1p(),
    sin=lambda t: t.sin(),
    cos=lambda t: t.cos(),
    maximum=minigrad.maximum,
    minimum=minigrad.minimum,
    where=minigrad.where,
    clip=minigrad.clip,
    logaddexp=minigrad.logaddexp,
    max=lambda t, axis=None, keepdims=False: t.max(axis=axis, keepdims=keepdims),
    min=lambda t, axis=None, keepdims=False: t.min(axis=axis, keepdims=keepdims),
    logsumexp=minigrad.logsumexp,
    softmax=minigrad.softmax,
    log_softmax=minigrad.log_softmax,
    concat=minigrad.concatenate,
    stack=minigrad.stack,
    squeeze=lambda t, axis=None: t.squeeze(axis),
    expand_dims=lambda t, axis: t.expand_dims(axis),
    mse_loss=minigrad.mse_loss,
    bce_with_logits=minigrad.binary_cross_entropy_with_logits,
    cross_entropy=minigrad.cross_entropy,
    exp=lambda t: t.exp(),
    log=lambda t: t.log(),
    tanh=lambda t: t.tanh(),
    sigmoid=lambda t: t.sigmoid(),
    relu=lambda t: t.relu(),
    abs=lambda t: t.abs(),
    sum=lambda t, axis=None, keepdims=False: t.sum(axis=axis, keepdims=keepdims),
    mean=lambda t, axis=None, keepdims=False: t.mean(axis=axis, keepdims=keepdims),
    # the tuple form; the varargs form and .T appear in the cases themselves
    transpose=lambda t, axes=None: t.transpose() if axes is None else t.transpose(axes),
    flip=lambda t: t[::-1],
)


def torch_ops(torch: Any) -> SimpleNamespace:
    """The namespace for torch tensors (float64)."""

    def reduce(method: str) -> Callable[..., Any]:
        def apply(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
            if axis is None and not keepdims:
                return getattr(x, method)()
            dims = tuple(range(x.ndim)) if axis is None else axis
            return getattr(x, method)(dim=dims, keepdim=keepdims)

        return apply

    functional = torch.nn.functional

    def clip(x: Any, low: Any = None, high: Any = None) -> Any:
        if isinstance(low, torch.Tensor) or isinstance(high, torch.Tensor):  # both tensors then
            low, high = (
                None if v is None else torch.as_tensor(v, dtype=x.dtype) for v in (low, high)
            )
        return torch.clamp(x, low, high)

    def squeeze(x: Any, axis: Any = None) -> Any:
        return x.squeeze() if axis is None else x.squeeze(axis)

    def cross_entropy(logits: Any, labels: Any) -> Any:
        classes = logits.shape[-1]
        targets = torch.as_tensor(np.asarray(labels).reshape(-1))
        return functional.cross_entropy(logits.reshape(-1, classes), targets)

    def bce_with_logits(z: Any, y: Any) -> Any:
        return functional.binary_cross_entropy_with_logits(z, torch.as_tensor(y))

    def mse_loss(p: Any, t: Any) -> Any:
        return functional.mse_loss(p, torch.as_tensor(np.asarray(t, dtype=np.float64)))

    return SimpleNamespace(
        name="torch",
        const=lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64)),
        sqrt=torch.sqrt,
        log1p=torch.log1p,
        sin=torch.sin,
        cos=torch.cos,
        maximum=torch.maximum,
        minimum=torch.minimum,
        where=torch.where,
        clip=clip,
        logaddexp=torch.logaddexp,
        max=reduce("amax"),  # amax shares a tie's gradient equally, as minigrad and jax do
        min=reduce("amin"),
        logsumexp=lambda x, axis=None, keepdims=False: torch.logsumexp(
            x, dim=tuple(range(x.ndim)) if axis is None else axis, keepdim=keepdims
        ),
        softmax=lambda x, axis=-1: torch.softmax(x, dim=axis),
        log_softmax=lambda x, axis=-1: torch.log_softmax(x, dim=axis),
        concat=lambda xs, axis=0: torch.cat(xs, dim=axis),
        stack=lambda xs, axis=0: torch.stack(xs, dim=axis),
        squeeze=squeeze,
        expand_dims=lambda x, axis: x.unsqueeze(axis),
        mse_loss=mse_loss,
        bce_with_logits=bce_with_logits,
        cross_entropy=cross_entropy,
        exp=torch.exp,
        log=torch.log,
        tanh=torch.tanh,
        sigmoid=torch.sigmoid,
        relu=torch.relu,
        abs=torch.abs,
        sum=reduce("sum"),
        mean=reduce("mean"),
        transpose=lambda x, axes=None: x.permute(
            tuple(reversed(range(x.ndim))) if axes is None else axes
        ),
        flip=lambda x: x.flip(0),  # torch slices take no negative step
    )


def jax_ops(jax: Any) -> SimpleNamespace:
    """The namespace for jax arrays (used inside an enable_x64 scope)."""
    jnp = jax.numpy

    def cross_entropy(logits: Any, labels: Any) -> Any:
        logp = jax.nn.log_softmax(logits, axis=-1)
        picked = jnp.take_along_axis(logp, jnp.asarray(labels)[..., None], axis=-1)
        return -jnp.mean(picked)

    return SimpleNamespace(
        name="jax",
        const=lambda a: jnp.asarray(np.asarray(a, dtype=np.float64)),
        sqrt=jnp.sqrt,
        log1p=jnp.log1p,
        sin=jnp.sin,
        cos=jnp.cos,
        maximum=jnp.maximum,
        minimum=jnp.minimum,
        where=jnp.where,
        clip=lambda x, low=None, high=None: jnp.clip(x, low, high),
        logaddexp=jnp.logaddexp,
        max=lambda x, axis=None, keepdims=False: jnp.max(x, axis=axis, keepdims=keepdims),
        min=lambda x, axis=None, keepdims=False: jnp.min(x, axis=axis, keepdims=keepdims),
        logsumexp=lambda x, axis=None, keepdims=False: jax.nn.logsumexp(
            x, axis=axis, keepdims=keepdims
        ),
        softmax=lambda x, axis=-1: jax.nn.softmax(x, axis=axis),
        log_softmax=lambda x, axis=-1: jax.nn.log_softmax(x, axis=axis),
        concat=lambda xs, axis=0: jnp.concatenate(xs, axis=axis),
        stack=lambda xs, axis=0: jnp.stack(xs, axis=axis),
        squeeze=lambda x, axis=None: jnp.squeeze(x, axis=axis),
        expand_dims=jnp.expand_dims,
        mse_loss=lambda p, t: jnp.mean((jnp.asarray(t) - p) ** 2),
        bce_with_logits=lambda z, y: jnp.mean(jnp.logaddexp(0.0, z) - jnp.asarray(y) * z),
        cross_entropy=cross_entropy,
        exp=jnp.exp,
        log=jnp.log,
        tanh=jnp.tanh,
        sigmoid=jax.nn.sigmoid,
        relu=jax.nn.relu,
        abs=jnp.abs,
        sum=lambda x, axis=None, keepdims=False: jnp.sum(x, axis=axis, keepdims=keepdims),
        mean=lambda x, axis=None, keepdims=False: jnp.mean(x, axis=axis, keepdims=keepdims),
        transpose=lambda x, axes=None: jnp.transpose(x, axes),
        flip=lambda x: x[::-1],
    )


# ---- minigrad as an engine ----------------------------------------------------------------------
def minigrad_vjp(
    fn: Callable[..., Any], arrays: Sequence[np.ndarray], cotangent: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Forward value and the gradients of Σ cotangent·fn, through ``backward(gradient)``."""
    tensors = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = fn(MINIGRAD_OPS, *tensors)
    assert isinstance(out, Tensor), f"result is {type(out).__name__}, not a Tensor"
    out.backward(np.array(cotangent, dtype=np.float64))
    for i, t in enumerate(tensors):
        assert t.grad is not None, f"input {i} got no gradient"
    return np.asarray(out.data), [np.asarray(t.grad.data) for t in tensors]


def minigrad_hessian(f: Callable[..., Any], theta: np.ndarray) -> np.ndarray:
    """Hessian of a scalar function of a 1-D array: ``grad(create_graph=True)``, differentiated."""
    x = Tensor(np.array(theta, dtype=np.float64), requires_grad=True)
    g = grad(f(MINIGRAD_OPS, x), x, create_graph=True)
    assert g.shape == x.shape
    return np.stack([np.asarray(grad(g[i], x).data) for i in range(x.shape[0])])


# ---- value strategies ---------------------------------------------------------------------------
_MAGNITUDE = 3.0
_AWAY = 0.25  # distance kept from 0: division, abs/relu kinks, negative powers, log

ELEMENTS: dict[str, st.SearchStrategy[float]] = {
    "real": st.floats(-_MAGNITUDE, _MAGNITUDE),
    "positive": st.floats(_AWAY, _MAGNITUDE),
    "nonzero": st.one_of(st.floats(-_MAGNITUDE, -_AWAY), st.floats(_AWAY, _MAGNITUDE)),
    "base": st.floats(0.5, 2.5),  # a ** b with a tensor exponent
    "exponent": st.floats(-2.0, 2.0),
    # never 0: a zero cotangent would hide any error in the gradient it multiplies
    "cotangent": st.one_of(st.floats(-2.0, -0.25), st.floats(0.25, 2.0)),
    # real values made distinct (see _spread): max and min without ties
    "spread": st.floats(-_MAGNITUDE, _MAGNITUDE),
    # multiples of 1/4, and of 1/4 plus 1/8: a "grid" value and an "offgrid" one are never
    # closer than 1/8, so maximum, minimum and clip meet no kink within a finite-difference step
    "grid": st.integers(-12, 12).map(lambda k: k / 4),
    "offgrid": st.integers(-12, 11).map(lambda k: k / 4 + 1 / 8),
    "grid+": st.integers(1, 12).map(lambda k: k / 4),
}


_RANGES: dict[str, tuple[float, float]] = {
    "real": (-_MAGNITUDE, _MAGNITUDE),
    "positive": (_AWAY, _MAGNITUDE),
    "nonzero": (_AWAY, _MAGNITUDE),  # with a random sign
    "base": (0.5, 2.5),
    "exponent": (-2.0, 2.0),
    "cotangent": (-2.0, 2.0),
    "spread": (-_MAGNITUDE, _MAGNITUDE),
}


_MIN_GAP = 0.01  # far above a finite-difference step, far below the values' range


def _spread(values: np.ndarray) -> np.ndarray:
    """Distinct values, at least _MIN_GAP apart: each element moved by its own multiple of 0.05,
    in a fixed shuffled order, then, in sorted order, any value closer than _MIN_GAP to the one
    below it moved up to that gap. Hypothesis starts from arrays of equal values, and finds
    values that the offsets make equal (0.85 + 0.05·a = 0.05·b): max and min would have ties (a
    kink, at which finite differences and the tie convention disagree by design)."""
    offsets = np.random.default_rng(values.size).permutation(values.size).reshape(values.shape)
    moved = (values + 0.05 * offsets).ravel()
    order = np.argsort(moved, kind="stable")
    ranked = moved[order]
    for k in range(1, ranked.size):
        ranked[k] = max(ranked[k], ranked[k - 1] + _MIN_GAP)
    moved[order] = ranked
    return moved.reshape(values.shape)


def sample_in(shape: tuple[int, ...], domain: str, rng: np.random.Generator) -> np.ndarray:
    """Random float64 values of `shape` in the named domain, for tests without hypothesis."""
    grids = {"grid": (-12, 12, 0.0), "offgrid": (-12, 11, 1 / 8), "grid+": (1, 12, 0.0)}
    if domain in grids:
        low_k, high_k, shift = grids[domain]
        return rng.integers(low_k, high_k + 1, size=shape) / 4 + shift
    low, high = _RANGES[domain]
    values = rng.uniform(low, high, size=shape)
    if domain == "nonzero":
        values = values * rng.choice([-1.0, 1.0], size=shape)
    if domain == "spread":
        values = _spread(values)
    return np.asarray(values, dtype=np.float64)


def arrays_in(shape: tuple[int, ...], domain: str) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of `shape` with elements from the named domain.

    Every element is drawn on its own (``hypothesis.extra.numpy.arrays`` would fill most of an
    array with one repeated value, which hides a gradient sent to the wrong position), and a flat
    list is about twice as fast to draw as ``arrays`` with the same elements.
    """
    size = math.prod(shape)
    arrays = st.lists(ELEMENTS[domain], min_size=size, max_size=size).map(
        lambda values: np.array(values, dtype=np.float64).reshape(shape)
    )
    return arrays.map(_spread) if domain == "spread" else arrays


# ---- the op tables ------------------------------------------------------------------------------
SHAPES: tuple[tuple[int, ...], ...] = ((), (4,), (3, 4), (1, 4), (3, 1))
SHAPE_PAIRS = list(itertools.product(SHAPES, repeat=2))
TWO_D = ((3, 4), (1, 4), (3, 1))


def shape_id(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "scalar"


def pair_id(pair: tuple[tuple[int, ...], ...]) -> str:
    return "@".join(shape_id(s) for s in pair)


@dataclass(frozen=True)
class Case:
    """One operation: `fn(ops, *inputs)`, the domain of each input, the shapes to try."""

    name: str
    fn: Callable[..., Any]
    domains: tuple[str, ...]
    shapes: tuple[tuple[tuple[int, ...], ...], ...]


def _unary(
    name: str,
    fn: Callable[..., Any],
    domain: str = "real",
    shapes: Sequence[tuple[int, ...]] = SHAPES,
) -> Case:
    return Case(name, fn, (domain,), tuple((s,) for s in shapes))


def _elementwise(name: str, fn: Callable[..., Any], domain: str = "real") -> Case:
    # a 0-d and a 2-D input cover an elementwise op; broadcasting belongs to the binary ops
    return _unary(name, fn, domain, shapes=((), (3, 4)))


ELEMENTWISE_CASES = [
    _elementwise("neg", lambda ops, x: -x),
    _elementwise("exp", lambda ops, x: ops.exp(x)),
    _elementwise("log", lambda ops, x: ops.log(x), "positive"),
    _elementwise("tanh", lambda ops, x: ops.tanh(x)),
    _elementwise("sigmoid", lambda ops, x: ops.sigmoid(x)),
    _elementwise("relu", lambda ops, x: ops.relu(x), "nonzero"),
    _elementwise("abs", lambda ops, x: ops.abs(x), "nonzero"),
    _elementwise("x**2", lambda ops, x: x**2),
    _elementwise("x**3", lambda ops, x: x**3),
    _elementwise("x**1", lambda ops, x: x**1),
    _elementwise("x**0", lambda ops, x: x**0),
    _elementwise("x**0.5", lambda ops, x: x**0.5, "positive"),
    _elementwise("x**2.5", lambda ops, x: x**2.5, "positive"),
    _elementwise("x**-1", lambda ops, x: x**-1, "nonzero"),
    _elementwise("x**-1.5", lambda ops, x: x**-1.5, "positive"),
    _elementwise("2**x", lambda ops, x: 2.0**x),
    _elementwise("0.5**x", lambda ops, x: 0.5**x),
    _elementwise("x+1.5", lambda ops, x: x + 1.5),
    _elementwise("1.5+x", lambda ops, x: 1.5 + x),
    _elementwise("x-1.5", lambda ops, x: x - 1.5),
    _elementwise("1.5-x", lambda ops, x: 1.5 - x),
    _elementwise("x*1.5", lambda ops, x: x * 1.5),
    _elementwise("1.5*x", lambda ops, x: 1.5 * x),
    _elementwise("x/1.5", lambda ops, x: x / 1.5),
    _elementwise("1.5/x", lambda ops, x: 1.5 / x, "nonzero"),
    _elementwise("sqrt", lambda ops, x: ops.sqrt(x), "positive"),
    _elementwise("log1p", lambda ops, x: ops.log1p(x), "positive"),
    _elementwise("sin", lambda ops, x: ops.sin(x)),
    _elementwise("cos", lambda ops, x: ops.cos(x)),
    _elementwise("clip(-1.12,0.99)", lambda ops, x: ops.clip(x, -1.1234, 0.9876), "offgrid"),
    _elementwise("clip(-0.43,None)", lambda ops, x: ops.clip(x, -0.4321, None), "offgrid"),
]

_AT_LEAST_1D = (*(s for s in SHAPES if s), (2, 3, 4))
REDUCTION_CASES = [
    _unary("sum()", lambda ops, x: ops.sum(x), shapes=(*SHAPES, (2, 3, 4))),
    _unary("sum(keepdims)", lambda ops, x: ops.sum(x, keepdims=True), shapes=_AT_LEAST_1D),
    _unary("sum(0)", lambda ops, x: ops.sum(x, axis=0), shapes=_AT_LEAST_1D),
    _unary("sum(-1,keepdims)", lambda ops, x: ops.sum(x, -1, True), shapes=_AT_LEAST_1D),
    _unary("sum(1)", lambda ops, x: ops.sum(x, axis=1), shapes=(*TWO_D, (2, 3, 4))),
    _unary("sum((0,2))", lambda ops, x: ops.sum(x, axis=(0, 2)), shapes=((2, 3, 4),)),
    _unary("mean()", lambda ops, x: ops.mean(x), shapes=(*SHAPES, (2, 3, 4))),
    _unary("mean(keepdims)", lambda ops, x: ops.mean(x, keepdims=True), shapes=_AT_LEAST_1D),
    _unary("mean(0)", lambda ops, x: ops.mean(x, axis=0), shapes=_AT_LEAST_1D),
    _unary("mean(-1)", lambda ops, x: ops.mean(x, axis=-1), shapes=_AT_LEAST_1D),
    _unary("mean(1,keepdims)", lambda ops, x: ops.mean(x, 1, True), shapes=(*TWO_D, (2, 3, 4))),
    _unary("mean((0,1))", lambda ops, x: ops.mean(x, axis=(0, 1)), shapes=((3, 4), (2, 3, 4))),
    # max and min on distinct values: at a tie finite differences see a kink (check_graph's tests
    # cover ties)
    _unary("max()", lambda ops, x: ops.max(x), "spread", ((4,), (3, 4), (2, 3, 4))),
    _unary("max(0)", lambda ops, x: ops.max(x, axis=0), "spread", ((3, 4), (2, 3, 4))),
    _unary("max(-1,keepdims)", lambda ops, x: ops.max(x, -1, True), "spread", ((3, 4), (2, 3, 4))),
    _unary("max((0,2))", lambda ops, x: ops.max(x, axis=(0, 2)), "spread", ((2, 3, 4),)),
    _unary("min()", lambda ops, x: ops.min(x), "spread", ((3, 4),)),
    _unary("min(1)", lambda ops, x: ops.min(x, axis=1), "spread", ((3, 4), (2, 3, 4))),
    _unary("logsumexp()", lambda ops, x: ops.logsumexp(x), shapes=((4,), (3, 4))),
    _unary("logsumexp(-1)", lambda ops, x: ops.logsumexp(x, axis=-1), shapes=((3, 4), (2, 3, 4))),
    _unary("logsumexp(0,keepdims)", lambda ops, x: ops.logsumexp(x, 0, True), shapes=((3, 4),)),
    _unary("softmax(-1)", lambda ops, x: ops.softmax(x, axis=-1), shapes=((4,), (3, 4), (2, 3, 4))),
    _unary("softmax(0)", lambda ops, x: ops.softmax(x, axis=0), shapes=((3, 4),)),
    _unary("log_softmax(-1)", lambda ops, x: ops.log_softmax(x, axis=-1), shapes=((4,), (3, 4))),
    _unary("log_softmax(1)", lambda ops, x: ops.log_softmax(x, axis=1), shapes=((2, 3, 4),)),
]

SHAPE_CASES = [
    _unary("reshape(12)", lambda ops, x: x.reshape(12), shapes=((3, 4),)),
    _unary("reshape(2,6)", lambda ops, x: x.reshape(2, 6), shapes=((3, 4),)),
    _unary("reshape((4,3))", lambda ops, x: x.reshape((4, 3)), shapes=((3, 4),)),
    _unary("reshape(2,-1)", lambda ops, x: x.reshape(2, -1), shapes=((3, 4), (2, 3, 4))),
    _unary("reshape(1,1)", lambda ops, x: x.reshape(1, 1), shapes=((),)),
    _unary("reshape(2,2)", lambda ops, x: x.reshape(2, 2), shapes=((4,),)),
    _unary(".T", lambda ops, x: x.T, shapes=TWO_D),
    _unary("transpose()", lambda ops, x: ops.transpose(x), shapes=(*SHAPES, (2, 3, 4))),
    _unary("transpose(1,0)", lambda ops, x: x.transpose(1, 0), shapes=TWO_D),
    _unary("transpose((2,0,1))", lambda ops, x: ops.transpose(x, (2, 0, 1)), shapes=((2, 3, 4),)),
    _unary("[1:4]", lambda ops, x: x[1:4], shapes=((6,),)),
    _unary("[0,0]", lambda ops, x: x[0, 0], shapes=((3, 4),)),
    _unary("[:,1]", lambda ops, x: x[:, 1], shapes=((3, 4),)),
    _unary("[-1]", lambda ops, x: x[-1], shapes=((3, 4), (4,))),
    _unary("[1:3,::2]", lambda ops, x: x[1:3, ::2], shapes=((3, 4),)),
    _unary("[::-1]", lambda ops, x: ops.flip(x), shapes=((4,), (3, 4))),
    _unary("[...,1]", lambda ops, x: x[..., 1], shapes=((3, 4), (2, 3, 4))),
    _unary("[None]", lambda ops, x: x[None], shapes=((), (3, 4))),
    _unary("[[0,0,2]]", lambda ops, x: x[np.array([0, 0, 2])], shapes=((4,), (3, 4))),
    _unary("transpose(-1,0)", lambda ops, x: x.transpose(-1, 0), shapes=((3, 3), (2, 3))),
    _unary("transpose((0,-1,1))", lambda ops, x: ops.transpose(x, (0, -1, 1)), shapes=((2, 3, 4),)),
    _unary("squeeze(0)", lambda ops, x: ops.squeeze(x, 0), shapes=((1, 4),)),
    _unary("squeeze()", lambda ops, x: ops.squeeze(x), shapes=((3, 1), (1, 4))),
    _unary("expand_dims(1)", lambda ops, x: ops.expand_dims(x, 1), shapes=((4,), (3, 4))),
    _unary("expand_dims(-1)", lambda ops, x: ops.expand_dims(x, -1), shapes=((3, 4),)),
]

# the losses, each with a constant target
LOSS_CASES = [
    _unary("mse_loss", lambda ops, p: ops.mse_loss(p, TARGETS), shapes=((3, 4),)),
    _unary("bce_with_logits", lambda ops, z: ops.bce_with_logits(z, TARGETS_01), shapes=((3, 4),)),
    _unary("cross_entropy", lambda ops, z: ops.cross_entropy(z, LABELS), shapes=((3, 4),)),
    _unary(
        "cross_entropy(2-D)", lambda ops, z: ops.cross_entropy(z, LABELS_2D), shapes=((2, 3, 4),)
    ),
]

UNARY_CASES = ELEMENTWISE_CASES + REDUCTION_CASES + SHAPE_CASES + LOSS_CASES

BINARY_CASES = [
    Case("+", lambda ops, a, b: a + b, ("real", "real"), tuple(SHAPE_PAIRS)),
    Case("-", lambda ops, a, b: a - b, ("real", "real"), tuple(SHAPE_PAIRS)),
    Case("*", lambda ops, a, b: a * b, ("real", "real"), tuple(SHAPE_PAIRS)),
    Case("/", lambda ops, a, b: a / b, ("real", "nonzero"), tuple(SHAPE_PAIRS)),
    Case("**", lambda ops, a, b: a**b, ("base", "exponent"), tuple(SHAPE_PAIRS)),
]

MATMUL_CASE = Case(
    "@",
    lambda ops, a, b: a @ b,
    ("real", "real"),
    (
        ((4,), (4,)),
        ((3, 4), (4,)),
        ((4,), (4, 5)),
        ((3, 4), (4, 5)),
        ((1, 4), (4, 1)),
        ((3, 4), (4, 1)),
        ((4,), (4, 1)),
        # leading batch axes, broadcast as numpy does
        ((2, 3, 4), (4, 5)),
        ((2, 3, 4), (2, 4, 5)),
        ((4,), (2, 4, 5)),
        ((2, 3, 4), (4,)),
        ((2, 1, 3, 4), (5, 4, 2)),
    ),
)

# broadcasting pairs for the binary functions: a scalar on either side, leading axes added,
# both operands stretched, one stretched (the operators above take every pair)
FUNCTION_PAIRS = (
    ((), (3, 4)),
    ((3, 4), ()),
    ((4,), (3, 4)),
    ((1, 4), (3, 1)),
    ((3, 4), (3, 1)),
)

# functions of several tensors (not operators: a constant operand cannot stand in for them)
FUNCTION_CASES = [
    Case("maximum", lambda ops, a, b: ops.maximum(a, b), ("grid", "offgrid"), FUNCTION_PAIRS),
    Case("minimum", lambda ops, a, b: ops.minimum(a, b), ("offgrid", "grid"), FUNCTION_PAIRS),
    Case("logaddexp", lambda ops, a, b: ops.logaddexp(a, b), ("real", "real"), FUNCTION_PAIRS),
    Case(
        "where",
        lambda ops, a, b: ops.where(a > THRESHOLD, a * b, a - b),
        ("grid", "real"),
        FUNCTION_PAIRS,
    ),
    Case(
        "clip(a,-1,b)",
        lambda ops, a, b: ops.clip(a, -1.0, b),
        ("offgrid", "grid+"),
        (((3, 4), (3, 4)), ((3, 4), (4,))),
    ),
    Case(
        "concat(0)",
        lambda ops, a, b: ops.concat([a, b], axis=0),
        ("real", "real"),
        (((3, 4), (2, 4)), ((4,), (2,))),
    ),
    Case(
        "concat(-1)",
        lambda ops, a, b: ops.concat([a, b], axis=-1),
        ("real", "real"),
        (((3, 4), (3, 2)),),
    ),
    Case(
        "stack(0)",
        lambda ops, a, b: ops.stack([a, b], axis=0),
        ("real", "real"),
        (((3, 4), (3, 4)), ((), ())),
    ),
    Case(
        "stack(-1)", lambda ops, a, b: ops.stack([a, b], axis=-1), ("real", "real"), (((4,), (4,)),)
    ),
]


def tier(case: Case, shapes: tuple[tuple[int, ...], ...]) -> list[pytest.MarkDecorator]:
    """The marks of `case` on `shapes`: none in the fast tier, ``slow`` otherwise.

    The fast tier (``pytest -m "not slow"``) still checks every case: the operators on the
    broadcasting pairs the functions take (FUNCTION_PAIRS: a scalar on either side, leading axes
    added, both operands stretched, one stretched), an op of one input on its last (most
    general) shape, one of several inputs on its first and last. The slow tier adds the rest.
    """
    if case in BINARY_CASES:
        fast = shapes in FUNCTION_PAIRS
    elif len(shapes) == 1:
        fast = shapes == case.shapes[-1]
    else:
        fast = shapes in (case.shapes[0], case.shapes[-1])
    return [] if fast else [pytest.mark.slow]


def case_instances(cases: Sequence[Case]) -> list[Any]:
    """pytest params (case, shapes) with readable ids, e.g. ``*-3x4@1x4``, in their tier."""
    return [
        pytest.param(case, shapes, id=f"{case.name}-{pair_id(shapes)}", marks=tier(case, shapes))
        for case in cases
        for shapes in case.shapes
    ]


def draw_inputs(
    data: st.DataObject, case: Case, shapes: tuple[tuple[int, ...], ...]
) -> tuple[list[np.ndarray], np.ndarray]:
    """Draw the inputs of `case` and a cotangent shaped like its output."""
    arrays = [
        data.draw(arrays_in(shape, domain), label=f"input {i}")
        for i, (shape, domain) in enumerate(zip(shapes, case.domains, strict=True))
    ]
    out_shape = np.shape(case.fn(NUMPY_OPS, *arrays))
    cotangent = data.draw(arrays_in(out_shape, "cotangent"), label="cotangent")
    return arrays, cotangent
