"""`loop`: the hand-derived formulas as the reference example's per-point loop.

It accumulates the gradient one point at a time, in file order, with the same expressions in the
same order as the reference, so it reproduces the published figures bit for bit. It is the
reference for descent comparisons. In float64 it runs on Python floats (which are IEEE doubles);
in float32 on numpy float32 scalars.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import numpy as np

from verifiers.data import Dataset
from verifiers.engines.base import (
    Engine,
    Evaluation,
    Progress,
    Trajectory,
    finish_trajectory,
    row_chunks,
)

# Speed of the per-point loop in (points × (features + 1)) per second, measured on a 2-core
# machine (100 points × 1000 steps of one feature take about 0.07 s). A fixed rate rather than a
# timing keeps the cap, and so the report, the same from run to run.
POINT_FEATURES_PER_SECOND = 3e6


class LoopEngine(Engine):
    name = "loop"
    summary = "the hand formulas accumulated point by point, exactly as the reference example"

    def __init__(self, data: Dataset, device: str = "auto") -> None:
        super().__init__(data, device)
        self._chunks = row_chunks(data.rows)
        self._n = float(data.rows)

    def _points(self) -> Iterator[tuple[list, float]]:
        """(x_i, y_i) in file order, converted a chunk at a time to keep memory small.

        Python floats are IEEE doubles; float32 needs numpy's float32 scalars to stay float32.
        """
        X, y = self.data.X, self.data.y
        for rows in self._chunks:
            if self.dtype == np.float64:
                yield from zip(X[rows].tolist(), y[rows].tolist(), strict=True)
            else:
                yield from zip(list(X[rows]), list(y[rows]), strict=True)

    def affordable_iterations(self, seconds: float) -> int:
        """Steps that fit in `seconds` of pure-Python loop (one gradient and one loss pass each)."""
        work_per_step = self.data.rows * (self.data.features + 1)
        return max(int(seconds * POINT_FEATURES_PER_SECOND / work_per_step), 1)

    def _cast(self, theta: np.ndarray) -> tuple[float, list[float]]:
        values = np.asarray(theta, dtype=self.dtype)
        if self.dtype == np.float64:
            return float(values[0]), values[1:].tolist()
        return values[0], list(values[1:])

    def _gradient(self, b: float, w: list[float]) -> tuple[float, list[float]]:
        n = self._n
        b_grad = 0.0 if self.dtype == np.float64 else self.dtype.type(0)
        w_grad = [b_grad] * len(w)
        for x, y in self._points():
            prediction = _dot(w, x) + b
            b_grad += -(2 / n) * (y - prediction)
            for j in range(len(w)):
                w_grad[j] += -(2 / n) * x[j] * (y - prediction)
        return b_grad, w_grad

    def _error(self, b: float, w: list[float]) -> float:
        total = 0.0 if self.dtype == np.float64 else self.dtype.type(0)
        try:
            for x, y in self._points():
                total += (y - (_dot(w, x) + b)) ** 2
        except OverflowError:  # Python's float ** raises where numpy's gives inf
            return math.inf
        return total / self._n

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        b, w = self._cast(theta)
        b_grad, w_grad = self._gradient(b, w)
        return Evaluation(float(self._error(b, w)), np.array([b_grad, *w_grad], dtype=np.float64))

    def descend(
        self, theta: np.ndarray, lr: float, iterations: int, progress: Progress | None = None
    ) -> Trajectory:
        b, w = self._cast(theta)
        lr = float(lr) if self.dtype == np.float64 else self.dtype.type(lr)
        losses = [float(self._error(b, w))]
        limit = 1e6 * abs(losses[0])
        report_every = max(iterations // 100, 1)
        started = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(1, iterations + 1):
                b_grad, w_grad = self._gradient(b, w)
                b = b - (lr * b_grad)
                w = [w_j - (lr * g_j) for w_j, g_j in zip(w, w_grad, strict=True)]
                losses.append(float(self._error(b, w)))
                if not np.isfinite(losses[-1]) or losses[-1] > limit:
                    break
                if progress and k % report_every == 0:
                    progress(k)
        seconds = time.perf_counter() - started
        return finish_trajectory(np.array([b, *w], dtype=np.float64), np.array(losses), seconds)


def _dot(w: list[float], x: list[float]) -> float:
    """``w·x`` in order; for one feature exactly the reference's ``w * x``."""
    if len(w) == 1:
        return w[0] * x[0]
    total = w[0] * x[0]
    for j in range(1, len(w)):
        total += w[j] * x[j]
    return total
