"""Engines in a worker process (verifiers.lanes): the same numbers as in one process, the work
split by the plan's estimates, and no process left behind whatever happens."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest

from verifiers import Settings, verify
from verifiers.data import Dataset
from verifiers.lanes import LaneError, assign, start_worker
from verifiers.models import MODELS
from verifiers.results import Status

from .helpers import DATA_CSV, has, report_numbers


def _children() -> set[int]:
    """This process's live children (their pids), from /proc."""
    mine = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == mine and fields[0] != "Z":
            found.add(int(entry))
    return found


@pytest.mark.skipif(not (has("torch") and has("jax")), reason="a worker starts with torch and jax")
def test_a_worker_gives_the_same_numbers_as_one_process():
    rng = np.random.default_rng(2)
    X = rng.normal(0, 1, (400, 2))
    data = Dataset.from_arrays(X, X @ [1.5, -0.5] + 0.3 + rng.normal(0, 0.5, 400))
    settings = Settings(iterations=40)
    before = _children()
    split = verify(data, settings, processes=True)
    assert _children() == before  # the worker is gone
    alone = verify(data, settings)
    assert split.ok, split.failures
    assert report_numbers(split) == report_numbers(alone)
    assert split.notes == alone.notes


def test_the_lanes_balance_the_estimates_and_keep_torch_and_jax_apart():
    here, there = assign({"torch": 3.0, "jax": 1.0, "numeric": 2.5, "minigrad": 2.0, "loop": 0.1})
    assert "torch" in there
    assert "jax" in here
    load = {"torch": 3.0, "jax": 1.0, "numeric": 2.5, "minigrad": 2.0, "loop": 0.1}
    assert abs(sum(load[n] for n in here) - sum(load[n] for n in there)) <= 3.0
    assert sorted(here + there) == sorted(load)


def test_a_worker_that_dies_is_an_error_of_its_engines_and_nothing_is_left():
    data = Dataset.from_arrays(np.linspace(0, 1, 50), np.linspace(1, 3, 50))
    model = MODELS["mse"](data)
    before = _children()
    engines, close = start_worker(model, ["manual", "numeric"], "cpu")
    try:
        value = engines["manual"].evaluate(np.zeros(2))
        assert value.loss > 0
        worker = engines["manual"]._worker.process
        worker.kill()
        worker.wait()
        with pytest.raises(LaneError, match="worker process ended"):
            engines["numeric"].evaluate(np.zeros(2))
        with pytest.raises(LaneError):
            engines["manual"].evaluate(np.zeros(2))
    finally:
        close()
    assert _children() == before


def test_an_engine_error_in_the_worker_comes_back_as_its_own_error():
    data = Dataset.from_arrays(np.linspace(0, 1, 50), np.linspace(1, 3, 50))
    engines, close = start_worker(MODELS["mse"](data), ["manual"], "cpu")
    try:
        with pytest.raises(ValueError, match="negative"):
            engines["manual"].descend(np.zeros(2), 1e-3, -5)  # a descent of -5 steps
        assert engines["manual"].evaluate(np.zeros(2)).loss > 0  # the lane still answers
    finally:
        close()


def test_the_command_line_runs_a_worker_and_says_the_same(tmp_path):
    """The reference run through the command line (a worker when torch and jax run) prints what
    one process prints."""
    from .helpers import run_cli

    split = run_cli(str(DATA_CSV), "--iterations", "30")
    alone = run_cli(
        str(DATA_CSV), "--iterations", "30", env={**os.environ, "VERIFIERS_WORKERS": "1"}
    )
    assert split.returncode == alone.returncode == 0, split.stdout + split.stderr
    assert split.stdout == alone.stdout


def test_no_worker_for_user_code():
    data = Dataset.from_arrays(np.linspace(0, 1, 30), np.linspace(1, 3, 30))

    def formula(b, w, X, y):
        r = y - (X @ w + b)
        return -2 * r.mean(), -2 * X.T @ r / len(y)

    before = multiprocessing.active_children()
    report = verify(data, Settings(iterations=3), formula=formula, processes=True)
    assert report.ok
    assert multiprocessing.active_children() == before
    assert report.engines["manual"].status is Status.OK


@pytest.mark.skipif(not (has("torch") and has("jax")), reason="a worker starts with torch and jax")
def test_the_package_of_an_engine_in_the_worker_is_not_loaded_here():
    """Memory: torch runs in the worker, so this process never loads it (planning reads the
    registry's rows, and the stand-in needs nothing of torch)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from verifiers import Settings, verify\n"
        "from verifiers.data import Dataset\n"
        "x = np.linspace(0, 1, 200)\n"
        "report = verify(Dataset.from_arrays(x, 2 * x + 1), Settings(iterations=5),"
        " processes=True)\n"
        "print(report.ok, 'torch' in sys.modules, report.engines['torch'].status)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["True", "False", "ok"], result.stderr[-2000:]
