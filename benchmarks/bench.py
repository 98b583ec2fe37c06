"""Benchmarks: the reference descent step on every engine, the CLI's overhead, large CSVs.

    python benchmarks/bench.py                 # print the tables (markdown)
    python benchmarks/bench.py --write         # ... and regenerate benchmarks/README.md
    python benchmarks/bench.py --quick         # fewer repeats, no 10M-row CSV

Everything is measured in one process and one run, side by side, and compared as ratios: these
machines are noisy (2x between runs), so only ratios taken together mean anything. Not part of the
test suite; nothing here gates CI.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from verifiers.data import Dataset  # noqa: E402
from verifiers.engines import EngineUnavailable, engine_class  # noqa: E402

LR = 1e-4


def synthetic(rows: int, seed: int = 0) -> Dataset:
    """y = 1.3 x + 8 + noise, x around 50: the shape of the reference data, any size."""
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 15, rows)
    y = 1.3 * x + 8 + rng.normal(0, 10, rows)
    return Dataset.from_arrays(x, y)


def numpy_step(data: Dataset) -> Callable[[np.ndarray], np.ndarray]:
    """The hand-written numpy step a person would write: the baseline."""
    x, y = np.ascontiguousarray(data.X[:, 0]), data.y
    n = len(y)

    def step(theta: np.ndarray) -> np.ndarray:
        b, w = theta
        r = y - (w * x + b)
        return np.array([b - LR * (-2 / n) * r.sum(), w - LR * (-2 / n) * (x @ r)])

    return step


def per_step_times(run: Callable[[int], None], steps: int, repeats: int) -> list[float]:
    """Seconds per step for `repeats` runs of `steps` steps (after one warm-up run)."""
    run(steps)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(steps)
        times.append((time.perf_counter() - started) / steps)
    return times


def step_benchmarks(rows: int, steps: int, repeats: int) -> dict[str, list[float]]:
    data = synthetic(rows)
    theta = np.zeros(2)
    results: dict[str, list[float]] = {}
    step = numpy_step(data)

    def numpy_run(k: int) -> None:
        t = theta
        for _ in range(k):
            t = step(t)

    results["numpy (hand-written)"] = per_step_times(numpy_run, steps, repeats)
    for name, device in (("minigrad", "cpu"), ("torch", "cpu"), ("torch", "cuda"), ("jax", "auto")):
        try:
            engine = engine_class(name)(data, device)
        except EngineUnavailable as error:
            print(f"  ({name} on {device} skipped: {error.reason})", file=sys.stderr)
            continue
        label = {"torch": f"torch eager ({engine.device})", "jax": "jax (one jitted loop)"}.get(
            name, name
        )
        results[label] = per_step_times(
            lambda k, engine=engine: engine.descend(theta, LR, k), steps, repeats
        )
    return results


def _seconds_of(command: list[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best


def cli_overhead(repeats: int) -> tuple[float, float]:
    """Wall time of the CLI on data/data.csv, and of importing and initialising torch and jax."""
    bare = (
        "import numpy, torch, jax, jax.numpy as jnp; "
        "torch.zeros(1, dtype=torch.float64) + 1; jnp.zeros(1).block_until_ready()"
    )
    init = _seconds_of([sys.executable, "-c", bare], repeats)
    run = _seconds_of([sys.executable, "-m", "verifiers.run", "data/data.csv", "--quiet"], repeats)
    return run, init


def large_csv(rows: int) -> dict[str, float]:
    """Write a rows × 2 CSV, then load, verify and descend 100 iterations in a child process."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.csv"
        data = synthetic(rows, seed=1)
        started = time.perf_counter()
        np.savetxt(path, np.column_stack([data.X[:, 0], data.y]), delimiter=",", fmt="%.17g")
        written = time.perf_counter() - started
        size = path.stat().st_size
        probe = (
            "import sys, time; from verifiers.data import load_csv; "
            "t = time.perf_counter(); d = load_csv(sys.argv[1]); print(time.perf_counter() - t)"
        )
        load_seconds = float(
            subprocess.run(
                [sys.executable, "-c", probe, str(path)], cwd=ROOT, check=True, capture_output=True
            ).stdout
        )
        load_peak = _peak_rss([sys.executable, "-c", probe, str(path)])
        load_baseline = _peak_rss([sys.executable, "-c", "import verifiers.data, pyarrow.csv"])
        baseline = _peak_rss([sys.executable, "-c", "import verifiers.run, numpy, torch, jax"])
        started = time.perf_counter()
        peak = _peak_rss(
            [sys.executable, "-m", "verifiers.run", str(path), "--iterations", "100", "--quiet"]
        )
        run_seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "file_bytes": size,
        "write_seconds": written,
        "load_seconds": load_seconds,
        "load_peak_bytes": load_peak,
        "load_baseline_bytes": load_baseline,
        "run_seconds": run_seconds,
        "run_peak_bytes": peak,
        "baseline_bytes": baseline,
        "data_bytes": rows * 2 * 8,
    }


# Linux copies a process's peak memory into a child it forks, and keeps it across exec: a child
# forked straight from this (large) process would report this process's peak. A small launcher
# process forks the command instead and reports the command's own peak.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status))
"""


def _peak_rss(command: list[str]) -> float:
    """Peak resident memory of `command` run to completion, in bytes (Linux reports KiB)."""
    result = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *command], cwd=ROOT, capture_output=True, text=True
    )
    peak, status = result.stdout.split()[-2:]
    if int(status) not in (0, 1):
        raise RuntimeError(f"{command} failed with status {status}: {result.stderr[-2000:]}")
    return float(peak)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    for package in ("torch", "jax"):
        with contextlib.suppress(ImportError):
            versions.append(f"{package} {__import__(package).__version__}")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB; " + ", ".join(versions)


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:,.2f} ms"


def render(steps: dict[int, dict[str, list[float]]], cli, large) -> str:
    lines = ["## Reference descent step (float64, one step = loss, gradient, update)", ""]
    for rows, results in steps.items():
        lines += [f"N = {rows:,}", "", "| engine | min / step | median / step |", "|---|---|---|"]
        for label, times in results.items():
            lines.append(f"| {label} | {_us(min(times))} | {_us(statistics.median(times))} |")
        lines.append("")
    lines += ["## Ratios (medians, measured side by side)", "", "| target | measured | met |"]
    lines.append("|---|---|---|")
    small, big = steps.get(100, {}), steps.get(1_000_000, {})
    torch_cpu = next((v for k, v in small.items() if k.startswith("torch eager (cpu")), None)
    if "minigrad" in small and torch_cpu:
        ratio = statistics.median(small["minigrad"]) / statistics.median(torch_cpu)
        lines.append(
            f"| minigrad ≤ 0.5 × torch eager at N = 100 | {ratio:.2f} | {_met(ratio <= 0.5)} |"
        )
    if "minigrad" in big:
        ratio = statistics.median(big["minigrad"]) / statistics.median(big["numpy (hand-written)"])
        lines.append(
            f"| minigrad ≤ 2 × numpy at N = 1,000,000 | {ratio:.2f} | {_met(ratio <= 2)} |"
        )
    if cli:
        run, init = cli
        lines.append(
            f"| `verifiers.run data/data.csv` ≤ 1.4 × importing and initialising torch and jax "
            f"| {run:.2f} s / {init:.2f} s = {run / init:.2f} | {_met(run / init <= 1.4)} |"
        )
    lines.append("")
    if large:
        mb = 2**20
        lines += [
            f"## {large['rows']:,}-row CSV (2 columns, {large['file_bytes'] / mb:,.0f} MB on disk)",
            "",
            f"- load: {large['load_seconds']:.2f} s, peak memory of a process that only loads it "
            f"{large['load_peak_bytes'] / mb:,.0f} MB, of which "
            f"{large['load_baseline_bytes'] / mb:,.0f} MB is the interpreter with numpy and "
            f"pyarrow imported: the loader's peak is "
            f"{(large['load_peak_bytes'] - large['load_baseline_bytes']) / large['data_bytes']:.2f}"
            " × the float64 data",
            f"- `python -m verifiers.run big.csv --iterations 100` (all engines): "
            f"{large['run_seconds']:.1f} s, peak memory {large['run_peak_bytes'] / mb:,.0f} MB, "
            f"of which {large['baseline_bytes'] / mb:,.0f} MB is the interpreter with numpy, "
            f"torch and jax imported; the rest, "
            f"{(large['run_peak_bytes'] - large['baseline_bytes']) / mb:,.0f} MB, is "
            f"{(large['run_peak_bytes'] - large['baseline_bytes']) / large['data_bytes']:.2f} × "
            f"the float64 data ({large['data_bytes'] / mb:,.0f} MB); target ≤ 4 ×",
            "",
        ]
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate benchmarks/README.md")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no 10M-row CSV")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    steps = {
        100: step_benchmarks(100, 200 if args.quick else 1000, repeats),
        1_000_000: step_benchmarks(1_000_000, 5 if args.quick else 20, repeats),
    }
    cli = cli_overhead(2 if args.quick else 5)
    large = None if args.quick else large_csv(10_000_000)
    body = render(steps, cli, large)
    print(body)
    if args.write:
        header = (ROOT / "benchmarks" / "HEADER.md").read_text()
        (ROOT / "benchmarks" / "README.md").write_text(
            f"{header}\nMeasured {time.strftime('%Y-%m-%d')} on {machine()}.\n\n{body}"
        )


if __name__ == "__main__":
    main()
