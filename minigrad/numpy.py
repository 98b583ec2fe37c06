"""minigrad's array namespace: the functions of the Python array API standard that it supports.

One loss written against the standard runs on every engine: ``xp`` is numpy or torch (through
array-api-compat), ``jax.numpy``, or this module::

    import minigrad.numpy as xp

    def loss(b, w, X, y, xp):
        r = y - (X @ w + b)
        return xp.mean(r**2)

It is a subset of the standard (version ``__array_api_version__``): real floating dtypes only
(other data becomes float64), no in-place element assignment, no ``linalg`` or ``fft``. Every
function records its operation, so gradients flow through it; comparisons and tests such as
``isnan`` give constant boolean tensors. A name the standard has and minigrad does not raises an
AttributeError that says so. ``Tensor.__array_namespace__()`` returns this module, so
``array_api_compat.array_namespace(tensor)`` finds it.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad import tensor as _t
from minigrad.functional import square, std, var
from minigrad.tensor import Tensor, clip, logaddexp, maximum, minimum, where

__array_api_version__ = "2023.12"
__all__ = [
    "abs", "add", "all", "any", "arange", "asarray", "astype", "bool", "broadcast_to", "clip",
    "concat", "cos", "divide", "e", "empty", "empty_like", "equal", "exp", "expand_dims",
    "expm1", "eye", "finfo", "flip", "float32", "float64", "full", "full_like", "greater",
    "greater_equal", "iinfo", "inf", "int32", "int64", "isdtype", "isfinite", "isinf", "isnan",
    "less", "less_equal", "linspace", "log", "log1p", "log2", "log10", "logaddexp",
    "logical_and", "logical_not", "logical_or", "matmul", "matrix_transpose", "max", "maximum",
    "mean", "min", "minimum", "multiply", "nan", "negative", "newaxis", "not_equal", "ones",
    "ones_like", "permute_dims", "pi", "positive", "pow", "reshape", "sign", "sin", "sqrt",
    "square", "squeeze", "stack", "std", "subtract", "sum", "tan", "tanh", "var", "vecdot",
    "where", "zeros", "zeros_like",
]  # fmt: skip

# ---- constants and dtypes -----------------------------------------------------------------------
e = np.e
pi = np.pi
inf = np.inf
nan = np.nan
newaxis = None
float32 = np.float32
float64 = np.float64
bool = np.bool_
int32 = np.int32
int64 = np.int64
finfo = np.finfo
iinfo = np.iinfo


def _float64_unless(dtype: Any) -> Any:
    return np.float64 if dtype is None else dtype  # (a numpy dtype object is falsy: no `or`)


def _t_of(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def isdtype(dtype: Any, kind: Any) -> builtins.bool:
    """Whether `dtype` is of `kind` ("real floating", "bool", ... or a dtype), as the standard."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {"bool": "b", "signed integer": "i", "unsigned integer": "u", "integral": "iu",
             "real floating": "f", "complex floating": "c", "numeric": "iufc"}  # fmt: skip
    dtype = np.dtype(dtype)
    return builtins.any(
        dtype.kind in names[k] if isinstance(k, str) else dtype == np.dtype(k) for k in kinds
    )


# ---- creation -----------------------------------------------------------------------------------
def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: Any = None) -> Tensor:
    """`obj` as a Tensor (a Tensor is returned as it is unless a dtype or a copy is asked for)."""
    if isinstance(obj, Tensor):
        if dtype is not None and np.dtype(dtype) != obj.dtype:
            return obj.astype(dtype)
        return Tensor(np.array(obj.data)) if copy else obj
    data = np.array(obj, dtype=dtype, copy=builtins.bool(copy)) if copy else np.asarray(obj, dtype)
    return Tensor(data)


def zeros(shape: Any, *, dtype: Any = None, device: Any = None) -> Tensor:
    return _t.zeros(shape, dtype=_float64_unless(dtype))


def ones(shape: Any, *, dtype: Any = None, device: Any = None) -> Tensor:
    return _t.ones(shape, dtype=_float64_unless(dtype))


def empty(shape: Any, *, dtype: Any = None, device: Any = None) -> Tensor:
    return _t.zeros(shape, dtype=_float64_unless(dtype))


def full(shape: Any, fill_value: float, *, dtype: Any = None, device: Any = None) -> Tensor:
    return _t.full(shape, fill_value, dtype=_float64_unless(dtype))


def zeros_like(x: Tensor, /, *, dtype: Any = None, device: Any = None) -> Tensor:
    return _t.zeros(x.shape, dtype=_t_of(x).dtype if dtype is None else dtype)


def ones_like(x: Tensor, /, *, dtype: Any = None, device: Any = None) -> Tensor:
    return _t.ones(x.shape, dtype=_t_of(x).dtype if dtype is None else dtype)


def empty_like(x: Tensor, /, *, dtype: Any = None, device: Any = None) -> Tensor:
    return zeros_like(x, dtype=dtype)


def full_like(x: Tensor, /, fill_value: float, *, dtype: Any = None, device: Any = None) -> Tensor:
    return _t.full(x.shape, fill_value, dtype=_t_of(x).dtype if dtype is None else dtype)


def eye(
    n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None, device: Any = None
) -> Tensor:
    return Tensor(np.eye(n_rows, n_cols, k=k, dtype=_float64_unless(dtype)))


def arange(start: float, /, stop: float | None = None, step: float = 1, *, dtype: Any = None,
           device: Any = None) -> Tensor:  # fmt: skip
    return Tensor(np.arange(start, stop, step, dtype=_float64_unless(dtype)))


def linspace(start: float, stop: float, /, num: int, *, dtype: Any = None, device: Any = None,
             endpoint: builtins.bool = True) -> Tensor:  # fmt: skip
    return Tensor(np.linspace(start, stop, num, endpoint=endpoint, dtype=_float64_unless(dtype)))


def astype(x: Tensor, dtype: Any, /, *, copy: builtins.bool = True, device: Any = None) -> Tensor:
    x = _t_of(x)
    return x if not copy and x.dtype == np.dtype(dtype) else x.astype(dtype)


# ---- elementwise --------------------------------------------------------------------------------
def abs(x: Tensor, /) -> Tensor:
    return _t_of(x).abs()


def negative(x: Tensor, /) -> Tensor:
    return -_t_of(x)


def positive(x: Tensor, /) -> Tensor:
    return _t_of(x)


def add(x1: Any, x2: Any, /) -> Tensor:
    a, b = _t._pair(x1, x2)
    return a + b


def subtract(x1: Any, x2: Any, /) -> Tensor:
    a, b = _t._pair(x1, x2)
    return a - b


def multiply(x1: Any, x2: Any, /) -> Tensor:
    a, b = _t._pair(x1, x2)
    return a * b


def divide(x1: Any, x2: Any, /) -> Tensor:
    a, b = _t._pair(x1, x2)
    return a / b


def pow(x1: Any, x2: Any, /) -> Tensor:
    if isinstance(x1, Tensor) and isinstance(x2, (int, float)):
        return x1**x2  # a Python exponent: the scalar rules (a², aᵖ)
    a, b = _t._pair(x1, x2)
    return a**b


def exp(x: Tensor, /) -> Tensor:
    return _t_of(x).exp()


def expm1(x: Tensor, /) -> Tensor:
    return _t_of(x).exp() - 1


def log(x: Tensor, /) -> Tensor:
    return _t_of(x).log()


def log1p(x: Tensor, /) -> Tensor:
    return _t_of(x).log1p()


def log2(x: Tensor, /) -> Tensor:
    return _t_of(x).log() / np.log(2)


def log10(x: Tensor, /) -> Tensor:
    return _t_of(x).log() / np.log(10)


def sqrt(x: Tensor, /) -> Tensor:
    return _t_of(x).sqrt()


def sin(x: Tensor, /) -> Tensor:
    return _t_of(x).sin()


def cos(x: Tensor, /) -> Tensor:
    return _t_of(x).cos()


def tan(x: Tensor, /) -> Tensor:
    x = _t_of(x)
    return x.sin() / x.cos()


def tanh(x: Tensor, /) -> Tensor:
    return _t_of(x).tanh()


def sign(x: Tensor, /) -> Tensor:
    return _t_of(x).sign()


def _compare(function: Any, x1: Any, x2: Any) -> Tensor:
    a, b = _t._pair(x1, x2)
    return _t._constant(function(a.data, b.data))


def equal(x1: Any, x2: Any, /) -> Tensor:
    return _compare(np.equal, x1, x2)


def not_equal(x1: Any, x2: Any, /) -> Tensor:
    return _compare(np.not_equal, x1, x2)


def less(x1: Any, x2: Any, /) -> Tensor:
    return _compare(np.less, x1, x2)


def less_equal(x1: Any, x2: Any, /) -> Tensor:
    return _compare(np.less_equal, x1, x2)


def greater(x1: Any, x2: Any, /) -> Tensor:
    return _compare(np.greater, x1, x2)


def greater_equal(x1: Any, x2: Any, /) -> Tensor:
    return _compare(np.greater_equal, x1, x2)


def logical_and(x1: Any, x2: Any, /) -> Tensor:
    return _compare(np.logical_and, x1, x2)


def logical_or(x1: Any, x2: Any, /) -> Tensor:
    return _compare(np.logical_or, x1, x2)


def logical_not(x: Any, /) -> Tensor:
    return _t._constant(np.logical_not(_t_of(x).data))


def isnan(x: Any, /) -> Tensor:
    return _t._constant(np.isnan(_t_of(x).data))


def isinf(x: Any, /) -> Tensor:
    return _t._constant(np.isinf(_t_of(x).data))


def isfinite(x: Any, /) -> Tensor:
    return _t._constant(np.isfinite(_t_of(x).data))


# ---- reductions ---------------------------------------------------------------------------------
def sum(x: Tensor, /, *, axis: Any = None, dtype: Any = None, keepdims: builtins.bool = False
        ) -> Tensor:  # fmt: skip
    x = _t_of(x) if dtype is None else astype(x, dtype, copy=False)
    return x.sum(axis=axis, keepdims=keepdims)


def mean(x: Tensor, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Tensor:
    return _t_of(x).mean(axis=axis, keepdims=keepdims)


def max(x: Tensor, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Tensor:
    return _t_of(x).max(axis=axis, keepdims=keepdims)


def min(x: Tensor, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Tensor:
    return _t_of(x).min(axis=axis, keepdims=keepdims)


def all(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Tensor:
    return _t._constant(np.all(_t_of(x).data, axis=axis, keepdims=keepdims))


def any(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Tensor:
    return _t._constant(np.any(_t_of(x).data, axis=axis, keepdims=keepdims))


# ---- linear algebra, shapes ---------------------------------------------------------------------
def matmul(x1: Any, x2: Any, /) -> Tensor:
    a, b = _t._pair(x1, x2)
    return a @ b


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Tensor:
    a, b = _t._pair(x1, x2)
    return (a * b).sum(axis=axis)


def matrix_transpose(x: Tensor, /) -> Tensor:
    return _t_of(x).mT


def permute_dims(x: Tensor, /, axes: Sequence[int]) -> Tensor:
    return _t_of(x).transpose(tuple(axes))


def reshape(x: Tensor, /, shape: Sequence[int], *, copy: Any = None) -> Tensor:
    return _t_of(x).reshape(tuple(shape))


def squeeze(x: Tensor, /, axis: Any) -> Tensor:
    return _t_of(x).squeeze(axis)


def expand_dims(x: Tensor, /, *, axis: int = 0) -> Tensor:
    return _t_of(x).expand_dims(axis)


def broadcast_to(x: Tensor, /, shape: Sequence[int]) -> Tensor:
    return _t._broadcast_to(_t_of(x), tuple(shape))


def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Tensor:
    if axis is None:
        return _t.concatenate([_t_of(a).reshape(-1) for a in arrays], axis=0)
    return _t.concatenate(arrays, axis=axis)


def stack(arrays: Sequence[Any], /, *, axis: int = 0) -> Tensor:
    return _t.stack(arrays, axis=axis)


def flip(x: Tensor, /, *, axis: Any = None) -> Tensor:
    x = _t_of(x)
    axes = range(x.ndim) if axis is None else _t._axes(axis, x.ndim)
    return x[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(x.ndim))]


# what the standard has and minigrad does not: named as such in the error
_NOT_SUPPORTED = {
    "acos", "acosh", "argmax", "argmin", "argsort", "asin", "asinh", "atan", "atan2", "atanh",
    "bitwise_and", "bitwise_invert", "bitwise_left_shift", "bitwise_or", "bitwise_right_shift",
    "bitwise_xor", "broadcast_arrays", "can_cast", "ceil", "conj", "copysign", "cosh",
    "count_nonzero", "cumulative_prod", "cumulative_sum", "diff", "fft", "floor",
    "floor_divide", "from_dlpack", "hypot", "imag", "linalg", "logical_xor", "meshgrid",
    "moveaxis", "nextafter", "nonzero", "prod", "real", "reciprocal", "remainder", "repeat",
    "result_type", "roll", "round", "searchsorted", "signbit", "sinh", "sort", "take",
    "take_along_axis", "tensordot", "tile", "tril", "triu", "trunc", "unique_all",
    "unique_counts", "unique_inverse", "unique_values", "unstack",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name.startswith("__"):  # protocol lookups (copy, pickle, ...): the usual error
        raise AttributeError(name)
    what = "an array API function it does not support" if name in _NOT_SUPPORTED else "unknown"
    functions = ", ".join(n for n in __all__ if n.islower() and n not in _CONSTANTS)
    raise AttributeError(
        f"minigrad.numpy has no '{name}' ({what}); minigrad supports a subset of the array API "
        f"standard: {functions}"
    )


_CONSTANTS = {"e", "pi", "inf", "nan", "newaxis", "float32", "float64", "bool", "int32", "int64"}
