"""Benchmarks: whole runs against a hand-written baseline, every engine's step, features, models.

    python benchmarks/bench.py                 # print the tables (markdown)
    python benchmarks/bench.py --write         # ... and regenerate benchmarks/README.md
    python benchmarks/bench.py --quick         # fewer repeats and sizes, no 10M-row CSV

Everything is measured in one run of this script, side by side, and compared as ratios: these
machines are shared and noisy (2x between runs), so only numbers taken together mean anything.
Whole runs alternate with their baseline and the best of the repeats is kept. Not part of the
test suite; nothing here gates CI.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from verifiers.data import Dataset  # noqa: E402
from verifiers.engines import EngineUnavailable, engine_class  # noqa: E402
from verifiers.engines.base import one_blas_thread  # noqa: E402
from verifiers.models import MODELS  # noqa: E402
from verifiers.settings import LIMITS  # noqa: E402

LR = 1e-4
MILLION = 1_000_000
# The targets
RUN_TIME_RATIO = 3.0
RUN_MEMORY_RATIO = 1.5
FEATURES_SECONDS = 60.0
LOADED_RATIO = 1.5  # the loaded run's ratio within this many times the idle run's
LOAD_PROCESSES = 2  # busy processes beside the loaded run
REFERENCE_RATIO = 1.25  # the reference run against bare imports
LOOP_DESCENT_SECONDS = engine_class("loop").descent_seconds or LIMITS.seconds
# The catalogue's models at 1e6 rows: 100 iterations each (a step of softmax or the network is
# several passes over the data; the table gives each engine's time per step).
MODEL_ITERATIONS = 100


# ---- data ---------------------------------------------------------------------------------------
def synthetic(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """y = 1.3 x + 8 + noise, x around 50: the shape of the reference data, any size."""
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 15, rows)
    return x[:, None], 1.3 * x + 8 + rng.normal(0, 10, rows)


def model_data(model: str, rows: int, features: int = 1, seed: int = 0):
    """Data for `model`: the reference's shape for the regressions, labels for the classifiers
    (logistic: y = [x·w + b + noise > 0]; softmax: the argmax of 3 linear scores plus noise)."""
    if model in ("mse", "ridge") and features == 1:
        return synthetic(rows, seed)
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, (rows, features))
    if model == "logistic":
        score = X @ rng.normal(0, 1, features) + 0.5 + rng.normal(0, 1, rows)
        return X, (score > 0).astype(np.float64)
    if model == "softmax":
        scores = X @ rng.normal(0, 1, (features, 3)) + rng.normal(0, 1, (rows, 3))
        return X, np.argmax(scores, axis=1).astype(np.float64)
    if model == "mlp":
        return X, np.sin(X.sum(axis=1)) + rng.normal(0, 0.1, rows)
    return X, X @ rng.normal(0, 1, features) + 3 + rng.normal(0, 1, rows)


def write_csv(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", fmt="%.17g")


# ---- one descent step per engine ----------------------------------------------------------------
def numpy_step(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The hand-written numpy step a person would write: the baseline."""
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
    X, y = synthetic(rows)
    data = Dataset.from_arrays(X, y)
    model = MODELS["mse"](data)
    theta = np.zeros(2)
    step = numpy_step(np.ascontiguousarray(X[:, 0]), y)

    def numpy_run(k: int) -> None:
        t = theta
        with one_blas_thread:  # as the engines run it
            for _ in range(k):
                t = step(t)

    results: dict[str, list[float]] = {"numpy (hand-written)": per_step_times(numpy_run, steps, 3)}
    engines = [("loop", "cpu"), ("manual", "cpu"), ("minigrad", "cpu"), ("torch", "cpu")]
    engines += [("torch", "cuda"), ("jax", "auto"), ("autograd", "cpu"), ("numeric", "cpu")]
    for name, device in engines:
        try:
            engine = engine_class(name)(model, device)
        except EngineUnavailable as error:
            print(f"  ({name} on {device} skipped: {error.reason})", file=sys.stderr)
            continue
        label = {
            "torch": f"torch ({engine.device})",
            "jax": "jax (one jitted loop)",
            "loop": "loop (per point)",
        }.get(name, name)
        # the per-point loop takes ~0.2 s a step at a million rows: a few steps are enough
        count = max(steps // 20, 2) if name == "loop" and rows > 10_000 else steps
        results[label] = per_step_times(
            lambda k, engine=engine: engine.descend(theta, LR, k), count, repeats
        )
        engine.close()
    return results


def minigrad_direct(repeats: int) -> dict | str:
    """minigrad used directly, as a learner writes the step (benchmarks/minigrad_step.py)."""
    path = ROOT / "benchmarks" / "minigrad_step.py"
    if not path.exists():
        return "benchmarks/minigrad_step.py is not in this checkout yet: not measured"
    spec = importlib.util.spec_from_file_location("minigrad_step", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.measure(repeats)


# ---- whole runs ---------------------------------------------------------------------------------
# Linux copies a process's peak memory into a child it forks, and keeps it across exec: a child
# forked straight from this (large) process would report this process's peak. A small launcher
# process forks the command instead and reports the command's own peak. A run may use more than
# one process (the verifier's engines in two lanes): the launcher also samples the resident
# memory of the command's whole process tree every few milliseconds and reports the larger of
# that sum's peak and the command's own.
_LAUNCHER = """
import os, sys, time, threading
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
page = os.sysconf("SC_PAGE_SIZE")
peak = [0]
done = threading.Event()

def tree(root):
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        found.append(parent)
        try:
            with open(f"/proc/{parent}/task/{parent}/children") as children:
                frontier += [int(c) for c in children.read().split()]
        except OSError:
            pass
    return found

def sample():
    while not done.is_set():
        total = 0
        for member in tree(pid):
            try:
                with open(f"/proc/{member}/statm") as statm:
                    total += int(statm.read().split()[1]) * page
            except OSError:
                pass
        peak[0] = max(peak[0], total)
        time.sleep(0.005)

threading.Thread(target=sample, daemon=True).start()
_, status, usage = os.wait4(pid, 0)
done.set()
seconds = time.perf_counter() - started
print(max(usage.ru_maxrss * 1024, peak[0]), os.waitstatus_to_exitcode(status), seconds)
"""

# The baseline of a whole run: a process that imports what the verifier imports, loads the same
# CSV and runs the hand-written numpy descent (the step above) for the same iterations.
_BASELINE = """
import sys, numpy as np, torch, jax, jax.numpy as jnp
from verifiers.data import load_csv
torch.zeros(1, dtype=torch.float64) + 1; jnp.zeros(1).block_until_ready()
data = load_csv(sys.argv[1])
x, y, n, lr = np.ascontiguousarray(data.X[:, 0]), data.y, data.rows, float(sys.argv[3])
b = w = 0.0
for _ in range(int(sys.argv[2])):
    r = y - (w * x + b)
    b, w = b - lr * (-2 / n) * r.sum(), w - lr * (-2 / n) * (x @ r)
print(b, w)
"""


@contextlib.contextmanager
def background_load(processes: int):
    """`processes` busy loops on this machine while the block runs (a machine busy with
    other work), stopped after it."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for process in busy:
            process.kill()
            process.wait()


def measure_process(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident bytes (of its whole process tree) of `command`."""
    result = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *command], cwd=ROOT, capture_output=True, text=True
    )
    peak, status, seconds = result.stdout.split()[-3:]
    if int(status) not in (0, 1):
        raise RuntimeError(f"{command} failed with status {status}: {result.stderr[-2000:]}")
    return float(seconds), float(peak)


def verifier(path: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "verifiers.run", str(path), "--quiet", *options]


def whole_run(path: Path, iterations: int, repeats: int, *options: str) -> dict[str, Any]:
    """The verifier on `path` (all engines) and its baseline, alternating; the best of each."""
    baseline = [sys.executable, "-c", _BASELINE, str(path), str(iterations), str(LR)]
    times: dict[str, list[tuple[float, float]]] = {"baseline": [], "run": []}
    descents: list[dict[str, float]] = []
    steps: list[dict[str, int]] = []
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        run = verifier(path, "--iterations", str(iterations), *options, "--json", str(report))
        for _ in range(repeats):
            times["baseline"].append(measure_process(baseline))
            times["run"].append(measure_process(run))
            engines = json.loads(report.read_text())["engines"]
            descents.append(
                {n: (e.get("descent") or {}).get("seconds") or 0.0 for n, e in engines.items()}
            )
            steps.append(
                {n: (e.get("descent") or {}).get("steps") or 0 for n, e in engines.items()}
            )
    best = {k: (min(t for t, _ in v), min(m for _, m in v)) for k, v in times.items()}
    fastest = min(range(repeats), key=lambda k: times["run"][k][0])
    return {
        "descent_seconds": descents[fastest],
        "descent_steps": steps[fastest],
        "run_seconds": best["run"][0],
        "run_peak": best["run"][1],
        "baseline_seconds": best["baseline"][0],
        "baseline_peak": best["baseline"][1],
        "run_seconds_all": [t for t, _ in times["run"]],
        "baseline_seconds_all": [t for t, _ in times["baseline"]],
    }


def run_with_report(path: Path, *options: str) -> dict:
    """One verifier run: wall seconds, peak memory, and from its JSON report the verdict and each
    engine's status and descent time (engines run side by side, so these overlap)."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        seconds, peak = measure_process(verifier(path, *options, "--json", str(report)))
        document = json.loads(report.read_text())
    engines = {}
    for name, entry in document["engines"].items():
        descent = entry.get("descent") or {}
        engines[name] = {
            "status": entry.get("status"),
            "descent_seconds": descent.get("seconds"),
            "steps": descent.get("steps"),
        }
    return {"seconds": seconds, "peak": peak, "ok": document.get("ok"), "engines": engines}


def features_runs(sizes: list[int], rows: int, iterations: int, folder: Path) -> list[dict]:
    """Whole runs (all engines, gradient, Hessian, `iterations` steps) with d features."""
    found = []
    for d in sizes:
        X, y = model_data("mse", rows, d, seed=d)
        path = folder / f"features-{d}.csv"
        write_csv(path, X, y)
        found.append({"features": d, **run_with_report(path, "--iterations", str(iterations))})
        path.unlink()
    return found


def model_runs(rows: int, iterations: int, folder: Path) -> list[dict]:
    """A whole run of every model in the catalogue at `rows` rows."""
    found = []
    for name in MODELS:
        features = 1 if name in ("mse", "ridge", "logistic", "mlp") else 2
        X, y = model_data(name, rows, features, seed=7)
        path = folder / f"{name}.csv"
        write_csv(path, X, y)
        options = ["--model", name, "--iterations", str(iterations)]
        found.append({"model": name, "features": features, **run_with_report(path, *options)})
        path.unlink()
    return found


def cli_overhead(repeats: int) -> tuple[float, float]:
    """Wall time of the CLI on data/data.csv, and of importing and initialising torch and jax."""
    bare = (
        "import numpy, torch, jax, jax.numpy as jnp; "
        "torch.zeros(1, dtype=torch.float64) + 1; jnp.zeros(1).block_until_ready()"
    )
    init = min(measure_process([sys.executable, "-c", bare])[0] for _ in range(repeats))
    run = min(measure_process(verifier(ROOT / "data" / "data.csv"))[0] for _ in range(repeats))
    return run, init


def large_csv(rows: int, folder: Path) -> dict[str, float]:
    """Load a rows × 2 CSV, and verify it with 100 iterations, in child processes."""
    path = folder / "big.csv"
    X, y = synthetic(rows, seed=1)
    write_csv(path, X, y)
    probe = (
        "import sys, time; from verifiers.data import load_csv; "
        "t = time.perf_counter(); d = load_csv(sys.argv[1]); print(time.perf_counter() - t)"
    )
    load = subprocess.run(
        [sys.executable, "-c", probe, str(path)], cwd=ROOT, check=True, capture_output=True
    )
    _, load_peak = measure_process([sys.executable, "-c", probe, str(path)])
    _, load_baseline = measure_process([sys.executable, "-c", "import verifiers.data, pyarrow"])
    _, baseline = measure_process([sys.executable, "-c", "import verifiers.run, torch, jax"])
    run_seconds, peak = measure_process(verifier(path, "--iterations", "100"))
    result = {
        "rows": rows,
        "file_bytes": path.stat().st_size,
        "load_seconds": float(load.stdout),
        "load_peak_bytes": load_peak,
        "load_baseline_bytes": load_baseline,
        "run_seconds": run_seconds,
        "run_peak_bytes": peak,
        "baseline_bytes": baseline,
        "data_bytes": rows * 2 * 8,
    }
    path.unlink()
    return result


# ---- the report ---------------------------------------------------------------------------------
def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    for package in ("torch", "jax"):
        with contextlib.suppress(ImportError):
            versions.append(f"{package} {__import__(package).__version__}")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", load average {:.1f} {:.1f} {:.1f} at the start".format(*os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB{load}; " + ", ".join(versions)


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:,.2f} ms"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _mb(value: float) -> str:
    return f"{value / 2**20:,.0f} MB"


def render(results: dict) -> str:
    lines: list[str] = []
    run = results.get("whole_run")
    if run:
        t, m = run["run_seconds"] / run["baseline_seconds"], run["run_peak"] / run["baseline_peak"]
        lines += [
            f"## A {MILLION:,}-row run against the hand-written baseline",
            "",
            f"`python -m verifiers.run` (all engines, {run['iterations']:,} iterations) against "
            "a process that imports numpy, torch and jax, loads the same CSV and runs the "
            "hand-written numpy descent for as many iterations; best of "
            f"{len(run['run_seconds_all'])} alternating runs each.",
            "",
            "| | wall time | peak memory |",
            "|---|---|---|",
            f"| baseline | {run['baseline_seconds']:.2f} s | {_mb(run['baseline_peak'])} |",
            f"| `verifiers.run` | {run['run_seconds']:.2f} s | {_mb(run['run_peak'])} |",
            f"| ratio (target ≤ {RUN_TIME_RATIO:g} and ≤ {RUN_MEMORY_RATIO:g}) | {t:.2f} "
            f"({_met(t <= RUN_TIME_RATIO)}) | {m:.2f} ({_met(m <= RUN_MEMORY_RATIO)}) |",
            "",
            "All runs, seconds: verifier "
            + ", ".join(f"{s:.1f}" for s in run["run_seconds_all"])
            + "; baseline "
            + ", ".join(f"{s:.1f}" for s in run["baseline_seconds_all"])
            + ".",
            "",
        ]
        loaded = results.get("loaded_run")
        if loaded:
            lt = loaded["run_seconds"] / loaded["baseline_seconds"]
            lines += [
                f"The same runs with {loaded['load']} busy processes beside them (the machine's "
                "cores taken by other work):",
                "",
                "| | wall time | peak memory |",
                "|---|---|---|",
                f"| baseline | {loaded['baseline_seconds']:.2f} s | "
                f"{_mb(loaded['baseline_peak'])} |",
                f"| `verifiers.run` | {loaded['run_seconds']:.2f} s | {_mb(loaded['run_peak'])} |",
                f"| ratio, loaded / idle ratio (target ≤ {LOADED_RATIO:g}) | {lt:.2f} / {t:.2f} "
                f"= {lt / t:.2f} ({_met(lt / t <= LOADED_RATIO)}) | |",
                "",
            ]
        if run.get("descent_steps"):
            lines += [_where_the_time_goes(run, results.get("full_descents_run")), ""]
        if t > RUN_TIME_RATIO and str(MILLION) in {str(k) for k in results.get("steps", {})}:
            lines += [_why_the_run_takes_longer(run, results), ""]
    steps = results.get("steps", {})
    if steps:
        lines += ["## One descent step per engine (float64, MSE, one feature)", ""]
        lines += [
            "Each engine's `descend` alone in this process (no other engine beside it), min and "
            "median over repeated runs; the ratio is to the hand-written numpy step.",
            "",
        ]
        for rows, timings in steps.items():
            base = min(timings["numpy (hand-written)"])
            lines += [
                f"N = {int(rows):,}",
                "",
                "| engine | min / step | median / step | min / numpy |",
            ]
            lines.append("|---|---|---|---|")
            for label, times in timings.items():
                lines.append(
                    f"| {label} | {_us(min(times))} | {_us(statistics.median(times))} "
                    f"| {min(times) / base:.2f} |"
                )
            lines.append("")
    direct = results.get("minigrad_direct")
    if direct is not None:
        lines += ["## minigrad used directly (benchmarks/minigrad_step.py)", ""]
        if isinstance(direct, str):
            lines += [direct, ""]
        else:
            direct = {int(rows): row for rows, row in direct.items()}  # JSON keys are strings
            lines += ["| rows | engine | min / step | median / step |", "|---|---|---|---|"]
            for rows, row in direct.items():
                for engine, t in row.items():
                    lines.append(
                        f"| {int(rows):,} | {engine} | {_us(t['min'])} | {_us(t['median'])} |"
                    )
            small, big = direct.get(100, {}), direct.get(MILLION, {})
            lines += ["", "| target | measured | met |", "|---|---|---|"]
            if "minigrad" in small and "torch eager" in small:
                r = small["minigrad"]["median"] / small["torch eager"]["median"]
                lines.append(
                    f"| minigrad ≤ 0.5 × torch eager, N = 100 | {r:.2f} | {_met(r <= 0.5)} |"
                )
            if "minigrad" in big and "numpy" in big:
                r = big["minigrad"]["median"] / big["numpy"]["median"]
                lines.append(f"| minigrad ≤ 2 × numpy, N = 1,000,000 | {r:.2f} | {_met(r <= 2)} |")
            lines.append("")
    features = results.get("features")
    if features:
        lines += [
            f"## Features: d features × {features[0]['rows']:,} rows",
            "",
            f"Whole runs (gradient at 5 points, Hessian, {features[0]['iterations']} "
            "iterations, all engines), with each engine's descent time from the run's JSON "
            "report (engines run side by side, so these overlap).",
            "",
        ]
        lines += _runs_table(["d"], [[f"{f['features']:,}"] for f in features], features)
        widest = features[-1]
        lines += [
            "",
            "| target | measured | met |",
            "|---|---|---|",
            f"| d = {widest['features']:,}, {widest['rows']:,} rows verified in under "
            f"{FEATURES_SECONDS:.0f} s | {widest['seconds']:.1f} s | "
            f"{_met(widest['seconds'] < FEATURES_SECONDS)} |",
            "",
        ]
    models = results.get("models")
    if models:
        lines += [
            f"## Every model at {models[0]['rows']:,} rows",
            "",
            f"Whole runs (all engines that compute the model, {models[0]['iterations']:,} "
            "iterations, the model's default learning rate); logistic labels are "
            "`x·w + b + noise > 0`, softmax labels the argmax of three noisy linear scores of "
            "two features.",
            "",
        ]
        cells = [[m["model"], str(m["features"])] for m in models]
        lines += [*_runs_table(["model", "features"], cells, models), ""]
    cli = results.get("cli")
    if cli:
        run_s, init = cli
        lines += [
            "## The command line's overhead",
            "",
            "| target | measured | met |",
            "|---|---|---|",
            f"| `verifiers.run data/data.csv` ≤ {REFERENCE_RATIO:g} × importing and initialising "
            f"torch and jax | {run_s:.2f} s / {init:.2f} s = {run_s / init:.2f} | "
            f"{_met(run_s / init <= REFERENCE_RATIO)} |",
            "",
        ]
    large = results.get("large")
    if large:
        extra = large["run_peak_bytes"] - large["baseline_bytes"]
        lines += [
            f"## {large['rows']:,}-row CSV (2 columns, {_mb(large['file_bytes'])} on disk)",
            "",
            f"- load: {large['load_seconds']:.2f} s, peak memory of a process that only loads "
            f"it {_mb(large['load_peak_bytes'])}, of which {_mb(large['load_baseline_bytes'])} "
            "is the interpreter with numpy and pyarrow imported: the loader's peak is "
            f"{(large['load_peak_bytes'] - large['load_baseline_bytes']) / large['data_bytes']:.2f}"
            " × the float64 data",
            f"- `python -m verifiers.run big.csv --iterations 100` (all engines): "
            f"{large['run_seconds']:.1f} s, peak memory {_mb(large['run_peak_bytes'])}, of which "
            f"{_mb(large['baseline_bytes'])} is the interpreter with numpy, torch and jax "
            f"imported; the rest, {_mb(extra)}, is {extra / large['data_bytes']:.2f} × the "
            f"float64 data ({_mb(large['data_bytes'])}); target ≤ 4 ×",
            "",
        ]
    return "\n".join(lines)


def _runs_table(headers: list[str], cells: list[list[str]], runs: list[dict]) -> list[str]:
    """A table of whole runs: the given first columns, then each run's wall time, peak memory
    and every engine's descent (see :func:`_seconds`)."""
    columns = [*headers, "wall time", "peak memory",
               "per engine: descent seconds (ms per step; status, steps)"]  # fmt: skip
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for first, run in zip(cells, runs, strict=True):
        engines = "; ".join(f"{n} {_seconds(e)}" for n, e in run["engines"].items())
        row = [*first, f"{run['seconds']:.1f} s", _mb(run["peak"]), engines]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _where_the_time_goes(run: dict, full: dict | None) -> str:
    """Each engine's descent in the fastest timed run, and the run with every descent whole."""
    iterations = run["iterations"]
    each = ", ".join(
        f"{name} {seconds:.1f} s ({run['descent_steps'].get(name, 0):,} steps)"
        for name, seconds in run["descent_seconds"].items()
    )
    text = (
        f"Where the time goes: in the fastest timed run the descents took {each}, "
        f"{sum(run['descent_seconds'].values()):.1f} s of CPU time in all over two lanes (a "
        "process each). The hand formulas and the exact engine with the cheapest step descend "
        f"all {iterations:,} iterations; the other engines descend the first iterations "
        f"within {LIMITS.companion_work:.0e} operations (rows × operations per row × "
        "iterations) and are compared over those (README, Gradient descent); the per-point "
        "loop has its own 3 s. The rest is the "
        "imports, the worker's start, every engine at the 26 check points, the Hessians and the "
        "rounding probe."
    )
    if full:
        ratio = full["run_seconds"] / full["baseline_seconds"]
        total = sum(full["descent_seconds"].values())
        text += (
            f" With `--full-descents` (every engine all {iterations:,} iterations; one run, "
            f"beside its own baseline) the run took {full['run_seconds']:.1f} s, {ratio:.2f}× "
            f"its baseline, its descents {total:.1f} s of CPU time."
        )
    return text


def _why_the_run_takes_longer(run: dict, results: dict) -> str:
    """The floor that the engines' own descent steps put under the whole run's time."""
    steps = {str(k): v for k, v in results["steps"].items()}[str(MILLION)]
    iterations = run["iterations"]
    descended = run.get("descent_steps") or {}
    base = min(steps["numpy (hand-written)"])
    cores = results.get("cores") or os.cpu_count() or 1
    cpu = 0.0
    for label, times in steps.items():
        if label.startswith("numpy"):
            continue
        count = descended.get(label.split(" (")[0], iterations)
        seconds = min(times) * count
        cpu += min(seconds, LOOP_DESCENT_SECONDS) if label.startswith("loop") else seconds
    wall = cpu / cores
    ratios = ", ".join(
        f"{label.split(' (')[0]} {min(times) / base:.1f}×"
        for label, times in steps.items()
        if not label.startswith("numpy")
    )
    return (
        f"Why the time target is missed: the descents the run makes (steps above), at the "
        f"engines' steps measured alone below, take {cpu:.1f} s of CPU time; spread over this "
        f"machine's {cores} cores that is {wall:.1f} s, {wall / run['baseline_seconds']:.1f}× "
        f"the baseline before any check point, Hessian, rounding probe or import. Alone, at "
        f"this size, the steps take (× the hand-written step): {ratios}."
        # the descents in the run itself, unless the paragraph above already gave them
        + ("" if descended else _descents_in_the_run(run))
    )


def _descents_in_the_run(run: dict) -> str:
    """Each engine's descent in the fastest timed run (two lanes at once, so under contention)."""
    descents = run.get("descent_seconds")
    if not descents:
        return ""
    each = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in descents.items())
    total = sum(descents.values())
    return (
        f" In the fastest timed run itself (its engines in two lanes, a process each, so each "
        f"step beside another engine's), the descents took {each}: {total:.1f} s in all, "
        f"{total / 2:.1f} s of the run's {run['run_seconds']:.1f} s even when perfectly shared "
        f"over two lanes; the rest is imports, the worker's start, the check points, the "
        f"Hessians and the rounding probe."
    )


def _seconds(engine: dict) -> str:
    if engine["status"] == "skipped":
        return "(skipped)"
    seconds, steps = engine["descent_seconds"], engine["steps"]
    if seconds is None:
        return f"- ({engine['status']}, {steps})"
    per_step = f"{1000 * seconds / steps:.0f} ms/step; " if steps else ""
    return f"{seconds:.1f} ({per_step}{engine['status']}, {steps})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate benchmarks/README.md")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="lay out the results of an earlier --json "
        "run instead of measuring (with --write: into benchmarks/README.md)"
    )  # fmt: skip
    args = parser.parse_args()
    if args.render:
        results = json.loads(args.render.read_text())
        _publish(render(results), results.get("about", "?"), results.get("date", "?"), args.write)
        return
    quick = args.quick
    repeats = 3 if quick else 5
    results: dict = {}
    started = time.strftime("%Y-%m-%d")
    about = machine()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        X, y = synthetic(MILLION)
        path = folder / "million.csv"
        write_csv(path, X, y)
        iterations = 1000
        results["whole_run"] = {
            **whole_run(path, iterations, 2 if quick else 3),
            "iterations": iterations,
        }
        # What shortening the companions' descents saves: every engine all the way, once.
        results["full_descents_run"] = {
            **whole_run(path, iterations, 1, "--full-descents"),
            "iterations": iterations,
        }
        # The same comparison on a busy machine: two processes spinning on the two cores.
        with background_load(LOAD_PROCESSES):
            results["loaded_run"] = {
                **whole_run(path, iterations, 2 if quick else 3),
                "iterations": iterations,
                "load": LOAD_PROCESSES,
            }
        path.unlink()
        results["steps"] = {
            100: step_benchmarks(100, 200 if quick else 1000, repeats),
            MILLION: step_benchmarks(MILLION, 5 if quick else 20, repeats),
        }
        results["minigrad_direct"] = minigrad_direct(repeats)
        sizes = [10, 100, 1000] if not quick else [10, 1000]
        features = features_runs(sizes, 10_000, 100, folder)
        for f in features:
            f.update(rows=10_000, iterations=100)
        results["features"] = features
        models = model_runs(MILLION, MODEL_ITERATIONS, folder)
        for m in models:
            m.update(rows=MILLION, iterations=MODEL_ITERATIONS)
        results["models"] = models
        results["cli"] = cli_overhead(2 if quick else 5)
        if not quick:
            results["large"] = large_csv(10_000_000, folder)
    results.update(about=about, date=started, cores=os.cpu_count() or 1)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))
    _publish(render(results), about, started, args.write)


def _publish(body: str, about: str, date: str, write: bool) -> None:
    """Print the tables; with `write`, put them under HEADER.md in benchmarks/README.md."""
    print(body)
    if write:
        header = (ROOT / "benchmarks" / "HEADER.md").read_text()
        (ROOT / "benchmarks" / "README.md").write_text(
            f"{header}\nMeasured {date} on {about}.\n\n{body}"
        )


if __name__ == "__main__":
    main()
