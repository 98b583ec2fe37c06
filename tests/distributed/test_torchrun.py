"""The torch worker runs unchanged under torchrun (here one machine, two processes), for any
shardable model of the registry with its options."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.distributed.helpers import DATA_CSV, ITERATIONS, Case, compare, has
from verifiers.compare import Tolerance
from verifiers.data import load_csv
from verifiers.distributed import ShardedResult, compare_with_single
from verifiers.distributed.processes import worker_environment
from verifiers.engines import engine_class
from verifiers.engines.base import finish_trajectory
from verifiers.models import MODELS

pytestmark = pytest.mark.skipif(not has("torch"), reason="torch is not installed")


def free_port() -> int:
    """A port that was free a moment ago (torchrun's static rendezvous needs a number)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_torchrun(arguments: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """torchrun in a session of its own, stopped with all its workers if it outlives `timeout`."""
    process = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", *arguments],
        cwd=cwd,
        env=worker_environment({"GLOO_SOCKET_IFNAME": "lo"}),  # stay on this machine
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the agent and its workers, if any is left
        process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_torchrun_two_processes_on_one_machine(tmp_path: Path) -> None:
    output = tmp_path / "result.json"
    arguments = [
        "--nnodes", "1", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
        "-m", "verifiers.distributed.torch_worker",
        "--csv", str(DATA_CSV), "--iterations", str(ITERATIONS), "--output", str(output),
    ]  # fmt: skip
    completed = run_torchrun(arguments, cwd=tmp_path, timeout=180)
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads(completed.stdout.strip().splitlines()[-1])  # rank 0's one line
    assert summary["workers"] == 2
    assert summary["backend"] == "gloo"
    assert summary["shard_rows"] == [50, 50]
    assert summary["steps"] == ITERATIONS

    result = json.loads(output.read_text())
    sharded = ShardedResult(
        engine="torch",
        workers=summary["workers"],
        backend=summary["backend"],
        device="cpu",
        shard_rows=summary["shard_rows"],
        loss=result["loss"],
        gradient=np.asarray(result["gradient"]),
        per_shard=[],
        descent=finish_trajectory(np.asarray(result["theta"]), np.asarray(result["losses"]), 0),
        seconds=0.0,
    )
    comparison = compare(Case("torchrun", 100, 2, "float64"), sharded)
    assert comparison.gradient.ok, comparison.gradient.describe()
    assert comparison.descent.ok, comparison.descent.describe()


def test_torchrun_runs_a_model_of_the_registry_with_its_options(tmp_path: Path) -> None:
    """ridge with λ = 0.5 from a start away from zero, where its penalty has a gradient: the
    option reaches every worker, and the penalty is added once."""
    output = tmp_path / "result.json"
    start = "1.5,0.5"
    arguments = [
        "--nnodes", "1", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
        "-m", "verifiers.distributed.torch_worker",
        "--csv", str(DATA_CSV), "--model", "ridge", "--l2", "0.5", "--theta0", start,
        "--iterations", str(ITERATIONS), "--output", str(output),
    ]  # fmt: skip
    completed = run_torchrun(arguments, cwd=tmp_path, timeout=180)
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert summary["model"] == "ridge"
    assert summary["options"] == {"l2": 0.5}

    result = json.loads(output.read_text())
    model = MODELS["ridge"](load_csv(DATA_CSV), {"l2": 0.5})
    theta0 = np.array([1.5, 0.5])
    engine = engine_class("torch")(model, "cpu")
    trajectory = engine.descend(theta0, 1e-4, ITERATIONS)
    sharded = ShardedResult(
        engine="torch", workers=2, backend=summary["backend"], device="cpu",
        shard_rows=summary["shard_rows"], loss=result["loss"],
        gradient=np.asarray(result["gradient"]), per_shard=[],
        descent=finish_trajectory(np.asarray(result["theta"]), np.asarray(result["losses"]), 0),
        seconds=0.0,
    )  # fmt: skip
    scales = model.scales_at(theta0)
    comparison = compare_with_single(
        sharded,
        engine.evaluate(theta0),
        trajectory,
        tolerance=Tolerance.for_dtype("float64", model.data.rows),
        gradient_scale=np.concatenate([[scales.loss], scales.gradient]),
        loss_scale=max(scales.loss, model.scales_at(trajectory.theta).loss),
        iterations=ITERATIONS,
        theta0=theta0,
    )
    assert comparison.gradient.ok, comparison.gradient.describe()
    assert comparison.descent.ok, comparison.descent.describe()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--l2", "0.5"], "--l2 is an option of --model ridge, not mse"),
        (["--model", "softmax"], "argument --model: invalid choice: 'softmax'"),
        (["--model", "huber", "--delta", "nan"], "--delta must be a finite number > 0"),
    ],
)
def test_model_arguments_are_checked(arguments: list[str], message: str, capsys) -> None:
    """Wrong model arguments are refused (exit status 2) before any rendezvous: the option of
    another model (as on the main command), a model that is not shardable, a bad value."""
    from verifiers.distributed import torch_worker

    with pytest.raises(SystemExit) as stopped:
        torch_worker.main(["--csv", str(DATA_CSV), *arguments])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_the_worker_says_how_to_run_it() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "verifiers.distributed.torch_worker", "--csv", str(DATA_CSV)],
        env={k: v for k, v in worker_environment().items() if k != "RANK"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert "run me with torchrun" in completed.stderr
