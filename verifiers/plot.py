"""``--plot``: the loss of every engine against the iteration, and the fitted lines.

Needs matplotlib (the ``plot`` extra). The figure is written to a temporary file and moved into
place, so a failure leaves no half-written file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from verifiers.output import write_output
from verifiers.results import Report

__all__ = ["PlotUnavailable", "save_plot"]

FIGURE_SIZE = (12, 5)  # inches
DPI = 100  # so the PNG is 1200 × 500 pixels


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def save_plot(report: Report, path: Path | str) -> None:
    """Write the two-panel figure for `report` to `path` (PNG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable(
            'plotting needs matplotlib: pip install "minigrad-verifiers[plot]"'
        ) from None
    figure, (losses, fit) = plt.subplots(1, 2, figsize=FIGURE_SIZE, dpi=DPI)
    try:
        _draw_losses(losses, report)
        _draw_fit(fit, report)
        figure.tight_layout()
        write_output(path, lambda file: figure.savefig(file, format="png"), option="--plot")
    finally:
        plt.close(figure)


# Scatter at most this many points; a seeded sample keeps the picture the same from run to run.
MAX_POINTS = 5000


def _sample(rows: int) -> np.ndarray:
    if rows <= MAX_POINTS:
        return np.arange(rows)
    return np.sort(np.random.default_rng(0).choice(rows, MAX_POINTS, replace=False))


def _draw_losses(axes, report: Report) -> None:
    # Plotted above the least-squares minimum: on a log scale the slow crawl after the first
    # few steps shows as a line instead of a flat plateau.
    optimum = report.optimum.theta
    minimum = 0.0 if optimum is None else report.model.hand_loss(optimum)
    styles = ["-", "--", ":", "-.", (0, (5, 1)), (0, (1, 3))]
    for index, entry in enumerate(report.engines.values()):
        if entry.trajectory is None:
            continue
        excess = np.maximum(entry.trajectory.losses - minimum, np.finfo(np.float64).tiny)
        style = styles[index % len(styles)]
        axes.plot(np.arange(len(excess)), excess, linestyle=style, label=entry.name)
        if entry.trajectory.diverged_at is not None:
            axes.axvline(entry.trajectory.diverged_at, linestyle=style, color="red", alpha=0.5)
    axes.set_yscale("log")
    axes.set_xlabel("iteration")
    axes.set_ylabel(f"loss - minimum loss ({minimum:.6g})")
    axes.set_title(f"Gradient descent, lr {report.lr:g} (log scale)")
    axes.legend()


def _draw_fit(axes, report: Report) -> None:
    """The data against the first feature, and the model's prediction along it (the other
    features held at their mean) after the descent and at the optimum, where the model's
    prediction is one number per row (:meth:`~verifiers.models.base.Model.predict`)."""
    data, model = report.data, report.model
    x = data.X[:, 0].astype(np.float64, copy=False)
    y = data.y.astype(np.float64, copy=False)
    shown = _sample(data.rows)
    label = "data" if shown.size == data.rows else f"data ({shown.size:,} of {data.rows:,} points)"
    axes.scatter(x[shown], y[shown], s=10, color="gray", label=label)
    # Straight lines need two points; curves (a sigmoid, a network) a few hundred.
    grid = np.linspace(x.min(), x.max(), 2 if model.constant_hessian else 200)
    rows = np.tile(data.X.astype(np.float64).mean(axis=0), (grid.size, 1))
    rows[:, 0] = grid
    final = next((e.trajectory.theta for e in report.engines.values() if e.trajectory), None)
    curves = [(final, "-", "after the descent")]
    if report.optimum.theta is not None:  # named by its note: "least-squares optimum"...
        curves.append((report.optimum.theta, "--", report.optimum.note.split(" (")[0] or "optimum"))
    drawn = False
    for theta, style, name in curves:
        values = None if theta is None else model.predict(theta, rows)
        if values is not None:
            axes.plot(grid, values, linestyle=style, label=name)
            drawn = True
    axes.set_xlabel("x" if data.features == 1 else "first feature (others at their mean)")
    axes.set_ylabel("y")
    axes.set_title(
        "Data and fitted lines" if drawn else "Data (the model's prediction is not one curve)"
    )
    axes.legend()
