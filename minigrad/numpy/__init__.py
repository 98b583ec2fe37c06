"""minigrad's array namespace: the Python array API standard, differentiable.

One loss written against the standard runs on every engine: ``xp`` is numpy or torch (through
array-api-compat), ``jax.numpy``, or this module::

    import minigrad.numpy as xp

    def loss(b, w, X, y, xp):
        r = y - (X @ w + b)
        return xp.mean(r**2)

Every function of the standard (revision ``__array_api_version__``) is here, and the
linear-algebra extension is ``minigrad.numpy.linalg``. Each function with a derivative records
its operation, so gradients flow through it, to any order; the others (comparisons, ``argmax``,
``argsort``, ``nonzero``, the set functions, creation functions) give constants. Integer and
boolean arrays are kept as such, for indices, masks and labels; gradients flow to floating-point
tensors only. Not supported: the ``fft`` extension, and writing into an array in place.

The functions are grouped by kind: ``_elementwise``, ``_statistics``, ``_manipulation``,
``_searching`` (with sorting and sets), ``_creation`` (with the data-type functions) and
``linalg``. ``Tensor.__array_namespace__()`` returns this module, so
``array_api_compat.array_namespace(tensor)`` finds it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.numpy import linalg as linalg
from minigrad.numpy._creation import *  # noqa: F403
from minigrad.numpy._creation import __all__ as _creation
from minigrad.numpy._elementwise import *  # noqa: F403
from minigrad.numpy._elementwise import __all__ as _elementwise
from minigrad.numpy._manipulation import *  # noqa: F403
from minigrad.numpy._manipulation import __all__ as _manipulation
from minigrad.numpy._searching import *  # noqa: F403
from minigrad.numpy._searching import __all__ as _searching
from minigrad.numpy._statistics import *  # noqa: F403
from minigrad.numpy._statistics import __all__ as _statistics
from minigrad.numpy.linalg import matmul as matmul
from minigrad.numpy.linalg import matrix_transpose as matrix_transpose
from minigrad.numpy.linalg import tensordot as tensordot
from minigrad.numpy.linalg import vecdot as vecdot

__array_api_version__ = "2024.12"

# ---- constants and data types -------------------------------------------------------------------
e = np.e
pi = np.pi
inf = np.inf
nan = np.nan
newaxis = None
bool = np.bool_
int8, int16, int32, int64 = np.int8, np.int16, np.int32, np.int64
uint8, uint16, uint32, uint64 = np.uint8, np.uint16, np.uint32, np.uint64
float32, float64 = np.float32, np.float64
complex64, complex128 = np.complex64, np.complex128

_CONSTANTS = ["e", "inf", "nan", "newaxis", "pi"]
_DTYPES = [
    "bool", "complex64", "complex128", "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64",
]  # fmt: skip


class __array_namespace_info__:
    """What this namespace supports: one device (the CPU), numpy's dtypes."""

    def capabilities(self) -> dict[str, Any]:
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}

    def default_device(self) -> str:
        return "cpu"

    def devices(self) -> list[str]:
        return ["cpu"]

    def default_dtypes(self, *, device: Any = None) -> dict[str, Any]:
        return {
            "real floating": np.dtype(np.float64),
            "complex floating": np.dtype(np.complex128),
            "integral": np.dtype(np.int64),
            "indexing": np.dtype(np.int64),
        }

    def dtypes(self, *, device: Any = None, kind: Any = None) -> dict[str, Any]:
        every = {name: np.dtype(globals()[name]) for name in _DTYPES}
        if kind is None:
            return every
        return {name: dt for name, dt in every.items() if isdtype(dt, kind)}  # noqa: F405


__all__ = sorted(
    {
        *_creation, *_elementwise, *_manipulation, *_searching, *_statistics,
        "matmul", "matrix_transpose", "tensordot", "vecdot", "linalg",
        *_CONSTANTS, *_DTYPES, "__array_api_version__", "__array_namespace_info__",
    }
)  # fmt: skip

# what the standard has and minigrad does not: named as such in the error
_NOT_SUPPORTED = {"fft"}


def __getattr__(name: str) -> Any:
    if name.startswith("__"):  # protocol lookups (copy, pickle, ...): the usual error
        raise AttributeError(name)
    what = "an array API extension it does not support" if name in _NOT_SUPPORTED else "unknown"
    functions = ", ".join(n for n in __all__ if n.islower() and n not in _CONSTANTS + _DTYPES)
    raise AttributeError(
        f"minigrad.numpy has no '{name}' ({what}); it has the array API standard's functions: "
        f"{functions}"
    )
