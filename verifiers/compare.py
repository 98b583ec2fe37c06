"""Compare numbers from two engines with tolerances that follow from the dtype.

An element passes when ``|actual - expected| <= atol * scale + rtol * |expected|``. `scale` is the
size of the terms that were summed to make the value (``Σ|terms|``, see
:func:`verifiers.models.mse.gradient_scales`): rounding error grows with it, not with the result,
which near the optimum is almost zero. The worst element (largest difference as a share of what
is allowed) is kept with both values so a failure can say exactly where and by how much.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from verifiers.chunks import CHUNK_ROWS

__all__ = ["Difference", "Tolerance", "worst_difference"]


@dataclass(frozen=True)
class Tolerance:
    """Relative tolerance `rtol`, and `atol` as a multiple of each value's scale (Σ|terms|)."""

    rtol: float
    atol: float

    @classmethod
    def for_dtype(
        cls, dtype: npt.DTypeLike, rows: int, rtol: float | None = None, atol: float | None = None
    ) -> Tolerance:
        """Defaults from the machine epsilon ε of `dtype` and the number of summed rows N.

        ``rtol = 64 ε``, for the few roundings of each term (a residual, a product, an exp).
        ``atol = 8 ε (√min(N, C) + √⌈N/C⌉)`` per unit of Σ|terms|, for the sum over rows. No
        engine adds more than C = CHUNK_ROWS (65,536) numbers in one running total: the chunked
        engines by design, numpy pairwise (its error grows like log N) and BLAS with several
        accumulators at once. Rounding errors are independent and as often up as down, so a
        running total of n terms is typically off by about √n·ε·Σ|terms|/2 (a random walk); the
        totals of the ⌈N/C⌉ chunks are then added. The factor 8 leaves room over the typical
        error (measured: at most 74·ε·Σ|terms| at N = 10⁶ in float32, against 2,056·ε allowed).
        For float64 and N = 100 that is 1.4e-14 and 2.0e-14; for float32 and N = 10⁶, 7.6e-6 and
        2.4e-4: a formula wrong by 0.1% is still caught.
        """
        eps = float(np.finfo(np.dtype(dtype)).eps)
        rows = max(int(rows), 1)
        sums = math.sqrt(min(rows, CHUNK_ROWS)) + math.sqrt(math.ceil(rows / CHUNK_ROWS))
        return cls(
            rtol=64 * eps if rtol is None else rtol,
            atol=8 * eps * sums if atol is None else atol,
        )

    def scaled(self, factor: float) -> Tolerance:
        """This tolerance widened by `factor` (for quantities that accumulate rounding)."""
        return Tolerance(self.rtol * factor, self.atol * factor)


@dataclass(frozen=True)
class Difference:
    """The worst element of one comparison: where it is, both values and what was allowed."""

    where: str
    actual: float
    expected: float
    allowed: float

    @property
    def absolute(self) -> float:
        if math.isnan(self.actual) and math.isnan(self.expected):
            return 0.0
        if self.actual == self.expected:  # equal infinities have no difference
            return 0.0
        return abs(self.actual - self.expected)

    @property
    def relative(self) -> float:
        """``|actual - expected| / |expected|`` (inf when expected is 0 and they differ)."""
        if self.absolute == 0:
            return 0.0
        return self.absolute / abs(self.expected) if self.expected != 0 else math.inf

    @property
    def ratio(self) -> float:
        """The difference as a share of the allowed difference: above 1 is a mismatch."""
        if self.absolute == 0:
            return 0.0
        if math.isnan(self.absolute) or self.allowed == 0:
            return math.inf
        return self.absolute / self.allowed

    @property
    def ok(self) -> bool:
        return self.ratio <= 1.0

    def describe(self) -> str:
        """One line: where, both values and the difference."""
        return (
            f"{self.where}: {self.actual!r} vs {self.expected!r} "
            f"(difference {self.absolute:.3g}, relative {self.relative:.3g}, "
            f"allowed {self.allowed:.3g})"
        )


def worst_difference(
    actual: np.ndarray,
    expected: np.ndarray,
    scale: np.ndarray | float,
    tolerance: Tolerance,
    labels: list[str],
) -> Difference:
    """Compare elementwise; return the element whose difference uses most of its allowance.

    `labels[i]` names element i (flattened) in messages, e.g. ``"dL/dw at start"``.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        raise ValueError(f"cannot compare shapes {a.shape} and {e.shape}")
    s = np.broadcast_to(np.asarray(scale, dtype=np.float64), e.shape).ravel()
    a, e = a.ravel(), e.ravel()
    allowed = tolerance.atol * np.abs(s) + tolerance.rtol * np.abs(e)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # Equal values (infinities included) and two NaNs differ by nothing.
        same = (a == e) | (np.isnan(a) & np.isnan(e))
        absolute = np.where(same, 0.0, np.abs(a - e))
        ratio = np.where(
            same, 0.0, np.where(np.isnan(absolute) | (allowed == 0), np.inf, absolute / allowed)
        )
    ratio = np.nan_to_num(ratio, nan=np.inf)
    worst = int(np.flatnonzero(ratio >= _tie_floor(float(ratio.max())))[0])
    return Difference(labels[worst], float(a[worst]), float(e[worst]), float(allowed[worst]))


# Shares of the allowance within this factor of the largest are a tie: the first element in
# order is reported. (Two derivatives that are both off by exactly half tie up to the last bit
# of a BLAS sum, which differs between CPUs: the report must not.)
TIE = 1e-6


def _tie_floor(largest: float) -> float:
    return largest if math.isinf(largest) or largest == 0 else largest * (1 - TIE)
