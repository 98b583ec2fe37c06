"""Data-parallel runs on torch.distributed and jax.sharding equal the single-process result.

Each engine runs every case once (a module-scoped fixture, two runs at a time, which also
checks that runs at once do not collide); the tests then look at the results from every side.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.distributed.helpers import (
    CASES,
    ITERATIONS,
    Case,
    compare,
    gradient_scale,
    labels,
    needs,
    processes_mentioning,
)
from verifiers.compare import Tolerance, worst_difference
from verifiers.distributed import (
    ShardedResult,
    check_mean_of_means,
    combine_true,
    run_jax,
    run_torch,
    shard_rows,
)
from verifiers.models.mse import gradient_scales, loss_scale

LAUNCHERS = {"torch": run_torch, "jax": run_jax}
ENGINES = [pytest.param(name, marks=needs(name)) for name in LAUNCHERS]


class Runs:
    """Every case's result on one engine, with when each run started and ended."""

    def __init__(self, engine: str, workdir: Path) -> None:
        self.engine = engine
        self.workdir = workdir
        self.results: dict[str, ShardedResult] = {}
        self.spans: dict[str, tuple[float, float]] = {}

    def launch(self, case: Case) -> None:
        X, y = case.data()
        started = time.monotonic()
        self.results[case.name] = LAUNCHERS[self.engine](
            X, y, case.theta0(), workers=case.workers, lr=case.lr, iterations=ITERATIONS,
            timeout=180, workdir=self.workdir,
        )  # fmt: skip
        self.spans[case.name] = (started, time.monotonic())


@pytest.fixture(scope="module", params=ENGINES)
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    runs = Runs(request.param, tmp_path_factory.mktemp(f"sharded-{request.param}"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(runs.launch, CASES))  # list(): re-raises a run's error here
    return runs


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


def test_sharded_equals_single_process(runs: Runs, case: Case) -> None:
    comparison = compare(case, runs.results[case.name])
    assert comparison.gradient.ok, comparison.gradient.describe()
    assert comparison.descent.ok, comparison.descent.describe()


def test_shape_of_the_run(runs: Runs, case: Case) -> None:
    result = runs.results[case.name]
    assert result.engine == runs.engine
    assert result.workers == case.workers
    assert result.shard_rows == shard_rows(case.rows, case.workers)
    assert [p.rows for p in result.per_shard] == result.shard_rows
    if runs.engine == "torch":
        assert result.backend == "gloo"
    else:
        assert result.backend == f"jax.sharding ({case.workers} cpu devices)"
    assert result.device == "cpu"
    assert result.gradient.dtype == np.float64
    assert result.descent.losses.dtype == np.float64
    assert result.descent.seconds >= 0
    assert result.seconds > 0


def test_divergence_stops_where_one_process_stops(runs: Runs) -> None:
    case = next(c for c in CASES if "diverges" in c.name)
    descent = runs.results[case.name].descent
    assert descent.diverged_at is not None
    assert descent.steps == descent.diverged_at < ITERATIONS


def test_each_shard_reports_its_own_sums(runs: Runs, case: Case) -> None:
    """Per-shard sums are each shard's alone (not already all-reduced), and add up to the whole."""
    result = runs.results[case.name]
    X, y = case.data()
    theta0 = case.theta0()
    b, w = theta0[0], theta0[1:]
    start = 0
    for k, part in enumerate(result.per_shard):
        rows = slice(start, start + part.rows)
        start += part.rows
        Xk, yk = X[rows], y[rows]
        r = (yk - (Xk @ w + b)).astype(np.float64)
        expected = np.concatenate([[r @ r, -2 * r.sum()], -2 * (Xk.astype(np.float64).T @ r)])
        scale = part.rows * np.concatenate(
            [[loss_scale(b, w, Xk, yk)], gradient_scales(b, w, Xk, yk)]
        )
        difference = worst_difference(
            np.concatenate([[part.loss_sum], part.gradient_sum]),
            expected,
            scale,
            Tolerance.for_dtype(case.dtype, part.rows),
            [f"shard {k}: sum of {label}" for label in ["loss", *labels(len(w))]],
        )
        assert difference.ok, difference.describe()
    combined = combine_true(result.per_shard)
    tolerance = Tolerance.for_dtype(case.dtype, case.rows)
    difference = worst_difference(
        combined.gradient, result.gradient, gradient_scale(case), tolerance, labels(len(w))
    )
    assert difference.ok, difference.describe()


def test_mean_of_means_is_caught_on_uneven_shards_only(runs: Runs, case: Case) -> None:
    result = runs.results[case.name]
    check = check_mean_of_means(
        result.per_shard,
        tolerance=Tolerance.for_dtype(case.dtype, case.rows),
        scale=gradient_scale(case),
    )
    assert check.ok == case.even, check.explanation
    if case.even:
        assert "right here" in check.explanation
    else:
        assert "differ in size" in check.explanation
        assert f"divide by the total row count, {case.rows}" in check.explanation


def test_mean_of_means_explained_in_words(runs: Runs) -> None:
    result = runs.results[CASES[0].name]  # 100 rows over 3: 34/33/33
    check = check_mean_of_means(
        result.per_shard,
        tolerance=Tolerance.for_dtype("float64", 100),
        scale=gradient_scale(CASES[0]),
    )
    assert "each row of the 34-row shard by 1/102" in check.explanation
    assert "each row of the two 33-row shards by 1/99" in check.explanation
    assert "instead of every row by 1/100" in check.explanation
    assert "dL/dw = " in check.explanation
    assert "%" in check.explanation


def test_runs_at_once_do_not_collide(runs: Runs) -> None:
    """Two runs overlapped in time, each with its own store port and directory, and both are
    right (test_sharded_equals_single_process); nothing of theirs is left."""
    spans = sorted(runs.spans.values())
    overlapping = any(a_end > b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    assert overlapping, "the fixture should have run two cases at once"
    assert list(runs.workdir.iterdir()) == []  # every private directory removed
    assert processes_mentioning(str(runs.workdir)) == []


@needs("torch")
def test_a_shortened_descent_is_sharded_over_as_many_iterations(monkeypatch) -> None:
    # On large data the engines beside the hand formulas and the cheapest exact engine descend
    # the first iterations only (verifiers.plan._share_descents); the sharded descent of such
    # an engine runs as many, so that its final θ is compared with the same step's.
    from verifiers import Settings, verify
    from verifiers.data import load_csv
    from verifiers.models import MODELS
    from verifiers.settings import Limits

    data = load_csv(Path(__file__).resolve().parents[2] / "data" / "data.csv")
    work = MODELS["mse"](data).work()
    monkeypatch.setattr("verifiers.plan.LIMITS", Limits(companion_work=20 * work))
    settings = Settings(engines=("manual", "minigrad", "torch"), iterations=100, shards=2)
    report = verify(data, settings)
    torch = report.engines["torch"]
    assert torch.capped_iterations == 20
    assert torch.trajectory.steps == 20
    assert report.engines["minigrad"].trajectory.steps == 100
    assert torch.sharded.descent.steps == 20
    assert torch.vs_single_process.ok, torch.vs_single_process
    assert report.ok, report.failures
