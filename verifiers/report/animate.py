"""``--animate``: the descent as an animated GIF, the model's prediction moving over the data.

Each frame shows the data and the model's prediction (a line, or a curve for logistic regression
and the network; with several features, each point's prediction against its target) at one
iteration, with the iteration and the loss in the corner, as the
reference example's own animation does. Frames are spread over the iterations on a log-like
scale: the line moves most in the first steps, then crawls.

The descent's θ is recorded only at its end, so the frames replay it: the consensus engine's
number of steps, from the same start with the same learning rate, with the model's hand formula
(or, for a loss without one, minigrad). The loss in the corner is the consensus engine's own.
Needs matplotlib (and Pillow, which matplotlib needs). Drawing is the cost, so the figure is drawn
once, without the moving parts (the data, the axes, the legend, the title), and each frame puts
only the moving line and the corner text back on a copy of it (blitting); Pillow writes the
frames as a GIF with one palette. The reference example's 60 frames take about a second. The
file is written through :func:`verifiers.output.atomic_path`, so a failure leaves no
half-written file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from verifiers.output import atomic_path
from verifiers.report.plot import (
    PlotUnavailable,
    can_draw_fit,
    consensus_descent,
    predict,
    require_matplotlib,
    sample_rows,
    view_range,
)
from verifiers.results import Report

__all__ = [
    "FPS",
    "FRAMES",
    "PIXELS",
    "frame_iterations",
    "render_frames",
    "replay",
    "save_animation",
]

FRAMES = 60  # at most; fewer when the descent has fewer steps
FPS = 10  # so the animation lasts about 6 s, then loops
FIGURE_SIZE = (6.4, 4.8)  # inches
DPI = 100
PIXELS = (640, 480)  # FIGURE_SIZE × DPI
# Replaying costs rows × steps; beyond this many row-steps only the first steps are animated.
REPLAY_ROW_STEPS = 2e8


def frame_iterations(steps: int, frames: int = FRAMES) -> list[int]:
    """The iterations shown, from 0 to `steps`: every one for a short descent, else `frames`
    of them spread evenly on a log scale of (iteration + 1), so the first steps are not missed."""
    frames = max(frames, 2)  # the start and the end at least
    if steps + 1 <= frames:
        return list(range(steps + 1))
    chosen = np.unique(np.geomspace(1, steps + 1, frames).round().astype(int) - 1)
    # Rounding merges some early ones: fill up with the evenly spaced ones in between.
    extra = np.linspace(0, steps, frames).round().astype(int)
    for k in extra:
        if len(chosen) >= frames:
            break
        chosen = np.union1d(chosen, [k])
    return [int(k) for k in chosen]


def replay(report: Report, iterations: list[int]) -> list[np.ndarray]:
    """θ after each of `iterations` (ascending) steps of gradient descent from the start."""
    gradient = _gradient_function(report)
    theta = np.array(report.points[report.descent_from].theta, dtype=np.float64)
    found, done = [], 0
    with np.errstate(all="ignore"):
        for target in iterations:
            while done < target:
                theta = theta - report.lr * gradient(theta)
                done += 1
            found.append(theta.copy())
    return found


def _gradient_function(report: Report) -> Callable[[np.ndarray], np.ndarray]:
    model = report.model
    if model.has_hand_gradient:
        dtype = model.data.dtype

        def hand(theta: np.ndarray) -> np.ndarray:
            params = model.unflatten(np.asarray(theta, dtype=dtype))
            return model.flatten(model.hand_gradient(params))

        return hand
    from verifiers.engines import engine_class

    engine = engine_class("minigrad")(model, "cpu")
    return lambda theta: engine.evaluate(theta).gradient


def save_animation(report: Report, path: Path | str, frames: int = FRAMES) -> int:
    """Write the animation of `report`'s descent to `path` as a GIF of at most `frames` frames
    (see :func:`frame_iterations`); returns how many frames it has."""
    require_matplotlib()
    images = render_frames(report, frames)
    with atomic_path(path, option="--animate", suffix=".gif") as temporary:
        _write_gif(images, temporary)
    return len(images)


def render_frames(report: Report, frames: int = FRAMES) -> list[Any]:
    """The frames of the animation, as Pillow images (RGB, PIXELS in size)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    reference = consensus_descent(report)
    if reference is None:
        raise PlotUnavailable("--animate: no engine ran the descent, so there is nothing to show")
    losses = reference.trajectory.losses
    steps = reference.trajectory.steps
    affordable = max(int(REPLAY_ROW_STEPS // max(report.data.rows, 1)), 1)
    shown_steps = min(steps, affordable)
    iterations = frame_iterations(shown_steps, frames)
    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    axes = figure.subplots()
    if can_draw_fit(report):
        draw, moving = _fit_frames(axes, report, replay(report, iterations))
    else:
        draw, moving = _loss_frames(axes, losses, iterations)
    title = f"Gradient descent on {report.data.path}, lr {report.lr:g} ({reference.name})"
    if shown_steps < steps:
        title += f"\nthe first {shown_steps:,} of {steps:,} iterations"
    axes.set_title(title, fontsize="medium")
    corner = axes.text(
        0.02, 0.97, "", transform=axes.transAxes, va="top", ha="left", family="monospace",
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"},
    )  # fmt: skip
    # Lay the figure out once, for the widest corner text, then keep it: every frame has the
    # same layout (no jitter), and drawing a frame no longer repeats the layout.
    diverged = reference.trajectory.diverged_at
    texts = [_corner(k, losses, diverged) for k in iterations]
    corner.set_text(max(texts, key=len))
    draw(len(iterations) - 1)
    figure.draw_without_rendering()
    figure.set_layout_engine("none")
    # The still parts once; then each frame only redraws the moving ones over a copy of them.
    for artist in [*moving, corner]:
        artist.set_animated(True)
    canvas.draw()
    background = canvas.copy_from_bbox(figure.bbox)
    images = []
    for frame, text in enumerate(texts):
        canvas.restore_region(background)
        draw(frame)
        corner.set_text(text)
        for artist in [*moving, corner]:
            figure.draw_artist(artist)
        pixels = np.asarray(canvas.buffer_rgba())[:, :, :3]
        images.append(Image.fromarray(pixels.copy(), mode="RGB"))
    return images


def _write_gif(images: list[Any], path: Path) -> None:
    """The frames as one looping GIF, FPS frames a second, every frame on the palette of the
    last (which has every colour the animation uses: the data, the lines, the corner)."""
    from PIL import Image

    palette = images[-1].quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    frames = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    frames[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=round(1000 / FPS),
        loop=0,
    )


def _corner(k: int, losses: np.ndarray, diverged: int | None) -> str:
    """The corner's text at iteration k."""
    loss = "diverged" if diverged is not None and k >= diverged else f"{losses[k]:.6g}"
    return f"iteration {k:,}\nloss      {loss}"


def _fit_frames(
    axes, report: Report, thetas: list[np.ndarray]
) -> tuple[Callable[[int], None], list[Any]]:
    """Draw the data; return a function that moves the line to frame i's θ, and the artists
    it moves."""
    data = report.data
    X = data.X.astype(np.float64, copy=False)
    y = data.y.astype(np.float64, copy=False)
    shown = sample_rows(data.rows)
    low, high = float(y.min()), float(y.max())
    optimum = report.optimum.theta
    if data.features == 1:
        x = X[:, 0]
        grid = np.linspace(x.min(), x.max(), 2 if report.model.linear else 200)
        axes.scatter(x[shown], y[shown], s=12, color="0.6", label="data")
        if optimum is not None:
            axes.plot(grid, predict(report, optimum, grid[:, None]), "--", color="black",
                      linewidth=1, label=report.optimum.name)  # fmt: skip
        (line,) = axes.plot([], [], color="tab:blue", linewidth=2.5, label="the descent")
        axes.set_xlabel("x")
        axes.set_ylabel("y")
        lines = [predict(report, theta, grid[:, None]) for theta in thetas]
        axes.set_ylim(*view_range(y, lines))  # the start's line too, unless it is far off

        def draw(frame: int) -> None:
            line.set_data(grid, lines[frame])

        moving = [line]
    else:
        axes.plot([low, high], [low, high], color="0.3", linewidth=1, label="prediction = target")
        points = axes.scatter(y[shown], np.zeros(shown.size), s=10, color="tab:blue",
                              label="the descent's predictions")  # fmt: skip
        axes.set_xlabel("target y")
        axes.set_ylabel("prediction")
        axes.set_ylim(*view_range(y))

        def draw(frame: int) -> None:
            points.set_offsets(
                np.column_stack([y[shown], predict(report, thetas[frame], X[shown])])
            )

        moving = [points]
    axes.legend(loc="lower right", fontsize="small")
    return draw, moving


def _loss_frames(
    axes, losses: np.ndarray, iterations: list[int]
) -> tuple[Callable[[int], None], list[Any]]:
    """For a model without a line to draw: the loss curve, drawn up to frame i's iteration;
    the function that draws it, and the artists it moves."""
    k = np.arange(len(losses))
    finite = np.isfinite(losses)
    axes.plot(k[finite], losses[finite], color="0.85", linewidth=1)
    (curve,) = axes.plot([], [], color="tab:blue", linewidth=2)
    (marker,) = axes.plot([], [], "o", color="tab:blue")
    axes.set_xscale("symlog", linthresh=1)
    if (losses[finite] > 0).all():
        axes.set_yscale("log")
    axes.set_xlabel("iteration (log scale)")
    axes.set_ylabel("loss")

    def draw(frame: int) -> None:
        upto = iterations[frame]
        part = finite[: upto + 1]
        curve.set_data(k[: upto + 1][part], losses[: upto + 1][part])
        marker.set_data([upto], [losses[upto]] if np.isfinite(losses[upto]) else [np.nan])

    return draw, [curve, marker]
