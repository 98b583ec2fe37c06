"""``--plot``: three panels a reader understands without the text.

1. The fit: the data with the model's prediction (a line, or a curve for logistic regression and
   the network) at the start, at the end of the descent and at the optimum, named as the model
   names it ("least-squares optimum"...); with several features, each point's prediction against
   its target and the diagonal where they would be equal. Left out for softmax, whose prediction
   is not one number per row.
2. The loss along the descent, on a log scale, against a log-like iteration axis (the fast first
   steps and the slow crawl both show), with the loss at the optimum.
3. Each engine's difference from the consensus at every iteration: agreeing engines sit at
   rounding level, a wrong formula stands out by orders of magnitude.

Every legend sits under its panel, outside the curves; the axes are labelled in plain words.

Needs matplotlib (the ``plot`` extra). The figure is built as a plain ``Figure`` (no pyplot, no
display) by :func:`build_figure`, so a test can look at its axes, and written through
:func:`verifiers.output.write_output`, so a failure leaves no half-written file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from verifiers.output import write_output
from verifiers.results import Check, EngineReport, Report, Status

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "PlotUnavailable",
    "build_figure",
    "can_draw_fit",
    "consensus_descent",
    "predict",
    "require_matplotlib",
    "save_plot",
    "shown_iterations",
    "view_range",
]

FIGURE_SIZE = (15, 6)  # inches
DPI = 100  # so the PNG is 1500 × 600 pixels (the legends sit under the panels)
# Scatter at most this many points; a seeded sample keeps the picture the same from run to run.
MAX_POINTS = 5000
# Each curve is drawn through at most about this many iterations (spread for a log axis).
CURVE_POINTS = 2000
UNDER_TEST_COLOUR = "tab:red"  # the formula under test, and nothing else
COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:cyan"]


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def require_matplotlib() -> None:
    """Raise PlotUnavailable, with the install command, when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotUnavailable(
            'plotting needs matplotlib: pip install "minigrad-verifiers[plot]"'
        ) from None


def save_plot(report: Report, path: Path | str) -> None:
    """Write the figure for `report` to `path` as a PNG."""
    require_matplotlib()
    figure = build_figure(report)
    write_output(path, lambda file: figure.savefig(file, format="png"), option="--plot")


def build_figure(report: Report) -> Figure:
    """The figure for `report`: the fit (when the model draws a line), the loss, the difference."""
    require_matplotlib()
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI, layout="constrained")
    panels = 3 if can_draw_fit(report) else 2
    axes = figure.subplots(1, panels)
    if panels == 3:
        _draw_fit(axes[0], report)
    _draw_losses(axes[-2], report)
    _draw_differences(axes[-1], report)
    figure.suptitle(_title(report))
    return figure


# ---- shared with the animation ------------------------------------------------------------------
def consensus_descent(report: Report) -> EngineReport | None:
    """The descent to draw: the consensus engine's, or failing that (it was capped) another
    agreeing engine that ran every iteration; never the formula under test when another will do."""
    verdict = report.verdicts.get(Check.DESCENT)
    agreeing = verdict.agreeing if verdict is not None else []
    candidates = agreeing or [n for n, e in report.engines.items() if e.trajectory is not None]
    if not candidates:
        return None
    pivot = _pivot(report)
    order = sorted(
        candidates,
        key=lambda n: (
            report.engines[n].under_test,
            report.engines[n].capped_iterations is not None,
            n != pivot,
        ),
    )
    return report.engines[order[0]]


def _pivot(report: Report) -> str | None:
    """The engine the descents were compared against (the one without a difference of its own)."""
    return report.reference(Check.DESCENT)


def can_draw_fit(report: Report) -> bool:
    """Whether the model's prediction is one number per row, so it can be drawn over the data
    (softmax's class probabilities are not)."""
    theta = report.points[0].theta
    return report.model.predict(theta, report.data.X[:1].astype(np.float64)) is not None


def predict(report: Report, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The model's prediction for the rows `X` at θ (``X·w + b`` for the linear models, a
    probability for logistic regression, the network's output for the MLP)."""
    return np.asarray(report.model.predict(theta, X), dtype=np.float64)


def shown_iterations(steps: int, count: int = CURVE_POINTS) -> np.ndarray:
    """Iterations to draw a curve through: every one for short descents, else spread evenly on a
    log axis and on a linear one (so both the first steps and the long tail have points)."""
    if steps + 1 <= count:
        return np.arange(steps + 1)
    log = np.geomspace(1, steps + 1, count // 2) - 1
    linear = np.linspace(0, steps, count // 2)
    return np.unique(np.concatenate([log, linear]).round().astype(int))


# The difference panel shows the largest difference in each of about this many stretches of
# iterations, spread evenly on the log axis: single iterations at first, longer ones later.
STRETCHES = 80


def stretch_maxima(values: np.ndarray, stretches: int = STRETCHES) -> tuple[np.ndarray, np.ndarray]:
    """(first iteration, largest value) of each stretch of iterations: the envelope of a noisy
    curve (rounding differences that flicker between 0 and ε) on a log iteration axis."""
    steps = len(values) - 1
    starts = np.unique(np.geomspace(1, steps + 1, stretches).round().astype(int) - 1)
    return starts, np.maximum.reduceat(values, starts)


def sample_rows(rows: int) -> np.ndarray:
    """At most MAX_POINTS rows to scatter, the same ones every run."""
    if rows <= MAX_POINTS:
        return np.arange(rows)
    return np.sort(np.random.default_rng(0).choice(rows, MAX_POINTS, replace=False))


# ---- the panels ---------------------------------------------------------------------------------
def _title(report: Report) -> str:
    iterations = report.settings.iterations
    words = "iteration" if iterations == 1 else "iterations"
    head = f"{report.data.path}: {report.model.formula}; lr {report.lr:g}, {iterations:,} {words}"
    under_test = report.under_test
    if under_test is not None:
        ok = under_test.status is Status.OK
        formula = report.settings.manual or "your formula"
        return f"{head}\nyour formula {formula} " + ("agrees" if ok else "DISAGREES")
    agree = "all engines agree" if report.ok else "the engines DISAGREE"
    return f"{head}\n{agree}"


def _styles(report: Report) -> dict[str, dict[str, Any]]:
    """A line style per engine: the consensus solid and thick, the formula under test red."""
    pivot = _pivot(report)
    dashes = ["--", ":", "-.", (0, (5, 1)), (0, (1, 3)), (0, (3, 1, 1, 1))]
    styles: dict[str, dict[str, Any]] = {}
    others = 0
    for name, entry in report.engines.items():
        if entry.trajectory is None:
            continue
        if name == pivot:
            styles[name] = {"linestyle": "-", "linewidth": 2.5, "color": "black", "zorder": 1}
            continue
        style: dict[str, Any] = {"linestyle": dashes[others % len(dashes)], "linewidth": 1.4}
        style["color"] = COLOURS[others % len(COLOURS)]
        others += 1
        if entry.under_test:
            style.update(color=UNDER_TEST_COLOUR, linewidth=2.2, linestyle="-", zorder=3)
        styles[name] = style
    return styles


def _label(entry: EngineReport, pivot: str | None) -> str:
    if entry.name == pivot:
        return f"{entry.name} (consensus)"
    if entry.under_test:
        return f"{entry.name} (your formula)"
    return entry.name


def _draw_fit(axes: Axes, report: Report) -> None:
    data = report.data
    X = data.X.astype(np.float64, copy=False)
    y = data.y.astype(np.float64, copy=False)
    shown = sample_rows(data.rows)
    label = "data" if shown.size == data.rows else f"data ({shown.size:,} of {data.rows:,} rows)"
    start = report.points[report.descent_from].theta
    reference = consensus_descent(report)
    optimum = report.optimum.theta
    under_test = report.under_test
    wrong = (
        under_test
        if under_test is not None
        and under_test.trajectory is not None
        and under_test.status is Status.MISMATCH
        else None
    )
    lines: list[tuple[np.ndarray, str, dict[str, Any]]] = []
    if data.features == 1:
        lines.append((start, "start", {"color": "gray", "linestyle": ":"}))
    if reference is not None and np.isfinite(reference.trajectory.theta).all():
        steps = reference.trajectory.steps
        lines.append(
            (reference.trajectory.theta, f"after {steps:,} steps ({reference.name})",
             {"color": "tab:blue", "linewidth": 2})
        )  # fmt: skip
    if wrong is not None and np.isfinite(wrong.trajectory.theta).all():
        lines.append(
            (wrong.trajectory.theta, f"after {wrong.trajectory.steps:,} steps (your formula)",
             {"color": UNDER_TEST_COLOUR, "linewidth": 2, "linestyle": (0, (6, 3))})
        )  # fmt: skip
    if optimum is not None:
        lines.append((optimum, report.optimum.name, {"color": "black", "linestyle": "--"}))
    if data.features == 1:
        x = X[:, 0]
        axes.scatter(x[shown], y[shown], s=12, color="0.6", label=label, zorder=0)
        # straight lines need two points; curves (a sigmoid, a network) a few hundred
        grid = np.linspace(x.min(), x.max(), 2 if report.model.linear else 200)
        drawn = [predict(report, theta, grid[:, None]) for theta, _, _ in lines]
        low, high = view_range(y, drawn)
        for values, (_, name, style) in zip(drawn, lines, strict=True):
            inside = np.isfinite(values).all() and low <= values.min() and values.max() <= high
            axes.plot(grid, values, label=name + ("" if inside else " (off the picture)"), **style)
        axes.set_ylim(low, high)
        axes.set_xlabel("x")
        axes.set_ylabel("y")
        axes.set_title(
            "The fit: data and lines" if report.model.linear else "The fit: data and curves"
        )
    else:
        low, high = float(y.min()), float(y.max())
        axes.plot([low, high], [low, high], color="0.3", linewidth=1, label="prediction = target")
        for theta, name, style in lines:
            prediction = predict(report, theta, X[shown])
            axes.scatter(y[shown], prediction, s=8, color=style["color"], label=name, alpha=0.6)
        axes.set_xlabel("target y")
        axes.set_ylabel("prediction")
        axes.set_title(f"The fit: {data.features} features, prediction against target")
        axes.set_ylim(*view_range(y))
    _legend_below(axes)


def _legend_below(axes: Axes, columns: int = 2, **kwargs: Any) -> None:
    """The panel's legend under it, outside the curves (the layout makes room for it)."""
    axes.legend(
        fontsize="small",
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncols=columns,
        frameon=False,
        **kwargs,
    )


def view_range(y: np.ndarray, lines: list[np.ndarray] = ()) -> tuple[float, float]:
    """The y range to show: the data, and the lines near it. A line far off (a diverged
    descent) must not shrink the data to a dot: it leaves the picture instead."""
    low, high = float(np.min(y)), float(np.max(y))
    spread = high - low if high > low else 1.0
    for values in lines:
        if (
            np.isfinite(values).all()
            and low - spread < values.min()
            and values.max() < high + spread
        ):
            low, high = min(low, float(values.min())), max(high, float(values.max()))
    margin = 0.08 * (high - low) if high > low else 1.0
    return low - margin, high + margin


def _draw_losses(axes: Axes, report: Report) -> None:
    styles = _styles(report)
    pivot = _pivot(report)
    positive = True
    marked: set[int] = set()
    for name, style in styles.items():
        entry = report.engines[name]
        losses = entry.trajectory.losses
        k = shown_iterations(len(losses) - 1)
        values = losses[k]
        finite = np.isfinite(values)
        positive &= bool((values[finite] > 0).all())
        axes.plot(k[finite], values[finite], label=_label(entry, pivot), **style)
        at = entry.trajectory.diverged_at
        if at is not None:
            shown = losses[at] if np.isfinite(losses[at]) else np.nanmax(values[finite])
            axes.plot([at], [shown], marker="x", markersize=12, color=style["color"])
            if at not in marked:  # engines that diverge together share one label
                marked.add(at)
                axes.annotate(f"diverged at {at:,}", (at, shown), textcoords="offset points",
                              xytext=(-10, -18), ha="right", color=style["color"])  # fmt: skip
    optimum = report.optimum.theta
    if optimum is not None:
        minimum = report.model.hand_loss(optimum)
        if np.isfinite(minimum) and (minimum > 0 or not positive):
            axes.axhline(minimum, color="0.4", linestyle="--", linewidth=1,
                         label=f"loss at the {report.optimum.name} {minimum:.6g}")  # fmt: skip
    _iteration_axis(axes, report)
    if positive:
        axes.set_yscale("log")
    axes.set_ylabel("loss" + (" (log scale)" if positive else ""))
    axes.set_title("The loss along the descent")
    _legend_below(axes, 2, title="agreeing curves overlap; the right panel has the same styles",
                  title_fontsize="small")  # fmt: skip


# Descents of at most this many steps get a linear iteration axis; longer ones a log one.
LINEAR_STEPS = 50


def _iteration_axis(axes: Axes, report: Report) -> None:
    """Iterations on a log scale (0 included: linear up to 1), so that both the fast first steps
    and the long crawl after them can be seen; a short descent keeps a linear axis."""
    steps = max((e.trajectory.steps for e in report.engines.values() if e.trajectory), default=0)
    if steps > LINEAR_STEPS:
        axes.set_xscale("symlog", linthresh=1)
        axes.set_xlabel("iteration (log scale)")
    else:
        axes.set_xlabel("iteration")
    axes.set_xlim(0, max(steps, 1) * (1 if steps > LINEAR_STEPS else 1.03))  # room for a mark


def _draw_differences(axes: Axes, report: Report) -> None:
    pivot = _pivot(report)
    eps = float(np.finfo(report.data.dtype).eps)
    floor = eps / 100  # identical values are drawn here, below the rounding level
    if pivot is None:
        axes.text(0.5, 0.5, "fewer than two engines descended:\nnothing to compare",
                  ha="center", va="center", transform=axes.transAxes)  # fmt: skip
        axes.set_axis_off()
        return
    reference = report.engines[pivot].trajectory.losses
    styles = _styles(report)
    for name, style in styles.items():
        if name == pivot:
            continue
        entry = report.engines[name]
        losses = entry.trajectory.losses
        steps = min(len(losses), len(reference)) - 1
        with np.errstate(all="ignore"):
            relative = np.abs(losses[: steps + 1] - reference[: steps + 1]) / np.abs(
                reference[: steps + 1]
            )
        relative = np.where(losses[: steps + 1] == reference[: steps + 1], 0.0, relative)
        relative = np.where(np.isnan(relative), np.inf, relative)  # NaN: as far off as can be
        k, largest = stretch_maxima(relative)
        finite = np.isfinite(largest)
        axes.plot(k[finite], np.maximum(largest[finite], floor), label=_label(entry, pivot),
                  **style)  # fmt: skip
    axes.axhline(eps, color="0.4", linestyle="--", linewidth=1)
    _iteration_axis(axes, report)
    axes.set_yscale("log")
    # From below the rounding level up to 1 at least: agreement shows as a line at the bottom.
    axes.set_ylim(floor / 2, max(axes.get_ylim()[1], 1.0) * 10)
    # The rounding level, and where identical losses are drawn, are named on the right, where no
    # curve can hide them.
    right = axes.secondary_yaxis("right")
    right.set_yticks([floor, eps], labels=["identical", "rounding"])
    right.tick_params(labelsize="small", colors="0.3")
    axes.set_ylabel(f"relative difference from {pivot}'s loss")
    axes.set_title(f"Each engine's difference from the consensus ({pivot})")
