"""Tensor construction, array facts, repr, and dtype handling (float64 default, float32 kept)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from minigrad import Tensor, grad
from tests.minigrad.helpers import (
    BINARY_CASES,
    FUNCTION_CASES,
    MATMUL_CASE,
    MINIGRAD_OPS,
    UNARY_CASES,
    Case,
    assert_close,
    minigrad_vjp,
    pair_id,
    sample_in,
)


@pytest.mark.parametrize(
    ("data", "shape"),
    [
        pytest.param(3, (), id="int"),
        pytest.param(True, (), id="bool"),
        pytest.param(2.5, (), id="float"),
        pytest.param([1, 2, 3], (3,), id="int-list"),
        pytest.param([[1.5, 2], [3, 4]], (2, 2), id="nested-list"),
        pytest.param(np.arange(6, dtype=np.int32).reshape(2, 3), (2, 3), id="int32-array"),
        pytest.param(np.arange(4, dtype=np.int64), (4,), id="int64-array"),
        pytest.param(np.array([1.0, 2.0], dtype=np.float64), (2,), id="float64-array"),
    ],
)
def test_construction_gives_float64(data: Any, shape: tuple[int, ...]) -> None:
    t = Tensor(data)
    assert t.dtype == np.float64
    assert t.shape == shape
    assert t.ndim == len(shape)
    assert np.array_equal(t.numpy(), np.asarray(data, dtype=np.float64))
    assert t.requires_grad is False
    assert t.grad is None


def test_float32_data_keeps_its_dtype() -> None:
    t = Tensor(np.array([1.5, -2.0], dtype=np.float32), requires_grad=True)
    assert t.dtype == np.float32
    assert Tensor(np.float32(2.0)).dtype == np.float32


def test_float_array_is_used_without_a_copy() -> None:
    array = np.array([1.0, 2.0, 3.0])
    t = Tensor(array)
    assert np.shares_memory(t.numpy(), array)
    assert t.data is array


def test_int_input_gives_float64_gradients() -> None:
    x = Tensor(np.array([1, 2, 3], dtype=np.int32), requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.dtype == np.float64
    assert np.array_equal(x.grad.numpy(), [2.0, 4.0, 6.0])


def test_item_and_float() -> None:
    assert Tensor([[2.5]]).item() == 2.5
    assert isinstance(Tensor(3).item(), float)
    assert float(Tensor(-1.25)) == -1.25
    with pytest.raises(ValueError, match="size 1"):
        Tensor([1.0, 2.0]).item()


def test_requires_grad_and_name_are_stored() -> None:
    t = Tensor([1.0], requires_grad=True, name="w")
    assert t.requires_grad is True
    assert t.name == "w"
    assert (t * 2).requires_grad is True
    assert (Tensor([1.0]) * 2).requires_grad is False


def test_repr_shows_data_and_grad() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    before = repr(x)
    assert "[1., 2.]" in before
    assert "grad=None" in before
    assert "'x'" in before
    assert "requires_grad=True" in before
    (x * x).sum().backward()
    assert "grad=[2., 4.]" in repr(x)
    assert repr(Tensor(0.5)) == "Tensor(0.5, grad=None)"


# ---- float32 preservation ------------------------------------------------------------------------
def _one_instance_each(cases: list[Case]) -> list[Any]:
    return [
        pytest.param(case, case.shapes[-1], id=f"{case.name}-{pair_id(case.shapes[-1])}")
        for case in cases
    ]


@pytest.mark.parametrize(
    ("case", "shapes"),
    _one_instance_each([*UNARY_CASES, *BINARY_CASES, *FUNCTION_CASES, MATMUL_CASE]),
)
def test_float32_in_float32_out(case: Case, shapes: tuple[tuple[int, ...], ...]) -> None:
    """Every op keeps float32: its value and every input's gradient (Python numbers included)."""
    rng = np.random.default_rng(7)
    arrays = [sample_in(s, d, rng) for s, d in zip(shapes, case.domains, strict=True)]
    tensors = [Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    out = case.fn(MINIGRAD_OPS, *tensors)
    assert out.dtype == np.float32, f"value is {out.dtype}"
    cotangent = sample_in(out.shape, "cotangent", rng)
    out.backward(cotangent.astype(np.float32))
    expected_out, expected_grads = minigrad_vjp(case.fn, arrays, cotangent)
    assert_close(out, expected_out, 1e-5, 1e-5, what="float32 value")
    for i, (t, expected) in enumerate(zip(tensors, expected_grads, strict=True)):
        assert t.grad.dtype == np.float32, f"gradient of input {i} is {t.grad.dtype}"
        assert_close(t.grad, expected, 1e-4, 1e-4, what=f"float32 gradient of input {i}")


def test_float32_times_python_float_stays_float32() -> None:
    x = Tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32), requires_grad=True)
    for y in (x * 2.0, 2.0 * x, x + 1, 1 - x, x / 3, 3 / x, x**2, 2**x, x.mean()):
        assert y.dtype == np.float32
    loss = (x * 2.0).sum()
    loss.backward()  # the implicit seed takes the output's dtype
    assert x.grad.dtype == np.float32
    assert np.array_equal(x.grad.numpy(), np.full(3, 2.0, dtype=np.float32))
    assert grad(loss, x).dtype == np.float32
