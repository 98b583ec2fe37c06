"""Reductions and running totals: sum, prod, mean, max, min, var, std, cumulative sums and
products, diff; all, any and count_nonzero give constants."""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np

from minigrad import functional
from minigrad.numpy._common import tensor_of
from minigrad.tensor import Tensor, apply, axes, concatenate, constant, where

__all__ = [
    "all", "any", "count_nonzero", "cumulative_prod", "cumulative_sum", "diff", "max", "mean",
    "min", "prod", "std", "sum", "var",
]  # fmt: skip


def _in_dtype(x: Any, dtype: Any) -> Tensor:
    a = tensor_of(x)
    if dtype is not None and np.dtype(dtype) != a.dtype:
        return a.astype(dtype)
    if dtype is None and a.dtype.kind == "b":  # booleans are summed as integers
        return a.astype(np.int64)
    return a


def sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: builtins.bool = False
        ) -> Tensor:  # fmt: skip
    return _in_dtype(x, dtype).sum(axis=axis, keepdims=keepdims)


def mean(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Tensor:
    return tensor_of(x).mean(axis=axis, keepdims=keepdims)


def max(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Tensor:
    return tensor_of(x).max(axis=axis, keepdims=keepdims)


def min(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Tensor:
    return tensor_of(x).min(axis=axis, keepdims=keepdims)


def var(x: Any, /, *, axis: Any = None, correction: float = 0.0,
        keepdims: builtins.bool = False) -> Tensor:  # fmt: skip
    return functional.var(tensor_of(x), axis=axis, correction=correction, keepdims=keepdims)


def std(x: Any, /, *, axis: Any = None, correction: float = 0.0,
        keepdims: builtins.bool = False) -> Tensor:  # fmt: skip
    return functional.std(tensor_of(x), axis=axis, correction=correction, keepdims=keepdims)


def prod(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: builtins.bool = False
         ) -> Tensor:  # fmt: skip
    """The product over `axis`. Its rule stays right where elements are 0 (no division)."""
    a = _in_dtype(x, dtype)
    over = axes(axis, a.ndim)
    if a.dtype.kind not in "fc":
        return constant(np.prod(a.data, axis=over, keepdims=keepdims))
    rest = tuple(i for i in range(a.ndim) if i not in over)
    # the reduced axes moved last and flattened into one, of n elements
    n = math.prod(a.shape[i] for i in over)
    lined_shape = (*(a.shape[i] for i in rest), n)

    def vjp(g: Tensor, out: Tensor) -> Tensor:
        lined = a.transpose(rest + over).reshape(lined_shape)
        # d(Π a)/da_i = the product of all the others: of those before i times those after it
        before = cumulative_prod(lined, axis=-1, include_initial=True)[..., :-1]
        after = _flip_last(cumulative_prod(_flip_last(lined), axis=-1, include_initial=True))
        others = before * after[..., 1:]
        kept = g.reshape(tuple(1 if i in over else n_i for i, n_i in enumerate(a.shape)))
        spread = kept.transpose(rest + over).reshape((*lined_shape[:-1], 1))
        inverse = tuple(int(i) for i in np.argsort(rest + over))
        moved = tuple(a.shape[i] for i in rest + over)
        return (spread * others).reshape(moved).transpose(inverse)

    return apply("prod", lambda p: np.prod(p, axis=over, keepdims=keepdims), (a,), vjp)


def _flip_last(t: Tensor) -> Tensor:
    return t[..., ::-1]


def _cumulative_axis(a: Tensor, axis: Any) -> int:
    if axis is None:
        if a.ndim > 1:
            raise ValueError("minigrad: cumulative functions need an axis for more than 1-D")
        return 0
    (ax,) = axes(axis, a.ndim)
    return ax


def _with_initial(a: Tensor, ax: int, value: float) -> Tensor:
    shape = list(a.shape)
    shape[ax] = 1
    start = constant(np.full(shape, value, dtype=a.dtype))
    return concatenate([start, a], axis=ax)


def cumulative_sum(x: Any, /, *, axis: Any = None, dtype: Any = None,
                   include_initial: builtins.bool = False) -> Tensor:  # fmt: skip
    a = _in_dtype(x, dtype)
    ax = _cumulative_axis(a, axis)
    if include_initial:
        a = _with_initial(a, ax, 0)
    if a.dtype.kind not in "fc":
        return constant(np.cumsum(a.data, axis=ax))
    flip = (slice(None),) * ax + (slice(None, None, -1),)
    # d(Σ_{j≤k} a_j)/da_i = 1 for every k ≥ i: the gradient summed from the end back to i
    return apply(
        "cumulative_sum", lambda p: np.cumsum(p, axis=ax), (a,),
        lambda g, out: cumulative_sum(g[flip], axis=ax)[flip],
    )  # fmt: skip


def cumulative_prod(x: Any, /, *, axis: Any = None, dtype: Any = None,
                    include_initial: builtins.bool = False) -> Tensor:  # fmt: skip
    a = _in_dtype(x, dtype)
    ax = _cumulative_axis(a, axis)
    if include_initial:
        a = _with_initial(a, ax, 1)
    if a.dtype.kind not in "fc":
        return constant(np.cumprod(a.data, axis=ax))
    flip = (slice(None),) * ax + (slice(None, None, -1),)

    def vjp(g: Tensor, out: Tensor) -> Tensor:
        # d(Π_{j≤k} a_j)/da_i = Π_{j≤k, j≠i} a_j for k ≥ i
        if a.shape[ax] > 64 and np.all(np.abs(a.data) > 1e-100):
            # = out_k / a_i: the gradient·out summed from the end, over a (on a long axis, with
            # no zero to divide by)
            return cumulative_sum((g * out)[flip], axis=ax)[flip] / a
        return _cumprod_vjp_exact(a, g, ax)

    return apply("cumulative_prod", lambda p: np.cumprod(p, axis=ax), (a,), vjp)


def _cumprod_vjp_exact(a: Tensor, g: Tensor, ax: int) -> Tensor:
    """The VJP of cumulative_prod with no division (a may hold zeros or tiny numbers).

    With the axis moved last (n elements): Π_{j≤k, j≠i} a_j = (Π_{j<i} a_j)·(Π_{i<j≤k} a_j).
    The second factor is, for each i, a running product over j of a_j where j > i, else 1: an
    n × n table, so this costs n² per line (used on short axes, or where a holds a 0).
    """
    moved = _move_last(a, ax)
    gm = _move_last(g, ax)
    n = moved.shape[-1]
    before = cumulative_prod(moved, axis=-1, include_initial=True)[..., :-1]  # Π_{j<i}
    later = np.arange(n)[None, :] > np.arange(n)[:, None]  # [i, j]: j > i
    table = where(later, moved.expand_dims(-2), 1.0)  # [..., i, j]
    after = cumulative_prod(table, axis=-1)  # [..., i, k] = Π_{i<j≤k} a_j
    counted = np.arange(n)[None, :] >= np.arange(n)[:, None]  # [i, k]: k ≥ i
    total = (where(counted, after * gm.expand_dims(-2), 0.0)).sum(axis=-1)
    return _move_back(before * total, ax)


def _move_last(t: Tensor, ax: int) -> Tensor:
    order = (*(i for i in range(t.ndim) if i != ax), ax)
    return t.transpose(order)


def _move_back(t: Tensor, ax: int) -> Tensor:
    order = list(range(t.ndim - 1))
    order.insert(ax, t.ndim - 1)
    return t.transpose(tuple(order))


def diff(x: Any, /, *, axis: int = -1, n: int = 1, prepend: Any = None, append: Any = None
         ) -> Tensor:  # fmt: skip
    """The n-th differences along `axis` (a difference of slices: no rule of its own)."""
    a = tensor_of(x)
    (ax,) = axes(axis, a.ndim)
    parts = [p for p in (prepend, a, append) if p is not None]
    if len(parts) > 1:
        a = concatenate([tensor_of(p) for p in parts], axis=ax)
    head = (slice(None),) * ax
    for _ in range(n):
        a = a[(*head, slice(1, None))] - a[(*head, slice(None, -1))]
    return a


def all(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Tensor:
    return constant(np.all(tensor_of(x).data, axis=_axis(axis), keepdims=keepdims))


def any(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Tensor:
    return constant(np.any(tensor_of(x).data, axis=_axis(axis), keepdims=keepdims))


def count_nonzero(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Tensor:
    data = tensor_of(x).data
    return constant(np.asarray(np.count_nonzero(data, axis=_axis(axis), keepdims=keepdims)))


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis
