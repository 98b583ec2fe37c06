"""Shared pieces of the verifier tests: engine availability, random data sets, CLI runs."""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import strategies as st

from verifiers.data import DataError, Dataset, load_csv
from verifiers.engines import ENGINE_NAMES, engine_class, optional_packages

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_CSV = REPO_ROOT / "data" / "data.csv"
# The engines every install has: those of the registry that need no optional package.
NUMPY_ENGINES = tuple(n for n in ENGINE_NAMES if n not in optional_packages())
PUBLISHED = {
    "start_error": 5565.107834483211,
    "b": 0.08893651993741346,
    "w": 1.4777440851894448,
    "error": 112.61481011613473,
}


def has(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def engine_param(name: str) -> pytest.param:
    """A parametrize entry for engine `name`, skipped with a reason when its package is missing."""
    package = optional_packages().get(name)
    marks = []
    if package and not has(package):
        marks.append(pytest.mark.skip(reason=f"{package} is not installed"))
    return pytest.param(name, marks=marks, id=name)


ALL_ENGINES = [engine_param(name) for name in ENGINE_NAMES]
# The engines whose packages are installed here, in the registry's order.
INSTALLED = tuple(
    n for n in ENGINE_NAMES if n not in optional_packages() or has(optional_packages()[n])
)
# The installed engines that need an optional package (torch, jax, autograd...).
OPTIONAL_INSTALLED = tuple(n for n in INSTALLED if n in optional_packages())


def make_engine(name: str, data: Dataset, device: str = "auto", model: str = "mse"):
    """Engine `name` for the MSE model (or another model of the catalogue) on `data`."""
    from verifiers.models import MODELS

    return engine_class(name)(MODELS[model](data), device)


@st.composite
def datasets(draw: st.DrawFn, max_features: int = 4, min_rows: int = 8, max_rows: int = 40):
    """Random linear-ish data: d = 1..max_features features, a seeded noisy linear target."""
    d = draw(st.integers(1, max_features))
    n = draw(st.integers(max(min_rows, d + 2), max_rows))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 50.0]))
    noise = draw(st.sampled_from([0.0, 0.01, 1.0]))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * scale + rng.normal(size=d) * scale
    w = rng.normal(size=d) * 3
    y = X @ w + rng.normal() * 5 + noise * rng.normal(size=n)
    return Dataset.from_arrays(X, y)


def run_cli(
    *args: str, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``python -m verifiers.run ARGS`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "verifiers.run", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def run_cli_without(
    packages: list[str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    """The CLI in a process where importing any of `packages` fails, as if not installed."""
    blocked = "; ".join(f"sys.modules[{p!r}] = None" for p in packages)
    code = f"import sys; {blocked}; from verifiers.run import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def load_result(path: Path, dtype: str = "float64") -> Dataset | DataError:
    """load_csv's data set, or the DataError it raised."""
    try:
        return load_csv(path, dtype)
    except DataError as error:
        return error


def comparable(result: Dataset | DataError) -> tuple:
    """A load result as a tuple two results can be compared with ==: arrays, facts or the error."""
    if isinstance(result, DataError):
        return ("error", str(result), result.line)
    return (
        "ok",
        result.X.dtype.str,
        result.X.shape,
        result.X.tobytes(),
        result.y.tobytes(),
        result.header,
        result.delimiter,
        result.degenerate,
    )


def install_wheel(tmp_path: Path) -> Path:
    """Build the package's wheel from a copy of the checkout (the build leaves nothing in it) and
    install it, without dependencies, into a folder of its own; returns that folder, for
    PYTHONPATH."""
    import shutil

    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    for package in ("minigrad", "verifiers"):
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(REPO_ROOT / package, source / package, ignore=ignore)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "wheel"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "wheel").glob("*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
         str(tmp_path / "site"), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return tmp_path / "site"


@functools.cache
def refresh_output() -> ModuleType:
    """docs/refresh_output.py, the script that regenerates the docs samples, as a module."""
    spec = importlib.util.spec_from_file_location(
        "refresh_output", REPO_ROOT / "docs" / "refresh_output.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report_numbers(report) -> dict:
    """Every number each engine gave in `report`, bit for bit (bytes), with its status and
    device: two runs that computed the same things compare equal."""
    found = {}
    for name, entry in report.engines.items():
        found[name] = (
            entry.status,
            entry.device,
            [(i, e.loss, e.gradient.tobytes()) for i, e in sorted(entry.evaluations.items())],
            None if entry.hessian is None else entry.hessian.tobytes(),
            None
            if entry.trajectory is None
            else (entry.trajectory.losses.tobytes(), entry.trajectory.theta.tobytes()),
        )
    return found
