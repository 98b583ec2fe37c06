"""`loop`: the hand-derived MSE formulas as the reference example's per-point loop.

It accumulates the gradient one point at a time, in file order, with the same expressions in the
same order as the reference, so it reproduces the published figures bit for bit. It is the
reference for descent comparisons. In float64 it computes with IEEE doubles (Python's floats);
in float32 with numpy's float32. Past CHUNK_ROWS points the running totals restart for each
chunk and the chunks' totals are added (the reference's data has 100 points, one chunk): like
every other engine, no running total adds more than CHUNK_ROWS numbers. It computes the MSE
of the linear model only: for other models it is skipped, with that reason.

The reference's lines are kept as they are (:meth:`LoopEngine.gradient_per_point`,
:meth:`LoopEngine.error_per_point`), and the engine runs the same arithmetic with numpy arrays
(fast path, bit for bit the same; a test compares them): each point's terms are the same
products and sums, correctly rounded whether one at a time or many at once, and the running
totals are ``np.cumsum``, which adds left to right exactly as ``total += term`` does. The
squares of the loss are Python's own ``** 2`` (the C library's pow, which rounds differently
from numpy's ``x*x`` about once in a thousand), one point at a time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from itertools import repeat

import numpy as np

from verifiers.engines.base import (
    Engine,
    Evaluation,
    Progress,
    Trajectory,
    diverged,
    finish_trajectory,
)
from verifiers.models.base import Model

# Cost of one evaluation (a gradient pass and a loss pass), per point and per point and feature:
# measured on a busy 2-core machine at a million points with one feature and at 10,000 points
# with 1,000 features (about 150 ns and 18 ns; the loss's squares, one pow call per point, are
# most of the first), then doubled for slower machines. A fixed rate, not a timing, keeps the
# report the same from run to run.
SECONDS_PER_POINT = 3e-7
SECONDS_PER_POINT_FEATURE = 4e-8
# Rows × features of the arrays the fast path works on at once.
BLOCK_VALUES = 1 << 16


class LoopEngine(Engine):
    name = "loop"
    computes_hessian = False
    # The loop's descent is the reference example's own arithmetic: at its 100 rows it is the
    # figures everything is compared with; on large data the vectorised engines' descents say
    # everything it would, so a few seconds of it are enough (every check point is still done).
    descent_seconds = 3.0

    def __init__(self, model: Model, device: str = "auto") -> None:
        super().__init__(model, device)
        self._n = float(self.data.rows)
        self._one_feature = self.data.features == 1

    @classmethod
    def unsupported(cls, model: Model) -> str | None:
        if model.name != "mse":
            what = "your --loss" if model.name == "loss" else f"the {model.name} model"
            return f"it is the reference example's per-point MSE loop, not {what}"
        return None

    def _chunks(self) -> Iterator[Iterator[tuple[float | list, float]]]:
        """The points (x_i, y_i) in file order, a chunk at a time (converted per chunk).

        x_i is a number for one feature, else a list. Python floats are IEEE doubles; float32
        needs numpy's float32 scalars to stay float32.
        """
        X, y = self.data.X, self.data.y
        features = X[:, 0] if self._one_feature else X
        for rows in self.model.chunks:
            if self.dtype == np.float64:
                yield zip(features[rows].tolist(), y[rows].tolist(), strict=True)
            else:
                yield zip(list(features[rows]), list(y[rows]), strict=True)

    @classmethod
    def estimate_seconds(cls, model: Model) -> float:
        """The expected time of one gradient and one loss pass over the data."""
        features = model.data.features
        return model.data.rows * (SECONDS_PER_POINT + SECONDS_PER_POINT_FEATURE * features)

    def _cast(self, theta: np.ndarray) -> tuple[float, list[float]]:
        values = np.asarray(theta, dtype=self.dtype)
        if self.dtype == np.float64:
            return float(values[0]), values[1:].tolist()
        return values[0], list(values[1:])

    def _zero(self) -> float:
        return 0.0 if self.dtype == np.float64 else self.dtype.type(0)

    # ---- the reference's lines, point by point ------------------------------------------------
    def gradient_per_point(self, b: float, w: list[float]) -> tuple[float, list[float]]:
        n = self._n
        b_total, w_total = self._zero(), [self._zero()] * len(w)
        for points in self._chunks():
            b_grad = self._zero()
            if self._one_feature:  # the reference's own lines, with m renamed w
                m = w[0]
                m_grad = b_grad
                for x, y in points:
                    b_grad += -(2 / n) * (y - ((m * x) + b))
                    m_grad += -(2 / n) * x * (y - ((m * x) + b))
                w_grad = [m_grad]
            else:
                w_grad = [b_grad] * len(w)
                for x, y in points:
                    prediction = _dot(w, x) + b
                    b_grad += -(2 / n) * (y - prediction)
                    for j in range(len(w)):
                        w_grad[j] += -(2 / n) * x[j] * (y - prediction)
            b_total += b_grad
            w_total = [t + g for t, g in zip(w_total, w_grad, strict=True)]
        return b_total, w_total

    def error_per_point(self, b: float, w: list[float]) -> float:
        total = self._zero()
        try:
            for points in self._chunks():
                chunk = self._zero()
                if self._one_feature:
                    m = w[0]
                    for x, y in points:
                        chunk += (y - (m * x + b)) ** 2
                else:
                    for x, y in points:
                        chunk += (y - (_dot(w, x) + b)) ** 2
                total += chunk
        except OverflowError:  # Python's float ** raises where numpy gives inf
            return math.inf
        return total / self._n

    # ---- the same arithmetic on arrays (see the module docstring) ----------------------------
    def _blocks(self) -> Iterator[list[tuple[np.ndarray, np.ndarray]]]:
        """Each chunk of points as blocks of rows small enough for (rows × features) arrays."""
        X, y = self.data.X, self.data.y
        size = max(BLOCK_VALUES // self.data.features, 1)
        for rows in self.model.chunks:
            parts = [slice(s, min(s + size, rows.stop)) for s in range(rows.start, rows.stop, size)]
            yield [(X[part], y[part]) for part in parts]

    def _predictions(self, b: float, w: list[float], X: np.ndarray) -> np.ndarray:
        """``_dot(w, x) + b`` for every row: the products, added left to right (a cumulative
        sum along each row), then b. One feature: the reference's ``(m * x) + b``."""
        if self._one_feature:
            return (w[0] * X[:, 0]) + b
        products = np.asarray(w, dtype=self.dtype) * X
        return np.cumsum(products, axis=1)[:, -1] + b

    def _gradient(self, b: float, w: list[float]) -> tuple[float, list[float]]:
        factor = -(2 / self._n)
        b_total, w_total = self._zero(), [self._zero()] * len(w)
        for blocks in self._blocks():
            b_grad, w_grad = self._zero(), np.full(len(w), self._zero())
            for X, y in blocks:
                residual = y - self._predictions(b, w, X)
                b_terms = factor * residual  # -(2 / n) * (y - prediction)
                w_terms = (factor * X) * residual[:, None]  # -(2 / n) * x * (y - prediction)
                # running totals carried from the last block: (b_grad + t_0) + t_1 + ...
                b_terms[0] = b_grad + b_terms[0]
                w_terms[0] = w_grad + w_terms[0]
                b_grad = np.cumsum(b_terms)[-1]
                w_grad = np.cumsum(w_terms, axis=0)[-1]
            b_total += self._scalar(b_grad)
            w_total = [t + self._scalar(g) for t, g in zip(w_total, w_grad, strict=True)]
        return b_total, w_total

    def _error(self, b: float, w: list[float]) -> float:
        total = self._zero()
        try:
            for blocks in self._blocks():
                chunk = self._zero()
                for X, y in blocks:
                    residual = y - self._predictions(b, w, X)
                    values = residual.tolist() if self.dtype == np.float64 else list(residual)
                    squares = np.fromiter(map(pow, values, repeat(2)), self.dtype, len(values))
                    squares[0] = chunk + squares[0]
                    chunk = np.cumsum(squares)[-1]
                total += self._scalar(chunk)
        except OverflowError:  # Python's float ** raises where numpy gives inf
            return math.inf
        return total / self._n

    def _scalar(self, value: np.generic) -> float:
        """A numpy total as the per-point code holds it: a Python float in float64."""
        return float(value) if self.dtype == np.float64 else value

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
        report_every = max(iterations // 100, 1)
        started = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(1, iterations + 1):
                b_grad, w_grad = self._gradient(b, w)
                b = b - (lr * b_grad)
                w = [w_j - (lr * g_j) for w_j, g_j in zip(w, w_grad, strict=True)]
                losses.append(float(self._error(b, w)))
                if diverged(losses[-1], losses[0]):
                    break
                if progress and k % report_every == 0:
                    progress(k)
        seconds = time.perf_counter() - started
        return finish_trajectory(np.array([b, *w], dtype=np.float64), np.array(losses), seconds)


def _dot(w: list[float], x: list[float]) -> float:
    """``w·x``, summed in order."""
    total = w[0] * x[0]
    for j in range(1, len(w)):
        total += w[j] * x[j]
    return total
