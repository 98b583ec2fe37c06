"""Every ``<!-- run: -->`` sample of README.md and docs/ is what the run prints today.

``docs/refresh_output.py --check`` file by file: the full suite (``tox``, CI) fails on a stale
sample and names the file and the line. The samples are runs with every engine, on the CPU, so
the test runs where all of them are installed (the ``full`` environment) and skips elsewhere.
It takes about 3 minutes: it is in the slow tier. (tests/verifiers/test_cli.py checks one
sample, docs/gradient-descent.md's, in the fast tier.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.verifiers.helpers import refresh_output
from verifiers.engines import optional_packages

REPO_ROOT = Path(__file__).resolve().parent.parent


def _why_not_here() -> str | None:
    """Why the samples cannot be reproduced here (None: they can)."""
    missing = [p for p in optional_packages().values() if importlib.util.find_spec(p) is None]
    if missing:
        return f"the samples show every engine: {', '.join(sorted(set(missing)))} not installed"
    import jax
    import torch

    if torch.cuda.is_available() or jax.default_backend() != "cpu":
        return "the samples are every engine's run on the CPU"
    return None


refresh = refresh_output()
SAMPLED = [path for path in refresh.targets() if refresh.blocks(path)]


def test_the_samples_are_found():
    """README.md and the docs hold marked samples (a renamed marker would check nothing)."""
    names = {path.relative_to(REPO_ROOT).as_posix() for path in SAMPLED}
    assert {"README.md", "docs/gradient-descent.md"} <= names
    assert sum(len(refresh.blocks(path)) for path in SAMPLED) >= 10


@pytest.mark.slow
@pytest.mark.parametrize(
    "path", SAMPLED, ids=[path.relative_to(REPO_ROOT).as_posix() for path in SAMPLED]
)
def test_docs_samples_are_what_the_run_prints_today(path: Path):
    reason = _why_not_here()  # here, not at collection: torch and jax take seconds to import
    if reason is not None:
        pytest.skip(reason)
    stale = refresh.refresh(path, check=True)  # check: the file is only read
    assert not stale, (
        f"{path.relative_to(REPO_ROOT)}: stale at {', '.join(stale)}: "
        "run python docs/refresh_output.py"
    )
