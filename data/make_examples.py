"""Write the example data sets of the model catalogue (seeded: the same files on every run).

    python data/make_examples.py

- ``binary.csv``: 100 rows ``x1,x2,label`` for ``--model logistic``. Labels are drawn as
  Bernoulli(σ(1.5·x1 - x2 + 0.5)), so the classes overlap: the optimum is finite.
- ``classes.csv``: 150 rows ``x1,x2,label`` with labels 0, 1, 2 for ``--model softmax``, drawn
  from the softmax of three linear scores (overlapping classes again).
- ``wave.csv``: 100 rows ``x,y`` with ``y = sin(x) + noise`` on [-3, 3], for ``--model mlp``: a
  curve a straight line cannot fit and a few tanh units can.

Values are written with 6 decimals, so the files read the same everywhere. ``data.csv`` is the
reference example's data and is not made here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 20240612


def _write(name: str, header: str, columns: list[np.ndarray], integer_last: bool) -> None:
    lines = [header]
    for row in zip(*columns, strict=True):
        cells = [f"{value:.6f}" for value in row[:-1]]
        cells.append(f"{int(row[-1])}" if integer_last else f"{row[-1]:.6f}")
        lines.append(",".join(cells))
    (HERE / name).write_text("\n".join(lines) + "\n")
    print(f"wrote data/{name}: {len(lines) - 1} rows")


def binary(rng: np.random.Generator) -> None:
    X = rng.normal(size=(100, 2))
    probability = 1 / (1 + np.exp(-(1.5 * X[:, 0] - X[:, 1] + 0.5)))
    labels = (rng.uniform(size=100) < probability).astype(int)
    _write("binary.csv", "x1,x2,label", [X[:, 0], X[:, 1], labels], integer_last=True)


def classes(rng: np.random.Generator) -> None:
    X = rng.normal(size=(150, 2))
    W = np.array([[2.0, -1.0, -1.0], [0.0, 1.7, -1.7]])
    scores = X @ W + np.array([0.3, 0.0, -0.3])
    P = np.exp(scores - scores.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(3, p=p) for p in P])
    _write("classes.csv", "x1,x2,label", [X[:, 0], X[:, 1], labels], integer_last=True)


def wave(rng: np.random.Generator) -> None:
    x = np.sort(rng.uniform(-3, 3, size=100))
    y = np.sin(x) + 0.1 * rng.normal(size=100)
    _write("wave.csv", "x,y", [x, y], integer_last=False)


def main() -> None:
    rng = np.random.default_rng(SEED)
    binary(rng)
    classes(rng)
    wave(rng)


if __name__ == "__main__":
    main()
