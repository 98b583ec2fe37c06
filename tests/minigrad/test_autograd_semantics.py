"""How gradients flow: accumulation, reuse of a node, intermediate .grad, no_grad, detach, grad().

Expected values are written out by hand from the calculus, not computed by minigrad.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from minigrad import Tensor, grad, is_grad_enabled, no_grad
from tests.minigrad.helpers import assert_close

X = np.array([1.5, -2.0, 0.5])


@pytest.fixture
def x() -> Tensor:
    return Tensor(X.copy(), requires_grad=True, name="x")


# ---- accumulation -------------------------------------------------------------------------------
def test_gradients_accumulate_across_backward_calls(x: Tensor) -> None:
    (x * x).sum().backward()
    assert_close(x.grad, 2 * X, 1e-15, 0)
    (x**3).sum().backward()
    assert_close(x.grad, 2 * X + 3 * X**2, 1e-15, 0)


def test_backward_twice_on_the_same_graph_doubles(x: Tensor) -> None:
    loss = (x.exp() * x).sum()
    loss.backward()
    loss.backward()
    assert_close(x.grad, 2 * np.exp(X) * (1 + X), 1e-14, 0)


def test_zero_grad_starts_afresh(x: Tensor) -> None:
    (x * x).sum().backward()
    x.zero_grad()
    assert x.grad is None
    (x * 3.0).sum().backward()
    assert_close(x.grad, np.full(3, 3.0), 0, 0)


# ---- reuse --------------------------------------------------------------------------------------
def test_reused_node_gets_every_contribution(x: Tensor) -> None:
    """(x + x) * x = 2x², so the gradient is 4x (not 2x or x: each use must be added)."""
    ((x + x) * x).sum().backward()
    assert_close(x.grad, 4 * X, 0, 0)
    s = Tensor(3.0, requires_grad=True)
    ((s + s) * s).backward()
    assert s.grad.item() == 12.0


def test_node_used_in_two_branches(x: Tensor) -> None:
    h = x.exp()
    out = (h * 2.0 + h.tanh()).sum()
    out.backward()
    e = np.exp(X)
    dh = 2.0 + 1 - np.tanh(e) ** 2
    assert_close(h.grad, dh, 1e-14, 0, what="d out / d h")
    assert_close(x.grad, e * dh, 1e-14, 0, what="d out / d x")


def test_diamond_with_broadcasting() -> None:
    """c = a·b is (3, 4) from a (3, 1) and b (4,); out = Σ c·a + c/b = Σ_ij a_i² b_j + a_i."""
    a_values = np.array([[1.0], [-2.0], [0.5]])
    b_values = np.array([1.0, 2.0, -1.5, 0.25])
    a = Tensor(a_values, requires_grad=True)
    b = Tensor(b_values, requires_grad=True)
    c = a * b
    (c * a + c / b).sum().backward()
    assert_close(a.grad, 2 * a_values * b_values.sum() + 4, 1e-14, 1e-14, what="dA")
    assert_close(b.grad, np.full(4, np.sum(a_values**2)), 1e-14, 1e-14, what="dB")


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        pytest.param(lambda t: t + t, lambda v: np.full_like(v, 2.0), id="x+x"),
        pytest.param(lambda t: t - t, np.zeros_like, id="x-x"),
        pytest.param(lambda t: t * t, lambda v: 2 * v, id="x*x"),
        pytest.param(lambda t: t / t, np.zeros_like, id="x/x"),
        pytest.param(lambda t: t**t, lambda v: v**v * (np.log(v) + 1), id="x**x"),
        pytest.param(lambda t: t @ t, lambda v: 2 * v, id="x@x"),
    ],
)
def test_same_tensor_on_both_sides(
    op: Callable[[Tensor], Tensor], expected: Callable[[np.ndarray], np.ndarray]
) -> None:
    values = np.array([0.5, 1.25, 2.0])
    t = Tensor(values, requires_grad=True)
    op(t).sum().backward()
    assert_close(t.grad, expected(values), 1e-14, 1e-15)


def test_backward_fills_intermediate_grads_and_skips_constants() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = Tensor([3.0, -1.0], requires_grad=True)
    c = Tensor([10.0, 20.0])  # a constant
    z = x * y
    w = z * c
    out = (w * z).sum()  # = Σ c z²
    out.backward()
    assert out.grad.item() == 1.0
    assert_close(w.grad, z.data, 0, 0, what="dout/dw = z")
    assert_close(z.grad, 2 * c.data * z.data, 0, 0, what="dout/dz = 2cz")
    assert_close(x.grad, 2 * c.data * z.data * y.data, 0, 0)
    assert c.grad is None
    assert not c.requires_grad


def test_backward_with_explicit_gradient(x: Tensor) -> None:
    v = np.array([1.0, 2.0, -3.0])
    (x * 3.0).backward(v)
    assert_close(x.grad, 3 * v, 0, 0)
    x.zero_grad()
    (x * 3.0).backward(Tensor(v))
    assert_close(x.grad, 3 * v, 0, 0)
    x.zero_grad()
    (x * x).sum().backward(2.0)  # a scalar seed scales the gradient
    assert_close(x.grad, 4 * X, 0, 0)


def test_gradient_is_not_written_into_the_seed_array(x: Tensor) -> None:
    """Accumulating into .grad must not change arrays the caller still holds."""
    seed = np.ones(3)
    (x * 1.0).backward(seed)
    (x * 1.0).backward(seed)
    assert np.array_equal(seed, np.ones(3))
    assert_close(x.grad, np.full(3, 2.0), 0, 0)


def test_kinks_get_zero_gradient_as_in_torch() -> None:
    """relu and abs at exactly 0 take the subgradient 0 (documented; torch does the same)."""
    x = Tensor([-1.0, 0.0, 2.0], requires_grad=True)
    (x.relu() + x.abs()).sum().backward()
    assert np.array_equal(x.grad.numpy(), [-1.0, 0.0, 2.0])


# ---- no_grad ------------------------------------------------------------------------------------
def test_no_grad_context(x: Tensor) -> None:
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2.0 + x.exp()
        assert not y.requires_grad
        leaf = Tensor([1.0], requires_grad=True)  # an explicit leaf keeps its flag, as in torch
        assert leaf.requires_grad
        assert not (leaf * 2).requires_grad
    assert is_grad_enabled()
    assert (x * 2.0).requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_no_grad_is_restored_after_an_exception(x: Tensor) -> None:
    with pytest.raises(KeyError), no_grad():
        raise KeyError("inside")
    assert is_grad_enabled()
    assert (x * 2.0).requires_grad


def test_no_grad_nested() -> None:
    with no_grad():
        with no_grad():
            assert not is_grad_enabled()
        assert not is_grad_enabled()  # the outer block is still active
    assert is_grad_enabled()


def test_no_grad_decorator(x: Tensor) -> None:
    @no_grad()
    def step(t: Tensor) -> tuple[Tensor, bool]:
        """Docstring kept."""
        return t * 3.0, is_grad_enabled()

    y, enabled_inside = step(x)
    assert not enabled_inside
    assert not y.requires_grad
    assert_close(y, 3 * X, 0, 0)
    assert is_grad_enabled()
    assert step.__name__ == "step"
    assert step.__doc__ == "Docstring kept."

    @no_grad()
    def failing() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        failing()
    assert is_grad_enabled()


def test_parameter_update_under_no_grad_then_train_again(x: Tensor) -> None:
    (x * x).sum().backward()
    with no_grad():
        updated = x - 0.1 * x.grad
    assert not updated.requires_grad
    w = Tensor(updated.data, requires_grad=True)
    (w * w).sum().backward()
    assert_close(w.grad, 2 * (X - 0.2 * X), 1e-15, 0)


# ---- detach -------------------------------------------------------------------------------------
def test_detach_cuts_the_graph(x: Tensor) -> None:
    d = x.detach()
    assert not d.requires_grad
    assert np.shares_memory(d.numpy(), x.numpy())
    (d * x).sum().backward()
    assert_close(x.grad, X, 0, 0)  # d is a constant: not 2x
    assert d.grad is None


# ---- grad() -------------------------------------------------------------------------------------
def test_grad_returns_one_tensor_for_one_input_and_a_tuple_for_a_sequence() -> None:
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0, 4.0], requires_grad=True)
    out = (a * b).sum()
    ga = grad(out, a)
    assert isinstance(ga, Tensor)
    assert_close(ga, b.data, 0, 0)
    both = grad(out, [a, b])
    assert isinstance(both, tuple)
    assert len(both) == 2
    assert_close(both[0], b.data, 0, 0)
    assert_close(both[1], a.data, 0, 0)
    one = grad(out, (b,))
    assert isinstance(one, tuple)
    assert len(one) == 1
    assert_close(one[0], a.data, 0, 0)


def test_grad_does_not_touch_dot_grad(x: Tensor) -> None:
    assert x.grad is None
    g = grad((x * x).sum(), x)
    assert x.grad is None
    assert_close(g, 2 * X, 0, 0)
    (x * 3.0).sum().backward()
    grad((x * x).sum(), x)
    assert_close(x.grad, np.full(3, 3.0), 0, 0)


def test_grad_of_an_unused_input_is_zeros(x: Tensor) -> None:
    unused = Tensor(np.ones((2, 3)), requires_grad=True)
    gx, gu = grad((x * x).sum(), [x, unused])
    assert_close(gx, 2 * X, 0, 0)
    assert gu.shape == (2, 3)
    assert np.array_equal(gu.numpy(), np.zeros((2, 3)))


def test_grad_of_an_output_computed_under_no_grad_is_zeros(x: Tensor) -> None:
    with no_grad():
        out = (x * x).sum()
    g = grad(out, x)
    assert np.array_equal(g.numpy(), np.zeros(3))


def test_grad_with_respect_to_an_intermediate(x: Tensor) -> None:
    h = x * 2.0
    g = grad((h**2).sum(), h)
    assert_close(g, 2 * (2 * X), 0, 0)


def test_grad_output_for_a_non_scalar_output(x: Tensor) -> None:
    v = np.array([1.0, -1.0, 2.0])
    g = grad(x * x, x, grad_output=v)
    assert_close(g, 2 * X * v, 0, 0)
    with pytest.raises(RuntimeError, match=r"\(3,\)"):
        grad(x * x, x)


def test_create_graph_decides_whether_gradients_are_differentiable(x: Tensor) -> None:
    plain = grad((x**3).sum(), x)
    assert not plain.requires_grad
    recorded = grad((x**3).sum(), x, create_graph=True)
    assert recorded.requires_grad
    assert_close(recorded, 3 * X**2, 1e-15, 0)
    assert_close(grad(recorded.sum(), x), 6 * X, 1e-15, 0)
    assert x.grad is None


def test_backward_with_create_graph_records_dot_grad(x: Tensor) -> None:
    (x**3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    assert_close(grad(x.grad.sum(), x), 6 * X, 1e-15, 0)


def test_grad_rejects_inputs_that_do_not_require_grad(x: Tensor) -> None:
    constant = Tensor([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="input 1 is not a Tensor with requires_grad=True"):
        grad((x * constant).sum(), [x, constant])


def test_bare_no_grad_decorator(x: Tensor) -> None:
    @no_grad
    def double(t: Tensor) -> Tensor:
        """Twice t."""
        return t * 2

    result = double(x)
    assert not result.requires_grad
    assert double.__name__ == "double"
    assert double.__doc__ == "Twice t."
    assert is_grad_enabled()


def test_inputs_of_one_sum_get_gradients_of_their_own() -> None:
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    assert a.grad is not b.grad
    a.grad.data[0] = 99.0  # changing one gradient must not change the other
    assert b.grad.data.tolist() == [1.0, 1.0]
    grad_a, grad_b = grad((a + b).sum(), (a, b))
    assert grad_a is not grad_b


def test_results_of_zero_dimensional_operations_are_arrays() -> None:
    a = Tensor(2.0, requires_grad=True)
    for result in (a + 3.0, a * a, -a, a.exp(), a**2, (a * 3).sum()):
        assert type(result.data) is np.ndarray
        assert result.shape == ()
