"""Engineering the teaching core calls but need not show: fast paths and array-sharing rules.

Nothing here changes a result beyond the last bits of a sum (each function says what it computes
and how); ``tests/minigrad/test_fast_paths.py`` compares every fast path with the plain rule.
Read ``tensor.py`` and ``autograd.py`` first: this module is what they leave out.

- `matmul`: ``a @ b``, elementwise when the inner dimension is 1 (one feature).
- `times`, `twice`: the VJPs of ``a * b`` and ``a ** 2`` in one pass when no graph is recorded.
- `broadcast_view`: ``np.broadcast_to`` built directly (it runs in every sum's and mean's VJP).
- `number`: one shared constant tensor per Python number and dtype.
- `hand_out`: which gradient arrays may be shared, which are copied, which are read-only.
- `UNRECORDED`: a gradient computed without ``create_graph`` is marked (``_from_grad``, set by
  `hand_out` and passed on by ``tensor.record`` to what is computed from it), so that
  differentiating it again fails with this message instead of giving zeros.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from minigrad import tensor as _t
from minigrad.grad_mode import _state

if TYPE_CHECKING:
    from minigrad.tensor import Tensor

__all__ = [
    "UNRECORDED",
    "broadcast_view",
    "hand_out",
    "matmul",
    "number",
    "times",
    "twice",
]


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul(a, b)``. Fast path: when the inner dimension is 1 (a model with one feature,
    ``X @ w`` with X of shape (N, 1)) each entry is a single product, which numpy computes about
    ten times faster elementwise than through BLAS's matrix-vector routine (it takes an N×1
    matrix a row at a time). One product per entry either way: the same numbers, bit for bit.
    """
    if a.ndim >= 2 and a.shape[-1] == 1 and a.dtype == b.dtype:
        if b.ndim == 1 and b.shape == (1,):
            product: np.ndarray = a[..., 0] * b[0]
            return product
        if b.ndim >= 2 and b.shape[-2] == 1:
            outer: np.ndarray = a * b
            return outer
    full: np.ndarray = np.matmul(a, b)
    return full


def times(g: Tensor, b: Tensor, shape: tuple[int, ...]) -> Tensor:
    """g·b, which the walk then sums back to `shape` (the VJP of a product).

    Fast path: when that sum is to one number and no graph is being recorded, g·b summed is one
    dot product, a single pass with no temporary as large as the data (float64 only; BLAS adds
    in its own order, so the last bits can differ from numpy's pairwise sum of g·b).
    """
    x, y = g.data, b.data
    if (
        shape == ()
        and x.ndim
        and x.shape == y.shape
        and not _state.enabled
        and x.dtype == y.dtype == np.float64
        and x.flags.c_contiguous
        and y.flags.c_contiguous
    ):
        return _t.constant(np.dot(x.ravel(), y.ravel()))
    return g * b


def twice(g: Tensor, a: Tensor) -> Tensor:
    """g·2a, the VJP of a².

    Fast path: when no graph is being recorded it is computed into one new array, with the same
    numbers as ``g * (2 * a)``: in one pass as a·(2g) when g holds one value everywhere (the
    gradient a sum or mean spreads; doubling is exact, so the products are equal), else 2a and
    then g times it in place.
    """
    gd, ad = g.data, a.data
    if not ad.ndim or gd.shape != ad.shape or gd.dtype != ad.dtype or _state.enabled:
        return g * (2 * a)
    if gd.size and not any(gd.strides):  # one value, broadcast: no stride moves along an axis
        return _t.constant(np.multiply(ad, 2 * gd[(0,) * gd.ndim]))
    doubled = np.multiply(ad, 2)
    return _t.constant(np.multiply(gd, doubled, out=doubled))


def broadcast_view(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``np.broadcast_to(x, shape)``: a read-only view in which stretched axes have stride 0.

    Built directly for a contiguous `x`: np.broadcast_to checks its arguments in Python, which
    costs ten times as much for small arrays.
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


@functools.lru_cache(maxsize=256)
def number(value: float, sign: float, dtype: np.dtype) -> Tensor:
    """A Python number as a constant 0-d Tensor of `dtype`, made once per number and dtype: `x * 2`
    in a loop makes no new tensor each time (and print_graph shows one constant used twice).
    `sign` keeps -0.0 and 0.0 (equal as keys) apart. Its array is read-only, as it is shared."""
    data = np.asarray(value, dtype=dtype)
    data.setflags(write=False)
    return _t.constant(data)


def hand_out(g: Tensor, yours: bool, handed: dict[int, bool], create_graph: bool) -> Tensor:
    """The gradient to store in ``.grad`` (or return from grad()), from the walk's own `g`.

    Yours (a leaf's gradient, or one grad() returns): a writeable array that shares memory with
    no other gradient handed out; copied when it would, or when it is a read-only broadcast view.
    An intermediate result's: the walk's array itself, made read-only (no copy: one array often
    reaches several nodes, and none of them can then change another's gradient).
    `handed` remembers, per memory block handed out so far, whether it was handed out writeable.
    Without `create_graph` the result is marked as an unrecorded gradient.
    """
    base = g.data
    while isinstance(base.base, np.ndarray):  # the array that owns the memory g views
        base = base.base
    memory = id(base)
    if handed.get(memory) or (yours and (memory in handed or not g.data.flags.writeable)):
        g = _t.copy(g)
        memory = id(g.data)
    if yours:
        handed[memory] = True
    else:
        handed.setdefault(memory, False)
        g.data.setflags(write=False)
    g._from_grad = not create_graph
    return g


UNRECORDED = (
    "minigrad: {caller} was called on a result computed from a gradient that was not recorded; "
    "pass create_graph=True to the grad() or backward() call that computed that gradient, so "
    "that it can be differentiated again"
)
