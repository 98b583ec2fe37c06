"""Rows taken a chunk at a time: the one place that decides how big a chunk is.

Every loss here is a sum over rows, so engines, tolerance scales and the least-squares solver
work through the data CHUNK_ROWS rows at a time and add up the per-chunk results. It bounds
memory on large inputs, keeps the working arrays in the CPU cache, and bounds the rounding
error of every sum: no engine adds more than CHUNK_ROWS numbers in one running total (see
:meth:`verifiers.compare.Tolerance.for_dtype`).
"""

from __future__ import annotations

__all__ = ["CHUNK_ROWS", "row_chunks"]

# 65,536 float64 values (512 KiB) stay in the CPU cache and below the size at which every new
# array costs the operating system fresh pages.
CHUNK_ROWS = 1 << 16


def row_chunks(rows: int, size: int | None = None) -> list[slice]:
    """Slices that cover rows 0..rows in order, `size` (default CHUNK_ROWS) rows each."""
    size = max(CHUNK_ROWS if size is None else int(size), 1)
    return [slice(start, min(start + size, rows)) for start in range(0, rows, size)]
