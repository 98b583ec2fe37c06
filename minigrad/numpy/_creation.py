"""Making arrays, and the functions on data types. Every array made here is a constant (a leaf
with ``requires_grad == False``); integers and booleans keep their dtype."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from minigrad.numpy._common import tensor_of
from minigrad.tensor import Tensor, constant

__all__ = [
    "arange", "asarray", "astype", "can_cast", "empty", "empty_like", "eye", "finfo",
    "from_dlpack", "full", "full_like", "iinfo", "isdtype", "linspace", "ones", "ones_like",
    "result_type", "zeros", "zeros_like",
]  # fmt: skip


def _float_unless(dtype: Any) -> Any:
    return np.float64 if dtype is None else dtype  # (a numpy dtype object is falsy: no `or`)


def _dtype_of(x: Any) -> Any:
    return x.dtype if isinstance(x, Tensor) else np.dtype(x)


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: Any = None) -> Tensor:
    """`obj` as a Tensor: a Tensor as it is (unless another dtype or a copy is asked for), else
    a constant in the dtype numpy gives (Python floats float64, ints int64, bools bool)."""
    if isinstance(obj, Tensor):
        if dtype is not None and np.dtype(dtype) != obj.dtype:
            return obj.astype(dtype)
        return constant(np.array(obj.data)) if copy else obj
    if isinstance(obj, (list, tuple)) and builtins.any(isinstance(o, Tensor) for o in obj):
        obj = [np.asarray(o.data) if isinstance(o, Tensor) else o for o in obj]
    if copy:
        return constant(np.array(obj, dtype=dtype, copy=True))
    return constant(np.asarray(obj, dtype=dtype))


def astype(x: Any, dtype: Any, /, *, copy: builtins.bool = True, device: Any = None) -> Tensor:
    a = tensor_of(x)
    if np.dtype(dtype) == a.dtype:
        return constant(np.array(a.data)) if copy and not a.requires_grad else a
    return a.astype(dtype)


def zeros(shape: Any, *, dtype: Any = None, device: Any = None) -> Tensor:
    return constant(np.zeros(shape, dtype=_float_unless(dtype)))


def ones(shape: Any, *, dtype: Any = None, device: Any = None) -> Tensor:
    return constant(np.ones(shape, dtype=_float_unless(dtype)))


def empty(shape: Any, *, dtype: Any = None, device: Any = None) -> Tensor:
    return zeros(shape, dtype=dtype)


def full(shape: Any, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Tensor:
    if dtype is None:  # the fill value's kind: an int fills int64, a bool bool, else float64
        dtype = np.asarray(fill_value).dtype if isinstance(fill_value, (bool, int)) else np.float64
    return constant(np.full(shape, fill_value, dtype=dtype))


def zeros_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Tensor:
    a = tensor_of(x)
    return constant(np.zeros(a.shape, dtype=a.dtype if dtype is None else dtype))


def ones_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Tensor:
    a = tensor_of(x)
    return constant(np.ones(a.shape, dtype=a.dtype if dtype is None else dtype))


def empty_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Tensor:
    return zeros_like(x, dtype=dtype)


def full_like(x: Any, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Tensor:
    a = tensor_of(x)
    return constant(np.full(a.shape, fill_value, dtype=a.dtype if dtype is None else dtype))


def eye(n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None,
        device: Any = None) -> Tensor:  # fmt: skip
    return constant(np.eye(n_rows, n_cols, k=k, dtype=_float_unless(dtype)))


def arange(start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None,
           device: Any = None) -> Tensor:  # fmt: skip
    """Evenly spaced values in [start, stop): integers when every argument is an integer."""
    return constant(np.arange(start, stop, step, dtype=dtype))


def linspace(start: Any, stop: Any, /, num: int, *, dtype: Any = None, device: Any = None,
             endpoint: builtins.bool = True) -> Tensor:  # fmt: skip
    return constant(np.linspace(start, stop, num, endpoint=endpoint, dtype=_float_unless(dtype)))


def from_dlpack(x: Any, /, *, device: Any = None, copy: Any = None) -> Tensor:
    return constant(np.from_dlpack(x))


# ---- data types ---------------------------------------------------------------------------------
def finfo(type: Any, /) -> Any:
    return np.finfo(_dtype_of(type))


def iinfo(type: Any, /) -> Any:
    return np.iinfo(_dtype_of(type))


def can_cast(from_: Any, to: Any, /) -> builtins.bool:
    return builtins.bool(np.can_cast(_dtype_of(from_), np.dtype(to), casting="safe"))


def result_type(*arrays_and_dtypes: Any) -> Any:
    """The dtype the standard's promotion gives; Python numbers do not change it."""
    typed = [_dtype_of(a) for a in arrays_and_dtypes if not isinstance(a, (bool, int, float))]
    numbers = [a for a in arrays_and_dtypes if isinstance(a, (bool, int, float))]
    if not typed:
        return np.result_type(*numbers)
    result = np.result_type(*typed)
    if builtins.any(isinstance(n, float) for n in numbers) and result.kind not in "fc":
        return np.dtype(np.float64)
    return result


_KINDS = {
    "bool": "b", "signed integer": "i", "unsigned integer": "u", "integral": "iu",
    "real floating": "f", "complex floating": "c", "numeric": "iufc",
}  # fmt: skip


def isdtype(dtype: Any, kind: Any) -> builtins.bool:
    """Whether `dtype` is of `kind` ("real floating", "bool", ... or a dtype), as the standard."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    dt = np.dtype(dtype)
    return builtins.any(
        dt.kind in _KINDS[k] if isinstance(k, str) else dt == np.dtype(k) for k in kinds
    )
