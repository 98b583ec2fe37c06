"""The fast paths compute what the plain ones compute, and memory stays flat.

Every optimisation here has a plain counterpart kept beside it: the per-point loop's lines, the
two-pass hand formulas, the one-point-at-a-time complex step, engines run one after another.
Where the order of operations is the same the results must be equal bit for bit; where it is
not (a BLAS dot product instead of a pairwise sum), within a few ε of the summed terms' size.
Nothing here is timed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifiers import Settings, verify
from verifiers.api import UsageError
from verifiers.concurrency import Stopped, Task, run_tasks, stoppable
from verifiers.data import Dataset
from verifiers.engines import engine_class
from verifiers.engines.numeric import NumericEngine
from verifiers.models import MODELS
from verifiers.models import mse as formulas
from verifiers.models.base import Model
from verifiers.models.mse import MSEModel

from .helpers import DATA_CSV, PUBLISHED, REPO_ROOT, datasets, has, report_numbers


def _mse(data: Dataset) -> MSEModel:
    return MODELS["mse"](data)


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 7 rows, so that a few dozen rows cross several chunk boundaries."""
    monkeypatch.setattr("verifiers.chunks.CHUNK_ROWS", 7)


# ---- the loop: arrays, bit for bit the per-point lines ------------------------------------------
@given(data=datasets(max_features=4, max_rows=60), dtype=st.sampled_from(["float64", "float32"]))
def test_the_loop_on_arrays_is_the_per_point_loop_bit_for_bit(data, dtype):
    data = Dataset.from_arrays(data.X, data.y, dtype)
    engine = engine_class("loop")(_mse(data))
    for theta in (np.zeros(data.features + 1), np.linspace(-3, 2, data.features + 1)):
        b, w = engine._cast(theta)
        fast, plain = engine._gradient(b, w), engine.gradient_per_point(b, w)
        assert np.array([fast[0], *fast[1]]).tobytes() == np.array([plain[0], *plain[1]]).tobytes()
        assert type(fast[0]) is type(plain[0])
        fast_loss, plain_loss = engine._error(b, w), engine.error_per_point(b, w)
        assert np.array(fast_loss).tobytes() == np.array(plain_loss).tobytes()


def test_the_loop_carries_its_running_totals_across_blocks_and_restarts_them_per_chunk(
    monkeypatch,
):
    rng = np.random.default_rng(4)
    X = rng.normal(50, 15, (100, 3))
    data = Dataset.from_arrays(X, X @ [1.0, -2.0, 0.5] + rng.normal(0, 5, 100))
    monkeypatch.setattr("verifiers.chunks.CHUNK_ROWS", 30)  # chunks of 30 rows ...
    monkeypatch.setattr("verifiers.engines.loop.BLOCK_VALUES", 21)  # ... in blocks of 7 rows
    engine = engine_class("loop")(_mse(data))
    b, w = engine._cast(np.array([0.5, 1.0, -1.0, 2.0]))
    assert engine._gradient(b, w) == engine.gradient_per_point(b, w)
    assert engine._error(b, w) == engine.error_per_point(b, w)


def test_the_loop_still_reproduces_the_published_figures():
    data = Dataset.from_arrays(*np.loadtxt(DATA_CSV, delimiter=",", unpack=True))
    trajectory = engine_class("loop")(_mse(data)).descend(np.zeros(2), 1e-4, 1000)
    assert trajectory.losses[0] == PUBLISHED["start_error"]
    assert trajectory.theta.tolist() == [PUBLISHED["b"], PUBLISHED["w"]]
    assert trajectory.losses[-1] == PUBLISHED["error"]


# ---- manual: one pass, the same formulas --------------------------------------------------------
def test_one_feature_products_are_the_matrix_product_bit_for_bit():
    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32):
        X = rng.normal(50, 15, (1000, 1)).astype(dtype)
        w = np.array([1.37], dtype=dtype)
        assert (formulas._times(X, w) == X @ w).all()


@pytest.mark.parametrize("name", ["mse", "ridge"])  # ridge adds its penalty to the MSE's pass
@given(data=datasets(max_features=4, max_rows=60))
def test_the_fused_hand_formulas_agree_with_the_two_passes(name, data):
    model = MODELS[name](data)
    _assert_one_pass_is_two_passes(model, np.linspace(-2, 3, data.features + 1))


def test_softmax_fused_hand_formulas_agree_with_the_two_passes(small_chunks):
    model = MODELS["softmax"](Dataset.from_arrays(*_classes(60, 3)))
    _assert_one_pass_is_two_passes(model, np.random.default_rng(4).normal(0, 2, model.size))


def _assert_one_pass_is_two_passes(model, theta: np.ndarray) -> None:
    """The model's one-pass loss and gradient equal hand_loss and hand_gradient within a few
    ε of their terms' size."""
    loss, gradient = model.hand_loss_and_gradient(theta)
    want = model.flatten(model.hand_gradient(model.unflatten(theta)))
    scales = model.scales_at(theta)
    eps = np.finfo(np.float64).eps
    assert abs(loss - model.hand_loss(theta)) <= 8 * eps * scales.loss
    assert np.all(np.abs(gradient - want) <= 8 * eps * scales.gradient)


def _classes(rows: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Two features and labels 0..classes-1 (each class present)."""
    rng = np.random.default_rng(rows)
    X = rng.normal(0, 1, (rows, 2))
    y = np.arange(rows) % classes
    return X, y.astype(np.float64)


class _TwoPassMSE(MSEModel):
    """The MSE without its one-pass hand formulas: the manual engine takes two passes."""

    hand_loss_and_gradient = Model.hand_loss_and_gradient


def test_manual_descends_as_with_two_passes_per_step(small_chunks):
    rng = np.random.default_rng(2)
    X = rng.normal(3, 2, (50, 2))
    data = Dataset.from_arrays(X, X @ [2.0, -1.0] + 4 + rng.normal(0, 0.1, 50))
    fast = engine_class("manual")(_mse(data)).descend(np.zeros(3), 1e-3, 200)
    plain = engine_class("manual")(_TwoPassMSE(data)).descend(np.zeros(3), 1e-3, 200)
    np.testing.assert_allclose(fast.losses, plain.losses, rtol=1e-13)
    np.testing.assert_allclose(fast.theta, plain.theta, rtol=1e-13)


# ---- numeric: one sweep for every complex point --------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("features", [1, 3])
def test_numeric_batched_sweep_agrees_with_one_point_at_a_time(small_chunks, dtype, features):
    rng = np.random.default_rng(features)
    X = rng.normal(10, 3, (40, features))
    data = Dataset.from_arrays(X, X.sum(axis=1) + rng.normal(0, 1, 40), dtype)
    engine = NumericEngine(_mse(data))
    theta = np.asarray(rng.normal(0, 2, features + 1), dtype=dtype).astype(np.float64)
    evaluation = engine.evaluate(theta)
    assert engine._batched  # the check at the first point passed
    plain = engine._one_at_a_time(theta, range(features + 1))
    scales = engine.model.scales_at(theta)
    eps = float(np.finfo(dtype).eps)
    assert np.all(np.abs(evaluation.gradient - plain) <= 16 * eps * scales.gradient)
    assert abs(evaluation.loss - float(engine.loss(np.asarray(theta, dtype)))) <= (
        16 * eps * scales.loss
    )


class _SquaredWeightsInRows(MSEModel):
    """A (b, w) model whose row sum uses w other than through X @ w: not batchable."""

    def row_sum(self, params, X, y, xp):
        r = y - (X @ params["w"] + params["b"])
        return xp.sum(r * r) + X.shape[0] * xp.sum(params["w"] * params["w"])


def test_numeric_falls_back_to_one_point_at_a_time_for_other_losses():
    data = Dataset.from_arrays(*np.loadtxt(DATA_CSV, delimiter=",", unpack=True))
    engine = NumericEngine(_SquaredWeightsInRows(data))
    theta = np.array([0.5, 1.5])
    gradient = engine.evaluate(theta).gradient
    assert not engine._batched
    assert engine.method == "complex step"
    b, w = theta
    x, y = data.X[:, 0], data.y
    exact = [-2 * np.mean(y - (w * x + b)), -2 * np.mean(x * (y - (w * x + b))) + 2 * w]
    np.testing.assert_allclose(gradient, exact, rtol=1e-12)


def test_numeric_is_affordable_at_a_million_rows_and_still_bounded_for_many_parameters():
    def estimate(rows: int, features: int) -> float:
        data = Dataset.from_arrays(np.ones((rows, features)), np.ones(rows))
        return NumericEngine.estimate_seconds(_mse(data))

    # 26 check points and 1,000 steps at 1e6 rows fit in the 20 s an engine is given ...
    assert 1026 * estimate(1_000_000, 1) < 20
    # ... and a sweep over many parameters is still priced by its size (no hang).
    assert estimate(10_000, 1000) > 50 * estimate(10_000, 1)


# ---- engines side by side: bit for bit what one after another gives ------------------------------
@pytest.mark.parametrize("model", ["mse", *(m for m in ("logistic",) if m in MODELS)])
def test_engines_side_by_side_give_the_same_numbers_as_one_after_another(monkeypatch, model):
    rng = np.random.default_rng(6)
    X = rng.normal(0, 1, (300, 2))
    y = X @ [1.5, -0.5] + 0.3 + rng.normal(0, 0.5, 300)
    if model == "logistic":
        y = (y > 0).astype(float)
    data = Dataset.from_arrays(X, y)
    settings = Settings(model=model, iterations=50)
    reports = {}
    for workers in ("1", "3"):
        monkeypatch.setenv("VERIFIERS_WORKERS", workers)
        reports[workers] = verify(data, settings)
    assert reports["1"].ok, reports["1"].failures
    assert report_numbers(reports["1"]) == report_numbers(reports["3"])
    assert reports["1"].notes == reports["3"].notes


def test_a_failing_formula_beside_other_engines_is_still_a_usage_error(monkeypatch):
    monkeypatch.setenv("VERIFIERS_WORKERS", "3")
    calls = []

    def formula(b, w, X, y):
        calls.append(threading.current_thread() is threading.main_thread())
        raise ValueError("oops")

    data = Dataset.from_arrays(*np.loadtxt(DATA_CSV, delimiter=",", unpack=True))
    with pytest.raises(UsageError, match="oops"):
        verify(data, Settings(iterations=2000), formula=formula)
    assert calls == [True]  # the user's formula runs on the main thread


def test_run_tasks_keeps_main_thread_tasks_there_and_raises_the_first_failure():
    ran = {}
    lock = threading.Lock()

    def record(name, fail=False):
        def run(stop):
            with lock:
                ran[name] = threading.current_thread() is threading.main_thread()
            if fail:
                raise KeyError(name)

        return run

    tasks = [Task(f"t{k}", record(f"t{k}")) for k in range(5)]
    tasks.append(Task("main", record("main"), main_thread=True))
    run_tasks(tasks, workers=3)
    assert set(ran) == {f"t{k}" for k in range(5)} | {"main"}
    assert ran["main"] is True
    failing = [Task("a", record("a", fail=True)), Task("b", record("b", fail=True))]
    with pytest.raises(KeyError, match="a"):
        run_tasks(failing, workers=1)


def test_a_stopped_run_ends_descents_at_their_next_progress_report():
    stop = threading.Event()
    seen = []
    callback = stoppable(seen.append, stop)
    callback(1)
    stop.set()
    with pytest.raises(Stopped):
        callback(2)
    assert seen == [1]


# ---- memory: flat in the number of iterations ---------------------------------------------------
_PROBE = """
import json, resource, sys, tracemalloc
import numpy as np
from verifiers.data import Dataset
from verifiers.engines import engine_class
from verifiers.models import MODELS
name, rows, small, large = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
x = rng.normal(50, 15, rows)
data = Dataset.from_arrays(x, 1.3 * x + 8 + rng.normal(0, 10, rows))
engine = engine_class(name)(MODELS["mse"](data), "cpu")
engine.descend(np.zeros(2), 1e-4, 2)
result = {}
for label, iterations in (("small", small), ("large", large)):  # the peak so far, in bytes
    engine.descend(np.zeros(2), 1e-4, iterations)
    result["rss_" + label] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
for label, iterations in (("small", small), ("large", large)):  # numpy's and Python's peak
    tracemalloc.start()
    engine.descend(np.zeros(2), 1e-4, iterations)
    result["traced_" + label] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
print(json.dumps(result))
"""


@pytest.mark.parametrize(
    "name",
    [
        "loop",
        "manual",
        "minigrad",
        "numeric",
        pytest.param("torch", marks=pytest.mark.skipif(not has("torch"), reason="no torch")),
        pytest.param("jax", marks=pytest.mark.skipif(not has("jax"), reason="no jax")),
    ],
)
def test_peak_memory_of_a_descent_does_not_grow_with_the_iterations(name):
    # 50,000 rows (0.8 MB of data), 20 and then 300 iterations in one process. A descent that
    # kept ~15 KB per step alive (a tensor or a graph per loss) would add 4 MB to the second
    # peak; the history itself adds 8 bytes per step. numpy's allocations are traced exactly
    # (1 KB per step would show); torch's and XLA's are seen in the peak resident memory.
    rows, small, large = 50_000, 20, 300
    if name == "loop":
        rows = 2_000  # its squares are Python floats, slow to trace: fewer rows, same argument
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, name, str(rows), str(small), str(large)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    peaks = json.loads(result.stdout)
    history = 8 * (large - small)
    assert peaks["traced_large"] - peaks["traced_small"] <= history + 256 * 1024, peaks
    assert peaks["rss_large"] - peaks["rss_small"] <= 4 * 2**20, peaks
