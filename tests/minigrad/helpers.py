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
HESSIAN_FD_ATOL = 1e-5
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


def numeric_hessian(f: Callable[[np.ndarray], Any], theta: np.ndarray) -> np.ndarray:
    """Second central differences of a scalar function of a 1-D array."""
    n = theta.size
    h = HESSIAN_FD_STEP
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


# ---- the four op namespaces ---------------------------------------------------------------------
def _numpy_sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-x))


NUMPY_OPS = SimpleNamespace(
    name="numpy",
    const=np.asarray,
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

    return SimpleNamespace(
        name="torch",
        const=lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64)),
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
    return SimpleNamespace(
        name="jax",
        const=lambda a: jnp.asarray(np.asarray(a, dtype=np.float64)),
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
}


_RANGES: dict[str, tuple[float, float]] = {
    "real": (-_MAGNITUDE, _MAGNITUDE),
    "positive": (_AWAY, _MAGNITUDE),
    "nonzero": (_AWAY, _MAGNITUDE),  # with a random sign
    "base": (0.5, 2.5),
    "exponent": (-2.0, 2.0),
    "cotangent": (-2.0, 2.0),
}


def sample_in(shape: tuple[int, ...], domain: str, rng: np.random.Generator) -> np.ndarray:
    """Random float64 values of `shape` in the named domain, for tests without hypothesis."""
    low, high = _RANGES[domain]
    values = rng.uniform(low, high, size=shape)
    if domain == "nonzero":
        values = values * rng.choice([-1.0, 1.0], size=shape)
    return np.asarray(values, dtype=np.float64)


def arrays_in(shape: tuple[int, ...], domain: str) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of `shape` with elements from the named domain.

    Every element is drawn on its own (``hypothesis.extra.numpy.arrays`` would fill most of an
    array with one repeated value, which hides a gradient sent to the wrong position), and a flat
    list is about twice as fast to draw as ``arrays`` with the same elements.
    """
    size = math.prod(shape)
    return st.lists(ELEMENTS[domain], min_size=size, max_size=size).map(
        lambda values: np.array(values, dtype=np.float64).reshape(shape)
    )


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
]

UNARY_CASES = ELEMENTWISE_CASES + REDUCTION_CASES + SHAPE_CASES

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
    ),
)


def case_instances(cases: Sequence[Case]) -> list[Any]:
    """pytest params (case, shapes) with readable ids, e.g. ``*-3x4@1x4``."""
    return [
        pytest.param(case, shapes, id=f"{case.name}-{pair_id(shapes)}")
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
