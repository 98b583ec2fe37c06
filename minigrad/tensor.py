"""The Tensor: a numpy array that records the operations applied to it, each beside its VJP.

Read it top to bottom:

1. `Tensor`, with each operation as a method. An operation computes its result with numpy and
   records one small function per input beside it: the vector-Jacobian product (VJP). Given `g`,
   the gradient of the final output with respect to the operation's result, the VJP returns the
   gradient with respect to that input. The comment above each VJP names the derivative.
2. Operations on several tensors (`maximum`, `where`, `concatenate`, ...) and constructors.
3. Recording: every result enters the graph through `record`, which keeps its inputs, VJPs and
   forward when an input requires grad. The built-in operations reach it through `apply` (compute
   with numpy, then record); an operation of your own reaches it through `operation`.
4. The helpers the VJPs use (`_unbroadcast`, `_expand`, ...), each an operation with its own VJP.

The VJPs are written with Tensor operations themselves. With `create_graph=True` the backward
pass is recorded like any other computation, so gradients can be differentiated again
(Hessians, Hessian-vector products) with no extra code. The reverse walk that calls the VJPs is
in `autograd.py`. Two VJPs (of ``*`` and ``**2``) call a one-pass version of themselves from
`_fast.py`, which also holds the rules on which gradient arrays may be shared.
"""

from __future__ import annotations

import itertools
import math
import numbers
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad import _fast, autograd
from minigrad.grad_mode import _state

__all__ = [
    "Tensor",
    "apply",
    "as_tensor",
    "axes",
    "broadcast_to",
    "clip",
    "concatenate",
    "constant",
    "copy",
    "eye",
    "full",
    "logaddexp",
    "maximum",
    "minimum",
    "ones",
    "operands",
    "operation",
    "randn",
    "record",
    "short",
    "stack",
    "unbroadcast_vjp",
    "where",
    "zeros",
]

VJP = Callable[["Tensor", "Tensor"], "Tensor"]
Forward = Callable[..., Any]

# Every tensor is numbered as it is made. An operation's inputs exist before its result, so they
# have smaller numbers: the numbers are a topological order of any graph, for free.
_numbers = itertools.count()


class Tensor:
    """A numpy array that remembers how it was computed, so gradients can flow back through it.

    ``Tensor(data, requires_grad=False, name=None)`` accepts Python numbers, lists and numpy
    arrays. Floating-point data keeps its dtype (float32 stays float32); anything else becomes
    float64 (``minigrad.numpy.asarray`` keeps integers and booleans, for indices and masks). A
    numpy array of a floating dtype is used as it is, not copied. Comparisons (``<``, ``==``,
    ...) give constant boolean tensors, for `where` and masks.

    After ``backward()``, ``.grad`` holds d(output)/d(this tensor). A leaf's gradient (a tensor
    you made with ``requires_grad=True``) is an ordinary writeable array of its own; the gradient
    of an intermediate result is read-only, the very array the backward pass used.
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

    data: np.ndarray
    grad: Tensor | None
    requires_grad: bool
    name: str | None
    _op: str
    _parents: tuple[Tensor, ...]
    _vjps: tuple[VJP, ...]
    _forward: Forward | None
    _from_grad: bool
    _seq: int

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None) -> None:
        self.data = _as_float_array(data.data if isinstance(data, Tensor) else data)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._op = ""
        self._parents = ()
        self._vjps = ()
        self._forward = None  # recomputes data from the parents' arrays (for check_graph)
        self._from_grad = False  # computed from a gradient that was not recorded (see _fast)
        self._seq = next(_numbers)  # the order in which tensors were made

    # ---- plain array facts --------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the data, as numpy gives it."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """Number of elements."""
        return self.data.size

    @property
    def dtype(self) -> np.dtype[Any]:
        """numpy dtype of the data."""
        return self.data.dtype

    @property
    def device(self) -> str:
        """Where the data lives: always the CPU (numpy)."""
        return "cpu"

    def to_device(self, device: Any, /, *, stream: Any = None) -> Tensor:
        """The array API's move to a device: there is only the CPU, so the tensor itself."""
        if device not in ("cpu", None):
            raise ValueError(f"minigrad: only the 'cpu' device exists, not {device!r}")
        return self

    def numpy(self) -> np.ndarray:
        """The underlying numpy array (shared, not copied)."""
        return self.data

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        return self.data.item()

    def tolist(self) -> Any:
        """The data as nested Python lists."""
        return self.data.tolist()

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __index__(self) -> int:
        return operator.index(self.data.item())

    def __bool__(self) -> bool:
        return bool(self.data)  # as numpy: only for one element

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.array(self.data, dtype=dtype, copy=copy)  # np.asarray(tensor) gives the data

    def __array_namespace__(self, api_version: str | None = None) -> Any:
        """The array-API namespace for tensors: :mod:`minigrad.numpy`."""
        from minigrad import numpy as namespace

        return namespace

    def detach(self) -> Tensor:
        """A tensor with the same data, cut off from the graph (``requires_grad == False``)."""
        return constant(self.data)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad`` becomes ``None``)."""
        self.grad = None

    def __repr__(self) -> str:
        label = f", name={self.name!r}" if self.name else ""
        flag = ", requires_grad=True" if self.requires_grad else ""
        grad = "None" if self.grad is None else short(self.grad.data)
        return f"Tensor({short(self.data)}{label}{flag}, grad={grad})"

    # ---- elementwise arithmetic: numpy broadcasting, each gradient summed back to its input ---
    def __add__(self, other: Any) -> Tensor:
        a, b = self, as_tensor(other, self)
        return _binary(
            "+", np.add, a, b,
            lambda g, out: g,  # d(a+b)/da = 1
            lambda g, out: g,  # d(a+b)/db = 1
        )  # fmt: skip

    def __sub__(self, other: Any) -> Tensor:
        a, b = self, as_tensor(other, self)
        return _binary(
            "-", np.subtract, a, b,
            lambda g, out: g,  # d(a-b)/da = 1
            lambda g, out: -g,  # d(a-b)/db = -1
        )  # fmt: skip

    def __mul__(self, other: Any) -> Tensor:
        a, b = self, as_tensor(other, self)
        return _binary(
            "*", np.multiply, a, b,
            lambda g, out: _fast.times(g, b, a.shape),  # d(a*b)/da = b
            lambda g, out: _fast.times(g, a, b.shape),  # d(a*b)/db = a
        )  # fmt: skip

    def __truediv__(self, other: Any) -> Tensor:
        a, b = self, as_tensor(other, self)
        return _binary(
            "/", np.divide, a, b,
            lambda g, out: g / b,  # d(a/b)/da = 1/b
            lambda g, out: -g * out / b,  # d(a/b)/db = -a/b² = -(a/b)/b
        )  # fmt: skip

    def __pow__(self, other: Any) -> Tensor:
        a = self
        if isinstance(other, numbers.Real) and not isinstance(other, Tensor):
            p = float(other)
            if p == 2:
                # d(a²)/da = 2a
                return apply("**2", np.square, (a,), lambda g, out: _fast.twice(g, a))
            if p == 0:  # a**0 = 1 everywhere, including a = 0 where the general rule gives 0·inf
                # d(a⁰)/da = 0
                return apply("**0", np.ones_like, (a,), lambda g, out: g * 0)
            # d(aᵖ)/da = p·aᵖ⁻¹
            return apply(
                f"**{p:g}", lambda x: np.power(x, p), (a,),
                lambda g, out: g * (p * a ** (p - 1)),
            )  # fmt: skip
        b = as_tensor(other, self)
        return _binary(
            "**", np.power, a, b,
            # d(aᵇ)/da = b·aᵇ⁻¹: 0 where b = 0 (aᵇ is 1 there); where a = 0 too, a is replaced
            # by 1, which keeps that 0 from becoming 0·∞ = nan
            lambda g, out: g * b * where((b.data == 0) & (a.data == 0), 1.0, a) ** (b - 1),
            # d(aᵇ)/db = aᵇ·ln a, taken in the result's dtype. Where a = 0 the product is 0 (for
            # b > 0) but ln 0 = -inf would turn it into nan, so ln is taken of 1 there instead.
            lambda g, out: g * out * (_cast(a, out.dtype) + (a.data == 0).astype(out.dtype)).log(),
        )  # fmt: skip

    def __neg__(self) -> Tensor:
        # d(-a)/da = -1
        return apply("neg", np.negative, (self,), lambda g, out: -g)

    # Reflected and derived operators carry no gradient code of their own.
    def __radd__(self, other: Any) -> Tensor:
        return as_tensor(other, self) + self

    def __rsub__(self, other: Any) -> Tensor:
        return as_tensor(other, self) - self

    def __rmul__(self, other: Any) -> Tensor:
        return as_tensor(other, self) * self

    def __rtruediv__(self, other: Any) -> Tensor:
        return as_tensor(other, self) / self

    def __rpow__(self, other: Any) -> Tensor:
        return as_tensor(other, self) ** self

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return self.abs()

    # In-place updates. Outside a recorded computation (`w -= lr * w.grad` under `no_grad`, or a
    # constant) they change the array itself, which is what a parameter update wants. Inside
    # one, the result is recorded as a new tensor and the name is rebound to it, as micrograd
    # does: `c += c + 1` then means `c = c + (c + 1)`, and its gradient is that of the sum.
    def __iadd__(self, other: Any) -> Tensor:
        return self._update(np.add, Tensor.__add__, other, "+=")

    def __isub__(self, other: Any) -> Tensor:
        return self._update(np.subtract, Tensor.__sub__, other, "-=")

    def __imul__(self, other: Any) -> Tensor:
        return self._update(np.multiply, Tensor.__mul__, other, "*=")

    def __itruediv__(self, other: Any) -> Tensor:
        return self._update(np.divide, Tensor.__truediv__, other, "/=")

    def _update(
        self, function: Any, recorded: Callable[[Tensor, Any], Tensor], other: Any, symbol: str
    ) -> Tensor:
        other_grad = isinstance(other, Tensor) and other.requires_grad
        if _state.enabled and (self.requires_grad or other_grad):
            if self.requires_grad and not self._parents:
                raise RuntimeError(
                    f"minigrad: '{symbol}' would change a leaf tensor that requires grad; "
                    "update parameters inside `with no_grad():`"
                )
            return recorded(self, other)  # recorded as a new result: the name is rebound
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

    def __eq__(self, other: object) -> Any:
        return _compare(np.equal, self, other)

    def __ne__(self, other: object) -> Any:
        return _compare(np.not_equal, self, other)

    # ---- elementwise functions ----------------------------------------------------------------
    def exp(self) -> Tensor:
        """Elementwise e**x."""
        # d(exp a)/da = exp a, which is the output itself
        return apply("exp", np.exp, (self,), lambda g, out: g * out)

    def expm1(self) -> Tensor:
        """Elementwise e**x - 1, accurate for tiny x."""
        # d(eᵃ - 1)/da = eᵃ = out + 1
        return apply("expm1", np.expm1, (self,), lambda g, out: g * (out + 1))

    def log(self) -> Tensor:
        """Elementwise natural logarithm."""
        a = self
        # d(ln a)/da = 1/a
        return apply("log", np.log, (a,), lambda g, out: g / a)

    def log1p(self) -> Tensor:
        """Elementwise ln(1 + x), accurate for tiny x."""
        a = self
        # d ln(1+a)/da = 1/(1+a)
        return apply("log1p", np.log1p, (a,), lambda g, out: g / (1 + a))

    def sqrt(self) -> Tensor:
        """Elementwise square root."""
        # d√a/da = 1/(2√a), from the output (infinite at a = 0, as in torch)
        return apply("sqrt", np.sqrt, (self,), lambda g, out: g / (2 * out))

    def sin(self) -> Tensor:
        """Elementwise sine."""
        a = self
        # d(sin a)/da = cos a
        return apply("sin", np.sin, (a,), lambda g, out: g * a.cos())

    def cos(self) -> Tensor:
        """Elementwise cosine."""
        a = self
        # d(cos a)/da = -sin a
        return apply("cos", np.cos, (a,), lambda g, out: -(g * a.sin()))

    def tanh(self) -> Tensor:
        """Elementwise hyperbolic tangent (numpy's tanh saturates at ±1 without overflow)."""
        # d(tanh a)/da = 1 - tanh²a
        return apply("tanh", np.tanh, (self,), lambda g, out: g * (1 - out * out))

    def sigmoid(self) -> Tensor:
        """Elementwise 1 / (1 + e**-x), computed without overflow at any |x|."""
        # dσ(a)/da = σ(a)·(1 - σ(a))
        return apply("sigmoid", _sigmoid, (self,), lambda g, out: g * out * (1 - out))

    def relu(self) -> Tensor:
        """Elementwise max(x, 0)."""
        a = self
        # d relu(a)/da = 1 where a > 0, else 0 (the kink at 0 gets 0, as in torch); nan at nan
        return apply("relu", _relu, (a,), lambda g, out: g * constant(_step(a.data)))

    def abs(self) -> Tensor:
        """Elementwise |x|."""
        a = self
        # d|a|/da = sign(a) (0 at a = 0, as in torch; nan at nan)
        return apply("abs", np.abs, (a,), lambda g, out: g * constant(np.sign(a.data)))

    def sign(self) -> Tensor:
        """Elementwise -1, 0 or 1: a constant (its derivative is 0 wherever it exists)."""
        return constant(np.sign(self.data))

    def clip(self, min: Any = None, max: Any = None) -> Tensor:
        """Clamp into [min, max]: see :func:`clip`."""
        return clip(self, min, max)

    def astype(self, dtype: Any) -> Tensor:
        """The data converted to `dtype` (a new array). To a non-floating dtype it is a constant."""
        a, to = self, np.dtype(dtype)
        if to.kind not in "fc" or a.dtype.kind not in "fc":
            return constant(a.data.astype(to))
        # a cast changes only the precision: the gradient is cast back to a's dtype
        return apply("astype", lambda x: x.astype(to), (a,), lambda g, out: g.astype(a.dtype))

    # ---- reductions ---------------------------------------------------------------------------
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Sum over `axis` (all axes when None), as ``numpy.sum``."""
        a, over = self, None if axis is None else axes(axis, self.ndim)
        # d(Σ a)/da_i = 1: every summed element receives the output's gradient
        return apply(
            "sum", lambda x: x.sum(axis=over, keepdims=keepdims), (a,),
            lambda g, out: _expand(g, a.shape, over, keepdims),
        )  # fmt: skip

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Mean over `axis` (all axes when None), as ``numpy.mean``."""
        a, over = self, None if axis is None else axes(axis, self.ndim)
        count = a.size if over is None else math.prod(a.shape[i] for i in over)
        # d(mean a)/da_i = 1/n: every element receives the output's gradient over the count
        return apply(
            "mean", lambda x: x.sum(axis=over, keepdims=keepdims) / count, (a,),
            lambda g, out: _expand(g / count, a.shape, over, keepdims),
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
        return apply(
            "reshape", lambda x: np.reshape(x, new_shape), (a,),
            lambda g, out: g.reshape(a.shape),
        )  # fmt: skip

    def transpose(self, *order: Any) -> Tensor:
        """Permute the axes (reversed when none are given), as ``numpy.transpose``."""
        a = self
        if len(order) == 1 and (order[0] is None or isinstance(order[0], (tuple, list))):
            order = tuple(order[0] or ())
        forward = _permutation(order, a.ndim)
        inverse = tuple(int(i) for i in np.argsort(forward))
        # a permutation moves values, so the gradient is moved back by the inverse permutation
        return apply(
            "transpose", lambda x: np.transpose(x, forward), (a,),
            lambda g, out: g.transpose(inverse),
        )  # fmt: skip

    @property
    def T(self) -> Tensor:  # noqa: N802 (numpy's name)
        """The transpose (axes reversed)."""
        return self.transpose()

    @property
    def mT(self) -> Tensor:  # noqa: N802 (the array API's name)
        """The last two axes swapped (a stack of matrices, each transposed)."""
        return self.transpose((*range(self.ndim - 2), self.ndim - 1, self.ndim - 2))

    # squeeze and expand_dims are reshapes: they have no rule of their own.
    def squeeze(self, axis: Any = None) -> Tensor:
        """Remove axes of length one (all of them when `axis` is None), as ``numpy.squeeze``."""
        if axis is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        drop = axes(axis, self.ndim)
        if any(self.shape[i] != 1 for i in drop):
            raise ValueError(f"minigrad: cannot squeeze axis {axis} of shape {self.shape}")
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if i not in drop))

    def expand_dims(self, axis: Any) -> Tensor:
        """Insert axes of length one at `axis` (positions in the result), as numpy's."""
        new = axes(axis, self.ndim + (len(axis) if isinstance(axis, (tuple, list)) else 1))
        rest = iter(self.shape)
        return self.reshape(
            tuple(1 if i in new else next(rest) for i in range(self.ndim + len(new)))
        )

    def __getitem__(self, index: Any) -> Tensor:
        a, index = self, _plain_index(index)
        # each selected element's gradient goes back to the position it was taken from
        return apply("index", lambda x: x[index], (a,), lambda g, out: _scatter(g, index, a.shape))

    def __matmul__(self, other: Any) -> Tensor:
        a, b = self, as_tensor(other, self)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(
                f"minigrad: '@' needs at least 1-D operands, got {a.shape} @ {b.shape}"
            )
        try:
            data = _fast.matmul(a.data, b.data)
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

        return record("@", data, (a, b), (grad_a, grad_b), np.matmul)

    def __rmatmul__(self, other: Any) -> Tensor:
        return as_tensor(other, self) @ self

    # ---- the reverse walk (autograd.py) -------------------------------------------------------
    def backward(self, gradient: Any = None, create_graph: bool = False) -> None:
        """Add d(self)/d(node) to ``node.grad`` for every node of the graph that requires grad.

        A one-element output needs no `gradient` (it is 1). For other outputs pass `gradient`, the
        vector in the vector-Jacobian product, shaped like the output. Gradients add to what
        ``.grad`` already holds, as in torch; call ``zero_grad()`` between steps. Each gradient
        has the dtype of its tensor (a float32 leaf gets a float32 gradient).
        """
        autograd.backward(self, gradient, create_graph)


# ---- operations on several tensors --------------------------------------------------------------
def maximum(x: Any, y: Any) -> Tensor:
    """Elementwise larger of `x` and `y`, with numpy broadcasting."""
    a, b = operands(x, y)
    # d max(a, b)/da = 1 where a > b, 1/2 where a = b (a tie is shared, as in torch), else 0
    return _binary(
        "maximum", np.maximum, a, b,
        lambda g, out: _tie_split(g, a.data > b.data, a.data == b.data),
        lambda g, out: _tie_split(g, b.data > a.data, a.data == b.data),
    )  # fmt: skip


def minimum(x: Any, y: Any) -> Tensor:
    """Elementwise smaller of `x` and `y`, with numpy broadcasting."""
    a, b = operands(x, y)
    # d min(a, b)/da = 1 where a < b, 1/2 where a = b (a tie is shared, as in torch), else 0
    return _binary(
        "minimum", np.minimum, a, b,
        lambda g, out: _tie_split(g, a.data < b.data, a.data == b.data),
        lambda g, out: _tie_split(g, b.data < a.data, a.data == b.data),
    )  # fmt: skip


def logaddexp(x: Any, y: Any) -> Tensor:
    """ln(eˣ + eʸ) elementwise, without overflow at any scale (as ``numpy.logaddexp``)."""
    a, b = operands(x, y)
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
    a, b = operands(x, y)
    return apply(
        "where", lambda p, q: np.where(mask, p, q), (a, b),
        lambda g, out: where(mask, g, 0.0),  # d where(c, a, b)/da = 1 where c holds, else 0
        lambda g, out: where(mask, 0.0, g),  # d where(c, a, b)/db = 0 where c holds, else 1
    )  # fmt: skip


def clip(x: Any, min: Any = None, max: Any = None) -> Tensor:
    """Clamp `x` into [min, max] (a bound left as None is open), as ``numpy.clip``.

    Where min > max every element is max (as numpy and torch give), so the gradient goes to max.
    """
    a = x if isinstance(x, Tensor) else Tensor(x)
    low = as_tensor(-np.inf if min is None else min, a)
    high = as_tensor(np.inf if max is None else max, a)
    return apply(
        "clip", np.clip, (a, low, high),
        # d clip/da = 1 where low <= a <= high (a point on a bound passes, as in torch), else 0
        lambda g, out: where((a.data >= low.data) & (a.data <= high.data), g, 0.0),
        # d clip/d low = 1 where a < low <= high
        lambda g, out: where((a.data < low.data) & (low.data <= high.data), g, 0.0),
        # d clip/d high = 1 where a > high, or everywhere when low > high
        lambda g, out: where((a.data > high.data) | (low.data > high.data), g, 0.0),
    )  # fmt: skip


def concatenate(tensors: Sequence[Any], axis: int | None = 0) -> Tensor:
    """Join tensors along an existing axis (flattened first when `axis` is None), as numpy."""
    first = next((t for t in tensors if isinstance(t, Tensor)), None)
    parts = tuple(Tensor(t) if first is None else as_tensor(t, first) for t in tensors)
    if not parts:
        raise ValueError("minigrad: concatenate needs at least one tensor")
    if axis is None:
        parts = tuple(p.reshape(-1) for p in parts)
        axis = 0
    (ax,) = axes(axis, parts[0].ndim)
    ends = np.cumsum([p.shape[ax] for p in parts]).tolist()

    def piece(start: int, stop: int) -> VJP:
        index = (slice(None),) * ax + (slice(start, stop),)
        # each input's gradient is its own slice of the output's gradient
        return lambda g, out: g[index]

    vjps = [piece(stop - p.shape[ax], stop) for p, stop in zip(parts, ends, strict=True)]
    return apply("concatenate", lambda *xs: np.concatenate(xs, axis=ax), parts, *vjps)


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
    *shape: Any, seed: Any = None, dtype: Any = np.float64, requires_grad: bool = False
) -> Tensor:
    """Standard normal samples of `shape`; `seed` (an int or a numpy Generator) repeats them."""
    size = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return Tensor(rng.standard_normal(size, dtype=dtype), requires_grad=requires_grad)


# ---- recording: how a result enters the graph ---------------------------------------------------
def operation(
    name: str,
    data: Any,
    parents: Sequence[Tensor],
    *vjps: Callable[[Tensor, Tensor], Any],
    forward: Forward | None = None,
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
    array = _as_float_array(data.data if isinstance(data, Tensor) else data)
    return record(name, array, parents, rules, forward)


def _returning_a_tensor(vjp: Callable[[Tensor, Tensor], Any]) -> VJP:
    """A VJP of your own may return a numpy array or a number: it is wrapped (as a constant)."""

    def rule(g: Tensor, out: Tensor) -> Tensor:
        result = vjp(g, out)
        return result if isinstance(result, Tensor) else Tensor(result)

    return rule


def apply(op: str, forward: Forward, parents: tuple[Tensor, ...], *vjps: VJP) -> Tensor:
    """Compute an operation's result with `forward` on the parents' arrays, and record it.

    The way every built-in operation (here and in ``minigrad.numpy``) makes its result.
    """
    if len(parents) == 1:  # (one input, the common case: no list of arrays to build)
        return record(op, forward(parents[0].data), parents, vjps, forward)
    return record(op, forward(*[p.data for p in parents]), parents, vjps, forward)


def _binary(op: str, forward: Forward, a: Tensor, b: Tensor, vjp_a: VJP, vjp_b: VJP) -> Tensor:
    """`apply` for a broadcasting binary function: a shape error names the op and the shapes."""
    try:
        data = forward(a.data, b.data)
    except ValueError:
        raise ValueError(
            f"minigrad: cannot broadcast shapes {a.shape} and {b.shape} in '{op}'"
        ) from None
    return record(op, data, (a, b), (vjp_a, vjp_b), forward)


def record(
    op: str,
    data: Any,
    parents: tuple[Tensor, ...],
    vjps: tuple[VJP, ...],
    forward: Forward | None,
) -> Tensor:
    """Wrap a result; remember its inputs, VJPs and forward when a graph is being recorded.

    `forward(*arrays)` recomputes `data` from the parents' arrays (check_graph uses it).

    A graph is recorded when recording is on (not inside ``no_grad``) and some input requires
    grad. The VJPs are called only for inputs that require grad.
    """
    out = Tensor.__new__(Tensor)  # (not through __init__, which would convert the data)
    # numpy returns scalars, not 0-d arrays, from operations on 0-d arrays
    out.data = data if type(data) is np.ndarray else np.asarray(data)
    out.grad = out.name = None
    out._op = op
    out._seq = next(_numbers)
    for parent in parents:
        if parent.requires_grad and _state.enabled:
            out.requires_grad, out._from_grad = True, False
            out._parents, out._vjps, out._forward = parents, vjps, forward
            return out
    # nothing to differentiate: no references kept, so memory is freed early
    out.requires_grad = out._from_grad = False
    out._parents = out._vjps = ()
    out._forward = None
    for parent in parents:  # made from a gradient that was not recorded: see _fast.UNRECORDED
        if parent._from_grad:
            out._from_grad = True
    return out


def constant(data: Any, op: str = "constant") -> Tensor:
    """A Tensor with no gradient (a comparison, a sign, an index), in the dtype numpy gave it."""
    out = Tensor.__new__(Tensor)
    # numpy returns scalars, not 0-d arrays, from operations on 0-d arrays
    out.data = data if type(data) is np.ndarray else np.asarray(data)
    out.grad = out.name = out._forward = None
    out.requires_grad = out._from_grad = False
    out._parents = out._vjps = ()
    out._op = op
    out._seq = next(_numbers)
    return out


# ---- helpers the VJPs use: each is an operation with its own VJP --------------------------------
def _expand(
    g: Tensor, shape: tuple[int, ...], over: tuple[int, ...] | None, keepdims: bool
) -> Tensor:
    """Spread the gradient of a sum back over the summed axes of an input of `shape`."""
    if over is not None and not keepdims:  # put the summed axes back as size 1 so g broadcasts
        g = g.reshape(tuple(1 if i in over else n for i, n in enumerate(shape)))
    return broadcast_to(g, shape)


def broadcast_to(a: Tensor, shape: tuple[int, ...]) -> Tensor:
    """`a` broadcast to `shape`, as ``numpy.broadcast_to``."""
    if a.data.shape == shape:
        return a
    # each copy made by broadcasting sends its gradient back to the one element it copies
    return apply(
        "broadcast", lambda x: _fast.broadcast_view(x, shape),  # a read-only view
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


def unbroadcast_vjp(g: Tensor, shape: tuple[int, ...], node: Tensor, i: int) -> Tensor:
    """`_unbroadcast` of what node's VJP for input i returned, or an error naming the op."""
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
    return apply("scatter", forward, (g,), lambda gg, out: gg[index])


def _tie_split(g: Tensor, wins: np.ndarray, ties: np.ndarray) -> Tensor:
    """g where `wins`, g/2 where `ties`, 0 elsewhere: the VJP of maximum and minimum."""
    return where(ties, g * 0.5, where(wins, g, 0.0))


def _extreme(a: Tensor, op: str, reduce: Forward, axis: Any, keepdims: bool) -> Tensor:
    """max or min over `axis`."""
    over = axes(axis, a.ndim)

    def vjp(g: Tensor, out: Tensor) -> Tensor:
        peak = reduce(a.data, axis=over, keepdims=True)
        hits = a.data == peak
        with np.errstate(invalid="ignore"):  # no hit at all: the extreme is nan, so is its share
            share = hits / hits.sum(axis=over, keepdims=True)
        return _expand(g, a.shape, over, keepdims) * constant(share.astype(a.dtype))

    # d(max a)/da_i = 1 at the maximum, shared equally between tied elements (as torch.amax
    # and jax do), 0 elsewhere, nan where the maximum is nan; the same for min
    return apply(op, lambda x: reduce(x, axis=over, keepdims=keepdims), (a,), vjp)


def _identity(g: Tensor, out: Tensor) -> Tensor:
    return g


def copy(g: Tensor) -> Tensor:
    """A copy of `g` in a new array (recorded: its gradient passes unchanged)."""
    # d(copy a)/da = 1
    return apply("copy", np.array, (g,), _identity)


def _cast(t: Tensor, dtype: np.dtype[Any]) -> Tensor:
    return t if t.dtype == dtype else t.astype(dtype)


# ---- plain numpy helpers, shared with minigrad.numpy --------------------------------------------
def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))  # exponent <= 0, so this never overflows
    result: np.ndarray = np.where(x >= 0, 1 / (1 + e), e / (1 + e))  # two equal forms
    return result


def _relu(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.maximum(x, 0)
    return result


def _step(x: np.ndarray) -> np.ndarray:
    """1 where x > 0, 0 where x <= 0, nan where x is nan: relu's slope."""
    return np.where(np.isnan(x), np.nan, x > 0).astype(x.dtype)


def _compare(function: Forward, a: Tensor, other: Any) -> Tensor:
    if other is None or isinstance(other, str):
        return NotImplemented  # type: ignore[no-any-return]
    return constant(function(a.data, as_tensor(other, a).data))


def _as_float_array(data: Any) -> np.ndarray:
    """numpy array for `data`: floating and complex dtypes kept, everything else float64."""
    array = np.asarray(data)
    if array.dtype.kind not in "fc":
        array = array.astype(np.float64)
    return array


def as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    """`value` as a Tensor. A Python number takes the dtype of `like` where its kind allows, as
    the array API's scalars do (``x32 * 2.0`` stays float32, ``index + 1`` stays an integer)."""
    if isinstance(value, Tensor):
        return value
    if like is not None and isinstance(value, (int, float)):
        dtype = like.data.dtype
        if dtype.kind not in "fc" and not (dtype.kind in "iu" and not isinstance(value, float)):
            # the tensor's kind cannot hold the number: the number's own default dtype
            dtype = np.dtype(
                np.bool_ if isinstance(value, bool) else np.float64 if isinstance(value, float)
                else np.int64
            )  # fmt: skip
        # with its sign, so that -0.0 and 0.0 (equal as keys) stay apart
        sign = math.copysign(1.0, value) if isinstance(value, float) else 1.0
        return _fast.number(value, sign, dtype)
    return Tensor(value)


def operands(x: Any, y: Any) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors; a Python number takes the other operand's dtype."""
    if isinstance(x, Tensor):
        return x, as_tensor(y, x)
    if isinstance(y, Tensor):
        return as_tensor(x, y), y
    a = Tensor(x)
    return a, as_tensor(y, a)


def axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """`axis` (an int, numpy int or a sequence of them) as non-negative ints; None is all."""
    if axis is None:
        return tuple(range(ndim))
    given = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    result = []
    for ax in given:
        i = operator.index(ax)
        if not -ndim <= i < ndim:
            raise np.exceptions.AxisError(i, ndim)
        result.append(i % ndim)
    if len(set(result)) != len(result):
        raise ValueError(f"minigrad: repeated axis in {axis}")
    return tuple(result)


def _permutation(order: Sequence[Any], ndim: int) -> tuple[int, ...]:
    """A transpose's axes, negative ones made positive first (reversed order when empty)."""
    if not order:
        return tuple(reversed(range(ndim)))
    result = tuple(operator.index(ax) % ndim if ndim else operator.index(ax) for ax in order)
    if sorted(result) != list(range(ndim)):
        raise ValueError(f"minigrad: axes {tuple(order)} are not a permutation of {ndim} axes")
    return result


def _plain_index(index: Any) -> Any:
    """An index with any Tensors in it (masks, positions) replaced by their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def short(array: np.ndarray) -> str:
    """A compact one-line rendering of an array for reprs and graph printouts."""
    text = np.array2string(
        array, precision=6, threshold=8, edgeitems=3, separator=", ", max_line_width=10**6
    )
    # numpy starts each row of a 2-D (or higher) array on a new, indented line: join them
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
