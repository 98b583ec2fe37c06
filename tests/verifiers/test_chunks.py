"""The MSE is a sum over points: chunked evaluation must give the whole-array results."""

from __future__ import annotations

import numpy as np
import pytest

from verifiers import chunks
from verifiers.compare import Tolerance, worst_difference
from verifiers.data import Dataset
from verifiers.models import mse as formulas

from .helpers import ALL_ENGINES, make_engine


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    X = rng.normal(50, 15, size=(103, 2))
    return Dataset.from_arrays(X, X @ [1.3, -0.4] + 8 + rng.normal(0, 10, 103))


def _results(name, data, theta):
    engine = make_engine(name, data)
    evaluation = engine.evaluate(theta)
    trajectory = engine.descend(theta, 1e-5, 30)
    return evaluation, engine.hessian(theta), trajectory, engine.hessian_noise(theta)


@pytest.mark.parametrize("name", ALL_ENGINES)
def test_chunked_and_whole_results_agree(name, data, monkeypatch):
    theta = np.array([2.0, 1.0, 0.5])
    whole = _results(name, data, theta)
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 10)  # 11 chunks, the last one of 3 rows
    chunked = _results(name, data, theta)
    tolerance = Tolerance.for_dtype(data.dtype, data.rows)
    scales = np.concatenate(
        [
            [formulas.loss_scale(theta[0], theta[1:], data.X, data.y)],
            formulas.gradient_scales(theta[0], theta[1:], data.X, data.y),
        ]
    )
    labels = ["loss", "dL/db", "dL/dw[0]", "dL/dw[1]"]
    difference = worst_difference(
        np.concatenate([[chunked[0].loss], chunked[0].gradient]),
        np.concatenate([[whole[0].loss], whole[0].gradient]),
        scales,
        tolerance,
        labels,
    )
    assert difference.ok, difference.describe()
    if whole[1] is not None:  # finite differences carry their own error: hessian_noise
        scale = formulas.hessian_scales(data.X) + 2 * whole[3]
        hessian = worst_difference(chunked[1], whole[1], scale, tolerance, ["H"] * 9)
        assert hessian.ok, hessian.describe()
    np.testing.assert_allclose(chunked[2].losses, whole[2].losses, rtol=1e-12)
    np.testing.assert_allclose(chunked[2].theta, whole[2].theta, rtol=1e-12)


def test_row_chunks_cover_every_row_once(monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 4)
    slices = chunks.row_chunks(10)
    assert [(c.start, c.stop) for c in slices] == [(0, 4), (4, 8), (8, 10)]
    assert [(c.start, c.stop) for c in chunks.row_chunks(10, 100)] == [(0, 10)]
    assert chunks.row_chunks(0) == []


def test_chunked_least_squares_matches_lstsq(data, monkeypatch):
    design = np.column_stack([np.ones(data.rows), data.X])
    expected = np.linalg.lstsq(design, data.y, rcond=None)[0]
    monkeypatch.setattr(formulas, "LSTSQ_CHUNK_ROWS", 16)
    b, w = formulas.least_squares(data.X, data.y)
    np.testing.assert_allclose(np.concatenate([[b], w]), expected, rtol=1e-12)


def test_chunked_least_squares_gives_the_minimum_norm_solution_when_singular(monkeypatch):
    X = np.column_stack([np.arange(40.0), 2 * np.arange(40.0)])  # dependent columns
    y = 3 * np.arange(40.0) + 1
    design = np.column_stack([np.ones(40), X])
    expected = np.linalg.lstsq(design, y, rcond=None)[0]
    monkeypatch.setattr(formulas, "LSTSQ_CHUNK_ROWS", 16)
    b, w = formulas.least_squares(X, y)
    np.testing.assert_allclose(np.concatenate([[b], w]), expected, rtol=1e-9, atol=1e-12)


def test_scales_summed_in_chunks_match_whole_arrays(data, monkeypatch):
    theta = np.array([1.5, -0.5, 2.0])
    b, w = theta[0], theta[1:]
    size = np.abs(data.y) + np.abs(data.X) @ np.abs(w) + abs(b)
    expected_gradient = (2 / data.rows) * np.concatenate([[size.sum()], np.abs(data.X).T @ size])
    expected_loss = (size @ size) / data.rows
    expected_hessian = formulas.hessian(np.abs(data.X))
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 10)
    np.testing.assert_allclose(
        formulas.gradient_scales(b, w, data.X, data.y), expected_gradient, rtol=1e-14
    )
    assert formulas.loss_scale(b, w, data.X, data.y) == pytest.approx(expected_loss, rel=1e-14)
    np.testing.assert_allclose(formulas.hessian_scales(data.X), expected_hessian, rtol=1e-14)


def test_residual_in_place_equals_the_plain_expression(data):
    theta = np.array([1.5, -0.5, 2.0])
    expected = data.y - (data.X @ theta[1:] + theta[0])
    np.testing.assert_array_equal(formulas.residual(theta[0], theta[1:], data.X, data.y), expected)
