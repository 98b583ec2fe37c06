"""The engine: a Tensor that records the operations applied to it, and the reverse walk.

Read it top to bottom:

1. `Tensor`, with each operation as a method. An operation computes its result with numpy and
   records one small function per input beside it: the vector-Jacobian product (VJP). Given `g`,
   the gradient of the final output with respect to the operation's result, the VJP returns the
   gradient with respect to that input. The comment above each VJP names the derivative.
2. Operations on several tensors (`maximum`, `where`, `concatenate`, ...) and constructors.
3. `operation`: how every result enters the graph, and the way to add an operation of your own.
4. The reverse walk: `Tensor.backward` and `grad`.
5. The helpers the VJPs use (`_unbroadcast`, `_expand`, ...), each an operation with its own VJP.

The VJPs are written with Tensor operations themselves. With `create_graph=True` the backward
pass is recorded like any other computation, so gradients can be differentiated again
(Hessians, Hessian-vector products) with no extra code. Functions built from these operations,
with no backward code of their own (softmax, the losses), live in `functional.py`/`losses.py`.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import numbers
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad.grad_mode import _GradMode, _state

__all__ = [
    "Tensor",
    "clip",
    "concatenate",
    "eye",
    "full",
    "grad",
    "logaddexp",
    "maximum",
    "minimum",
    "ones",
    "operation",
    "randn",
    "stack",
    "where",
    "zeros",
]

VJP = Callable[["Tensor", "Tensor"], Any]

# Every tensor is numbered as it is made. An operation's inputs exist before its result, so they
# have smaller numbers: the numbers are a topological order of any graph, for free.
_numbers = itertools.count()


class Tensor:
    """A numpy array that remembers how it was computed, so gradients can flow back through it.

    ``Tensor(data, requires_grad=False, name=None)`` accepts Python numbers, lists and numpy
    arrays. Floating-point data keeps its dtype (float32 stays float32); anything else becomes
    float64. A numpy array of a floating dtype is used as it is, not copied. Comparisons
    (``<``, ``==``, ...) give constant boolean tensors, for `where` and masks.

    After ``backward()``, ``.grad`` holds d(output)/d(this tensor). A leaf's gradient (a tensor
    you made with ``requires_grad=True``) is an ordinary writeable array of its own; the gradient
    of an intermediate result is read-only, the very array the backward pass used (one array is
    often passed on to several nodes: ``+`` and ``reshape`` pass it on unchanged).
    """

    __slots__ = (
        "_forward",
        "_from_grad",
        "_op",
        "_parents",
        "_seq",
        "_vjps",
        "data",
        "grad",
        "name",
        "requires_grad",
    )
    # Make `ndarray * Tensor` call Tensor.__rmul__ instead of numpy looping over the tensor.
    __array_ufunc__ = None
    # `==` compares elements (as numpy's does), so tensors hash by identity: the backward walk
    # keeps tensors in dicts and sets, which only ever compare a tensor with itself.
    __hash__ = object.__hash__

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None) -> None:
        self.data = _as_array(data.data if isinstance(data, Tensor) else data)
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._op = ""
        self._parents: tuple[Tensor, ...] = ()
        self._vjps: tuple[VJP, ...] = ()
        self._forward: Callable[..., Any] | None = None  # recomputes data (for check_graph)
        self._from_grad = False  # computed from a gradient that was not recorded (see grad())
        self._seq = next(_numbers)  # the order in which tensors were made

    # ---- plain array facts --------------------------------------------------------------------
    shape = property(lambda self: self.data.shape, doc="Shape of the data, as numpy gives it.")
    ndim = property(lambda self: self.data.ndim, doc="Number of dimensions.")
    size = property(lambda self: self.data.size, doc="Number of elements.")
    dtype = property(lambda self: self.data.dtype, doc="numpy dtype of the data.")
    device = property(lambda self: "cpu", doc="Where the data lives: always the CPU (numpy).")

    def numpy(self) -> np.ndarray:
        """The underlying numpy array (shared, not copied)."""
        return self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        return self.data.item()

    def __float__(self) -> float:
        return float(self.data)

    def __bool__(self) -> bool:
        return bool(self.data)  # as numpy: only for one element

    def __len__(self) -> int:
        return len(self.data)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.array(self.data, dtype=dtype, copy=copy)  # np.asarray(tensor) gives the data

    def __array_namespace__(self, api_version: str | None = None) -> Any:
        """The array-API namespace for tensors: :mod:`minigrad.numpy`."""
        from minigrad import numpy as namespace

        return namespace

    def detach(self) -> Tensor:
        """A tensor with the same data, cut off from the graph (``requires_grad == False``)."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad`` becomes ``None``)."""
        self.grad = None

    def __repr__(self) -> str:
        label = f", name={self.name!r}" if self.name else ""
        flag = ", requires_grad=True" if self.requires_grad else ""
        grad = "None" if self.grad is None else _short(self.grad.data)
        return f"Tensor({_short(self.data)}{label}{flag}, grad={grad})"

    # ---- elementwise arithmetic: numpy broadcasting, each gradient summed back to its input ---
    def __add__(self, other: Any) -> Tensor:
        a, b = self, _tensor(other, self)
        return _binary(
            "+", np.add, a, b,
            lambda g, out: g,  # d(a+b)/da = 1
            lambda g, out: g,  # d(a+b)/db = 1
        )  # fmt: skip

    def __sub__(self, other: Any) -> Tensor:
        a, b = self, _tensor(other, self)
        return _binary(
            "-", np.subtract, a, b,
            lambda g, out: g,  # d(a-b)/da = 1
            lambda g, out: -g,  # d(a-b)/db = -1
        )  # fmt: skip

    def __mul__(self, other: Any) -> Tensor:
        a, b = self, _tensor(other, self)
        return _binary(
            "*", np.multiply, a, b,
            lambda g, out: _times(g, b, a.shape),  # d(a*b)/da = b
            lambda g, out: _times(g, a, b.shape),  # d(a*b)/db = a
        )  # fmt: skip

    def __truediv__(self, other: Any) -> Tensor:
        a, b = self, _tensor(other, self)
        return _binary(
            "/", np.divide, a, b,
            lambda g, out: g / b,  # d(a/b)/da = 1/b
            lambda g, out: -g * out / b,  # d(a/b)/db = -a/b² = -(a/b)/b
        )  # fmt: skip

    def __pow__(self, other: Any) -> Tensor:
        a = self
        if isinstance(other, numbers.Real) and not isinstance(other, Tensor):
            p = float(other)
            if p == 2:  # the square is common enough to skip the general power's extra pass
                # d(a²)/da = 2a
                return _apply("**2", np.square, (a,), lambda g, out: _twice(g, a))
            if p == 0:  # a**0 = 1 everywhere, including a = 0 where the general rule gives 0·inf
                # d(a⁰)/da = 0
                return _apply("**0", np.ones_like, (a,), lambda g, out: g * 0)
            # d(aᵖ)/da = p·aᵖ⁻¹
            return _apply(
                f"**{other:g}", lambda x: np.power(x, p), (a,),
                lambda g, out: g * (p * a ** (p - 1)),
            )  # fmt: skip
        b = _tensor(other, self)
        return _binary(
            "**", np.power, a, b,
            # d(aᵇ)/da = b·aᵇ⁻¹: 0 where b = 0 (aᵇ is 1 there), so a is replaced by 1 there,
            # which keeps a = 0 from turning that 0 into 0·∞ = nan
            lambda g, out: g * b * where(b.data == 0, 1.0, a) ** (b - 1),
            # d(aᵇ)/db = aᵇ·ln a, taken in the result's dtype. Where a = 0 the product is 0 (for
            # b > 0) but ln 0 = -inf would turn it into nan, so ln is taken of 1 there instead.
            lambda g, out: g * out * (_cast(a, out.dtype) + (a.data == 0).astype(out.dtype)).log(),
        )  # fmt: skip

    def __neg__(self) -> Tensor:
        # d(-a)/da = -1
        return _apply("neg", np.negative, (self,), lambda g, out: -g)

    # Reflected and derived operators carry no gradient code of their own.
    def __radd__(self, other: Any) -> Tensor:
        return _tensor(other, self) + self

    def __rsub__(self, other: Any) -> Tensor:
        return _tensor(other, self) - self

    def __rmul__(self, other: Any) -> Tensor:
        return _tensor(other, self) * self

    def __rtruediv__(self, other: Any) -> Tensor:
        return _tensor(other, self) / self

    def __rpow__(self, other: Any) -> Tensor:
        return _tensor(other, self) ** self

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return self.abs()

    # In-place updates (`w -= lr * w.grad`) change the array itself and are not recorded: they are
    # for parameter updates under `no_grad`, after backward (a graph that used the old values
    # would otherwise see the new ones). The array is shared with whatever it came from.
    def __iadd__(self, other: Any) -> Tensor:
        return self._update(np.add, other, "+=")

    def __isub__(self, other: Any) -> Tensor:
        return self._update(np.subtract, other, "-=")

    def __imul__(self, other: Any) -> Tensor:
        return self._update(np.multiply, other, "*=")

    def __itruediv__(self, other: Any) -> Tensor:
        return self._update(np.divide, other, "/=")

    def _update(self, function: Callable, other: Any, symbol: str) -> Tensor:
        if self.requires_grad and _state.enabled:
            raise RuntimeError(
                f"minigrad: '{symbol}' changes a tensor that requires grad in place, which is not "
                "recorded; update parameters inside `with no_grad():`"
            )
        # (out given by position: ufuncs read keywords more slowly)
        function(self.data, other.data if isinstance(other, Tensor) else other, self.data)
        return self

    # Comparisons give constant boolean tensors: they have no gradient.
    def __lt__(self, other: Any) -> Tensor:
        return _compare(np.less, self, other)

    def __le__(self, other: Any) -> Tensor:
        return _compare(np.less_equal, self, other)

    def __gt__(self, other: Any) -> Tensor:
        return _compare(np.greater, self, other)

    def __ge__(self, other: Any) -> Tensor:
        return _compare(np.greater_equal, self, other)

    def __eq__(self, other: object) -> Any:  # type: ignore[override]
        return _compare(np.equal, self, other)

    def __ne__(self, other: object) -> Any:  # type: ignore[override]
        return _compare(np.not_equal, self, other)

    # ---- elementwise functions ----------------------------------------------------------------
    def exp(self) -> Tensor:
        """Elementwise e**x."""
        # d(exp a)/da = exp a, which is the output itself
        return _apply("exp", np.exp, (self,), lambda g, out: g * out)

    def log(self) -> Tensor:
        """Elementwise natural logarithm."""
        a = self
        # d(ln a)/da = 1/a
        return _apply("log", np.log, (a,), lambda g, out: g / a)

    def log1p(self) -> Tensor:
        """Elementwise ln(1 + x), accurate for tiny x."""
        a = self
        # d ln(1+a)/da = 1/(1+a)
        return _apply("log1p", np.log1p, (a,), lambda g, out: g / (1 + a))

    def sqrt(self) -> Tensor:
        """Elementwise square root."""
        # d√a/da = 1/(2√a), from the output (infinite at a = 0, as in torch)
        return _apply("sqrt", np.sqrt, (self,), lambda g, out: g / (2 * out))

    def sin(self) -> Tensor:
        """Elementwise sine."""
        a = self
        # d(sin a)/da = cos a
        return _apply("sin", np.sin, (a,), lambda g, out: g * a.cos())

    def cos(self) -> Tensor:
        """Elementwise cosine."""
        a = self
        # d(cos a)/da = -sin a
        return _apply("cos", np.cos, (a,), lambda g, out: -(g * a.sin()))

    def tanh(self) -> Tensor:
        """Elementwise hyperbolic tangent (numpy's tanh saturates at ±1 without overflow)."""
        # d(tanh a)/da = 1 - tanh²a
        return _apply("tanh", np.tanh, (self,), lambda g, out: g * (1 - out * out))

    def sigmoid(self) -> Tensor:
        """Elementwise 1 / (1 + e**-x), computed without overflow at any |x|."""
        # dσ(a)/da = σ(a)·(1 - σ(a))
        return _apply("sigmoid", _sigmoid, (self,), lambda g, out: g * out * (1 - out))

    def relu(self) -> Tensor:
        """Elementwise max(x, 0)."""
        a = self
        # d relu(a)/da = 1 where a > 0, else 0 (the kink at 0 gets 0, as in torch)
        return _apply("relu", _relu, (a,), lambda g, out: where(a.data > 0, g, 0.0))

    def abs(self) -> Tensor:
        """Elementwise |x|."""
        a = self
        # d|a|/da = sign(a) (0 at a = 0, as in torch)
        return _apply("abs", np.abs, (a,), lambda g, out: g * Tensor(np.sign(a.data)))

    def sign(self) -> Tensor:
        """Elementwise -1, 0 or 1: a constant (its derivative is 0 wherever it exists)."""
        return _constant(np.sign(self.data))

    def clip(self, min: Any = None, max: Any = None) -> Tensor:
        """Clamp into [min, max]: see :func:`clip`."""
        return clip(self, min, max)

    def astype(self, dtype: Any) -> Tensor:
        """The data converted to `dtype` (a new array). To a non-floating dtype it is a constant."""
        a, dtype = self, np.dtype(dtype)
        if dtype.kind not in "fc":
            return _constant(a.data.astype(dtype))
        # a cast changes only the precision: the gradient is cast back to a's dtype
        return _apply("astype", lambda x: x.astype(dtype), (a,), lambda g, out: g.astype(a.dtype))

    # ---- reductions ---------------------------------------------------------------------------
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Sum over `axis` (all axes when None), as ``numpy.sum``."""
        a, axes = self, None if axis is None else _axes(axis, self.data.ndim)
        # d(Σ a)/da_i = 1: every summed element receives the output's gradient
        return _apply(
            "sum", lambda x: x.sum(axis=axes, keepdims=keepdims), (a,),
            lambda g, out: _expand(g, a.shape, axes, keepdims),
        )  # fmt: skip

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Mean over `axis` (all axes when None), as ``numpy.mean``."""
        a, axes = self, None if axis is None else _axes(axis, self.data.ndim)
        count = a.data.size if axes is None else math.prod(a.data.shape[i] for i in axes)
        # d(mean a)/da_i = 1/n: every element receives the output's gradient over the count
        return _apply(
            "mean", lambda x: x.sum(axis=axes, keepdims=keepdims) / count, (a,),
            lambda g, out: _expand(g / count, a.shape, axes, keepdims),
        )  # fmt: skip

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Largest element over `axis` (all axes when None), as ``numpy.max``."""
        return _extreme(self, "max", np.max, axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Smallest element over `axis` (all axes when None), as ``numpy.min``."""
        return _extreme(self, "min", np.min, axis, keepdims)

    # ---- shape and indexing -------------------------------------------------------------------
    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in a new shape (``t.reshape(2, 3)`` or ``t.reshape((2, 3))``)."""
        a = self
        new_shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        # reshaping moves no values, so the gradient is reshaped back
        return _apply(
            "reshape", lambda x: np.reshape(x, new_shape), (a,),
            lambda g, out: g.reshape(a.shape),
        )  # fmt: skip

    def transpose(self, *axes: Any) -> Tensor:
        """Permute the axes (reversed when none are given), as ``numpy.transpose``."""
        a = self
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = tuple(axes[0] or ())
        order = _permutation(axes, a.ndim)
        inverse = tuple(int(i) for i in np.argsort(order))
        # a permutation moves values, so the gradient is moved back by the inverse permutation
        return _apply(
            "transpose", lambda x: np.transpose(x, order), (a,),
            lambda g, out: g.transpose(inverse),
        )  # fmt: skip

    T = property(lambda self: self.transpose(), doc="The transpose (axes reversed).")
    mT = property(  # noqa: N815 (the array API's name)
        lambda self: self.transpose((*range(self.ndim - 2), self.ndim - 1, self.ndim - 2)),
        doc="The last two axes swapped (a stack of matrices, each transposed).",
    )

    # squeeze and expand_dims are reshapes: they have no rule of their own.
    def squeeze(self, axis: Any = None) -> Tensor:
        """Remove axes of length one (all of them when `axis` is None), as ``numpy.squeeze``."""
        if axis is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        axes = _axes(axis, self.ndim)
        if any(self.shape[i] != 1 for i in axes):
            raise ValueError(f"minigrad: cannot squeeze axis {axis} of shape {self.shape}")
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if i not in axes))

    def expand_dims(self, axis: Any) -> Tensor:
        """Insert axes of length one at `axis` (positions in the result), as numpy's."""
        axes = _axes(axis, self.ndim + (len(axis) if isinstance(axis, (tuple, list)) else 1))
        rest = iter(self.shape)
        return self.reshape(
            tuple(1 if i in axes else next(rest) for i in range(self.ndim + len(axes)))
        )

    def __getitem__(self, index: Any) -> Tensor:
        a, index = self, _plain_index(index)
        # each selected element's gradient goes back to the position it was taken from
        return _apply("index", lambda x: x[index], (a,), lambda g, out: _scatter(g, index, a.shape))

    def __matmul__(self, other: Any) -> Tensor:
        a, b = self, _tensor(other, self)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(
                f"minigrad: '@' needs at least 1-D operands, got {a.shape} @ {b.shape}"
            )
        try:
            data = np.matmul(a.data, b.data)
        except ValueError:
            message = f"minigrad: shapes {a.shape} @ {b.shape} do not align for '@'"
            raise ValueError(message) from None
        # As in numpy, a 1-D operand acts as a row (left) or column (right) vector and leading
        # axes are a batch of matrices; with the vector's axis put back, the rules are the
        # matrix ones, and the walk sums gradients over batch axes an operand was broadcast to.
        a2 = a.shape if a.ndim > 1 else (1, *a.shape)
        b2 = b.shape if b.ndim > 1 else (*b.shape, 1)
        out2 = (*np.broadcast_shapes(a2[:-2], b2[:-2]), a2[-2], b2[-1])

        def grad_a(g: Tensor, out: Tensor) -> Tensor:
            ga = g.reshape(out2) @ b.reshape(b2).mT  # d(A@B)/dA: G @ Bᵀ
            return ga.squeeze(-2) if a.ndim == 1 else ga

        def grad_b(g: Tensor, out: Tensor) -> Tensor:
            gb = a.reshape(a2).mT @ g.reshape(out2)  # d(A@B)/dB: Aᵀ @ G
            return gb.squeeze(-1) if b.ndim == 1 else gb

        return _record("@", data, (a, b), (grad_a, grad_b), np.matmul)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _tensor(other, self) @ self

    # ---- the reverse walk ---------------------------------------------------------------------
    def backward(self, gradient: Any = None, create_graph: bool = False) -> None:
        """Add d(self)/d(node) to ``node.grad`` for every node of the graph that requires grad.

        A one-element output needs no `gradient` (it is 1). For other outputs pass `gradient`, the
        vector in the vector-Jacobian product, shaped like the output. Gradients add to what
        ``.grad`` already holds, as in torch; call ``zero_grad()`` between steps. Each gradient
        has the dtype of its tensor (a float32 leaf gets a float32 gradient).
        """
        seed = _seed(self, gradient, "backward()")
        for node, node_grad in _backprop(self, seed, create_graph):
            if node.grad is not None:
                node_grad = node.grad + node_grad
                if node._parents:  # an intermediate's gradient stays read-only
                    node_grad.data.setflags(write=False)
            node.grad = node_grad


# ---- operations on several tensors --------------------------------------------------------------
def maximum(x: Any, y: Any) -> Tensor:
    """Elementwise larger of `x` and `y`, with numpy broadcasting."""
    a, b = _pair(x, y)
    # d max(a, b)/da = 1 where a > b, 1/2 where a = b (a tie is shared, as in torch), else 0
    return _binary(
        "maximum", np.maximum, a, b,
        lambda g, out: _tie_split(g, a.data > b.data, a.data == b.data),
        lambda g, out: _tie_split(g, b.data > a.data, a.data == b.data),
    )  # fmt: skip


def minimum(x: Any, y: Any) -> Tensor:
    """Elementwise smaller of `x` and `y`, with numpy broadcasting."""
    a, b = _pair(x, y)
    # d min(a, b)/da = 1 where a < b, 1/2 where a = b (a tie is shared, as in torch), else 0
    return _binary(
        "minimum", np.minimum, a, b,
        lambda g, out: _tie_split(g, a.data < b.data, a.data == b.data),
        lambda g, out: _tie_split(g, b.data < a.data, a.data == b.data),
    )  # fmt: skip


def logaddexp(x: Any, y: Any) -> Tensor:
    """ln(eˣ + eʸ) elementwise, without overflow at any scale (as ``numpy.logaddexp``)."""
    a, b = _pair(x, y)
    # d ln(eᵃ + eᵇ)/da = eᵃ/(eᵃ + eᵇ) = σ(a - b), and σ(b - a) for b: smooth at a = b, to
    # every order (max(a, b) + ln(1 + e^-|a-b|), equal in value, has kinks there)
    return _binary(
        "logaddexp", np.logaddexp, a, b,
        lambda g, out: g * (a - b).sigmoid(),
        lambda g, out: g * (b - a).sigmoid(),
    )  # fmt: skip


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """Elements of `x` where `condition` holds, else of `y`, as ``numpy.where``.

    The condition (a boolean array or tensor, e.g. ``r.abs() <= 1``) is a constant.
    """
    mask = np.asarray(condition.data if isinstance(condition, Tensor) else condition, dtype=bool)
    a, b = _pair(x, y)
    return _apply(
        "where", lambda p, q: np.where(mask, p, q), (a, b),
        lambda g, out: where(mask, g, 0.0),  # d where(c, a, b)/da = 1 where c holds, else 0
        lambda g, out: where(mask, 0.0, g),  # d where(c, a, b)/db = 0 where c holds, else 1
    )  # fmt: skip


def clip(x: Any, min: Any = None, max: Any = None) -> Tensor:
    """Clamp `x` into [min, max] (a bound left as None is open), as ``numpy.clip``."""
    a = x if isinstance(x, Tensor) else Tensor(x)
    low = _tensor(-np.inf if min is None else min, a)
    high = _tensor(np.inf if max is None else max, a)
    return _apply(
        "clip", np.clip, (a, low, high),
        # d clip/da = 1 where low <= a <= high (a point on a bound passes, as in torch), else 0
        lambda g, out: where((a.data >= low.data) & (a.data <= high.data), g, 0.0),
        lambda g, out: where(a.data < low.data, g, 0.0),  # d clip/d low = 1 where a < low
        lambda g, out: where(a.data > high.data, g, 0.0),  # d clip/d high = 1 where a > high
    )  # fmt: skip


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis, as ``numpy.concatenate``."""
    first = next((t for t in tensors if isinstance(t, Tensor)), None)
    parts = tuple(Tensor(t) if first is None else _tensor(t, first) for t in tensors)
    if not parts:
        raise ValueError("minigrad: concatenate needs at least one tensor")
    (ax,) = _axes(axis, parts[0].ndim)
    ends = np.cumsum([p.shape[ax] for p in parts]).tolist()

    def piece(start: int, stop: int) -> VJP:
        index = (slice(None),) * ax + (slice(start, stop),)
        # each input's gradient is its own slice of the output's gradient
        return lambda g, out: g[index]

    vjps = [piece(stop - p.shape[ax], stop) for p, stop in zip(parts, ends, strict=True)]
    return _apply("concatenate", lambda *xs: np.concatenate(xs, axis=ax), parts, *vjps)


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along a new axis, as ``numpy.stack`` (a concatenation: no rule of its own)."""
    parts = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not parts:
        raise ValueError("minigrad: stack needs at least one tensor")
    return concatenate([t.expand_dims(axis) for t in parts], axis=axis)


# ---- constructors: new leaves ------------------------------------------------------------------
def zeros(shape: Any, dtype: Any = np.float64, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros."""
    return Tensor(np.zeros(shape, dtype=dtype), requires_grad=requires_grad)


def ones(shape: Any, dtype: Any = np.float64, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return Tensor(np.ones(shape, dtype=dtype), requires_grad=requires_grad)


def full(shape: Any, value: float, dtype: Any = np.float64, requires_grad: bool = False) -> Tensor:
    """A tensor with every element equal to `value`."""
    return Tensor(np.full(shape, value, dtype=dtype), requires_grad=requires_grad)


def eye(
    n: int, m: int | None = None, dtype: Any = np.float64, requires_grad: bool = False
) -> Tensor:
    """The n × m identity matrix (square when `m` is None)."""
    return Tensor(np.eye(n, m, dtype=dtype), requires_grad=requires_grad)


def randn(
    *shape: int, seed: Any = None, dtype: Any = np.float64, requires_grad: bool = False
) -> Tensor:
    """Standard normal samples of `shape`; `seed` (an int or a numpy Generator) repeats them."""
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return Tensor(rng.standard_normal(shape, dtype=dtype), requires_grad=requires_grad)


# ---- how a result enters the graph --------------------------------------------------------------
def operation(
    name: str,
    data: Any,
    parents: Sequence[Tensor],
    *vjps: VJP,
    forward: Callable[..., Any] | None = None,
) -> Tensor:
    """Record the result of an operation of your own: the contract the built-in ones use.

    `data` is the result, computed with numpy from the parents' arrays (``p.data``).
    ``vjps[i](g, out)`` returns the gradient with respect to ``parents[i]``, given `g`, the
    gradient with respect to the result `out` (both Tensors). Write it with Tensor operations and
    it can be differentiated again. It may return a gradient shaped like `out` for a parent that
    was broadcast: the walk sums it back to the parent's shape. `forward(*arrays)`, if given,
    recomputes `data` from the parents' arrays: :func:`minigrad.check_graph` uses it to test
    the VJPs against finite differences (without it, the node is reported as unchecked).
    """
    parents = tuple(parents)
    for i, parent in enumerate(parents):
        if not isinstance(parent, Tensor):
            raise TypeError(f"minigrad.operation: parent {i} is a {type(parent).__name__}")
    if len(vjps) != len(parents):
        raise ValueError(
            f"minigrad.operation: '{name}' has {len(parents)} parents but {len(vjps)} VJPs "
            "(one per parent, in the same order)"
        )
    rules = tuple(_returning_a_tensor(vjp) for vjp in vjps)
    return _record(name, _as_array(data.data if isinstance(data, Tensor) else data), parents,
                   rules, forward)  # fmt: skip


def _returning_a_tensor(vjp: VJP) -> VJP:
    """A VJP of your own may return a numpy array or a number: it is wrapped (as a constant)."""

    def rule(g: Tensor, out: Tensor) -> Tensor:
        result = vjp(g, out)
        return result if isinstance(result, Tensor) else Tensor(result)

    return rule


def _apply(op: str, forward: Callable[..., Any], parents: tuple[Tensor, ...], *vjps: VJP) -> Tensor:
    """Compute an operation's result with `forward` on the parents' arrays, and record it."""
    if len(parents) == 1:  # the common case, without building a list
        return _record(op, forward(parents[0].data), parents, vjps, forward)
    return _record(op, forward(*[p.data for p in parents]), parents, vjps, forward)


def _binary(op: str, forward: Callable, a: Tensor, b: Tensor, vjp_a: VJP, vjp_b: VJP) -> Tensor:
    """`_apply` for a broadcasting binary function: a shape error names the op and the shapes."""
    try:
        data = forward(a.data, b.data)
    except ValueError:
        raise ValueError(
            f"minigrad: cannot broadcast shapes {a.shape} and {b.shape} in '{op}'"
        ) from None
    return _record(op, data, (a, b), (vjp_a, vjp_b), forward)


def _record(
    op: str,
    data: Any,
    parents: tuple[Tensor, ...],
    vjps: tuple[VJP, ...],
    forward: Callable[..., Any] | None,
) -> Tensor:
    """Wrap a result; remember its inputs, VJPs and forward when a graph is being recorded.

    The VJPs are called only for inputs that require grad.
    """
    out = Tensor.__new__(Tensor)
    # numpy returns scalars, not 0-d arrays, from operations on 0-d arrays
    out.data = data if type(data) is np.ndarray else np.asarray(data)
    out.grad = out.name = None
    out._op = op
    out._seq = next(_numbers)
    for parent in parents:
        if parent.requires_grad and _state.enabled:  # (is_grad_enabled(), without the call)
            out.requires_grad, out._parents, out._vjps, out._forward = True, parents, vjps, forward
            out._from_grad = False
            return out
    # nothing to differentiate: keep no references, so memory is freed early
    out.requires_grad = out._from_grad = False
    out._parents = out._vjps = ()
    out._forward = None
    for parent in parents:
        if parent._from_grad:
            out._from_grad = True
    return out


def _constant(data: Any, op: str = "constant") -> Tensor:
    """A Tensor with no gradient (a comparison, a sign, a number), in the dtype numpy gave it."""
    out = Tensor.__new__(Tensor)
    # numpy returns scalars, not 0-d arrays, from operations on 0-d arrays
    out.data = data if type(data) is np.ndarray else np.asarray(data)
    out.grad = out.name = out._forward = None
    out.requires_grad = out._from_grad = False
    out._parents = out._vjps = ()
    out._op = op
    out._seq = next(_numbers)
    return out


# ---- the reverse walk ---------------------------------------------------------------------------
def grad(
    output: Tensor,
    inputs: Tensor | Sequence[Tensor],
    grad_output: Any = None,
    create_graph: bool = False,
) -> Tensor | tuple[Tensor, ...]:
    """Gradients of `output` with respect to `inputs`, returned without touching ``.grad``.

    `inputs` is one tensor (one gradient is returned) or a sequence (a tuple is returned). An
    input the output does not depend on gets zeros. With ``create_graph=True`` the gradients are
    themselves recorded, so they can be differentiated again (second derivatives). Every
    gradient returned is a writeable array of its own.
    """
    single = isinstance(inputs, Tensor)
    wanted = (inputs,) if single else tuple(inputs)
    for i, x in enumerate(wanted):
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise ValueError(f"minigrad.grad: input {i} is not a Tensor with requires_grad=True")
    grads: dict[int, Tensor] = {}  # a constant output: every derivative is zero
    if output.requires_grad:
        seed = _seed(output, grad_output, "grad()")
        grads = {id(x): g for x, g in _backprop(output, seed, create_graph, wanted)}
    elif output._from_grad:
        raise RuntimeError(_UNRECORDED.format(caller="grad()"))
    result: list[Tensor] = []
    for x in wanted:
        g = grads.get(id(x))
        if g is None:
            g = Tensor(np.zeros_like(x.data))
            g._from_grad = not create_graph
        elif any(g is earlier for earlier in result):  # the same input asked for twice
            g = _copy(g)
        result.append(g)
    return result[0] if single else tuple(result)


_UNRECORDED = (
    "minigrad: {caller} was called on a result computed from a gradient that was not recorded; "
    "pass create_graph=True to the grad() or backward() call that computed that gradient, so "
    "that it can be differentiated again"
)


def _seed(output: Tensor, gradient: Any, caller: str) -> Tensor:
    """The starting gradient of a reverse pass: 1 for one-element outputs, else as given."""
    if not output.requires_grad:
        if output._from_grad:
            raise RuntimeError(_UNRECORDED.format(caller=caller))
        raise RuntimeError(
            f"minigrad: {caller} was called on a tensor that does not require grad "
            "(no input had requires_grad=True, or it was computed under no_grad)"
        )
    if gradient is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"minigrad: {caller} needs a gradient for an output of shape {output.shape}; "
                "reduce it to one element (e.g. .sum()) or pass a gradient of that shape"
            )
        shape, dtype = output.data.shape, output.data.dtype
        return _constant(dtype.type(1) if not shape else np.ones(shape, dtype))
    seed = _tensor(gradient, output)
    if seed.shape != output.shape:
        raise ValueError(
            f"minigrad: {caller} gradient has shape {seed.shape}, output has shape {output.shape}"
        )
    # a copy in the output's dtype: the caller's array never becomes a gradient handed out
    return seed.astype(output.dtype) if seed.dtype != output.dtype else _copy(seed)


def _backprop(
    root: Tensor, seed: Tensor, create_graph: bool, wanted: tuple[Tensor, ...] | None = None
) -> list[tuple[Tensor, Tensor]]:
    """Walk the graph from `root` back to its inputs, applying each node's VJPs once.

    A node's gradient is complete (every use of it has contributed) only once every result made
    from it has been visited: that is what makes `(x + x) * x` come out right. Results are made
    after their inputs, so visiting the waiting node with the largest number first (a heap)
    guarantees it, with no recursion and no separate sorting pass.
    Returns (node, gradient) for the `wanted` nodes, or (for backward) for every node.
    """
    grads: dict[int, Tensor] = {id(root): seed}  # gradients so far, keyed by identity
    waiting = [(-root._seq, root)]  # a heap: the largest number comes out first
    kept: list[tuple[Tensor, Tensor]] = []
    handed: dict[int, bool] = {}  # memory of each gradient handed out: was it as writeable?
    wanted_ids = None if wanted is None else {id(x) for x in wanted}
    with _GradMode(create_graph):  # the VJPs' own operations are recorded only for create_graph
        while waiting:
            node = heapq.heappop(waiting)[1]
            g = grads.pop(id(node))
            if wanted_ids is None or id(node) in wanted_ids:
                yours = wanted_ids is not None or not node._parents  # grad() results and leaves
                kept.append((node, _hand_out(g, yours, handed, create_graph)))
            for i, (parent, vjp) in enumerate(zip(node._parents, node._vjps, strict=True)):
                if not parent.requires_grad:
                    continue  # a constant: its gradient is never computed
                contribution = vjp(g, node)
                if contribution.data.shape != parent.data.shape:
                    contribution = _unbroadcast_vjp(contribution, parent.data.shape, node, i)
                if contribution.data.dtype != parent.data.dtype:  # float32 input: float32 grad
                    contribution = contribution.astype(parent.data.dtype)
                previous = grads.get(id(parent))
                if previous is None:  # its first contribution: it starts waiting
                    grads[id(parent)] = contribution
                    heapq.heappush(waiting, (-parent._seq, parent))
                else:
                    grads[id(parent)] = previous + contribution
    return kept


def _graph(root: Tensor) -> list[Tensor]:
    """Every node that requires grad and feeds `root`, inputs first (in the order made)."""
    seen, stack = {id(root): root}, [root]
    while stack:  # an explicit stack, not recursion: any depth works
        for parent in stack.pop()._parents:
            if parent.requires_grad and id(parent) not in seen:
                seen[id(parent)] = parent
                stack.append(parent)
    return sorted(seen.values(), key=lambda node: node._seq)


def _hand_out(g: Tensor, yours: bool, handed: dict[int, bool], create_graph: bool) -> Tensor:
    """The gradient to store in ``.grad`` (or return from grad()), from the walk's own `g`.

    Yours (a leaf's gradient, or one grad() returns): a writeable array that shares memory with
    no other gradient handed out; copied when it would, or when it is a read-only broadcast view.
    An intermediate result's: the walk's array itself, made read-only (no copy: one array often
    reaches several nodes, and none of them can then change another's gradient).
    Without `create_graph` the result is marked as an unrecorded gradient (see grad()).
    """
    base = g.data
    while isinstance(base.base, np.ndarray):  # the array that owns the memory g views
        base = base.base
    memory = id(base)
    if handed.get(memory) or (yours and (memory in handed or not g.data.flags.writeable)):
        g = _copy(g)
        memory = id(g.data)
    if yours:
        handed[memory] = True
    else:
        handed.setdefault(memory, False)
        g.data.setflags(write=False)
    g._from_grad = not create_graph
    return g


# ---- helpers the VJPs use: each is an operation with its own VJP --------------------------------
def _expand(
    g: Tensor, shape: tuple[int, ...], axes: tuple[int, ...] | None, keepdims: bool
) -> Tensor:
    """Spread the gradient of a sum back over the summed axes of an input of `shape`."""
    if axes is not None and not keepdims:  # put the summed axes back as size 1 so g broadcasts
        g = g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return _broadcast_to(g, shape)


def _broadcast_to(a: Tensor, shape: tuple[int, ...]) -> Tensor:
    if a.data.shape == shape:
        return a
    # each copy made by broadcasting sends its gradient back to the one element it copies
    return _apply(
        "broadcast", lambda x: _broadcast_view(x, shape),  # a read-only view: nothing copied
        (a,), lambda g, out: _unbroadcast(g, a.shape),
    )  # fmt: skip


def _unbroadcast(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum a gradient over the axes that broadcasting added or stretched, back to `shape`."""
    if g.data.shape == shape:
        return g
    if not shape:  # to a single number: sum everything
        return g.sum()
    lead = g.ndim - len(shape)  # axes broadcasting put in front
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    if not stretched:  # only leading axes to remove: summing them away leaves `shape`
        return g.sum(axis=tuple(range(lead)))
    return g.sum(axis=tuple(range(lead)) + stretched, keepdims=True).reshape(shape)


def _unbroadcast_vjp(g: Tensor, shape: tuple[int, ...], node: Tensor, i: int) -> Tensor:
    """`_unbroadcast` of what a VJP returned, with an error naming the op if it cannot be."""
    try:
        summed = _unbroadcast(g, shape) if g.ndim >= len(shape) else None
    except (ValueError, IndexError):
        summed = None
    if summed is None or summed.shape != shape:
        raise ValueError(
            f"minigrad: the VJP of '{node._op}' for input {i} returned a gradient of shape "
            f"{g.shape}, which does not sum back to the input's shape {shape}"
        )
    return summed


def _scatter(g: Tensor, index: Any, shape: tuple[int, ...]) -> Tensor:
    """Zeros of `shape` with `g` added at `index`: the VJP of indexing."""

    def forward(x: np.ndarray) -> np.ndarray:
        data = np.zeros(shape, dtype=x.dtype)
        np.add.at(data, index, x)  # add, not assign: an index may pick an element twice
        return data

    # the gradient of this scatter is gathering the same positions again
    return _apply("scatter", forward, (g,), lambda gg, out: gg[index])


def _tie_split(g: Tensor, wins: np.ndarray, ties: np.ndarray) -> Tensor:
    """g where `wins`, g/2 where `ties`, 0 elsewhere: the VJP of maximum and minimum."""
    return where(ties, g * 0.5, where(wins, g, 0.0))


def _extreme(a: Tensor, op: str, reduce: Callable, axis: Any, keepdims: bool) -> Tensor:
    """max or min over `axis`."""
    axes = _axes(axis, a.ndim)

    def vjp(g: Tensor, out: Tensor) -> Tensor:
        peak = reduce(a.data, axis=axes, keepdims=True)
        hits = a.data == peak
        share = hits / np.maximum(hits.sum(axis=axes, keepdims=True), 1)
        return _expand(g, a.shape, axes, keepdims) * Tensor(share.astype(a.dtype))

    # d(max a)/da_i = 1 at the maximum, shared equally between tied elements (as torch.amax
    # and jax do), 0 elsewhere; the same for min
    return _apply(op, lambda x: reduce(x, axis=axes, keepdims=keepdims), (a,), vjp)


def _times(g: Tensor, b: Tensor, shape: tuple[int, ...]) -> Tensor:
    """g·b, which the walk then sums back to `shape` (the VJP of a product).

    Fast path: when that sum is to one number and no graph is being recorded, g·b summed is one
    dot product, a single pass with no temporary as large as the data (float64 only; BLAS adds
    in its own order, so the last bits can differ from numpy's pairwise sum of g·b).
    """
    x, y = g.data, b.data
    if (
        shape == () and x.ndim and x.shape == y.shape and not _state.enabled
        and x.dtype == y.dtype == np.float64 and x.flags.c_contiguous and y.flags.c_contiguous
    ):  # fmt: skip
        return _constant(np.dot(x.ravel(), y.ravel()))
    return g * b


def _twice(g: Tensor, a: Tensor) -> Tensor:
    """g·2a, the VJP of a².

    Fast path: when no graph is being recorded it is computed into one new array, with the same
    numbers as ``g * (2 * a)``: in one pass as a·(2g) when g holds one value everywhere (the
    gradient a sum or mean spreads; doubling is exact, so the products are equal), else 2a and
    then g times it in place.
    """
    gd = g.data
    if not a.data.ndim or gd.shape != a.data.shape or gd.dtype != a.data.dtype or _state.enabled:
        return g * (2 * a)
    if gd.ndim and not any(gd.strides):  # one value, broadcast: no stride moves along an axis
        return _constant(np.multiply(a.data, 2 * gd[(0,) * gd.ndim]))
    twice = np.multiply(a.data, 2)
    return _constant(np.multiply(gd, twice, out=twice))


def _identity(g: Tensor, out: Tensor) -> Tensor:
    return g


def _copy(g: Tensor) -> Tensor:
    # d(copy a)/da = 1
    return _apply("copy", np.array, (g,), _identity)


def _cast(t: Tensor, dtype: np.dtype) -> Tensor:
    return t if t.dtype == dtype else t.astype(dtype)


# ---- plain numpy helpers ------------------------------------------------------------------------
def _broadcast_view(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``np.broadcast_to(x, shape)``: a read-only view in which stretched axes have stride 0.

    Built directly for a contiguous `x`: np.broadcast_to checks its arguments in Python, which
    costs ten times as much for small arrays (this runs in every sum's and mean's VJP).
    """
    if not x.flags.c_contiguous or not x.size:
        return np.broadcast_to(x, shape)
    lead = len(shape) - x.ndim
    strides = (0,) * lead
    if x.ndim:
        strides += tuple(0 if n == 1 else step for n, step in zip(x.shape, x.strides, strict=True))
    view = np.ndarray(shape, x.dtype, x, 0, strides)
    view.setflags(write=False)
    return view


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))  # exponent <= 0, so this never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))  # the two algebraically equal forms


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def _compare(function: Callable, a: Tensor, other: Any) -> Any:
    if other is None or isinstance(other, str):
        return NotImplemented
    return _constant(function(a.data, _tensor(other, a).data))


def _as_array(data: Any) -> np.ndarray:
    """numpy array for `data`: floating and complex dtypes kept, everything else float64."""
    array = np.asarray(data)
    if array.dtype.kind not in "fc":
        array = array.astype(np.float64)
    return array


def _tensor(value: Any, like: Tensor) -> Tensor:
    """`value` as a Tensor; a Python number takes the dtype of `like`, as numpy scalars do."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (int, float)):
        dtype = like.data.dtype if like.data.dtype.kind in "fc" else np.float64
        # with its sign, so that -0.0 and 0.0 (equal as keys) stay apart
        sign = math.copysign(1.0, value) if isinstance(value, float) else 1.0
        return _number(type(value), value, sign, dtype)
    return Tensor(value)


@functools.lru_cache(maxsize=256)
def _number(kind: type, value: float, sign: float, dtype: np.dtype) -> Tensor:
    """A Python number as a constant 0-d Tensor of `dtype`, made once per number and dtype: `x * 2`
    in a loop makes no new tensor each time (and print_graph shows one constant used twice).
    Its array is read-only, as it is shared."""
    data = np.asarray(value, dtype=dtype)
    data.setflags(write=False)
    return _constant(data)


def _pair(x: Any, y: Any) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors; a Python number takes the other operand's dtype."""
    if isinstance(x, Tensor):
        return x, _tensor(y, x)
    if isinstance(y, Tensor):
        return _tensor(x, y), y
    a = Tensor(x)
    return a, _tensor(y, a)


def _axes(axis: Any, ndim: int) -> tuple[int, ...] | None:
    """`axis` (an int, numpy int or a sequence of them) as non-negative ints; None stays None."""
    if axis is None:
        return None
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    result = []
    for ax in axes:
        i = operator.index(ax)
        if not -ndim <= i < ndim:
            raise np.exceptions.AxisError(i, ndim)
        result.append(i % ndim)
    if len(set(result)) != len(result):
        raise ValueError(f"minigrad: repeated axis in {axis}")
    return tuple(result)


def _permutation(axes: Sequence[Any], ndim: int) -> tuple[int, ...]:
    """A transpose's axes, negative ones made positive first (reversed order when empty)."""
    if not axes:
        return tuple(reversed(range(ndim)))
    order = tuple(operator.index(ax) % ndim if ndim else operator.index(ax) for ax in axes)
    if sorted(order) != list(range(ndim)):
        raise ValueError(f"minigrad: axes {tuple(axes)} are not a permutation of {ndim} axes")
    return order


def _plain_index(index: Any) -> Any:
    """An index with any Tensors in it (masks, positions) replaced by their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _short(array: np.ndarray) -> str:
    """A compact one-line rendering of an array for reprs and graph printouts."""
    text = np.array2string(
        array, precision=6, threshold=8, edgeitems=3, separator=", ", max_line_width=10**6
    )
    # numpy starts each row of a 2-D (or higher) array on a new, indented line: join them
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
