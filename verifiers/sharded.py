"""``--shards K``: the engines that have a distributed form run data-parallel too, and the
shards' results are combined the classic wrong way and the user's way, and judged.

Each engine's sharded run (torch.distributed processes, jax devices; see
:mod:`verifiers.distributed`) must give its own single-process loss, gradient and descent within
the run's tolerance: the same sums, bracketed differently. From the shards' own sums, the
"mean of per-shard means" is computed and explained (right only when every shard has the same
number of rows), and a user's combination (``--combine``) is checked against the true one, a
wrong one being a mismatch like any other.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from verifiers.distributed import (
    check_combination,
    check_mean_of_means,
    compare_with_single,
    shardable_models,
)
from verifiers.engines import Engine
from verifiers.results import Report
from verifiers.words import listing

__all__ = ["check_sharded"]


def check_sharded(
    report: Report, engines: dict[str, Engine], combination: Callable | None = None
) -> None:
    """Run every engine that can data-parallel over ``settings.shards`` workers and judge it."""
    workers = report.settings.shards
    if not workers:
        return
    model, data = report.model, report.data
    if not model.shardable:
        report.notes.append(
            f"--shards: the data-parallel workers compute {listing(shardable_models())} only, "
            f"not {model.name}: nothing was sharded"
        )
        return
    if workers > data.rows:
        report.notes.append(f"--shards {workers}: more workers than the {data.rows} rows")
        return
    start = report.points[report.descent_from].theta
    scales = model.scales_at(start)
    names = report.parameter_names
    first = None
    for name, engine in engines.items():
        entry = report.engines[name]
        if not entry.ran or entry.trajectory is None or entry.start() is None:
            continue
        # as many iterations as its own descent (shortened on large data: plan._share_descents)
        capped = entry.capped_iterations
        iterations = report.settings.iterations if capped is None else capped
        result = engine.run_sharded(start, report.lr, iterations, workers)
        if result is None:
            continue
        first = first or result
        final = [t for t in (start, entry.trajectory.theta) if np.isfinite(t).all()]
        comparison = compare_with_single(
            result,
            entry.evaluations[report.descent_from],
            entry.trajectory,
            tolerance=report.tolerance,
            gradient_scale=np.concatenate([[scales.loss], scales.gradient]),
            loss_scale=max(model.scales_at(t).loss for t in final),
            iterations=iterations,
            theta0=start,
            names=names,
        )
        entry.sharded, entry.vs_single_process = result, comparison
    if first is None:
        report.notes.append("--shards: no engine with a distributed form (torch, jax) ran")
        return
    parts = first.per_shard
    checks = [check_mean_of_means(parts, tolerance=report.tolerance, scale=scales.gradient,
                                  names=names)]  # fmt: skip
    if combination is not None:
        label = report.settings.combine or "the given combination"
        checks.append(
            check_combination(
                combination, parts, tolerance=report.tolerance, scale=scales.gradient,
                names=names, name=label, label=f"--combine {label}",
            )
        )  # fmt: skip
    report.combinations = checks
