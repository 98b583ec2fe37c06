"""Data-parallel gradients on real distributed engines: is the sharded gradient the gradient?

When the data outgrows one process, each worker computes its shard's share and the shares are
combined (all-reduced). This package runs the loss, gradient and descent of any model that
declares itself shardable that way on real engines, on this machine; every worker builds the
model from the registry and adds up its own per-row losses (:mod:`verifiers.distributed.model`):

- :func:`run_torch`: K processes joined by ``torch.distributed`` (gloo on the CPU, NCCL when
  every worker has a GPU), each reading its own contiguous shard of rows; the same worker runs
  under torchrun across machines (:mod:`verifiers.distributed.torch_worker`);
- :func:`run_jax`: the rows sharded over K jax devices with ``jax.sharding``;

then checks the result against the single-process one (:func:`compare_with_single`) and checks
hand-written combinations of the shards' results: the classic "mean of per-shard means", wrong
whenever shards differ in size (:func:`check_mean_of_means`), and a user's own
(:func:`load_combination`, :func:`check_combination`).

Shards: 100 rows over 3 workers are 34, 33, 33 (:func:`shard_rows`); the loss is normalised by
the total row count N, never per worker. Tolerances: see :mod:`verifiers.distributed.check`.
Failures: a worker that fails, dies or hangs is a :class:`ShardedError` naming the rank; every
worker is stopped and the temporary files removed (:mod:`verifiers.distributed.processes`).

Importing this package needs numpy only; torch and jax are needed when their run is asked for.
"""

from __future__ import annotations

from verifiers.distributed.check import ShardedComparison, compare_with_single
from verifiers.distributed.combine import (
    Combination,
    CombinationCheck,
    CombinationError,
    check_combination,
    check_mean_of_means,
    combine_mean_of_means,
    combine_true,
    explain_mean_of_means,
    load_combination,
    shard_inputs,
)
from verifiers.distributed.launch import DEFAULT_TIMEOUT, run_jax, run_torch
from verifiers.distributed.model import shardable_models
from verifiers.distributed.shards import (
    ShardedError,
    ShardedResult,
    ShardPart,
    shard_bounds,
    shard_rows,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "Combination",
    "CombinationCheck",
    "CombinationError",
    "ShardPart",
    "ShardedComparison",
    "ShardedError",
    "ShardedResult",
    "check_combination",
    "check_mean_of_means",
    "combine_mean_of_means",
    "combine_true",
    "compare_with_single",
    "explain_mean_of_means",
    "load_combination",
    "run_jax",
    "run_torch",
    "shard_bounds",
    "shard_inputs",
    "shard_rows",
    "shardable_models",
]
