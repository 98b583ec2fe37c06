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
from verifiers.report.animate import FRAMES, PIXELS, frame_iterations, save_animation
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
    assert struct.unpack(">II", header[16:24]) == (1500, 500)
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
    assert "loss of loop" in difference.get_ylabel()


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
    save_animation(report, target, frames=8)
    with Image.open(target) as image:
        assert image.format == "GIF"
        assert image.n_frames == 8
        assert image.size == PIXELS
    assert [p.name for p in tmp_path.iterdir()] == ["descent.gif"]


def test_a_gif_is_a_gif_whatever_the_name(report, tmp_path):
    target = tmp_path / "descent.animation"
    save_animation(report, target, frames=3)
    with Image.open(target) as image:
        assert (image.format, image.n_frames) == ("GIF", 3)


def test_a_failed_animation_leaves_the_old_file(report, tmp_path, monkeypatch):
    from matplotlib.animation import PillowWriter

    target = tmp_path / "descent.gif"
    target.write_bytes(b"previous animation")

    def broken(self, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(PillowWriter, "grab_frame", broken)
    with pytest.raises(OutputError, match="disk full"):
        save_animation(report, target, frames=3)
    assert target.read_bytes() == b"previous animation"
    assert [p.name for p in tmp_path.iterdir()] == ["descent.gif"]
