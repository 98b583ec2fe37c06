"""Every op's gradient against central finite differences of a plain numpy forward.

The reference never runs minigrad: the function being differentiated numerically is the same
formula evaluated by numpy, so a wrong VJP, a gradient not summed back over a broadcast axis, or a
wrongly wired forward all show up. Tolerances: FD_RTOL / FD_ATOL in helpers (1e-6 each, float64,
step 1e-6·max(1, |x|)); the forward value must match numpy to 1e-12 relative.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigrad import Tensor
from tests.minigrad.helpers import (
    BINARY_CASES,
    FD_ATOL,
    FD_RTOL,
    FORWARD_ATOL,
    FORWARD_RTOL,
    FUNCTION_CASES,
    MATMUL_CASE,
    NUMPY_OPS,
    UNARY_CASES,
    Case,
    arrays_in,
    assert_close,
    case_instances,
    draw_inputs,
    minigrad_vjp,
    numeric_vjp,
)


def check_against_finite_differences(
    case: Case, arrays: list[np.ndarray], cotangent: np.ndarray
) -> None:
    expected_out = np.asarray(case.fn(NUMPY_OPS, *arrays))
    out, grads = minigrad_vjp(case.fn, arrays, cotangent)
    assert_close(out, expected_out, FORWARD_RTOL, FORWARD_ATOL, what=f"{case.name} value")
    numeric = numeric_vjp(lambda *xs: case.fn(NUMPY_OPS, *xs), arrays, cotangent)
    for i, (analytic, approx) in enumerate(zip(grads, numeric, strict=True)):
        assert_close(analytic, approx, FD_RTOL, FD_ATOL, what=f"{case.name} gradient of input {i}")


@pytest.mark.parametrize(("case", "shapes"), case_instances(UNARY_CASES))
@given(data=st.data())
def test_unary_op_gradient_matches_finite_differences(
    case: Case, shapes: tuple[tuple[int, ...], ...], data: st.DataObject
) -> None:
    arrays, cotangent = draw_inputs(data, case, shapes)
    check_against_finite_differences(case, arrays, cotangent)


@pytest.mark.parametrize(
    ("case", "shapes"), case_instances([*BINARY_CASES, *FUNCTION_CASES, MATMUL_CASE])
)
@given(data=st.data())
def test_binary_op_gradient_matches_finite_differences(
    case: Case, shapes: tuple[tuple[int, ...], ...], data: st.DataObject
) -> None:
    """Both inputs require grad; each gradient must come back summed to its own shape."""
    arrays, cotangent = draw_inputs(data, case, shapes)
    check_against_finite_differences(case, arrays, cotangent)


# ---- a constant on one side: numpy array, Python number or a tensor without requires_grad ------
def _as_kind(value: np.ndarray, kind: str) -> Any:
    if kind == "ndarray":
        return value
    if kind == "number":
        return float(value)
    return Tensor(value)  # "constant tensor"


MIXED = [
    pytest.param(case, kind, side, shapes, id=f"{case.name}-{kind}-{side}-{shapes}")
    for case in BINARY_CASES
    for kind, shape_pairs in [
        ("ndarray", [((3, 4), (1, 4)), ((4,), (3, 4))]),
        ("number", [((3, 4), ()), ((), ())]),
        ("constant tensor", [((3, 1), (1, 4))]),
    ]
    for side in ("left", "right")
    for shapes in shape_pairs
] + [
    pytest.param(MATMUL_CASE, "ndarray", side, shapes, id=f"@-ndarray-{side}")
    for side, shapes in [("right", ((3, 4), (4, 2))), ("left", ((3, 4), (2, 3)))]
]


@pytest.mark.parametrize(("case", "kind", "side", "shapes"), MIXED)
@given(data=st.data())
def test_binary_op_with_constant_operand(
    case: Case, kind: str, side: str, shapes: tuple[tuple[int, ...], ...], data: st.DataObject
) -> None:
    """`constant op tensor` and `tensor op constant`: the result is a Tensor with the right value
    and gradient; the constant is left alone (reflected operators, `__array_ufunc__ = None`)."""
    tensor_shape, constant_shape = shapes
    t_domain, c_domain = case.domains if side == "right" else case.domains[::-1]
    t_value = data.draw(arrays_in(tensor_shape, t_domain), label="tensor")
    c_value = data.draw(arrays_in(constant_shape, c_domain), label="constant")
    constant = _as_kind(c_value.copy(), kind)

    def with_constant(ops: Any, t: Any, c: Any) -> Any:
        return case.fn(ops, t, c) if side == "right" else case.fn(ops, c, t)

    x = Tensor(t_value.copy(), requires_grad=True)
    out = with_constant(None, x, constant)
    assert isinstance(out, Tensor), f"got {type(out).__name__}"
    assert out.requires_grad
    expected_out = np.asarray(with_constant(NUMPY_OPS, t_value, c_value))
    assert_close(out, expected_out, FORWARD_RTOL, FORWARD_ATOL, what="value")

    cotangent = data.draw(arrays_in(expected_out.shape, "cotangent"), label="cotangent")
    out.backward(cotangent)
    (numeric,) = numeric_vjp(lambda t: with_constant(NUMPY_OPS, t, c_value), [t_value], cotangent)
    assert_close(x.grad, numeric, FD_RTOL, FD_ATOL, what="gradient of the tensor")
    if isinstance(constant, Tensor):
        assert constant.grad is None
        assert not constant.requires_grad
    else:
        assert np.array_equal(np.asarray(constant), c_value)  # not modified in place
