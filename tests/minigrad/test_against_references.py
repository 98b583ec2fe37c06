"""Every op's value and gradient against torch.autograd and jax (jax.vjp), in float64.

The `engine` fixture runs each test once per reference library and skips, with the reason, where
that library is not installed. The gradients are vector-Jacobian products with a drawn cotangent,
so minigrad's ``backward(gradient)`` is exercised for every output shape. Tolerances:
ENGINE_RTOL / ENGINE_ATOL in helpers (1e-10 / 1e-12): the libraries evaluate the same formulas,
so they may differ only by rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.minigrad.helpers import (
    BINARY_CASES,
    ENGINE_ATOL,
    ENGINE_EXAMPLES,
    ENGINE_RTOL,
    MATMUL_CASE,
    UNARY_CASES,
    Case,
    assert_close,
    case_instances,
    draw_inputs,
    minigrad_vjp,
)


def check_against_engine(
    engine: Any, case: Case, arrays: list[np.ndarray], cotangent: np.ndarray
) -> None:
    out, grads = minigrad_vjp(case.fn, arrays, cotangent)
    expected_out, expected_grads = engine.vjp(case.fn, arrays, cotangent)
    assert_close(out, expected_out, ENGINE_RTOL, ENGINE_ATOL, what=f"{case.name} value")
    for i, (mine, theirs) in enumerate(zip(grads, expected_grads, strict=True)):
        assert_close(
            mine, theirs, ENGINE_RTOL, ENGINE_ATOL,
            what=f"{case.name} gradient of input {i} vs {engine.name}",
        )  # fmt: skip


@pytest.mark.parametrize(("case", "shapes"), case_instances(UNARY_CASES))
@settings(max_examples=ENGINE_EXAMPLES)
@given(data=st.data())
def test_unary_op_matches_reference_engine(
    engine: Any, case: Case, shapes: tuple[tuple[int, ...], ...], data: st.DataObject
) -> None:
    arrays, cotangent = draw_inputs(data, case, shapes)
    check_against_engine(engine, case, arrays, cotangent)


@pytest.mark.parametrize(("case", "shapes"), case_instances([*BINARY_CASES, MATMUL_CASE]))
@settings(max_examples=ENGINE_EXAMPLES)
@given(data=st.data())
def test_binary_op_matches_reference_engine(
    engine: Any, case: Case, shapes: tuple[tuple[int, ...], ...], data: st.DataObject
) -> None:
    arrays, cotangent = draw_inputs(data, case, shapes)
    check_against_engine(engine, case, arrays, cotangent)


def test_jax_float64_is_scoped(jax_engine: Any) -> None:
    """The jax comparisons switch 64-bit mode on per call only: the global default is untouched."""
    jnp = jax_engine.jax.numpy
    with jax_engine.x64():
        assert jnp.asarray(1.0).dtype == jnp.float64
    assert jnp.asarray(1.0).dtype == jnp.float32
