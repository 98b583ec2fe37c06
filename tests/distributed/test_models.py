"""Every model that declares itself shardable runs data-parallel, from its own row losses.

The models come from the registry: one added there with ``shardable = True`` is tested here with
no change. For K = 2 and 3 workers over shards of different sizes, with options other than the
defaults (they must travel in the job) and a start away from zero (where a penalty and its
gradient are not zero), torch.distributed and jax sharding give the single-process engine's
loss, gradient and descent within the run's tolerance. The workers have no loss of their own:
run in this process with a model's ``row_losses`` changed, their numbers change with it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest

from tests.distributed.helpers import REPO_ROOT, needs
from verifiers.compare import Difference, Tolerance, worst_difference
from verifiers.data import Dataset, load_csv
from verifiers.distributed import (
    ShardedResult,
    combine_true,
    compare_with_single,
    run_jax,
    run_torch,
    shardable_models,
)
from verifiers.distributed.model import build_model, parameter_shapes, worker_model
from verifiers.engines import engine_class
from verifiers.models import MODELS, Model, ModelOption
from verifiers.models.softmax import SoftmaxModel

SHARDABLE = [name for name, model in MODELS.items() if model.shardable]
NOT_SHARDABLE = [name for name, model in MODELS.items() if not model.shardable]
LAUNCHERS = {"torch": run_torch, "jax": run_jax}
ENGINES = [pytest.param(name, marks=needs(name)) for name in LAUNCHERS]
ITERATIONS = 10


def other_value(option: ModelOption) -> float | int:
    """A value of the option other than its default, which it allows: a job that lost the
    options would then compute another loss than the single-process run."""
    value = option.default + 1 if option.integer else (2 * option.default or 1.0)
    assert option.problem(value) is None, option.problem(value)
    return value


@dataclass(frozen=True)
class ModelCase:
    """One shardable model of the registry on its example data, over `workers` workers."""

    name: str
    workers: int

    @property
    def id(self) -> str:
        return f"{self.name}-K{self.workers}"

    def model(self) -> Model:
        """The model on the example's rows, one dropped where the shards would all be equal."""
        model_class = MODELS[self.name]
        data = load_csv(REPO_ROOT / model_class.example)
        rows = data.rows - (data.rows % self.workers == 0)
        data = Dataset.from_arrays(data.X[:rows], data.y[:rows], path=data.path)
        return model_class(data, {o.name: other_value(o) for o in model_class.options})

    def theta0(self, model: Model) -> np.ndarray:
        rng = np.random.default_rng(self.workers)
        return model.start() + 0.1 * rng.normal(size=model.size)

    @property
    def lr(self) -> float:
        return MODELS[self.name].default_lr


CASES = [ModelCase(name, workers) for name in SHARDABLE for workers in (2, 3)]


def sharded_run(engine: str, case: ModelCase) -> ShardedResult:
    model = case.model()
    return LAUNCHERS[engine](
        model.data.X, model.data.y, case.theta0(model), workers=case.workers, lr=case.lr,
        iterations=ITERATIONS, model=case.name, options=model.settings, timeout=180,
    )  # fmt: skip


@pytest.fixture(scope="module", params=ENGINES)
def runs(request: pytest.FixtureRequest) -> tuple[str, dict[str, ShardedResult]]:
    """Every case's sharded run on one engine, two at a time."""
    engine = request.param
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda case: sharded_run(engine, case), CASES))
    return engine, {case.id: result for case, result in zip(CASES, results, strict=True)}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_sharded_run_is_the_single_process_run(runs, case: ModelCase) -> None:
    engine_name, results = runs
    result = results[case.id]
    model = case.model()
    theta0 = case.theta0(model)
    assert len(set(result.shard_rows)) > 1, "the shards should differ in size"
    assert result.shard_rows == [p.rows for p in result.per_shard]
    engine = engine_class(engine_name)(model, "cpu")
    evaluation = engine.evaluate(theta0)
    trajectory = engine.descend(theta0, case.lr, ITERATIONS)
    scales = model.scales_at(theta0)
    comparison = compare_with_single(
        result,
        evaluation,
        trajectory,
        tolerance=Tolerance.for_dtype(model.data.dtype, model.data.rows),
        gradient_scale=np.concatenate([[scales.loss], scales.gradient]),
        loss_scale=max(scales.loss, model.scales_at(trajectory.theta).loss),
        iterations=ITERATIONS,
        theta0=theta0,
        names=model.labels(),
    )
    assert comparison.gradient.ok, comparison.gradient.describe()
    assert comparison.descent.ok, comparison.descent.describe()
    assert result.descent.steps == ITERATIONS


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_shards_hold_the_rows_and_the_penalty_is_added_once(runs, case: ModelCase) -> None:
    """Each shard's sums are of its rows' losses only; the penalty (ridge's), which is no row's,
    is in the whole loss once, not once per worker."""
    _, results = runs
    result = results[case.id]
    model = case.model()
    theta0 = case.theta0(model)
    penalty = model.penalty(model.unflatten(theta0), np)
    penalty = 0.0 if penalty is None else float(penalty)
    from_shards = combine_true(result.per_shard).loss + penalty
    scale = model.scales_at(theta0).loss
    difference = worst_difference(
        np.array([from_shards]),
        np.array([result.loss]),
        scale,
        Tolerance.for_dtype(model.data.dtype, model.data.rows),
        ["the shards' loss sums over N, plus the penalty"],
    )
    assert difference.ok, difference.describe()


def test_the_registry_decides_what_is_sharded() -> None:
    assert shardable_models() == SHARDABLE
    assert {"mse", "ridge", "logistic", "huber"} <= set(SHARDABLE)
    # softmax's classes come from the labels a shard holds: it must not declare itself
    assert "softmax" in NOT_SHARDABLE


@pytest.mark.parametrize("launch", [run_torch, run_jax], ids=["torch", "jax"])
@pytest.mark.parametrize("name", NOT_SHARDABLE)
def test_a_model_that_is_not_shardable_is_refused_before_anything_starts(launch, name) -> None:
    X, y = np.arange(6.0).reshape(3, 2), np.array([0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=f"do not compute {name} .*they compute mse, "):
        launch(X, y, np.zeros(3), workers=2, lr=0.1, iterations=1, model=name)


def test_a_model_whose_shapes_follow_its_rows_is_stopped_by_the_worker(monkeypatch) -> None:
    """If softmax declared itself shardable, a shard without the last class would build a
    model with fewer classes than the run's: the worker stops and says why."""
    monkeypatch.setattr(SoftmaxModel, "shardable", True)
    data = load_csv(REPO_ROOT / SoftmaxModel.example)
    whole = build_model("softmax", None, data.X, data.y)
    shard = data.y < data.y.max()  # every row but the last class's
    with pytest.raises(RuntimeError, match=r"rank 2: .* its shapes depend on the rows") as error:
        worker_model(
            "softmax", None, data.X[shard], data.y[shard], parameter_shapes(whole), "rank 2"
        )
    assert "not the run's W (2, 3), b (3,)" in str(error.value)


# ---- the workers compute what the model's row_losses say ----


@dataclass
class Doubled:
    """A model class's row_losses replaced by twice the original, recording each namespace."""

    model_class: type[Model]
    namespaces: list

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = self.model_class.row_losses

        def doubled(model, params, X, y, xp):
            self.namespaces.append(xp)
            return 2 * original(model, params, X, y, xp)

        monkeypatch.setattr(self.model_class, "row_losses", doubled)


def assert_agrees(
    actual: np.ndarray, expected: np.ndarray, scale: np.ndarray, model: Model, steps: int = 0
) -> None:
    """Within the run's tolerance (widened by √(steps + 1) along a descent, as the engines')."""
    tolerance = Tolerance.for_dtype(model.data.dtype, model.data.rows).scaled(np.sqrt(steps + 1))
    difference: Difference = worst_difference(
        actual, expected, scale, tolerance, [f"entry {k}" for k in range(len(expected))]
    )
    assert difference.ok, difference.describe()


@needs("torch")
@pytest.mark.parametrize("name", SHARDABLE)
def test_the_torch_worker_computes_the_models_own_row_losses(monkeypatch, name: str) -> None:
    """The worker's loop, run here with one worker (its collectives are then the identity) on
    a model whose row losses are doubled: it gives what the torch engine gives on that model,
    not what it gave before, and it called row_losses in the torch engine's namespace."""
    from verifiers.distributed import torch_worker
    from verifiers.engines.torch import xp as torch_namespace

    class OneWorker(torch_worker.Collectives):
        def all_reduce(self, tensor, op="SUM"):
            return tensor

        def all_gather(self, tensor, workers):
            return tensor[None]

    case = ModelCase(name, 3)
    model = case.model()
    theta0 = case.theta0(model)
    before = engine_class("torch")(model, "cpu").evaluate(theta0)
    spy = Doubled(type(model), [])
    spy.install(monkeypatch)
    job = torch_worker.Job(
        rows=model.data.rows, workers=1, dtype="float64", lr=case.lr, iterations=3,
        theta0=theta0.tolist(), model=name, options=model.settings,
        shapes=parameter_shapes(model), backend="gloo", device="cpu", timeout=60,
    )  # fmt: skip
    result = torch_worker.work(job, 0, model.data.X, model.data.y, OneWorker(0, None))
    assert spy.namespaces
    assert all(xp is torch_namespace for xp in spy.namespaces)
    engine = engine_class("torch")(model, "cpu")
    after = engine.evaluate(theta0)
    trajectory = engine.descend(theta0, case.lr, 3)
    assert after.loss != pytest.approx(before.loss, rel=0.1)  # the change matters
    scales = model.scales_at(theta0)
    scale = 2 * np.concatenate([[scales.loss], scales.gradient])
    assert_agrees(
        np.concatenate([[result["loss"]], result["gradient"]]),
        np.concatenate([[after.loss], after.gradient]),
        scale,
        model,
    )
    loss_scale = 2 * max(scales.loss, model.scales_at(trajectory.theta).loss)
    assert_agrees(np.asarray(result["losses"]), trajectory.losses, loss_scale, model, steps=3)


@needs("jax")
@pytest.mark.parametrize("name", SHARDABLE)
def test_the_jax_worker_computes_the_models_own_row_losses(monkeypatch, name: str) -> None:
    """The worker's loss, here on unsharded padded blocks of 3 shards, on a model whose row
    losses are doubled: the jax engine's value and gradient on that model, the padding
    weighed 0."""
    import jax
    import jax.numpy as jnp

    from verifiers.distributed import jax_worker
    from verifiers.engines.jax import x64

    case = ModelCase(name, 3)
    model = case.model()
    theta0 = case.theta0(model)
    spy = Doubled(type(model), [])
    spy.install(monkeypatch)
    X, y, weight = jax_worker.padded_blocks(model.data.X, model.prepared_targets, 3)
    assert len(weight) > model.data.rows  # there is padding to weigh 0
    rows = model.data.rows
    with x64():
        value, gradient = jax.value_and_grad(
            lambda t: jax_worker.global_loss(model, rows, t, X, y, weight)
        )(jnp.asarray(theta0))
        actual = np.concatenate([[float(value)], np.asarray(gradient, dtype=np.float64)])
    assert spy.namespaces
    assert all(xp is jnp for xp in spy.namespaces)
    expected = engine_class("jax")(model, "cpu").evaluate(theta0)
    scales = model.scales_at(theta0)
    assert_agrees(
        actual,
        np.concatenate([[expected.loss], expected.gradient]),
        2 * np.concatenate([[scales.loss], scales.gradient]),
        model,
    )
