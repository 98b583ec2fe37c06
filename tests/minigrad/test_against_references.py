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
    FUNCTION_CASES,
    MATMUL_CASE,
    UNARY_CASES,
    Case,
    assert_close,
    draw_inputs,
    minigrad_vjp,
    pair_id,
    tier,
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


# jax compiles each primitive for each new shape on first use (~0.1 s per test), so it checks
# every op on a subset of the shapes that still puts each shape on each side of a binary op;
# torch, fast op by op, takes every shape (and every pair) the finite-difference tests take.
JAX_PAIRS = [
    ((), ()),
    ((), (3, 4)),
    ((3, 4), ()),
    ((4,), (3, 4)),
    ((3, 4), (4,)),
    ((1, 4), (3, 1)),
    ((3, 1), (1, 4)),
    ((3, 4), (3, 1)),
]


def engine_instances(cases: list[Case]) -> list[Any]:
    params = []
    for case in cases:
        if case in BINARY_CASES:
            jax_shapes = [shapes for shapes in case.shapes if shapes in JAX_PAIRS]
        elif case is MATMUL_CASE:
            jax_shapes = list(case.shapes)
        else:  # unary: the first and the last shape listed
            jax_shapes = sorted({case.shapes[0], case.shapes[-1]}, key=case.shapes.index)
        for engine, shape_list in [("torch", case.shapes), ("jax", jax_shapes)]:
            params += [
                pytest.param(
                    engine,
                    case,
                    shapes,
                    id=f"{engine}-{case.name}-{pair_id(shapes)}",
                    marks=tier(case, shapes),
                )
                for shapes in shape_list
            ]
    return params


@pytest.mark.parametrize(
    ("engine", "case", "shapes"), engine_instances(UNARY_CASES), indirect=["engine"]
)
@settings(max_examples=ENGINE_EXAMPLES)
@given(data=st.data())
def test_unary_op_matches_reference_engine(
    engine: Any, case: Case, shapes: tuple[tuple[int, ...], ...], data: st.DataObject
) -> None:
    arrays, cotangent = draw_inputs(data, case, shapes)
    check_against_engine(engine, case, arrays, cotangent)


@pytest.mark.parametrize(
    ("engine", "case", "shapes"),
    engine_instances([*BINARY_CASES, *FUNCTION_CASES, MATMUL_CASE]),
    indirect=["engine"],
)
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
