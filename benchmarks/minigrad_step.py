"""One descent step of the reference example written as a learner writes it, on minigrad directly.

    python benchmarks/minigrad_step.py [--repeats 7]

The step is the same lines of code on minigrad and on torch eager (`learner_steps`): the
whole-array loss ``((Y - (w * X + b)) ** 2).mean()``, ``loss.backward()``, then ``b -= lr *
b.grad`` and ``w -= lr * w.grad`` under ``no_grad`` and the gradients cleared; float64 data of
the reference's shape (y ≈ 1.3 x + 8, x around 50). The baseline is the step a person writes by
hand in numpy. Each engine runs the same number of steps, timed `repeats` times after a warm-up
run, the engines taking turns; a step's time is a run's time over its steps. Ratios are
minigrad's time over the other's (below 1: minigrad is faster), from medians taken side by side
in one process.

Not a test: nothing here asserts a time (these machines vary by 2× from run to run).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import minigrad

LR = 1e-4
SIZES = {100: 2000, 1_000_000: 10}  # rows: steps per timed run


def synthetic(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x around 50, y = 1.3 x + 8 + noise: the shape of data/data.csv, any size."""
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 15, rows)
    return x, 1.3 * x + 8 + rng.normal(0, 10, rows)


def learner_steps(no_grad: Callable[[], Any], X: Any, Y: Any, b: Any, w: Any, steps: int) -> None:
    """The step as a learner writes it; the same lines run on minigrad and on torch."""
    for _ in range(steps):
        loss = ((Y - (w * X + b)) ** 2).mean()
        loss.backward()
        with no_grad():
            b -= LR * b.grad
            w -= LR * w.grad
        b.grad = None
        w.grad = None


def numpy_steps(x: np.ndarray, y: np.ndarray, theta: np.ndarray, steps: int) -> None:
    """The hand-written numpy step: the residual, its sum and its dot product with x."""
    n = len(y)
    b, w = theta
    for _ in range(steps):
        r = y - (w * x + b)
        b, w = b - LR * (-2 / n) * r.sum(), w - LR * (-2 / n) * (x @ r)
    theta[:] = b, w


def _per_step(runs: dict[str, Callable[[int], None]], steps: int, repeats: int) -> dict:
    """Seconds per step of each run: a warm-up, then `repeats` rounds that time every engine
    once in turn, so that a slow moment of the machine falls on all of them alike."""
    for run in runs.values():
        run(steps)  # warm-up: first-call costs, caches, the allocator's pools
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            run(steps)
            times[name].append((time.perf_counter() - started) / steps)
    return {name: {"min": min(t), "median": statistics.median(t)} for name, t in times.items()}


def measure(repeats: int = 7) -> dict[int, dict[str, dict[str, float]]]:
    """Seconds per step, ``{rows: {engine: {"min": s, "median": s}}}``, rows 100 and 1,000,000.

    Engines: "minigrad", "torch eager" (left out when torch is not installed) and "numpy"
    (the hand-written step).
    """
    try:
        import torch
    except ImportError:
        torch = None
    return {rows: _measure_rows(rows, steps, repeats, torch) for rows, steps in SIZES.items()}


def _measure_rows(rows: int, steps: int, repeats: int, torch: Any) -> dict[str, dict[str, float]]:
    x, y = synthetic(rows)
    X, Y = minigrad.Tensor(x), minigrad.Tensor(y)
    b = minigrad.Tensor(0.0, requires_grad=True)
    w = minigrad.Tensor(0.0, requires_grad=True)
    runs = {"minigrad": lambda k: learner_steps(minigrad.no_grad, X, Y, b, w, k)}
    if torch is not None:
        tX, tY = torch.from_numpy(x), torch.from_numpy(y)
        tb = torch.zeros((), dtype=torch.float64, requires_grad=True)
        tw = torch.zeros((), dtype=torch.float64, requires_grad=True)
        runs["torch eager"] = lambda k: learner_steps(torch.no_grad, tX, tY, tb, tw, k)
    theta = np.zeros(2)
    runs["numpy"] = lambda k: numpy_steps(x, y, theta, k)
    return _per_step(runs, steps, repeats)


def _time(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:,.2f} ms"


def table(results: dict[int, dict[str, dict[str, float]]]) -> str:
    """The results as a markdown table, with minigrad's ratios to the others (medians)."""
    lines = [
        "| rows | engine | min / step | median / step | minigrad / this |",
        "|---|---|---|---|---|",
    ]
    for rows, row in results.items():
        mine = row["minigrad"]["median"]
        for engine, t in row.items():
            ratio = "" if engine == "minigrad" else f"{mine / t['median']:.2f}"
            lines.append(
                f"| {rows:,} | {engine} | {_time(t['min'])} | {_time(t['median'])} | {ratio} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per engine and size")
    print(table(measure(parser.parse_args().repeats)))


if __name__ == "__main__":
    main()
