"""--plot and --animate through the API: the panels a reader needs, the GIF's frames and size, and
nothing left behind on failure."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from verifiers import Settings, verify
from verifiers.data import Dataset, load_csv
from verifiers.user_formula import load_function

from .helpers import DATA_CSV, NUMPY_ENGINES

pytest.importorskip("matplotlib", reason="matplotlib is not installed")

from PIL import Image  # matplotlib needs Pillow, so it is here whenever matplotlib is

from verifiers.output import OutputError
from verifiers.report.animate import (
    FPS,
    FRAMES,
    PIXELS,
    frame_iterations,
    render_frames,
    save_animation,
)
from verifiers.report.plot import build_figure, save_plot

HALF = """
def gradient(b, w, X, y):
    r = y - (X @ w + b)
    return -(1 / len(y)) * r.sum(), -(1 / len(y)) * (X.T @ r)
"""


@pytest.fixture(scope="module")
def report():
    return verify(load_csv(DATA_CSV), Settings(engines=NUMPY_ENGINES, iterations=200))


@pytest.fixture(scope="module")
def wrong(tmp_path_factory):
    path = tmp_path_factory.mktemp("formula") / "half.py"
    path.write_text(HALF)
    spec = f"{path}:gradient"
    return verify(
        load_csv(DATA_CSV),
        Settings(engines=NUMPY_ENGINES, iterations=200, manual=spec),
        formula=load_function(spec, "--manual"),
    )


def panels(figure) -> dict[str, object]:
    return {axes.get_title(): axes for axes in figure.axes}


# ---- the picture --------------------------------------------------------------------------------
def test_png_of_the_expected_size(report, tmp_path):
    target = tmp_path / "plot.png"
    save_plot(report, target)
    header = target.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1500, 600)
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]


def test_the_three_panels_say_what_they_show(report):
    figure = build_figure(report)
    assert "all engines agree" in figure.get_suptitle()
    fit, loss, difference = figure.axes
    assert fit.get_title() == "The fit: data and lines"
    assert [line.get_label() for line in fit.get_lines()] == [
        "start", "after 200 steps (loop)", "least-squares optimum",
    ]  # fmt: skip
    assert (fit.get_xlabel(), fit.get_ylabel()) == ("x", "y")
    assert loss.get_title() == "The loss along the descent"
    assert loss.get_yscale() == "log"
    assert loss.get_xscale() == "symlog"  # the first steps and the long tail both show
    assert loss.get_xlabel() == "iteration (log scale)"
    assert "loop (consensus)" in [line.get_label() for line in loss.get_lines()]
    assert difference.get_title() == "Each engine's difference from the consensus (loop)"
    assert difference.get_yscale() == "log"
    # Plain words: what is drawn, without formulas or the drawing's conventions.
    assert difference.get_ylabel() == "relative difference from loop's loss"
    (right,) = [child for child in difference.child_axes]
    assert [t.get_text() for t in right.get_yticklabels()] == ["identical", "rounding"]


@pytest.mark.parametrize("which", ["report", "wrong"])
def test_every_legend_sits_under_its_panel_outside_the_curves(which, request):
    figure = build_figure(request.getfixturevalue(which))
    renderer = figure.canvas.get_renderer() if hasattr(figure.canvas, "get_renderer") else None
    if renderer is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw_without_rendering()
    legends = 0
    for axes in figure.axes:
        legend = axes.get_legend()
        if legend is None:
            continue
        legends += 1
        box, panel = legend.get_window_extent(renderer), axes.get_window_extent(renderer)
        assert box.y1 <= panel.y0, (axes.get_title(), box, panel)  # entirely below the panel
        assert box.y0 >= 0  # and inside the picture
    assert legends == 2  # the fit's and the engines' (the right panel shares their styles)


def test_agreeing_engines_sit_at_rounding_level(report):
    difference = build_figure(report).axes[2]
    curves = [line for line in difference.get_lines() if not line.get_label().startswith("_")]
    assert {line.get_label() for line in curves} == {"manual", "minigrad", "numeric"}
    for line in curves:
        assert np.max(line.get_ydata()) < 1e-13, line.get_label()


def test_a_wrong_formula_stands_out(wrong):
    figure = build_figure(wrong)
    assert "DISAGREES" in figure.get_suptitle()
    difference = panels(figure)["Each engine's difference from the consensus (loop)"]
    curves = {line.get_label(): line for line in difference.get_lines()}
    assert np.max(curves["manual (your formula)"].get_ydata()) > 1e-3
    assert np.max(curves["minigrad"].get_ydata()) < 1e-13
    fit = panels(figure)["The fit: data and lines"]
    assert "after 200 steps (your formula)" in [line.get_label() for line in fit.get_lines()]


def test_several_features_show_prediction_against_target():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    data = Dataset.from_arrays(X, X @ [1.0, -2.0, 0.5] + 3)
    report = verify(data, Settings(engines=("manual", "numeric"), iterations=20))
    fit, loss, _ = build_figure(report).axes
    assert fit.get_title() == "The fit: 3 features, prediction against target"
    assert (fit.get_xlabel(), fit.get_ylabel()) == ("target y", "prediction")
    assert loss.get_xscale() == "linear"  # 20 steps: a plain axis reads best


def test_a_failure_while_writing_leaves_no_file(report, tmp_path, monkeypatch):
    import matplotlib.figure

    def broken_savefig(self, file, **kwargs):
        file.write(b"\x89PNG half a file")
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    target = tmp_path / "plot.png"
    with pytest.raises(OutputError, match="disk full"):
        save_plot(report, target)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_plot_survives_a_failed_rewrite(report, tmp_path, monkeypatch):
    import matplotlib.figure

    target = tmp_path / "plot.png"
    target.write_bytes(b"previous plot")

    def broken_savefig(self, path, **kwargs):
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError):
        save_plot(report, target)
    assert target.read_bytes() == b"previous plot"
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]


# ---- the animation ------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [0, 1, 5, FRAMES - 1, FRAMES, FRAMES + 1, 1000, 10**7])
def test_frames_are_spread_from_the_start_to_the_end(steps):
    iterations = frame_iterations(steps)
    assert len(iterations) == min(FRAMES, steps + 1)
    assert iterations[0] == 0
    assert iterations[-1] == steps
    assert iterations == sorted(set(iterations))
    if steps >= 1000:  # log-spaced: the first steps, where the line moves most, are all shown
        assert iterations[:5] == [0, 1, 2, 3, 4]


def test_gif_has_the_expected_frames_and_size(report, tmp_path):
    target = tmp_path / "descent.gif"
    assert save_animation(report, target, frames=8) == 8
    with Image.open(target) as image:
        assert image.format == "GIF"
        assert image.n_frames == 8
        assert image.size == PIXELS
        assert image.info["loop"] == 0  # it loops
        assert image.info["duration"] == 1000 // FPS
    assert [p.name for p in tmp_path.iterdir()] == ["descent.gif"]


def test_each_frame_redraws_the_line_and_the_corner_over_the_same_still_picture(report):
    # Blitting: the still parts are drawn once; a frame differs from the next only where the
    # line moved and in the corner's text.
    first, second, last = (np.asarray(i) for i in render_frames(report, frames=3))
    assert first.shape == (PIXELS[1], PIXELS[0], 3)
    assert (first != last).any(axis=2).mean() < 0.2  # most of the picture stays still
    assert (first != second).any()


def test_the_animation_draws_the_reference_descent_in_a_few_seconds(tmp_path):
    # Not a timing assertion (machines differ): the work is bounded instead. The figure is
    # drawn in full once, whatever the number of frames.
    from matplotlib.figure import Figure

    report = verify(load_csv(DATA_CSV), Settings(engines=NUMPY_ENGINES))
    calls = []
    original = Figure.draw

    def counted(self, renderer):
        calls.append(1)
        return original(self, renderer)

    Figure.draw = counted
    try:
        assert save_animation(report, tmp_path / "descent.gif") == FRAMES
    finally:
        Figure.draw = original
    assert len(calls) <= 2  # the layout once, the still picture once


def test_a_gif_is_a_gif_whatever_the_name(report, tmp_path):
    target = tmp_path / "descent.animation"
    save_animation(report, target, frames=3)
    with Image.open(target) as image:
        assert (image.format, image.n_frames) == ("GIF", 3)


def test_a_failed_animation_leaves_the_old_file(report, tmp_path, monkeypatch):
    from verifiers.report import animate

    target = tmp_path / "descent.gif"
    target.write_bytes(b"previous animation")

    def broken(images, path):
        path.write_bytes(b"GIF89a half a file")
        raise OSError("disk full")

    monkeypatch.setattr(animate, "_write_gif", broken)
    with pytest.raises(OutputError, match="disk full"):
        save_animation(report, target, frames=3)
    assert target.read_bytes() == b"previous animation"
    assert [p.name for p in tmp_path.iterdir()] == ["descent.gif"]


# ---- where the outputs went ---------------------------------------------------------------------
def test_quiet_says_where_every_output_went_and_keeps_the_verdict_last(tmp_path, wrong):
    from .helpers import run_cli

    formula = tmp_path / "half.py"
    formula.write_text(HALF)
    outputs = {name: tmp_path / name for name in ("report.json", "plot.png", "descent.gif")}
    result = run_cli(
        str(DATA_CSV), "--engines", "loop,manual,minigrad,numeric", "--iterations", "20",
        "--manual", f"{formula}:gradient", "--quiet", "--json", str(outputs["report.json"]),
        "--plot", str(outputs["plot.png"]), "--animate", str(outputs["descent.gif"]),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"wrote the JSON report to {outputs['report.json']}",
        f"wrote the plot to {outputs['plot.png']}",
        f"wrote the animation (21 frames) to {outputs['descent.gif']}",
    ]
    assert all(path.is_file() for path in outputs.values())
    # Standard output is the answer alone: the verdict, the diagnosis, the worst difference.
    assert result.stdout.startswith("WRONG: your formula")
    assert "diagnosis: every derivative is half the true value" in result.stdout
    assert "wrote" not in result.stdout


def test_the_json_alone_on_standard_output_is_not_announced(tmp_path):
    from .helpers import run_cli

    result = run_cli(
        str(DATA_CSV), "--engines", "loop,manual,numeric", "--iterations", "5", "--quiet",
        "--json", "-", "--plot", str(tmp_path / "plot.png"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("{")
    assert result.stderr.splitlines()[-1] == f"wrote the plot to {tmp_path / 'plot.png'}"
    assert "JSON" not in result.stderr
