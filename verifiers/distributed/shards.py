"""How the rows are split among the workers, and what a data-parallel run returns.

numpy only: the result types are imported by the report without torch or jax.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from verifiers.engines.base import Evaluation, Trajectory

__all__ = ["ShardPart", "ShardedError", "ShardedResult", "shard_bounds", "shard_rows"]


def shard_rows(rows: int, workers: int) -> list[int]:
    """How many rows each worker gets: contiguous shards whose sizes differ by at most one.

    The first ``rows % workers`` shards get the extra row: 100 rows over 3 workers are 34, 33, 33.
    A shard may be empty when there are fewer rows than workers.
    """
    if workers < 1:
        raise ValueError(f"workers must be 1 or more, not {workers}")
    if rows < 0:
        raise ValueError(f"rows must be 0 or more, not {rows}")
    base, extra = divmod(rows, workers)
    return [base + (k < extra) for k in range(workers)]


def shard_bounds(rows: int, workers: int) -> list[slice]:
    """The slice of rows of each worker's shard, in order (see :func:`shard_rows`)."""
    sizes = shard_rows(rows, workers)
    starts = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    return [slice(starts[k], starts[k + 1]) for k in range(workers)]


@dataclass(frozen=True)
class ShardPart:
    """One shard's share at θ0, before any combination.

    `loss_sum` and `gradient_sum` are sums over the shard's rows of the per-row loss and of its
    gradient ``(∂ℓ_i/∂b, ∂ℓ_i/∂w_1, ..., ∂ℓ_i/∂w_d)``: the true loss and gradient are
    ``Σ sums / N``, whatever the shard sizes.
    """

    rows: int
    loss_sum: float
    gradient_sum: np.ndarray

    @property
    def loss_mean(self) -> float:
        """The shard's own mean loss (what a worker that normalises by its own rows computes)."""
        return self.loss_sum / self.rows if self.rows else float("nan")

    @property
    def gradient_mean(self) -> np.ndarray:
        """The gradient of the shard's own mean loss."""
        if not self.rows:
            return np.full_like(self.gradient_sum, np.nan)
        return self.gradient_sum / self.rows


@dataclass
class ShardedResult:
    """A data-parallel run: the loss and gradient at θ0, each shard's share, and the descent.

    `gradient` is θ-ordered ``(dL/db, dL/dw_1, ..., dL/dw_d)``; `descent` follows the rules of
    the single-process engines (``losses[k]`` after k steps; a diverged descent stops at the
    first divergent iteration, θ as it was there). `seconds` is the wall time of the whole run,
    starting the workers included; ``descent.seconds`` is the descent alone, on rank 0.
    """

    engine: str  # "torch" or "jax"
    workers: int
    backend: str  # "gloo", "nccl", "jax.sharding (3 cpu devices)"
    device: str  # where the arithmetic ran: "cpu", "cuda", or jax's platform
    shard_rows: list[int]
    loss: float
    gradient: np.ndarray
    per_shard: list[ShardPart]
    descent: Trajectory
    seconds: float

    @property
    def rows(self) -> int:
        return sum(self.shard_rows)

    @property
    def evaluation(self) -> Evaluation:
        """Loss and gradient at θ0 as the single-process engines return them."""
        return Evaluation(self.loss, self.gradient)


class ShardedError(ValueError):
    """A data-parallel run that did not finish: a worker failed, died or hung.

    ``str()`` is one line naming the backend, the rank (when one is to blame) and the error,
    e.g. ``torch.distributed rank 2 failed: ValueError: ...``. Every worker has been stopped and
    the temporary files removed by the time it is raised.
    """

    def __init__(self, backend: str, reason: str, rank: int | None = None) -> None:
        self.backend = backend
        self.rank = rank
        self.reason = reason
        who = backend if rank is None else f"{backend} rank {rank}"
        super().__init__(f"{who} {reason}")
