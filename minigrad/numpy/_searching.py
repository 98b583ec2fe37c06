"""Searching, sorting and sets. Positions (argmax, argsort, nonzero, searchsorted) and set
results are constants of integers; `sort` is a gather at argsort's positions, so its gradient
goes back to where each value came from; `where` is the core's."""

from __future__ import annotations

import builtins
from typing import Any, Literal, NamedTuple

import numpy as np

from minigrad.numpy._common import pair_of, tensor_of
from minigrad.numpy._manipulation import take_along_axis
from minigrad.tensor import Tensor, axes, constant
from minigrad.tensor import where as _where

__all__ = [
    "argmax", "argmin", "argsort", "isin", "nonzero", "searchsorted", "sort",
    "unique_all", "unique_counts", "unique_inverse", "unique_values", "where",
]  # fmt: skip


def where(condition: Any, x1: Any, x2: Any, /) -> Tensor:
    a, b = pair_of(x1, x2)
    if a.dtype.kind not in "fc" and b.dtype.kind not in "fc":
        mask = np.asarray(tensor_of(condition).data, dtype=bool)
        return constant(np.where(mask, a.data, b.data))
    return _where(condition, a, b)


def argmax(x: Any, /, *, axis: int | None = None, keepdims: builtins.bool = False) -> Tensor:
    return constant(np.asarray(np.argmax(tensor_of(x).data, axis=axis, keepdims=keepdims)))


def argmin(x: Any, /, *, axis: int | None = None, keepdims: builtins.bool = False) -> Tensor:
    return constant(np.asarray(np.argmin(tensor_of(x).data, axis=axis, keepdims=keepdims)))


def nonzero(x: Any, /) -> tuple[Tensor, ...]:
    return tuple(constant(i) for i in np.nonzero(tensor_of(x).data))


def searchsorted(x1: Any, x2: Any, /, *, side: str = "left", sorter: Any = None) -> Tensor:
    order = None if sorter is None else tensor_of(sorter).data
    found = np.searchsorted(tensor_of(x1).data, tensor_of(x2).data, side=side, sorter=order)  # type: ignore[call-overload]
    return constant(np.asarray(found))


def argsort(x: Any, /, *, axis: int = -1, descending: builtins.bool = False,
            stable: builtins.bool = True) -> Tensor:  # fmt: skip
    data = tensor_of(x).data
    (ax,) = axes(axis, data.ndim) if data.ndim else (0,)
    if not data.ndim:
        return constant(np.asarray(0))
    kind: Literal["stable", "quicksort"] = "stable" if stable else "quicksort"
    if not descending:
        return constant(np.argsort(data, axis=ax, kind=kind))
    # descending and stable: sort the reversed array, then count positions from the end
    backwards = np.flip(np.argsort(np.flip(data, axis=ax), axis=ax, kind=kind), axis=ax)
    return constant(data.shape[ax] - 1 - backwards)


def sort(x: Any, /, *, axis: int = -1, descending: builtins.bool = False,
         stable: builtins.bool = True) -> Tensor:  # fmt: skip
    a = tensor_of(x)
    if not a.ndim:
        return a
    order = argsort(a, axis=axis, descending=descending, stable=stable)
    # a gather at the sorted positions: each value's gradient goes back to where it came from
    return take_along_axis(a, order, axis=axis)


class UniqueAll(NamedTuple):
    values: Tensor
    indices: Tensor
    inverse_indices: Tensor
    counts: Tensor


class UniqueCounts(NamedTuple):
    values: Tensor
    counts: Tensor


class UniqueInverse(NamedTuple):
    values: Tensor
    inverse_indices: Tensor


def _unique(x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    data = tensor_of(x).data
    values, index, inverse, counts = np.unique(
        data, return_index=True, return_inverse=True, return_counts=True, equal_nan=False
    )
    return values, index, inverse.reshape(data.shape), counts


def unique_all(x: Any, /) -> UniqueAll:
    """Distinct values (constants), where each first occurs, the inverse map and the counts."""
    values, index, inverse, counts = _unique(x)
    return UniqueAll(constant(values), constant(index), constant(inverse), constant(counts))


def unique_counts(x: Any, /) -> UniqueCounts:
    values, _, _, counts = _unique(x)
    return UniqueCounts(constant(values), constant(counts))


def unique_inverse(x: Any, /) -> UniqueInverse:
    values, _, inverse, _ = _unique(x)
    return UniqueInverse(constant(values), constant(inverse))


def unique_values(x: Any, /) -> Tensor:
    return constant(_unique(x)[0])


def isin(x1: Any, x2: Any, /, *, invert: builtins.bool = False) -> Tensor:
    a, b = pair_of(x1, x2)
    return constant(np.isin(a.data, b.data, invert=invert))
