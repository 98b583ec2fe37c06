"""The parts of the Tensor API around the rules: comparisons, in-place updates, constructors,
casts, shape helpers, operation()'s checks, and how tensors behave as Python objects."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad
from minigrad import Tensor, enable_grad, grad, is_grad_enabled, no_grad, operation
from tests.minigrad.helpers import assert_close


# ---- comparisons --------------------------------------------------------------------------------
def test_comparisons_give_constant_boolean_tensors() -> None:
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    for result, expected in [
        (x < 2, [True, False, False]),
        (x <= 2, [True, True, False]),
        (x > 2.0, [False, False, True]),
        (x >= np.array([1.0, 3.0, 3.0]), [True, False, True]),
        (x == 2, [False, True, False]),
        (x != Tensor([1.0, 0.0, 3.0]), [False, True, False]),
        (2 < x, [False, False, True]),  # noqa: SIM300 (the reflected form, on purpose)
    ]:
        assert result.dtype == np.bool_
        assert not result.requires_grad
        assert result.data.tolist() == expected


def test_tensors_hash_by_identity_even_with_elementwise_equality() -> None:
    a, b = Tensor([1.0, 2.0]), Tensor([1.0, 2.0])
    assert len({a, b, a}) == 2
    assert {a: 1, b: 2}[a] == 1
    assert (a == None) is False  # noqa: E711 (not a tensor: Python's identity comparison)
    assert bool(Tensor(1.0) == 1.0)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(a == b)  # as numpy: several elements have no single truth value


def test_a_comparison_as_a_where_condition() -> None:
    r = Tensor([-2.0, 0.5, 3.0], requires_grad=True)
    huber = minigrad.where(r.abs() <= 1.0, 0.5 * r**2, r.abs() - 0.5).sum()
    huber.backward()
    assert_close(r.grad, [-1.0, 0.5, 1.0], 0, 0)


# ---- in-place updates ---------------------------------------------------------------------------
def test_in_place_update_under_no_grad_changes_the_array_itself() -> None:
    w = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    array = w.data
    (w * w).sum().backward()
    with no_grad():
        w -= 0.5 * w.grad
        w *= 2.0
        w += 1
        w /= Tensor(np.array([2.0, 4.0]))  # a float64 operand: w stays float32
    assert w.data is array
    assert w.dtype == np.float32
    assert w.requires_grad
    assert_close(w, [0.5, 0.25], 0, 0)


def test_in_place_update_while_recording_is_refused() -> None:
    w = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        w -= 1.0
    c = Tensor([1.0, 2.0])  # a constant may be changed: nothing records it
    c += 1.0
    assert c.data.tolist() == [2.0, 3.0]


# ---- grad mode ----------------------------------------------------------------------------------
def test_enable_grad_inside_no_grad() -> None:
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        with enable_grad():
            assert is_grad_enabled()
            assert (x * 2).requires_grad
        assert not is_grad_enabled()
    assert is_grad_enabled()


# ---- constructors and casts ---------------------------------------------------------------------
def test_constructors() -> None:
    assert minigrad.zeros((2, 3)).data.tolist() == [[0.0] * 3] * 2
    assert minigrad.ones(2, dtype=np.float32).dtype == np.float32
    assert minigrad.full((2,), 1.5).data.tolist() == [1.5, 1.5]
    assert minigrad.eye(2, 3).data.tolist() == [[1, 0, 0], [0, 1, 0]]
    w = minigrad.randn(3, 2, seed=0, requires_grad=True)
    assert w.shape == (3, 2)
    assert w.requires_grad
    assert np.array_equal(w.data, minigrad.randn((3, 2), seed=0).data)  # a seed repeats
    assert minigrad.randn(4, dtype=np.float32).dtype == np.float32


def test_astype_is_differentiable_and_keeps_dtypes_apart() -> None:
    x = Tensor(np.array([1.5, 2.5]), requires_grad=True)
    y = x.astype(np.float32)
    assert y.dtype == np.float32
    (y * y).sum().backward()
    assert x.grad.dtype == np.float64
    assert_close(x.grad, [3.0, 5.0], 0, 0)
    labels = x.astype(np.int64)  # not floating: a constant
    assert not labels.requires_grad
    assert labels.data.tolist() == [1, 2]


# ---- shapes -------------------------------------------------------------------------------------
def test_squeeze_and_expand_dims_shapes_and_errors() -> None:
    x = Tensor(np.ones((1, 3, 1)), requires_grad=True)
    assert x.squeeze().shape == (3,)
    assert x.squeeze(0).shape == (3, 1)
    assert x.squeeze((0, -1)).shape == (3,)
    with pytest.raises(ValueError, match="cannot squeeze axis 1"):
        x.squeeze(1)
    assert x.expand_dims(0).shape == (1, 1, 3, 1)
    assert x.expand_dims((0, -1)).shape == (1, 1, 3, 1, 1)
    assert Tensor(np.ones((2, 3, 4))).mT.shape == (2, 4, 3)


def test_concatenate_and_stack_send_each_input_its_slice() -> None:
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    b = Tensor(np.ones((1, 3)), requires_grad=True)
    out = minigrad.concatenate([a, b], axis=0)
    out.backward(np.arange(9.0).reshape(3, 3))
    assert_close(a.grad, [[0, 1, 2], [3, 4, 5]], 0, 0)
    assert_close(b.grad, [[6, 7, 8]], 0, 0)
    c = Tensor([1.0, 2.0], requires_grad=True)
    stacked = minigrad.stack([c, 2 * c, np.zeros(2)], axis=1)  # an array joins as a constant
    assert stacked.shape == (2, 3)
    stacked.sum().backward()
    assert_close(c.grad, [3.0, 3.0], 0, 0)
    with pytest.raises(ValueError, match="at least one"):
        minigrad.concatenate([])


def test_python_protocols() -> None:
    t = Tensor([[1.0, -2.0], [3.0, 4.0]])
    assert len(t) == 2
    assert np.asarray(t) is not None
    assert np.array_equal(np.asarray(t), t.data)
    assert abs(t).data.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert (+t) is t
    assert [row.data.tolist() for row in t] == [[1.0, -2.0], [3.0, 4.0]]
    assert t.device == "cpu"


# ---- operation() ---------------------------------------------------------------------------------
def test_operation_records_a_rule_of_your_own() -> None:
    x = Tensor([0.5, -1.0], requires_grad=True)

    def cube(t: Tensor) -> Tensor:
        # d(t³)/dt = 3t²
        return operation("cube", t.data**3, (t,), lambda g, out: g * 3 * t**2,
                         forward=lambda a: a**3)  # fmt: skip

    y = cube(x)
    assert y.requires_grad
    assert y._op == "cube"
    (first,) = (grad(y.sum(), x, create_graph=True),)
    assert_close(first, 3 * x.data**2, 0, 0)
    assert_close(grad(first.sum(), x), 6 * x.data, 0, 0)  # written in Tensor ops: second order
    with no_grad():
        assert not cube(x).requires_grad
    assert "cube" in minigrad.format_graph(y)


def test_operation_checks_its_arguments() -> None:
    x = Tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="1 parents but 2 VJPs"):
        operation("bad", x.data, (x,), lambda g, out: g, lambda g, out: g)
    with pytest.raises(TypeError, match="parent 0 is a ndarray"):
        operation("bad", x.data, (x.data,), lambda g, out: g)


def test_a_vjp_of_the_wrong_shape_is_named() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    y = operation("oops", x.data * 2, (x,), lambda g, out: Tensor(np.ones(4)))
    with pytest.raises(ValueError, match=r"VJP of 'oops' for input 0.*\(4,\).*\(3,\)"):
        y.sum().backward()


def test_a_vjp_may_return_a_numpy_array() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    y = operation("twice", x.data * 2, (x,), lambda g, out: g.data * 2)
    y.sum().backward()
    assert_close(x.grad, [2.0, 2.0, 2.0], 0, 0)


def test_python_numbers_keep_their_sign_and_dtype() -> None:
    """Python numbers become shared read-only constants: -0.0 stays apart from 0.0, a float32
    tensor's 2.0 from a float64 one's, and nothing can write into them."""
    x = Tensor(np.array([1.0, -2.0]))
    assert np.signbit((x * -0.0).data).tolist() == [True, False]
    assert np.signbit((x * 0.0).data).tolist() == [False, True]
    x32 = Tensor(np.array([1.0], dtype=np.float32))
    assert (x32 * 2.0).dtype == np.float32
    assert (x * 2.0).dtype == np.float64
    constant = (x * 3.0)._parents  # nothing recorded: no parents kept
    assert constant == ()
    w = Tensor([1.0], requires_grad=True)
    three = (w * 3.0)._parents[1]
    assert not three.data.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        three += 1.0
