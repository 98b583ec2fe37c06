"""Shared pieces of the data-parallel tests: cases, a numpy reference, the process table."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from verifiers.compare import Tolerance
from verifiers.data import load_csv
from verifiers.distributed import ShardedComparison, ShardedResult, compare_with_single
from verifiers.engines.base import DIVERGENCE_FACTOR, Evaluation, finish_trajectory
from verifiers.models.mse import gradient_scales, loss_scale

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_CSV = REPO_ROOT / "data" / "data.csv"
LR = 1e-4
ITERATIONS = 20


def has(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def needs(package: str) -> pytest.MarkDecorator:
    """Skip, with the reason, where `package` is not installed."""
    return pytest.mark.skipif(not has(package), reason=f"{package} is not installed")


def labels(features: int) -> list[str]:
    """``dL/db, dL/dw`` or ``dL/db, dL/dw[0], ...``: the gradient's entries, θ-ordered."""
    names = ["w"] if features == 1 else [f"w[{j}]" for j in range(features)]
    return [f"dL/d{name}" for name in ["b", *names]]


@dataclass(frozen=True)
class Case:
    """One data-parallel run to check: the data, the workers, the dtype."""

    name: str
    rows: int  # of data.csv, or of a seeded random data set with `features` features
    workers: int
    dtype: str
    features: int = 1  # 1: data.csv; more: random data
    lr: float = LR

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        if self.features == 1:
            data = load_csv(DATA_CSV, self.dtype)
            return data.X[: self.rows], data.y[: self.rows]
        rng = np.random.default_rng(self.rows * 10 + self.features)
        X = rng.normal(size=(self.rows, self.features))
        y = X @ rng.normal(size=self.features) + 0.5 + 0.1 * rng.normal(size=self.rows)
        return X.astype(self.dtype), y.astype(self.dtype)

    def theta0(self) -> np.ndarray:
        return np.zeros(self.features + 1)

    @property
    def even(self) -> bool:
        return self.rows % self.workers == 0


# K = 2 and 3, even and uneven shards, float64 and float32; one and three features.
CASES = [
    Case("100 rows over 3 (34/33/33), float64", 100, 3, "float64"),
    Case("100 rows over 2 (50/50), float32", 100, 2, "float32"),
    Case("99 rows over 3 (33/33/33), float32", 99, 3, "float32"),
    Case("7 rows over 2 (4/3), 3 features, float32", 7, 2, "float32", features=3, lr=0.05),
    # lr far above 2/λ_max: the descent must stop at the same iteration as one process's.
    Case("7 rows over 3 (3/2/2), 3 features, float64, lr 2: diverges", 7, 3, "float64", 3, 2.0),
]


def reference(X: np.ndarray, y: np.ndarray, theta0: np.ndarray, lr: float, iterations: int):
    """Single-process loss, gradient and descent in numpy, in X's dtype (the hand formula)."""
    dtype = X.dtype
    n = len(y)

    def evaluate(theta: np.ndarray) -> tuple[float, np.ndarray]:
        r = y - (X @ theta[1:] + theta[0])
        gradient = np.concatenate([[-(2 / n) * r.sum()], -(2 / n) * (X.T @ r)]).astype(dtype)
        return float((r @ r) / n), gradient

    theta = np.asarray(theta0, dtype=dtype)
    loss, gradient = evaluate(theta)
    start = Evaluation(loss, gradient.astype(np.float64))
    losses = []
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(iterations + 1):
            value, gradient = evaluate(theta)
            losses.append(value)
            if k == iterations or not np.isfinite(value) or value > DIVERGENCE_FACTOR * losses[0]:
                break
            theta = theta - dtype.type(lr) * gradient
    trajectory = finish_trajectory(theta, np.asarray(losses), 0.0)
    return start, trajectory


def compare(case: Case, result: ShardedResult) -> ShardedComparison:
    """The sharded run against the numpy reference, with the project's tolerance rules."""
    X, y = case.data()
    theta0 = case.theta0()
    start, trajectory = reference(X, y, theta0, case.lr, ITERATIONS)
    b, w = theta0[0], theta0[1:]
    final = trajectory.theta
    return compare_with_single(
        result,
        start,
        trajectory,
        tolerance=Tolerance.for_dtype(case.dtype, case.rows),
        gradient_scale=np.concatenate([[loss_scale(b, w, X, y)], gradient_scales(b, w, X, y)]),
        loss_scale=max(loss_scale(b, w, X, y), loss_scale(final[0], final[1:], X, y)),
        iterations=ITERATIONS,
        theta0=theta0,
    )


def gradient_scale(case: Case) -> np.ndarray:
    """Σ|terms| of each gradient component at θ0 (what the combinations are judged with)."""
    X, y = case.data()
    theta0 = case.theta0()
    return gradient_scales(theta0[0], theta0[1:], X, y)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of the processes (other than this one) whose command line has `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # it ended while we looked
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def children() -> list[str]:
    """This process's child processes (zombies included): ``pid: command``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (command) state ppid ...": the command may hold spaces and parentheses.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == os.getpid():
            found.append(f"{entry.name}: {stat.split(' ', 1)[1][:60]}")
    return found
