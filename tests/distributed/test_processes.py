"""The worker-process machinery on plain Python children: failures named, nothing left behind.

No torch or jax here, so these run in a second each; test_failures.py does the same through the
real engines.
"""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from tests.distributed.helpers import children, processes_mentioning
from verifiers.distributed import ShardedError
from verifiers.distributed.processes import (
    Progress,
    WorkerGroup,
    make_workdir,
    report_failure,
    worker_environment,
)

pytestmark = pytest.mark.skipif(
    not Path("/proc").is_dir(), reason="reads the process table from /proc"
)


def start(group: WorkerGroup, rank: int, code: str) -> None:
    group.start(rank, ["-c", textwrap.dedent(code)], worker_environment())


def run_group(
    workdir: Path,
    codes: list[str],
    timeout: float,
    progress: Progress | None = None,
    backend: str = "test.backend",
    ranked: bool = True,
) -> None:
    """Start one worker per piece of code (rank = its index) and wait for them."""
    with WorkerGroup(backend, workdir, ranked) as group:
        for rank, code in enumerate(codes):
            start(group, rank, code)
        group.wait(timeout, progress)


def assert_nothing_left(marker: str, workdir: Path) -> None:
    assert processes_mentioning(marker) == []
    assert children() == []
    assert not workdir.exists()


def test_a_failing_worker_is_named_and_everything_is_stopped(tmp_path: Path) -> None:
    """Rank 1 raises after starting a grandchild; rank 0 would sleep for a minute."""
    marker = f"marker-{uuid.uuid4().hex}"  # in the command line of every process started here
    workdir = make_workdir(tmp_path)
    sleeper = f"import time; time.sleep(60)  # {marker}"
    failing = f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "{sleeper}"])
        time.sleep(0.5)
        raise ValueError("the shard is empty")  # {marker}
        """
    with pytest.raises(ShardedError) as caught:
        run_group(workdir, [sleeper, failing], timeout=30)
    assert str(caught.value) == "test.backend rank 1 failed: ValueError: the shard is empty"
    assert caught.value.rank == 1
    assert_nothing_left(marker, workdir)


def test_a_worker_killed_by_a_signal(tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    workdir = make_workdir(tmp_path)
    codes = [
        f"import time; time.sleep(60)  # {marker}",
        f"import os, signal; os.kill(os.getpid(), signal.SIGKILL)  # {marker}",
    ]
    with pytest.raises(ShardedError) as caught:
        run_group(workdir, codes, timeout=30)
    assert str(caught.value) == "test.backend rank 1 died: killed by SIGKILL"
    assert_nothing_left(marker, workdir)


def test_a_hang_is_pinned_on_the_rank_that_stopped_first(tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    workdir = make_workdir(tmp_path)
    progress = Progress(workdir / "progress.npy", 3)
    for rank, count in enumerate([2, 1, 2]):  # ranks 0 and 2 entered a second collective
        for _ in range(count):
            progress.entered(rank)
    with pytest.raises(ShardedError) as caught:
        run_group(workdir, [f"import time; time.sleep(60)  # {marker}"] * 3, 1, progress)
    assert str(caught.value) == (
        "test.backend rank 1 did not finish within 1 s: stuck before collective operation 2, "
        "where ranks 0, 2 were waiting; all workers were stopped"
    )
    assert caught.value.rank == 1
    assert_nothing_left(marker, workdir)


def test_a_hang_without_ranks(tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    workdir = make_workdir(tmp_path)
    backend = "jax.sharding (2 devices)"
    with pytest.raises(ShardedError) as caught:
        run_group(workdir, [f"import time; time.sleep(60)  # {marker}"], 0.5, None, backend, False)
    assert str(caught.value) == f"{backend} did not finish within 0.5 s and was stopped"
    assert caught.value.rank is None
    assert_nothing_left(marker, workdir)


def test_a_workers_own_error_is_blamed_before_what_others_saw(tmp_path: Path) -> None:
    """Rank 0 reports an error met while communicating (the symptom), rank 2 its own (the cause),
    and rank 1 died without a word: rank 2 is blamed; without it, rank 1."""
    workdir = make_workdir(tmp_path)
    with WorkerGroup("test.backend", workdir) as group:
        report_failure(workdir, 0, RuntimeError("all_reduce failed: connection reset"), True)
        report_failure(workdir, 2, ValueError("bad rows\nmore lines"), False)
        codes = {0: 1, 1: -9, 2: 1}
        assert group._culprit([0, 1, 2], codes) == (2, "failed: ValueError: bad rows")
        assert group._culprit([0, 1], codes) == (1, "died: killed by SIGKILL")
        assert group._culprit([0], codes) == (
            0,
            "failed: RuntimeError: all_reduce failed: connection reset",
        )


def test_workers_exit_cleanly_and_are_reaped(tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    workdir = make_workdir(tmp_path)
    with WorkerGroup("test.backend", workdir) as group:
        for rank in range(2):
            start(group, rank, f"import sys  # {marker}")
        group.wait(timeout=30)
        assert [p.returncode for p in group.processes.values()] == [0, 0]
    assert_nothing_left(marker, workdir)


def test_workers_can_import_the_package_from_anywhere(tmp_path: Path) -> None:
    """Workers start in the private directory; the package must still be importable there."""
    workdir = make_workdir(tmp_path)
    with WorkerGroup("test.backend", workdir) as group:
        start(group, 0, "import verifiers.distributed.processes")
        group.wait(timeout=60)  # raises if the import failed
        assert group.processes[0].returncode == 0
