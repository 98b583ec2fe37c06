"""The whole engine: a Tensor that records the operations applied to it, and the reverse walk.

Read it top to bottom. Each operation computes its result with numpy and hands `_result` one
small function per input: the vector-Jacobian product (VJP). Given `g`, the gradient of the
final output with respect to this operation's result, the VJP returns the gradient with respect
to that input. The comment beside each VJP names the derivative it applies.

The VJPs are written with Tensor operations themselves. With `create_graph=True` the backward
pass is recorded like any other computation, so gradients can be differentiated again
(Hessians, Hessian-vector products) with no extra code.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["Tensor", "grad", "is_grad_enabled", "no_grad"]

# Graph recording is on unless switched off by `no_grad` (or by a backward pass that does not
# create a graph).
_grad_enabled = True


def is_grad_enabled() -> bool:
    """Whether operations on tensors that require grad are being recorded right now."""
    return _grad_enabled


class _GradMode:
    """Switch graph recording on or off inside a ``with`` block, and restore it afterwards."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = self._enabled

    def __exit__(self, *exc_info: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous


class no_grad(_GradMode):
    """Context manager (or decorator, with or without parentheses) in which no graph is recorded.

    Results computed inside have ``requires_grad == False``; use it for parameter updates and
    evaluation, where a graph would only cost time and memory.
    """

    def __new__(cls, function: Callable | None = None) -> Any:
        if function is not None:  # used bare, as @no_grad
            return _without_graph(function)
        return super().__new__(cls)

    def __init__(self, function: Callable | None = None) -> None:
        super().__init__(enabled=False)

    def __call__(self, function: Callable) -> Callable:  # used as @no_grad()
        return _without_graph(function)


def _without_graph(function: Callable) -> Callable:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with no_grad():
            return function(*args, **kwargs)

    return wrapper


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
        return Tensor(np.asarray(value, dtype=like.data.dtype))
    return Tensor(value)


def _result(data: np.ndarray, op: str, parents: tuple[Tensor, ...], *vjps: Callable) -> Tensor:
    """Wrap an operation's result; remember its inputs and VJPs when a graph is being recorded.

    `vjps[i](g, out)` returns the gradient for `parents[i]`, given the gradient `g` of the final
    output with respect to `out`. It is called only for inputs that require grad.
    """
    out = Tensor.__new__(Tensor)
    # numpy returns scalars, not 0-d arrays, from operations on 0-d arrays
    out.data = data if type(data) is np.ndarray else np.asarray(data)
    out.grad = None
    out.name = None
    out._op = op
    # (Every operation has one or two inputs.)
    if _grad_enabled and (parents[0].requires_grad or parents[-1].requires_grad):
        out.requires_grad = True
        out._parents = parents
        out._vjps = vjps
    else:  # nothing to differentiate: keep no references, so memory is freed early
        out.requires_grad = False
        out._parents = ()
        out._vjps = ()
    return out


def _broadcasting(op: str, function: Callable, a: Tensor, b: Tensor) -> np.ndarray:
    """Apply a numpy binary function, naming the op and the shapes when they cannot broadcast."""
    try:
        return function(a.data, b.data)
    except ValueError:
        raise ValueError(
            f"minigrad: cannot broadcast shapes {a.shape} and {b.shape} in '{op}'"
        ) from None


class Tensor:
    """A numpy array that remembers how it was computed, so gradients can flow back through it.

    ``Tensor(data, requires_grad=False, name=None)`` accepts Python numbers, lists and numpy
    arrays. Floating-point data keeps its dtype (float32 stays float32); anything else becomes
    float64. A numpy array of a floating dtype is used as it is, not copied.
    """

    __slots__ = ("_op", "_parents", "_vjps", "data", "grad", "name", "requires_grad")
    # Make `ndarray * Tensor` call Tensor.__rmul__ instead of numpy looping over the tensor.
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None) -> None:
        self.data = _as_array(data.data if isinstance(data, Tensor) else data)
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._op = ""
        self._parents: tuple[Tensor, ...] = ()
        self._vjps: tuple[Callable, ...] = ()

    # ---- plain array facts --------------------------------------------------------------------
    shape = property(lambda self: self.data.shape, doc="Shape of the data, as numpy gives it.")
    ndim = property(lambda self: self.data.ndim, doc="Number of dimensions.")
    size = property(lambda self: self.data.size, doc="Number of elements.")
    dtype = property(lambda self: self.data.dtype, doc="numpy dtype of the data.")

    def numpy(self) -> np.ndarray:
        """The underlying numpy array (shared, not copied)."""
        return self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        return self.data.item()

    def __float__(self) -> float:
        return float(self.data)

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
        return _result(
            _broadcasting("+", np.add, a, b), "+", (a, b),
            lambda g, out: g,  # d(a+b)/da = 1
            lambda g, out: g,  # d(a+b)/db = 1
        )  # fmt: skip

    def __sub__(self, other: Any) -> Tensor:
        a, b = self, _tensor(other, self)
        return _result(
            _broadcasting("-", np.subtract, a, b), "-", (a, b),
            lambda g, out: g,  # d(a-b)/da = 1
            lambda g, out: -g,  # d(a-b)/db = -1
        )  # fmt: skip

    def __mul__(self, other: Any) -> Tensor:
        a, b = self, _tensor(other, self)
        return _result(
            _broadcasting("*", np.multiply, a, b), "*", (a, b),
            lambda g, out: g * b,  # d(a*b)/da = b
            lambda g, out: g * a,  # d(a*b)/db = a
        )  # fmt: skip

    def __truediv__(self, other: Any) -> Tensor:
        a, b = self, _tensor(other, self)
        return _result(
            _broadcasting("/", np.divide, a, b), "/", (a, b),
            lambda g, out: g / b,  # d(a/b)/da = 1/b
            lambda g, out: -g * out / b,  # d(a/b)/db = -a/b² = -(a/b)/b
        )  # fmt: skip

    def __pow__(self, other: Any) -> Tensor:
        a = self
        if isinstance(other, numbers.Real) and not isinstance(other, Tensor):
            p = float(other)
            if p == 2:  # the square is common enough to skip the general power's extra pass
                # d(a²)/da = 2a
                return _result(np.square(a.data), "**2", (a,), lambda g, out: g * (2 * a))
            if p == 0:  # a**0 = 1 everywhere, including a = 0 where the general rule gives 0·inf
                # d(a⁰)/da = 0
                return _result(np.ones_like(a.data), "**0", (a,), lambda g, out: g * 0)
            # d(aᵖ)/da = p·aᵖ⁻¹
            return _result(
                np.power(a.data, p), f"**{other:g}", (a,), lambda g, out: g * (p * a ** (p - 1))
            )
        b = _tensor(other, self)
        return _result(
            _broadcasting("**", np.power, a, b), "**", (a, b),
            lambda g, out: g * b * a ** (b - 1),  # d(aᵇ)/da = b·aᵇ⁻¹
            # d(aᵇ)/db = aᵇ·ln a. Where a = 0 the product is 0 (for b > 0) but ln 0 = -inf would
            # turn it into nan, so ln is taken of 1 there instead (a mask in a's dtype: a bool
            # mask would become a float64 tensor and turn float32 gradients into float64).
            lambda g, out: g * out * (a + (a.data == 0).astype(a.dtype)).log(),
        )  # fmt: skip

    def __neg__(self) -> Tensor:
        a = self
        # d(-a)/da = -1
        return _result(np.negative(a.data), "neg", (a,), lambda g, out: -g)

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

    # ---- elementwise functions ----------------------------------------------------------------
    def exp(self) -> Tensor:
        """Elementwise e**x."""
        # d(exp a)/da = exp a, which is the output itself
        return _result(np.exp(self.data), "exp", (self,), lambda g, out: g * out)

    def log(self) -> Tensor:
        """Elementwise natural logarithm."""
        a = self
        # d(ln a)/da = 1/a
        return _result(np.log(a.data), "log", (a,), lambda g, out: g / a)

    def tanh(self) -> Tensor:
        """Elementwise hyperbolic tangent (numpy's tanh saturates at ±1 without overflow)."""
        # d(tanh a)/da = 1 - tanh²a
        return _result(np.tanh(self.data), "tanh", (self,), lambda g, out: g * (1 - out * out))

    def sigmoid(self) -> Tensor:
        """Elementwise 1 / (1 + e**-x), computed without overflow at any |x|."""
        x = self.data
        e = np.exp(-np.abs(x))  # exponent <= 0, so this never overflows
        s = np.where(x >= 0, 1 / (1 + e), e / (1 + e))  # the two algebraically equal forms
        # dσ(a)/da = σ(a)·(1 - σ(a))
        return _result(s, "sigmoid", (self,), lambda g, out: g * out * (1 - out))

    def relu(self) -> Tensor:
        """Elementwise max(x, 0)."""
        a = self
        # d relu(a)/da = 1 where a > 0, else 0 (the kink at 0 gets 0, as in torch)
        return _result(
            np.maximum(a.data, 0), "relu", (a,),
            lambda g, out: g * Tensor((a.data > 0).astype(a.dtype)),  # the mask in a's dtype
        )  # fmt: skip

    def abs(self) -> Tensor:
        """Elementwise |x|."""
        a = self
        # d|a|/da = sign(a) (0 at a = 0, as in torch)
        return _result(np.abs(a.data), "abs", (a,), lambda g, out: g * Tensor(np.sign(a.data)))

    # ---- reductions ---------------------------------------------------------------------------
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over `axis` (all axes when None), as ``numpy.sum``."""
        a = self
        # d(Σ a)/da_i = 1: every summed element receives the output's gradient
        return _result(
            a.data.sum(axis=axis, keepdims=keepdims), "sum", (a,),
            lambda g, out: _expand(g, a.shape, axis, keepdims),
        )  # fmt: skip

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Mean over `axis` (all axes when None), as ``numpy.mean``: a sum divided by the count."""
        if axis is None:
            count = self.data.size
        else:
            axes = (axis,) if isinstance(axis, int) else axis
            count = int(np.prod([self.shape[ax] for ax in axes]))
        return self.sum(axis=axis, keepdims=keepdims) / count

    # ---- shape and indexing -------------------------------------------------------------------
    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        """The same elements in a new shape (``t.reshape(2, 3)`` or ``t.reshape((2, 3))``)."""
        a = self
        new_shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        # reshaping moves no values, so the gradient is reshaped back
        return _result(
            a.data.reshape(new_shape), "reshape", (a,), lambda g, out: g.reshape(a.shape)
        )

    def transpose(self, *axes: int) -> Tensor:
        """Permute the axes (reversed when none are given), as ``numpy.transpose``."""
        a = self
        order = tuple(axes[0]) if len(axes) == 1 and not isinstance(axes[0], int) else axes
        order = order or tuple(reversed(range(a.ndim)))
        inverse = tuple(int(i) for i in np.argsort(order))
        # a permutation moves values, so the gradient is moved back by the inverse permutation
        return _result(
            a.data.transpose(order), "transpose", (a,), lambda g, out: g.transpose(inverse)
        )

    T = property(lambda self: self.transpose(), doc="The transpose (axes reversed).")

    def __getitem__(self, index: Any) -> Tensor:
        a = self
        # each selected element's gradient goes back to the position it was taken from
        return _result(a.data[index], "index", (a,), lambda g, out: _scatter(g, index, a.shape))

    def __matmul__(self, other: Any) -> Tensor:
        a, b = self, _tensor(other, self)
        if not (1 <= a.ndim <= 2 and 1 <= b.ndim <= 2):
            raise ValueError(f"minigrad: '@' takes 1-D and 2-D tensors, got {a.shape} @ {b.shape}")
        try:
            data = a.data @ b.data
        except ValueError:
            message = f"minigrad: shapes {a.shape} @ {b.shape} do not align for '@'"
            raise ValueError(message) from None
        # A 1-D operand acts as a row (left) or column (right) vector; the rules are the 2-D ones.
        a2 = (1, a.shape[0]) if a.ndim == 1 else a.shape
        b2 = (b.shape[0], 1) if b.ndim == 1 else b.shape
        out2 = (a2[0], b2[1])
        return _result(
            data, "@", (a, b),
            # d(A@B)/dA: G @ Bᵀ
            lambda g, out: (g.reshape(out2) @ b.reshape(b2).T).reshape(a.shape),
            # d(A@B)/dB: Aᵀ @ G
            lambda g, out: (a.reshape(a2).T @ g.reshape(out2)).reshape(b.shape),
        )  # fmt: skip

    def __rmatmul__(self, other: Any) -> Tensor:
        return _tensor(other, self) @ self

    # ---- the reverse walk ---------------------------------------------------------------------
    def backward(self, gradient: Any = None, create_graph: bool = False) -> None:
        """Add d(self)/d(node) to ``node.grad`` for every node of the graph that requires grad.

        A one-element output needs no `gradient` (it is 1). For other outputs pass `gradient`, the
        vector in the vector-Jacobian product, shaped like the output. Gradients add to what
        ``.grad`` already holds, as in torch; call ``zero_grad()`` between steps.
        """
        seed = _seed(self, gradient, "backward()")
        for node, node_grad in _backprop(self, seed, create_graph, keep_all=True).items():
            node.grad = node_grad if node.grad is None else node.grad + node_grad


def grad(
    output: Tensor,
    inputs: Tensor | Sequence[Tensor],
    grad_output: Any = None,
    create_graph: bool = False,
) -> Tensor | tuple[Tensor, ...]:
    """Gradients of `output` with respect to `inputs`, returned without touching ``.grad``.

    `inputs` is one tensor (one gradient is returned) or a sequence (a tuple is returned). An
    input the output does not depend on gets zeros. With ``create_graph=True`` the gradients are
    themselves recorded, so they can be differentiated again (second derivatives).
    """
    single = isinstance(inputs, Tensor)
    wanted = (inputs,) if single else tuple(inputs)
    for i, x in enumerate(wanted):
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise ValueError(f"minigrad.grad: input {i} is not a Tensor with requires_grad=True")
    if output.requires_grad:
        grads = _backprop(output, _seed(output, grad_output, "grad()"), create_graph, wanted)
    else:
        grads = {}  # a constant output: every derivative is zero
    result = tuple(grads[x] if x in grads else Tensor(np.zeros_like(x.data)) for x in wanted)
    return result[0] if single else result


def _seed(output: Tensor, gradient: Any, caller: str) -> Tensor:
    """The starting gradient of a reverse pass: 1 for one-element outputs, else as given."""
    if not output.requires_grad:
        raise RuntimeError(
            f"minigrad: {caller} was called on a tensor that does not require grad "
            "(no input had requires_grad=True, or it was computed under no_grad)"
        )
    if gradient is None:
        if output.size != 1:
            raise RuntimeError(
                f"minigrad: {caller} needs a gradient for an output of shape {output.shape}; "
                "reduce it to one element (e.g. .sum()) or pass a gradient of that shape"
            )
        return Tensor(np.ones_like(output.data))
    seed = _tensor(gradient, output)
    if seed.shape != output.shape:
        raise ValueError(
            f"minigrad: {caller} gradient has shape {seed.shape}, output has shape {output.shape}"
        )
    return seed


def _topological_order(root: Tensor) -> list[Tensor]:
    """Every node that requires grad and feeds `root`, inputs before the results made from them.

    An explicit stack instead of recursion: a chain of 100,000 operations is as easy as three.
    """
    order: list[Tensor] = []
    visited = {root}  # Tensor hashes by identity
    stack = [(root, iter(root._parents))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if parent.requires_grad and parent not in visited:
                visited.add(parent)
                stack.append((parent, iter(parent._parents)))
                break
        else:  # all parents placed: the node can follow them
            stack.pop()
            order.append(node)
    return order


def _backprop(
    root: Tensor,
    seed: Tensor,
    create_graph: bool,
    wanted: tuple[Tensor, ...] = (),
    keep_all: bool = False,
) -> dict[Tensor, Tensor]:
    """Walk the graph from `root` back to its inputs, applying each node's VJPs once.

    Visiting in reverse topological order means a node's gradient is complete (every use of it
    has contributed) before it is passed on: that is what makes `(x + x) * x` come out right.
    Returns the gradients of the `wanted` nodes, or of every node with `keep_all`.
    """
    grads: dict[Tensor, Tensor] = {root: seed}  # Tensor hashes by identity
    kept: dict[Tensor, Tensor] = {}
    handed_out: set[Tensor] = set()
    with _GradMode(create_graph):
        for node in reversed(_topological_order(root)):
            g = grads.pop(node, None)
            if g is None:
                continue
            if keep_all or node in wanted:
                kept[node] = _own(g, handed_out)
                handed_out.add(kept[node])
            for parent, vjp in zip(node._parents, node._vjps, strict=True):
                if not parent.requires_grad:
                    continue  # a constant: its gradient is never computed
                contribution = _unbroadcast(vjp(g, node), parent.shape)
                previous = grads.get(parent)
                grads[parent] = contribution if previous is None else previous + contribution
    return kept


# ---- helpers the VJPs use: each is an operation with its own VJP --------------------------------
def _expand(g: Tensor, shape: tuple[int, ...], axis: Any, keepdims: bool) -> Tensor:
    """Spread the gradient of a sum back over the summed axes of an input of `shape`."""
    if axis is not None and not keepdims:  # put the summed axes back as size 1 so g broadcasts
        axes = {ax % len(shape) for ax in ((axis,) if isinstance(axis, int) else axis)}
        g = g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return _broadcast_to(g, shape)


def _broadcast_to(a: Tensor, shape: tuple[int, ...]) -> Tensor:
    if a.shape == shape:
        return a
    # each copy made by broadcasting sends its gradient back to the one element it copies
    return _result(
        np.broadcast_to(a.data, shape),  # a read-only view: no memory is copied
        "broadcast", (a,), lambda g, out: _unbroadcast(g, a.shape),
    )  # fmt: skip


def _unbroadcast(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum a gradient over the axes that broadcasting added or stretched, back to `shape`."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)  # axes broadcasting put in front
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    if not stretched:  # only leading axes to remove: summing them away leaves `shape`
        return g.sum(axis=tuple(range(lead)))
    return g.sum(axis=tuple(range(lead)) + stretched, keepdims=True).reshape(shape)


def _scatter(g: Tensor, index: Any, shape: tuple[int, ...]) -> Tensor:
    """Zeros of `shape` with `g` added at `index`: the VJP of indexing."""
    data = np.zeros(shape, dtype=g.dtype)
    np.add.at(data, index, g.data)  # add, not assign: an index may pick an element twice
    # the gradient of this scatter is gathering the same positions again
    return _result(data, "scatter", (g,), lambda gg, out: gg[index])


def _own(g: Tensor, handed_out: set[Tensor]) -> Tensor:
    """A gradient to hand to the user: an ordinary writeable array, not shared with another.

    A read-only broadcast view, or a tensor already given as another node's gradient (``a + b``
    passes the same gradient to both), is copied; otherwise `g` is handed over as it is.
    """
    if g.data.flags.writeable and g not in handed_out:
        return g
    return _result(np.array(g.data), "copy", (g,), lambda gg, out: gg)  # d(copy a)/da = 1


def _short(array: np.ndarray) -> str:
    """A compact one-line rendering of an array for reprs and graph printouts."""
    text = np.array2string(
        array, precision=6, threshold=8, edgeitems=3, separator=", ", max_line_width=10**6
    )
    # numpy starts each row of a 2-D (or higher) array on a new, indented line: join them
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
