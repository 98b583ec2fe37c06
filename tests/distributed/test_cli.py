"""``--shards K`` at the command line: the table, the JSON, combinations, and failing workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.distributed.helpers import processes_mentioning
from tests.verifiers.helpers import DATA_CSV, REPO_ROOT, has, run_cli

# Each test is several whole runs with workers (30 s and more): the slow tier. The fast tier
# covers the same paths through the API (test_api.py, test_sharded.py, test_failures.py).
pytestmark = [
    pytest.mark.skipif(
        not (has("torch") and has("jax")), reason="--shards needs torch and jax installed"
    ),
    pytest.mark.slow,
]

MEAN_OF_MEANS = """
def combine(shards):
    k = len(shards)
    return (sum(s["grad_b_mean"] for s in shards) / k, sum(s["grad_w_mean"] for s in shards) / k)
"""
TRUE = """
def combine(shards):
    n = sum(s["rows"] for s in shards)
    return (sum(s["grad_b_sum"] for s in shards) / n, sum(s["grad_w_sum"] for s in shards) / n)
"""


def flat(text: str) -> str:
    """The report's words on one line (it wraps at 80 columns)."""
    return " ".join(text.split())


def test_three_uneven_shards_agree_and_mean_of_means_is_explained(tmp_path):
    target = tmp_path / "report.json"
    result = run_cli(str(DATA_CSV), "--shards", "3", "--iterations", "50", "--json", str(target))
    assert result.returncode == 0, result.stdout + result.stderr
    out = flat(result.stdout)
    assert "torch gloo 34/33/33 within rounding agrees" in out
    assert "jax jax.sharding (3 cpu devices) 34/33/33 within rounding agrees" in out
    assert "weights each row of the 34-row shard by 1/102" in out
    document = json.loads(target.read_text())
    for name in ("torch", "jax"):
        sharded = document["engines"][name]["sharded"]
        assert sharded["workers"] == 3
        assert sharded["shard_rows"] == [34, 33, 33]
        assert {"loss", "b", "w"} <= set(sharded["gradient"])
        assert sharded["descent"]["steps"] == 50
        assert sharded["vs_single_process"]["ok"] is True
        assert sharded["gradient"]["w"][0] == pytest.approx(-7370.7029735910555, rel=1e-12)
    assert document["engines"]["torch"]["sharded"]["backend"] == "gloo"
    mean_of_means = document["combinations"][0]
    assert mean_of_means["name"] == "mean of per-shard means"
    assert mean_of_means["ok"] is False  # uneven shards: it is wrong, and said to be


def test_a_user_combination_is_checked_like_a_formula(tmp_path):
    wrong, right = tmp_path / "wrong.py", tmp_path / "right.py"
    wrong.write_text(MEAN_OF_MEANS)
    right.write_text(TRUE)
    common = ["--engines", "manual,torch", "--shards", "3", "--iterations", "5"]
    result = run_cli(str(DATA_CSV), *common, "--combine", f"{wrong}:combine")
    assert result.returncode == 1, result.stdout + result.stderr
    # (a long temporary path may be broken across lines: compare without the spaces)
    assert f"MISMATCH:--combine{wrong}:combine" in "".join(result.stdout.split())
    assert "itisthemeanoftheshards'means" in "".join(result.stdout.split())
    result = run_cli(str(DATA_CSV), *common, "--combine", f"{right}:combine")
    assert result.returncode == 0, result.stdout + result.stderr


def test_even_shards_make_mean_of_means_right(tmp_path):
    result = run_cli(str(DATA_CSV), "--engines", "manual,jax", "--shards", "2", "--iterations", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Both shards have 50 rows" in flat(result.stdout)


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc for the process table")
def test_a_failing_worker_ends_the_run_with_exit_2_and_no_processes_left(tmp_path):
    """The run's private directories go under `tmp_path` (TMPDIR), and every worker's command
    line names its directory: so this run's workers are told apart from any other run's on the
    machine (another test session's workers come and go meanwhile)."""
    code = (
        "import functools, sys\n"
        "import verifiers.distributed as d\n"
        "d.run_torch = functools.partial(d.run_torch, fail_rank=1)\n"  # the tests' failure hook
        "from verifiers.run import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(DATA_CSV), "--engines", "manual,torch", "--shards", "3",
         "--iterations", "5"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TMPDIR=str(tmp_path)),
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: torch.distributed rank 1 failed: ValueError")
    assert processes_mentioning(str(tmp_path)) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("verifiers-sharded-")]
