"""Every engine: the published figures, agreement on random data, Hessians, devices."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers.compare import Tolerance, worst_difference
from verifiers.data import load_csv
from verifiers.engines import ENGINE_NAMES, EngineUnavailable, engine_class
from verifiers.models import mse as formulas

from .helpers import ALL_ENGINES, DATA_CSV, PUBLISHED, datasets, has, make_engine

# The published figures: exact for the reference loop, within these for the others.
FIGURE_RTOL = {"manual": 1e-12, "minigrad": 1e-12, "torch": 1e-12, "jax": 1e-12, "numeric": 1e-8}


@pytest.fixture(scope="module")
def reference_data():
    return load_csv(DATA_CSV)


@pytest.mark.parametrize("name", ALL_ENGINES)
def test_published_figures(name, reference_data):
    engine = make_engine(name, reference_data)
    start = np.zeros(2)
    trajectory = engine.descend(start, 1e-4, 1000)
    got = {
        "start_error": engine.evaluate(start).loss,
        "b": trajectory.theta[0],
        "w": trajectory.theta[1],
        "error": trajectory.losses[-1],
    }
    assert trajectory.steps == 1000
    assert trajectory.diverged_at is None
    assert trajectory.losses[0] == pytest.approx(PUBLISHED["start_error"], rel=1e-12)
    for key, expected in PUBLISHED.items():
        if name == "loop":
            assert got[key] == expected, key  # bit for bit
        else:
            assert got[key] == pytest.approx(expected, rel=FIGURE_RTOL.get(name, 1e-12), abs=0), key


def test_loop_is_the_reference_algorithm_step_by_step(reference_data):
    """Two steps written out by hand, exactly as the reference computes them."""
    points = np.loadtxt(DATA_CSV, delimiter=",")
    b = w = 0.0
    for _ in range(2):
        b_grad = w_grad = 0.0
        n = float(len(points))
        for x, y in points.tolist():
            b_grad += -(2 / n) * (y - ((w * x) + b))
            w_grad += -(2 / n) * x * (y - ((w * x) + b))
        b, w = b - (1e-4 * b_grad), w - (1e-4 * w_grad)
    trajectory = make_engine("loop", reference_data).descend(np.zeros(2), 1e-4, 2)
    assert trajectory.theta.tolist() == [b, w]


def _agreement(name, data, theta, tolerance):
    """Worst difference of engine `name` from the manual formula at θ: loss and gradient."""
    got = make_engine(name, data).evaluate(theta)
    want = make_engine("manual", data).evaluate(theta)
    b, w = theta[0], theta[1:]
    scale = np.concatenate(
        [
            [formulas.loss_scale(b, w, data.X, data.y)],
            formulas.gradient_scales(b, w, data.X, data.y),
        ]
    )
    return worst_difference(
        np.concatenate([[got.loss], got.gradient]),
        np.concatenate([[want.loss], want.gradient]),
        scale,
        tolerance,
        ["loss"] + [f"dL/d{n}" for n in formulas.parameter_names(data.features)],
    )


@pytest.mark.parametrize("name", [p for p in ALL_ENGINES if p.values[0] != "manual"])
@settings(max_examples=15)
@given(data=datasets(), offset=st.lists(st.floats(-3, 3), min_size=5, max_size=5))
def test_every_engine_agrees_with_manual_on_random_data(name, data, offset):
    tolerance = Tolerance.for_dtype(data.dtype, data.rows)
    b, w = formulas.least_squares(data.X, data.y)
    optimum = np.concatenate([[b], w])
    elsewhere = optimum + np.array(offset[: data.features + 1]) * (1 + np.abs(optimum))
    for theta in (optimum, elsewhere):
        difference = _agreement(name, data, theta, tolerance)
        assert difference.ok, difference.describe()


@pytest.mark.parametrize("name", [p for p in ALL_ENGINES if p.values[0] != "loop"])
@settings(max_examples=10)
@given(data=datasets())
def test_hessians_agree_with_the_closed_form(name, data):
    engine = make_engine(name, data)
    theta = np.linspace(-1, 1, data.features + 1)
    got = engine.hessian(theta)
    want = formulas.hessian(data.X)
    tolerance = Tolerance.for_dtype(data.dtype, data.rows)
    scale = formulas.hessian_scales(data.X) + engine.hessian_noise(theta)
    labels = [f"H[{i},{j}]" for i in range(want.shape[0]) for j in range(want.shape[1])]
    difference = worst_difference(got, want, scale, tolerance, labels)
    assert difference.ok, difference.describe()


def test_closed_form_hessian_matches_the_reference_facts(reference_data):
    """The seed README: H = 2 [[1, mean x], [mean x, mean x²]], eigenvalues ≈ 0.0755 and 4984."""
    x = reference_data.X[:, 0]
    expected = 2 * np.array([[1, x.mean()], [x.mean(), (x * x).mean()]])
    H = formulas.hessian(reference_data.X)
    np.testing.assert_allclose(H, expected, rtol=1e-14)
    eigenvalues = np.linalg.eigvalsh(H)
    assert eigenvalues[0] == pytest.approx(0.0755, abs=1e-4)
    assert eigenvalues[1] == pytest.approx(4984, abs=1)


def test_numeric_complex_step_and_central_differences_agree(reference_data):
    engine = make_engine("numeric", reference_data)
    theta = np.array([1.5, -0.25])
    complex_step = engine.complex_step_gradient(theta)
    central = engine.central_difference_gradient(theta)
    grad_b, grad_w = formulas.gradient(1.5, np.array([-0.25]), reference_data.X, reference_data.y)
    exact = np.concatenate([[grad_b], grad_w])
    np.testing.assert_allclose(complex_step, exact, rtol=1e-13)
    np.testing.assert_allclose(central, exact, rtol=1e-8)


@pytest.mark.parametrize("name", [p for p in ALL_ENGINES if p.values[0] != "loop"])
def test_float32_engines_compute_in_float32(name, reference_data):
    data32 = load_csv(DATA_CSV, "float32")
    got = make_engine(name, data32).evaluate(np.zeros(2))
    want = make_engine("manual", reference_data).evaluate(np.zeros(2))
    # float32 results carry float32 rounding: close to the float64 values, but not that close.
    np.testing.assert_allclose(got.gradient, want.gradient, rtol=1e-5)
    assert got.gradient.tolist() != want.gradient.tolist() or name == "numeric"


def test_divergence_is_detected_and_the_descent_stops(reference_data):
    engine = make_engine("manual", reference_data)
    trajectory = engine.descend(np.zeros(2), 1e-3, 1000)  # above 2/λ_max ≈ 4.01e-4
    assert trajectory.diverged_at is not None
    assert trajectory.steps == trajectory.diverged_at
    assert trajectory.losses[-1] > 1e6 * trajectory.losses[0]
    assert np.all(trajectory.losses[:-1] <= 1e6 * trajectory.losses[0])


@pytest.mark.skipif(not has("torch"), reason="torch is not installed")
def test_torch_reports_its_device_and_refuses_cuda_without_a_gpu(reference_data):
    import torch

    engine = make_engine("torch", reference_data)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert engine.device.startswith(expected)
    if not torch.cuda.is_available():
        with pytest.raises(EngineUnavailable, match="no CUDA GPU"):
            make_engine("torch", reference_data, device="cuda")


@pytest.mark.cuda
def test_torch_on_cuda_agrees_with_manual(reference_data):
    engine = make_engine("torch", reference_data, device="cuda")
    assert engine.device.startswith("cuda")
    tolerance = Tolerance.for_dtype(reference_data.dtype, reference_data.rows)
    for theta in (np.zeros(2), np.array([7.99, 1.32]), np.array([-3.0, 2.5])):
        difference = _agreement("torch", reference_data, theta, tolerance)
        assert difference.ok, difference.describe()
    trajectory = engine.descend(np.zeros(2), 1e-4, 1000)
    assert trajectory.theta[0] == pytest.approx(PUBLISHED["b"], rel=1e-12)
    assert trajectory.theta[1] == pytest.approx(PUBLISHED["w"], rel=1e-12)


@pytest.mark.skipif(not has("jax"), reason="jax is not installed")
def test_jax_x64_does_not_leak(reference_data):
    import jax.numpy as jnp

    engine = make_engine("jax", reference_data)
    engine.evaluate(np.zeros(2))
    engine.descend(np.zeros(2), 1e-4, 5)
    assert jnp.zeros(1).dtype == jnp.float32  # outside the engine, jax is as configured


def test_unknown_engine_and_missing_packages(monkeypatch):
    with pytest.raises(ValueError, match="unknown engine 'nope'"):
        engine_class("nope")
    monkeypatch.setitem(__import__("sys").modules, "jax", None)
    monkeypatch.delitem(__import__("sys").modules, "verifiers.engines.jax", raising=False)
    with pytest.raises(EngineUnavailable, match="pip install jax jaxlib"):
        engine_class("jax")


def test_engine_names():
    assert ENGINE_NAMES == ("loop", "manual", "minigrad", "torch", "jax", "autograd", "numeric")


@pytest.mark.skipif(not has("jax"), reason="jax is not installed")
def test_jax_quick_and_optimised_compiles_agree(reference_data, monkeypatch):
    from verifiers.engines import jax as jax_engine

    engine = make_engine("jax", reference_data)
    quick = engine.descend(np.zeros(2), 1e-4, 300)
    monkeypatch.setattr(jax_engine, "QUICK_COMPILE_WORK", 0)  # every descent optimised
    optimised = engine.descend(np.zeros(2), 1e-4, 300)
    np.testing.assert_allclose(optimised.losses, quick.losses, rtol=1e-13)
    np.testing.assert_allclose(optimised.theta, quick.theta, rtol=1e-13)


def test_bulk_loaded_arrays_are_aligned_for_jax(tmp_path, monkeypatch):
    from verifiers import data as data_module

    path = tmp_path / "big.csv"
    path.write_text("".join(f"{i},{2 * i + 1}\n" for i in range(2000)))
    monkeypatch.setattr(data_module, "BULK_THRESHOLD_BYTES", 0)  # the bulk parser reads it
    loaded = load_csv(path)
    assert loaded.X.ctypes.data % 64 == 0
    assert loaded.y.ctypes.data % 64 == 0
    np.testing.assert_array_equal(loaded.X[:, 0], np.arange(2000.0))
    np.testing.assert_array_equal(loaded.y, 2 * np.arange(2000.0) + 1)
    if has("jax"):
        import jax

        from verifiers.engines.jax import x64

        with x64():  # on the CPU jax then works on the loaded arrays without copying them
            assert jax.device_put(loaded.y).unsafe_buffer_pointer() == loaded.y.ctypes.data
