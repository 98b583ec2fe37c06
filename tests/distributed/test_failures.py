"""A worker that fails, dies or hangs ends the run with ShardedError and leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests.distributed.helpers import DATA_CSV, REPO_ROOT, children, has, processes_mentioning
from verifiers.data import load_csv
from verifiers.distributed import ShardedError, run_jax, run_torch

pytestmark = pytest.mark.skipif(
    not Path("/proc").is_dir(), reason="reads the process table from /proc"
)
needs_torch = pytest.mark.skipif(not has("torch"), reason="torch is not installed")
needs_jax = pytest.mark.skipif(not has("jax"), reason="jax is not installed")


def data() -> tuple[np.ndarray, np.ndarray]:
    dataset = load_csv(DATA_CSV)
    return dataset.X, dataset.y


def assert_nothing_left(workdir: Path) -> None:
    """No worker (its command line names the private directory inside `workdir`), no child,
    and the private directory removed."""
    assert processes_mentioning(str(workdir)) == []
    assert children() == []
    assert list(workdir.iterdir()) == []


@needs_torch
@pytest.mark.parametrize(
    ("workers", "rank", "mode", "timeout", "message"),
    [
        pytest.param(
            3, 2, "raise", 120,
            "torch.distributed rank 2 failed: ValueError: injected failure in rank 2 (test hook)",
            id="raises",
        ),
        pytest.param(
            2, 1, "exit", 120,
            "torch.distributed rank 1 died: exited with status 3 without reporting an error",
            id="dies",
        ),
        pytest.param(
            2, 1, "hang", 15,
            "torch.distributed rank 1 did not finish within 15 s: stuck before collective "
            "operation 1, where rank 0 was waiting; all workers were stopped",
            id="hangs",
            marks=pytest.mark.slow,  # it waits out the 15 s; a hang in jax is in the fast tier
        ),
    ],
)  # fmt: skip
def test_torch_worker_failure(
    tmp_path: Path, workers: int, rank: int, mode: str, timeout: float, message: str
) -> None:
    X, y = data()
    with pytest.raises(ShardedError) as caught:
        run_torch(
            X, y, np.zeros(2), workers=workers, lr=1e-4, iterations=5, timeout=timeout,
            workdir=tmp_path, fail_rank=rank, fail_mode=mode,
        )  # fmt: skip
    assert str(caught.value) == message
    assert caught.value.rank == rank
    assert caught.value.backend == "torch.distributed"
    assert_nothing_left(tmp_path)


@needs_jax
@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("raise", "failed: ValueError: injected failure in the jax process (test hook)"),
        ("exit", "died: exited with status 3 without reporting an error"),
    ],
)
def test_jax_process_failure(tmp_path: Path, mode: str, message: str) -> None:
    X, y = data()
    with pytest.raises(ShardedError) as caught:
        run_jax(
            X, y, np.zeros(2), workers=3, lr=1e-4, iterations=5, timeout=120,
            workdir=tmp_path, fail_rank=0, fail_mode=mode,
        )  # fmt: skip
    assert str(caught.value) == f"jax.sharding (3 devices) {message}"
    assert caught.value.rank is None
    assert_nothing_left(tmp_path)


@needs_torch
def test_workers_exit_when_the_launcher_is_killed(tmp_path: Path) -> None:
    """A launcher killed outright cannot clean up: its workers notice and exit by themselves."""
    launcher = textwrap.dedent(
        f"""
        import numpy as np
        from verifiers.distributed import run_torch
        X = np.arange(10.0)
        run_torch(X, 2 * X, np.zeros(2), workers=2, lr=1e-4, iterations=5, timeout=600,
                  workdir={str(tmp_path)!r}, fail_rank=1, fail_mode="hang")
        """
    )
    workers = str(tmp_path / "verifiers-sharded-")  # in the workers' command lines only
    process = subprocess.Popen([sys.executable, "-c", launcher], cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 60
        while len(processes_mentioning(workers)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(processes_mentioning(workers)) == 2, "the workers did not start"
        time.sleep(1)  # let them reach the collective operation / the hang
    finally:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 20
    while processes_mentioning(workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(workers) == []
