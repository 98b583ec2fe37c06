"""Moving elements around: shapes, joins, flips, rolls, repeats, tiles, take, triangles, grids.

Most are written with the core's indexing, reshape, transpose and broadcasting, so their rules
are those ops' rules; `roll` records its own (the gradient rolls back).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad.numpy._common import tensor_of
from minigrad.tensor import Tensor, apply, axes, concatenate, constant, where
from minigrad.tensor import broadcast_to as _broadcast
from minigrad.tensor import stack as _stack

__all__ = [
    "broadcast_arrays", "broadcast_shapes", "broadcast_to", "concat", "expand_dims", "flip",
    "meshgrid", "moveaxis", "permute_dims", "repeat", "reshape", "roll", "squeeze", "stack",
    "take", "take_along_axis", "tile", "tril", "triu", "unstack",
]  # fmt: skip


def reshape(x: Any, /, shape: Sequence[int], *, copy: Any = None) -> Tensor:
    return tensor_of(x).reshape(tuple(shape))


def permute_dims(x: Any, /, axes: Sequence[int]) -> Tensor:
    return tensor_of(x).transpose(tuple(axes))


def squeeze(x: Any, /, axis: Any) -> Tensor:
    return tensor_of(x).squeeze(axis)


def expand_dims(x: Any, /, axis: int = 0) -> Tensor:
    return tensor_of(x).expand_dims(axis)


def moveaxis(x: Any, source: Any, destination: Any, /) -> Tensor:
    a = tensor_of(x)
    src, dst = axes(source, a.ndim), axes(destination, a.ndim)
    order = [i for i in range(a.ndim) if i not in src]
    for d, s in sorted(zip(dst, src, strict=True)):
        order.insert(d, s)
    return a.transpose(tuple(order))


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(*(tuple(s) for s in shapes)))


def broadcast_to(x: Any, /, shape: Sequence[int]) -> Tensor:
    return _broadcast(tensor_of(x), tuple(shape))


def broadcast_arrays(*arrays: Any) -> list[Tensor]:
    tensors = [tensor_of(a) for a in arrays]
    shape = broadcast_shapes(*(t.shape for t in tensors))
    return [broadcast_to(t, shape) for t in tensors]


def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Tensor:
    return concatenate([tensor_of(a) for a in arrays], axis=axis)


def stack(arrays: Sequence[Any], /, *, axis: int = 0) -> Tensor:
    return _stack([tensor_of(a) for a in arrays], axis=axis)


def unstack(x: Any, /, *, axis: int = 0) -> tuple[Tensor, ...]:
    a = tensor_of(x)
    (ax,) = axes(axis, a.ndim)
    head = (slice(None),) * ax
    return tuple(a[(*head, i)] for i in range(a.shape[ax]))


def flip(x: Any, /, *, axis: Any = None) -> Tensor:
    a = tensor_of(x)
    flipped = axes(axis, a.ndim)
    return a[tuple(slice(None, None, -1) if i in flipped else slice(None) for i in range(a.ndim))]


def roll(x: Any, /, shift: Any, *, axis: Any = None) -> Tensor:
    a = tensor_of(x)
    back = tuple(-s for s in shift) if isinstance(shift, (tuple, list)) else -shift
    # rolling moves values, so the gradient is rolled back by the opposite shift
    return apply(
        "roll", lambda p: np.roll(p, shift, axis=axis), (a,),
        lambda g, out: roll(g, back, axis=axis),
    )  # fmt: skip


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> Tensor:
    a = tensor_of(x)
    index = np.asarray(tensor_of(indices).data)
    if axis is None:
        if a.ndim != 1:
            raise ValueError("minigrad: take needs an axis for an array of more than 1-D")
        axis = 0
    (ax,) = axes(axis, a.ndim)
    return a[(slice(None),) * ax + (index,)]  # indexing: its rule adds back at the positions


def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Tensor:
    a = tensor_of(x)
    index = np.asarray(tensor_of(indices).data)
    (ax,) = axes(axis, a.ndim)
    shape = np.broadcast_shapes(
        a.shape[:ax] + a.shape[ax + 1 :], index.shape[:ax] + index.shape[ax + 1 :]
    )
    full = (*shape[:ax], index.shape[ax], *shape[ax:])
    index = np.broadcast_to(index, full)
    grid = list(np.ogrid[tuple(slice(n) for n in full)])
    grid[ax] = index
    return a[tuple(grid)]  # indexing at every position: its rule adds back at the positions


def repeat(x: Any, repeats: Any, /, *, axis: int | None = None) -> Tensor:
    a = tensor_of(x)
    if axis is None:
        a, axis = a.reshape(-1), 0
    (ax,) = axes(axis, a.ndim)
    counts = np.asarray(tensor_of(repeats).data) if isinstance(repeats, Tensor) else repeats
    picks = np.repeat(np.arange(a.shape[ax]), counts)
    return a[(slice(None),) * ax + (picks,)]  # each copy's gradient is added back to its source


def tile(x: Any, repetitions: Sequence[int], /) -> Tensor:
    """`x` repeated: a broadcast of `x` with an axis of copies before each of its axes."""
    a = tensor_of(x)
    reps = tuple(repetitions)
    n = max(len(reps), a.ndim)
    reps = (1,) * (n - len(reps)) + reps
    shape = (1,) * (n - a.ndim) + a.shape
    spread = a.reshape(tuple(v for s in shape for v in (1, s)))
    wide = _broadcast(spread, tuple(v for r, s in zip(reps, shape, strict=True) for v in (r, s)))
    return wide.reshape(tuple(r * s for r, s in zip(reps, shape, strict=True)))


def _triangle(x: Any, k: int, lower: bool) -> Tensor:
    a = tensor_of(x)
    rows, cols = a.shape[-2:]
    keep = np.tri(rows, cols, k, dtype=bool) if lower else ~np.tri(rows, cols, k - 1, dtype=bool)
    return where(keep, a, 0.0) if a.dtype.kind in "fc" else constant(np.where(keep, a.data, 0))


def tril(x: Any, /, *, k: int = 0) -> Tensor:
    return _triangle(x, k, lower=True)


def triu(x: Any, /, *, k: int = 0) -> Tensor:
    return _triangle(x, k, lower=False)


def meshgrid(*arrays: Any, indexing: str = "xy") -> list[Tensor]:
    """Grids of coordinates: each 1-D input reshaped along its own axis and broadcast."""
    tensors = [tensor_of(a) for a in arrays]
    sizes = [t.shape[0] if t.ndim else 1 for t in tensors]
    n = len(tensors)
    if indexing == "xy" and n > 1:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    grids = []
    for i, t in enumerate(tensors):
        position = {0: 1, 1: 0}.get(i, i) if indexing == "xy" and n > 1 else i
        shape = tuple(-1 if j == position else 1 for j in range(n))
        grids.append(broadcast_to(t.reshape(shape), sizes))
    return grids
