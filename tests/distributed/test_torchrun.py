"""The torch worker runs unchanged under torchrun (here one machine, two processes)."""

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
from verifiers.distributed import ShardedResult
from verifiers.distributed.processes import worker_environment
from verifiers.engines.base import finish_trajectory

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
