"""The launchers' arguments, the shards' sums of the model's losses, the backend choice, the jax
layout; NCCL."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.distributed.helpers import DATA_CSV, compare, has, needs
from tests.distributed.helpers import Case as DataCase
from verifiers.compare import Tolerance, worst_difference
from verifiers.data import load_csv
from verifiers.distributed import run_jax, run_torch, shard_rows

LAUNCHERS = [
    pytest.param(launcher, marks=needs(name), id=name)
    for name, launcher in (("torch", run_torch), ("jax", run_jax))
]


@pytest.mark.parametrize("launch", LAUNCHERS)
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"workers": 0}, "workers must be between 1 and the 4 rows, not 0"),
        ({"workers": 5}, "workers must be between 1 and the 4 rows, not 5"),
        ({"lr": float("nan")}, "lr must be a positive finite number"),
        ({"iterations": -1}, "iterations must be 0 or more"),
        ({"dtype": "int64"}, "dtype must be float64 or float32"),
        ({"model": "svm"}, "unknown model 'svm'; choose from mse, "),
        ({"model": "softmax"}, "the data-parallel workers do not compute softmax"),
        ({"options": {"l2": 0.5}}, "mse takes no option 'l2'"),
        ({"model": "ridge", "options": {"l2": -1.0}}, "--l2 must be a finite number >= 0"),
        ({"device": "tpu"}, "device must be auto, cpu or cuda, not 'tpu'"),
        ({"theta0": np.zeros(3)}, "θ0 needs 2 values"),
        ({"fail_rank": 2}, "fail_rank must be a rank, 0 to 1, not 2"),
        ({"fail_mode": "explode"}, "fail_mode must be one of raise, exit, hang"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(launch, change, message) -> None:
    arguments = {
        "X": np.arange(4.0), "y": np.arange(4.0), "theta0": np.zeros(2), "workers": 2,
        "lr": 0.1, "iterations": 3,
    } | change  # fmt: skip
    X, y, theta0 = arguments.pop("X"), arguments.pop("y"), arguments.pop("theta0")
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        launch(X, y, theta0, **arguments)


# ---- the shards' sums of the model's own row losses: the hand-derived sums ----


def logistic_data(rows: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(rows, 2))
    y = (X @ np.array([1.5, -2.0]) + 0.3 + rng.normal(size=rows) > 0).astype(np.float64)
    return X, y, np.array([0.2, -0.4, 0.7])


def logistic_reference(X: np.ndarray, y: np.ndarray, theta: np.ndarray):
    """Σ BCE and its hand-derived gradient Σ (σ(z) - y)·(1, x), in float64."""
    z = X @ theta[1:] + theta[0]
    loss = np.sum(np.logaddexp(0, z) - y * z)
    residual = 1 / (1 + np.exp(-z)) - y
    return loss, np.concatenate([[residual.sum()], X.T @ residual])


def logistic_scales(X: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Σ|terms| / N of the mean loss and of each gradient entry (see verifiers.compare)."""
    z = X @ theta[1:] + theta[0]
    size = 1 / (1 + np.exp(-z)) + np.abs(y)  # |σ(z)| + |y| bounds each residual's parts
    loss = np.logaddexp(0, z) + np.abs(y * z)
    return np.concatenate([[loss.sum(), size.sum()], np.abs(X).T @ size]) / len(y)


@pytest.mark.skipif(not has("torch"), reason="torch is not installed")
@pytest.mark.parametrize("model", ["mse", "logistic"])
def test_torch_shard_sums_are_the_hand_sums(model: str) -> None:
    import torch

    from verifiers.distributed.model import build_model
    from verifiers.distributed.torch_worker import shard_sums

    X, y, theta = logistic_data()
    built = build_model(model, None, X, y)
    sums = shard_sums(built, torch.tensor(theta), torch.tensor(X), torch.tensor(y)).numpy()
    if model == "logistic":
        loss, gradient = logistic_reference(X, y, theta)
    else:
        r = y - (X @ theta[1:] + theta[0])
        loss, gradient = r @ r, -2 * np.concatenate([[r.sum()], X.T @ r])
    np.testing.assert_allclose(sums, np.concatenate([[loss], gradient]), rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not has("jax"), reason="jax is not installed")
def test_jax_block_sums_are_the_hand_sums() -> None:
    import jax

    from verifiers.distributed.jax_worker import block_sum
    from verifiers.distributed.model import build_model

    X, y, theta = logistic_data()
    X32, y32, theta32 = (a.astype(np.float32) for a in (X, y, theta))  # jax's default precision
    model = build_model("logistic", None, X32, y32)
    weight = np.ones(len(y32), dtype=np.float32)
    loss, gradient = jax.value_and_grad(lambda t: block_sum(model, t, X32, y32, weight))(theta32)
    expected_loss, expected_gradient = logistic_reference(X, y, theta)
    np.testing.assert_allclose(float(loss), expected_loss, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(gradient), expected_gradient, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not has("jax"), reason="jax is not installed")
def test_jax_blocks_hold_exactly_one_shard_each() -> None:
    from verifiers.distributed.jax_worker import padded_blocks

    X = np.arange(1.0, 8.0).reshape(-1, 1)  # 7 rows over 3: 3/2/2, blocks of 3
    Xp, yp, weight = padded_blocks(X, 10 * X[:, 0], 3)
    assert Xp[:, 0].tolist() == [1, 2, 3, 4, 5, 0, 6, 7, 0]
    assert yp.tolist() == [10, 20, 30, 40, 50, 0, 60, 70, 0]
    assert weight.tolist() == [1, 1, 1, 1, 1, 0, 1, 1, 0]
    assert [int(weight[3 * k : 3 * k + 3].sum()) for k in range(3)] == shard_rows(7, 3)


@pytest.mark.skipif(not (has("torch") and has("jax")), reason="needs torch and jax")
def test_logistic_model_end_to_end() -> None:
    """The model reaches the workers: both engines give the hand-derived logistic gradient."""
    X, y, theta = logistic_data()
    loss, gradient = logistic_reference(X, y, theta)

    def launch(run):
        return run(X, y, theta, workers=2, lr=0.1, iterations=3, model="logistic", timeout=120)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(launch, [run_torch, run_jax]))
    tolerance = Tolerance.for_dtype("float64", len(y))
    scale = logistic_scales(X, y, theta)
    for result in results:
        difference = worst_difference(
            np.concatenate([[result.loss], result.gradient]),
            np.concatenate([[loss], gradient]) / len(y),
            scale,
            tolerance,
            ["loss", "dL/db", "dL/dw[0]", "dL/dw[1]"],
        )
        assert difference.ok, f"{result.engine}: {difference.describe()}"
        assert result.descent.steps == 3
    np.testing.assert_allclose(results[0].descent.losses, results[1].descent.losses, rtol=1e-12)


# ---- the backend ----


@pytest.mark.skipif(not has("torch"), reason="torch is not installed")
def test_backend_is_gloo_without_a_gpu_per_worker() -> None:
    import torch

    from verifiers.distributed.torch_worker import choose_backend

    if torch.cuda.device_count() >= 2:
        pytest.skip("this machine has GPUs for two workers")
    assert choose_backend("cpu", 2) == ("gloo", "cpu")
    assert choose_backend("auto", 2) == ("gloo", "cpu")
    with pytest.raises(RuntimeError, match="one GPU per worker"):
        choose_backend("cuda", 2)


@pytest.mark.cuda
@pytest.mark.skipif(not has("torch"), reason="torch is not installed")
def test_nccl_on_gpus() -> None:
    import torch

    gpus = torch.cuda.device_count()
    if gpus < 2:
        pytest.skip(f"NCCL needs a GPU per worker: 2 workers, {gpus} GPU")
    data = load_csv(DATA_CSV)
    case = DataCase("100 rows over 2 on NCCL", 100, 2, "float64")
    result = run_torch(
        data.X, data.y, np.zeros(2), workers=2, lr=1e-4, iterations=20, device="cuda", timeout=300
    )
    assert result.backend == "nccl"
    assert result.device == "cuda"
    comparison = compare(case, result)
    assert comparison.gradient.ok, comparison.gradient.describe()
    assert comparison.descent.ok, comparison.descent.describe()


def listening_addresses(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net shows them) listening on `port`, IPv4 and IPv6."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, local_port = local.rsplit(":", 1)
                if state == "0A" and int(local_port, 16) == port:  # 0A: LISTEN
                    found.append(address)
    return found


@pytest.mark.skipif(not has("torch"), reason="torch is not installed")
@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads /proc/net/tcp")
def test_the_rendezvous_store_listens_on_127_0_0_1_only() -> None:
    import torch.distributed as dist

    from verifiers.distributed.launch import _local_store

    store = _local_store(dist, 2, 10)
    try:
        assert listening_addresses(store.port) == ["0100007F"]  # 127.0.0.1, nothing else
    finally:
        del store
