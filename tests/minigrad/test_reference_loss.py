"""The reference example: the MSE of a line fitted to data/data.csv, in b (intercept) and w (slope).

Expected values are independent of minigrad: the loss at b = w = 0 is the stated constant, and the
gradient and Hessian follow from the hand formulas
    dL/db = -(2/N) Σ (y - (w x + b)),    dL/dw = -(2/N) Σ x (y - (w x + b)),
    d²L/db² = 2,  d²L/db dw = 2 mean(x),  d²L/dw² = 2 mean(x²),
evaluated with plain numpy sums.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigrad import Tensor, grad, mse_loss
from tests.minigrad.helpers import ENGINE_ATOL, ENGINE_RTOL, MINIGRAD_OPS, assert_close

LOSS_AT_ZERO = 5565.107834483211


@pytest.fixture
def xy(data_csv: Path) -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(data_csv, delimiter=",", dtype=np.float64)
    assert data.shape == (100, 2)
    return data[:, 0], data[:, 1]


def hand_gradient(x: np.ndarray, y: np.ndarray, b: float, w: float) -> tuple[float, float]:
    residual = y - (w * x + b)
    n = len(x)
    return -(2 / n) * float(np.sum(residual)), -(2 / n) * float(np.sum(x * residual))


def loss_of(x: np.ndarray, y: np.ndarray, b: Tensor, w: Tensor) -> Tensor:
    return ((y - (w * x + b)) ** 2).mean()


def test_loss_and_gradient_at_zero(xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    b = Tensor(0.0, requires_grad=True)
    w = Tensor(0.0, requires_grad=True)
    loss = loss_of(x, y, b, w)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(LOSS_AT_ZERO, rel=1e-14, abs=0)
    loss.backward()
    db, dw = hand_gradient(x, y, 0.0, 0.0)
    assert b.grad.item() == pytest.approx(db, rel=1e-12, abs=0)
    assert w.grad.item() == pytest.approx(dw, rel=1e-12, abs=0)
    assert b.grad.shape == ()
    assert w.grad.shape == ()


def test_mse_loss_matches_the_written_out_loss(xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    b = Tensor(0.0, requires_grad=True)
    w = Tensor(0.0, requires_grad=True)
    loss = mse_loss(w * x + b, y)
    assert loss.item() == pytest.approx(LOSS_AT_ZERO, rel=1e-14, abs=0)
    db, dw = grad(loss, (b, w))
    expected_db, expected_dw = hand_gradient(x, y, 0.0, 0.0)
    assert db.item() == pytest.approx(expected_db, rel=1e-12, abs=0)
    assert dw.item() == pytest.approx(expected_dw, rel=1e-12, abs=0)
    # a Tensor target gives the same value as a numpy one
    assert mse_loss(w * x + b, Tensor(y)).item() == loss.item()


def test_mse_loss_gradient_with_respect_to_the_prediction() -> None:
    prediction = Tensor([1.0, 2.0, 4.0], requires_grad=True)
    target = np.array([0.5, 2.0, 1.0])
    loss = mse_loss(prediction, target)
    assert loss.item() == pytest.approx((0.25 + 0 + 9) / 3, rel=1e-15)
    loss.backward()
    assert_close(prediction.grad, -(2 / 3) * (target - prediction.data), 1e-15, 1e-15)


# `xy` only reads the data file, so sharing it across the generated inputs is safe
SHARED_FIXTURE_OK = [*settings.default.suppress_health_check, HealthCheck.function_scoped_fixture]


@settings(suppress_health_check=SHARED_FIXTURE_OK)
@given(b0=st.floats(-20, 20), w0=st.floats(-5, 5))
def test_gradient_matches_hand_formulas_anywhere(
    xy: tuple[np.ndarray, np.ndarray], b0: float, w0: float
) -> None:
    x, y = xy
    b = Tensor(b0, requires_grad=True)
    w = Tensor(w0, requires_grad=True)
    loss = loss_of(x, y, b, w)
    assert loss.item() == pytest.approx(np.mean((y - (w0 * x + b0)) ** 2), rel=1e-13)
    db, dw = grad(loss, [b, w])
    assert b.grad is None  # grad() leaves .grad alone
    assert w.grad is None
    expected_db, expected_dw = hand_gradient(x, y, b0, w0)
    # the sums cancel near the optimum, so the absolute allowance follows their size
    scale = 2 * float(np.mean(np.abs(x * (y - (w0 * x + b0))))) + 1.0
    assert_close(db, expected_db, 1e-12, 1e-13 * scale, what="dL/db")
    assert_close(dw, expected_dw, 1e-12, 1e-13 * scale, what="dL/dw")


def test_hessian_in_b_and_w_matches_hand_formulas(xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    b = Tensor(0.5, requires_grad=True)
    w = Tensor(-1.0, requires_grad=True)
    db, dw = grad(loss_of(x, y, b, w), (b, w), create_graph=True)
    hessian = np.array([[h.item() for h in grad(g, (b, w))] for g in (db, dw)])
    expected = np.array([[2.0, 2 * np.mean(x)], [2 * np.mean(x), 2 * np.mean(x * x)]])
    assert_close(hessian, expected, 1e-12, 0, what="Hessian of the MSE in (b, w)")


def test_hessian_in_b_and_w_matches_reference_engine(
    engine: Any, xy: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = xy

    def loss(ops: Any, b: Any, w: Any) -> Any:
        return ops.mean((ops.const(y) - (w * ops.const(x) + b)) ** 2)

    b0, w0 = np.array(0.5), np.array(-1.0)
    expected = engine.hessian_of_inputs(loss, [b0, w0])
    b = Tensor(b0, requires_grad=True)
    w = Tensor(w0, requires_grad=True)
    first = grad(loss(MINIGRAD_OPS, b, w), (b, w), create_graph=True)
    for i, g in enumerate(first):
        for j, h in enumerate(grad(g, (b, w))):
            assert_close(h, expected[i][j], ENGINE_RTOL, ENGINE_ATOL, what=f"H[{i}][{j}]")
