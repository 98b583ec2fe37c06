"""Rows taken a chunk at a time: the one place that decides how big a chunk is.

Every loss here is a sum over rows, so engines, tolerance scales and the least-squares solver
work through the data CHUNK_ROWS rows at a time and add up the per-chunk results. It bounds
memory on large inputs, keeps the working arrays in the CPU cache, and bounds the rounding
error of every sum: no engine adds more than CHUNK_ROWS numbers in one running total (see
:meth:`verifiers.compare.Tolerance.for_dtype`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["CHUNK_ROWS", "on_one_blas_thread", "one_blas_thread", "row_chunks"]

# 65,536 float64 values (512 KiB) stay in the CPU cache and below the size at which every new
# array costs the operating system fresh pages.
CHUNK_ROWS = 1 << 16


def row_chunks(rows: int, size: int | None = None) -> list[slice]:
    """Slices that cover rows 0..rows in order, `size` (default CHUNK_ROWS) rows each."""
    size = max(CHUNK_ROWS if size is None else int(size), 1)
    return [slice(start, min(start + size, rows)) for start in range(0, rows, size)]


class _OneBlasThread:
    """numpy's BLAS on one thread while chunked work runs (process-wide, restored after).

    BLAS gets chunks of at most CHUNK_ROWS rows: too little work to share between threads, and
    on a busy machine a call split over two threads waits for the slower one (a descent step
    measured 4x slower, a least-squares solve 10x). Engines that run at the same time each use
    their own core instead (:mod:`verifiers.concurrency`). Nested and concurrent uses share
    one setting: the first sets it, the last restores it. Without threadpoolctl it does nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._limiter: Any = None
        self._controller: Any = None

    def _limit(self) -> Any:
        if self._controller is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                self._controller = False
            else:
                self._controller = ThreadpoolController()  # finds the BLAS libraries once
        return self._controller.limit(limits=1, user_api="blas") if self._controller else None

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._limiter = self._limit()
            self._depth += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._limiter is not None:
                self._limiter.restore_original_limits()
                self._limiter = None


one_blas_thread = _OneBlasThread()

_Function = TypeVar("_Function", bound=Callable[..., Any])


def on_one_blas_thread(function: _Function) -> _Function:
    """Run `function` under :data:`one_blas_thread`."""

    @functools.wraps(function)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with one_blas_thread:
            return function(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
