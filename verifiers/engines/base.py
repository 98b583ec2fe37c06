"""The one small interface every engine implements.

An engine is built for one data set, then answers three questions at a parameter vector
``θ = (b, w_1, ..., w_d)``: the loss and its gradient (:meth:`Engine.evaluate`), the Hessian
(:meth:`Engine.hessian`), and where gradient descent from θ goes (:meth:`Engine.descend`).
Numbers cross the interface as numpy arrays and Python floats, whatever the engine uses inside.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from verifiers.data import Dataset

__all__ = [
    "CHUNK_ROWS",
    "DIVERGENCE_FACTOR",
    "Engine",
    "EngineUnavailable",
    "Evaluation",
    "Trajectory",
    "diverged",
    "first_divergence",
    "row_chunks",
]

# Engines whose intermediate arrays are as long as the data work through it this many rows at a
# time and add up the per-chunk losses and gradients (the MSE is a sum over points). It bounds
# memory on large inputs, and it is faster: 65,536 float64 values (512 KiB) stay in the CPU cache
# and below the size at which every new array costs the operating system fresh pages.
CHUNK_ROWS = 1 << 16

# A descent has diverged at the first iteration whose loss is not finite or has grown past this
# many times the starting loss.
DIVERGENCE_FACTOR = 1e6

Progress = Callable[[int], None]  # called with the number of iterations done so far


class EngineUnavailable(RuntimeError):
    """An engine cannot run here: its package is missing or the device asked for is absent."""

    def __init__(self, engine: str, reason: str, install: str | None = None) -> None:
        self.engine = engine
        self.reason = reason
        self.install = install
        super().__init__(f"{engine}: {reason}" + (f" (install with: {install})" if install else ""))


@dataclass
class Evaluation:
    """The loss and its gradient ``(dL/db, dL/dw_1, ..., dL/dw_d)`` at one θ."""

    loss: float
    gradient: np.ndarray


@dataclass
class Trajectory:
    """The result of a descent.

    ``losses[k]`` is the loss at θ after k steps, for k = 0 .. `steps`; `theta` is θ after `steps`
    steps. When the descent diverged, `steps` is the iteration where it did (``diverged_at``)
    and the descent stopped there.
    """

    theta: np.ndarray
    losses: np.ndarray
    seconds: float
    diverged_at: int | None = None

    @property
    def steps(self) -> int:
        return len(self.losses) - 1


def row_chunks(rows: int, size: int | None = None) -> list[slice]:
    """Slices that cover rows 0..rows in order, `size` (default CHUNK_ROWS) rows each."""
    size = max(CHUNK_ROWS if size is None else size, 1)
    return [slice(start, min(start + size, rows)) for start in range(0, rows, size)]


def first_divergence(losses: np.ndarray) -> int | None:
    """The first index whose loss is not finite or exceeds DIVERGENCE_FACTOR × the first."""
    limit = DIVERGENCE_FACTOR * abs(float(losses[0]))
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(losses) | (losses > limit)
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


class Engine(ABC):
    """Base class: subclasses set `name` and `summary` and implement :meth:`evaluate`."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for --help and the README

    def __init__(self, data: Dataset, device: str = "auto") -> None:
        self.data = data
        self.dtype = data.dtype
        self.device = "cpu"

    def prepare(self, iterations: int) -> bool:
        """Start slow one-off work (compiling) for a descent of `iterations` steps; optional.

        It may run in the background; the engine's methods wait for it when they need it.
        Returns whether background work was started (most engines have nothing to prepare).
        """
        return False

    @abstractmethod
    def evaluate(self, theta: np.ndarray) -> Evaluation:
        """Loss and gradient at θ."""

    def hessian(self, theta: np.ndarray) -> np.ndarray | None:
        """The (d+1)×(d+1) Hessian at θ, or None when this engine has no way to compute it."""
        return None

    def affordable_evaluations(self, seconds: float) -> int | None:
        """How many evaluations (a descent step costs about one) fit in about `seconds`.

        None when there is no practical limit; only the per-point Python loop has one.
        """
        return None

    def hessian_noise(self, theta: np.ndarray) -> np.ndarray | float:
        """Extra Σ|terms|-like scale of this engine's own Hessian error (finite differences)."""
        return 0.0

    def descend(
        self,
        theta: np.ndarray,
        lr: float,
        iterations: int,
        progress: Progress | None = None,
    ) -> Trajectory:
        """Plain gradient descent ``θ ← θ - lr·∇L(θ)`` for `iterations` steps from θ.

        This generic version calls :meth:`evaluate` once per step; engines that can run the loop
        faster (on a device, compiled) override it with the same arithmetic.
        """
        theta = np.array(theta, dtype=self.dtype)
        lr = self.dtype.type(lr)
        losses = np.empty(iterations + 1)
        report_every = max(iterations // 100, 1)
        started = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(iterations + 1):
                evaluation = self.evaluate(theta)
                losses[k] = evaluation.loss
                if k == iterations or diverged(losses[k], losses[0]):
                    break
                theta = theta - lr * evaluation.gradient
                if progress and (k + 1) % report_every == 0:
                    progress(k + 1)
        seconds = time.perf_counter() - started
        return finish_trajectory(theta, losses[: k + 1], seconds)


def diverged(loss: float, start_loss: float) -> bool:
    """Whether a descent that started at `start_loss` has diverged by reaching `loss`."""
    return not np.isfinite(loss) or loss > DIVERGENCE_FACTOR * abs(start_loss)


def finish_trajectory(theta: np.ndarray, losses: np.ndarray, seconds: float) -> Trajectory:
    """A Trajectory with `diverged_at` filled in from the losses."""
    return Trajectory(
        theta=np.asarray(theta, dtype=np.float64),
        losses=np.asarray(losses, dtype=np.float64),
        seconds=seconds,
        diverged_at=first_divergence(np.asarray(losses, dtype=np.float64)),
    )
