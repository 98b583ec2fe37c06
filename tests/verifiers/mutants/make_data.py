"""Write the small data sets some mutants need (seeded: the same files on every run).

    python -m tests.verifiers.mutants.make_data

Each file is drawn from its own fixed seed and written with fixed decimals, so it reads the same
everywhere; ``test_mutants.py`` checks that this script still writes exactly the files kept in
``data/``. The repository's ``data/`` holds the models' own examples and is not touched.

- ``small.csv``: 40 rows ``x,y`` with features of about 1e-3 around 0 and targets of about 3e5
  (``y ≈ 3e5·(1 + 50·x)``): features small against the targets. dL/dw is then tiny next to
  the loss, and so next to the error of central differences: the data where a noisy engine
  that refereed alone let a factor 2 in dL/dw through (issue 18).
- ``zeros.csv``: 40 rows ``x,y`` where y is 0 on about half of the rows (a count-like target
  clipped at 0): for slips on the rows where y == 0.
- ``multi.csv``: 50 rows ``x1,x2,x3,y`` with three features of different scales and a target
  whose least-squares weights all have the same sign: for slips in one sign pattern of two w's.
- ``classes3.csv``: 90 rows ``x1,x2,x3,label``, labels 0, 1, 2 for softmax: with as many
  features as classes, W's gradient transposed has W's shape.
- ``wave3.csv``: 60 rows ``x1,x2,x3,y`` for mlp with ``--hidden 3``: with as many features as
  hidden units, W1's gradient transposed has W1's shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent / "data"


def _lines(header: str, X: np.ndarray, y: np.ndarray, x_format: str, y_format: str) -> str:
    rows = [header]
    for features, target in zip(X, y, strict=True):
        rows.append(",".join([*(format(v, x_format) for v in features), format(target, y_format)]))
    return "\n".join(rows) + "\n"


def small() -> str:
    rng = np.random.default_rng(1801)
    x = 1e-3 * rng.normal(size=40)
    y = 3e5 * (1 + 50 * x + 0.01 * rng.normal(size=40))
    return _lines("x,y", x[:, None], y, ".9f", ".3f")


def zeros() -> str:
    rng = np.random.default_rng(1802)
    x = np.sort(rng.uniform(0, 10, size=40))
    y = np.maximum(0.0, np.round(2 * x - 9 + rng.normal(size=40), 1))
    return _lines("x,y", x[:, None], y, ".6f", ".1f")


def multi() -> str:
    rng = np.random.default_rng(1803)
    X = rng.normal(size=(50, 3)) * [1.0, 2.0, 0.5] + [1.0, -1.0, 0.0]
    y = X @ [1.5, 2.0, 0.5] + 3 + 0.3 * rng.normal(size=50)
    return _lines("x1,x2,x3,y", X, y, ".6f", ".6f")


def classes3() -> str:
    rng = np.random.default_rng(1804)
    X = rng.normal(size=(90, 3))
    W = np.array([[1.5, -1.0, -0.5], [0.0, 1.2, -1.2], [-0.8, 0.4, 0.4]])
    scores = X @ W + [0.2, 0.0, -0.2]
    labels = np.argmax(scores + rng.gumbel(size=scores.shape), axis=1)
    labels[:3] = [0, 1, 2]  # every class present
    return _lines("x1,x2,x3,label", X, labels, ".6f", "d")


def wave3() -> str:
    rng = np.random.default_rng(1805)
    X = rng.uniform(-2, 2, size=(60, 3))
    y = np.sin(X[:, 0]) + 0.5 * np.tanh(X[:, 1] - X[:, 2]) + 0.05 * rng.normal(size=60)
    return _lines("x1,x2,x3,y", X, y, ".6f", ".6f")


FILES = {
    "small.csv": small,
    "zeros.csv": zeros,
    "multi.csv": multi,
    "classes3.csv": classes3,
    "wave3.csv": wave3,
}


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for name, make in FILES.items():
        (HERE / name).write_text(make())
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
