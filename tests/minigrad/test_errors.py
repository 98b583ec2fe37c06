"""Misuse gets a clear error that says what is wrong: the op, the shapes, what to do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from minigrad import Tensor, grad, no_grad

BINARY_OPERATORS: list[tuple[str, Callable[[Any, Any], Any]]] = [
    ("+", lambda a, b: a + b),
    ("-", lambda a, b: a - b),
    ("*", lambda a, b: a * b),
    ("/", lambda a, b: a / b),
    ("**", lambda a, b: a**b),
]


def test_backward_on_a_many_element_output_needs_a_gradient() -> None:
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(3, 4\)") as error:
        (x * 2.0).backward()
    assert "gradient" in str(error.value)
    assert x.grad is None  # nothing half-done


def test_backward_gradient_must_match_the_output_shape() -> None:
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    with pytest.raises(ValueError, match=r"\(4,\).*\(3, 4\)"):
        (x * 2.0).backward(np.ones(4))


@pytest.mark.parametrize(("name", "op"), BINARY_OPERATORS, ids=[n for n, _ in BINARY_OPERATORS])
@pytest.mark.parametrize("left", ["tensor", "ndarray"])
def test_shapes_that_cannot_broadcast_name_the_op_and_both_shapes(
    name: str, op: Callable[[Any, Any], Any], left: str
) -> None:
    a = Tensor(np.ones(3), requires_grad=True) if left == "tensor" else np.ones(3)
    b = Tensor(np.ones((2, 4)), requires_grad=True)
    with pytest.raises(ValueError, match="broadcast") as error:
        op(a, b)
    message = str(error.value)
    assert f"'{name}'" in message
    assert "(3,)" in message
    assert "(2, 4)" in message


def test_matmul_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"\(3, 4\) @ \(3, 4\)"):
        Tensor(np.ones((3, 4))) @ Tensor(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\) @ \(3,\)"):
        Tensor(np.ones((2, 3, 4))) @ Tensor(np.ones(3))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\) @ \(3, 4, 5\)"):
        Tensor(np.ones((2, 3, 4))) @ Tensor(np.ones((3, 4, 5)))  # batch axes 2 and 3 differ
    with pytest.raises(ValueError, match=r"at least 1-D.*\(\) @ \(4,\)"):
        Tensor(2.0) @ Tensor(np.ones(4))


def test_backward_on_a_tensor_that_does_not_require_grad() -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(1.0).backward()
    x = Tensor([1.0, 2.0], requires_grad=True)
    with no_grad():
        y = (x * x).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    assert x.grad is None


def test_grad_needs_grad_output_for_a_many_element_output() -> None:
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad\(\).*shape \(2, 2\)"):
        grad(x * x, x)
