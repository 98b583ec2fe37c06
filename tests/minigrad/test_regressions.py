"""One test per bug found by running minigrad against its peers' test suites (issue 11).

Each failed before its fix; the expected values are written out from the calculus.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from minigrad import Tensor, grad, is_grad_enabled, no_grad
from tests.minigrad.helpers import assert_close


# ---- 1. transpose with negative axes ------------------------------------------------------------
def test_transpose_with_negative_axes_sends_the_gradient_back_transposed() -> None:
    values = np.arange(9.0).reshape(3, 3)
    weights = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.5]])  # not symmetric
    x = Tensor(values, requires_grad=True)
    (x.transpose(-1, 0) * weights).sum().backward()
    assert_close(x.grad, weights.T, 0, 0, what="d Σ W·xᵀ / dx = Wᵀ")


def test_transpose_with_negative_axes_keeps_the_input_shape() -> None:
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    cotangent = np.arange(6.0).reshape(3, 2)
    x.transpose(-1, 0).backward(cotangent)
    assert x.grad.shape == (2, 3)
    assert_close(x.grad, cotangent.T, 0, 0)
    y = Tensor(np.ones((2, 3, 4)), requires_grad=True)
    y.transpose((0, -1, -2)).backward(np.ones((2, 4, 3)))
    assert y.grad.shape == (2, 3, 4)


# ---- 2. numpy integer axes ----------------------------------------------------------------------
@pytest.mark.parametrize("axis", [np.int64(1), np.int32(-1), (np.int64(0), np.int64(1))])
def test_numpy_integer_axes_work_in_forward_and_backward(axis: object) -> None:
    values = np.arange(6.0).reshape(2, 3)
    x = Tensor(values, requires_grad=True)
    x.sum(axis=axis).sum().backward()
    assert_close(x.grad, np.ones((2, 3)), 0, 0, what="sum")
    x.zero_grad()
    mean = x.mean(axis=axis)
    assert_close(mean, np.mean(values, axis=axis), 1e-15, 0, what="mean value")
    mean.sum().backward()
    count = 6 if isinstance(axis, tuple) else 3
    assert_close(x.grad, np.full((2, 3), 1 / count), 1e-15, 0, what="mean")
    x.zero_grad()
    x.max(axis=axis).sum().backward()
    assert x.grad.shape == (2, 3)


# ---- 3. a float32 leaf keeps a float32 gradient -------------------------------------------------
def test_float32_leaf_meeting_a_float64_array_gets_a_float32_gradient() -> None:
    x = Tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32), requires_grad=True)
    product = x * np.ones(3)  # numpy promotes the value to float64 ...
    assert product.dtype == np.float64
    product.sum().backward()
    assert x.grad.dtype == np.float32  # ... but the gradient belongs to x
    assert_close(x.grad, np.ones(3), 0, 0)
    assert grad((x * np.full(3, 2.0)).sum(), x).dtype == np.float32


def test_float32_output_with_a_float64_seed_gives_float32_gradients() -> None:
    x = Tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32), requires_grad=True)
    y = x * 2
    y.backward(np.ones(3))  # a float64 seed
    assert y.grad.dtype == np.float32
    assert x.grad.dtype == np.float32
    assert_close(x.grad, np.full(3, 2.0), 0, 0)


def test_every_node_gets_its_own_dtype_in_a_mixed_graph() -> None:
    x = Tensor(np.array([0.5, 1.5], dtype=np.float32), requires_grad=True)
    w = Tensor(np.array([2.0, -1.0]), requires_grad=True)  # float64
    h = x.exp()  # float32
    out = (h * w).sum()  # float64
    out.backward()
    assert (x.grad.dtype, h.grad.dtype, w.grad.dtype) == (np.float32, np.float32, np.float64)


# ---- 4. x ** Tensor(0) at x = 0 ------------------------------------------------------------------
def test_power_with_a_zero_tensor_exponent_at_zero_has_gradient_zero() -> None:
    x = Tensor(np.array([0.0, 2.0]), requires_grad=True)
    p = Tensor(0.0, requires_grad=True)
    out = (x**p).sum()
    out.backward()
    assert_close(x.grad, [0.0, 0.0], 0, 0, what="d(x⁰)/dx")  # as x ** 0 and torch give
    # d(x^p)/dp = x^p ln x: 0 at x = 0 (torch's convention), ln 2 at x = 2
    assert_close(p.grad, np.log(2.0), 1e-15, 0, what="d(x^p)/dp")


# ---- 5. float32 base, float64 exponent -----------------------------------------------------------
def test_exponent_gradient_takes_the_log_in_the_result_dtype() -> None:
    base = np.array([1.1, 2.3, 3.7], dtype=np.float32)
    exponent = np.array([0.5, 1.5, 2.5])  # float64
    a = Tensor(base, requires_grad=True)
    b = Tensor(exponent, requires_grad=True)
    out = a**b
    assert out.dtype == np.float64
    out.sum().backward()
    exact_base = base.astype(np.float64)  # the float32 values, exactly
    expected = exact_base**exponent * np.log(exact_base)
    # a logarithm taken in float32 is off by about 3e-8; in float64 by about 1e-16
    assert_close(b.grad, expected, 1e-14, 0, what="d(aᵇ)/db")


# ---- 6. grad mode belongs to each thread ---------------------------------------------------------
def test_no_grad_in_another_thread_does_not_stop_recording_here() -> None:
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with no_grad():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert inside.wait(5)
        assert is_grad_enabled()  # the other thread's no_grad is its own
        x = Tensor([1.0, 2.0], requires_grad=True)
        assert (x * x).requires_grad
    finally:
        release.set()
        thread.join()


def test_overlapping_no_grad_blocks_in_two_threads_leave_recording_on() -> None:
    """A enters, B enters, A leaves, B leaves: with one global switch, B restored A's 'off'."""
    steps = [threading.Event() for _ in range(3)]
    states: dict[str, bool] = {}

    def first() -> None:
        with no_grad():
            steps[0].set()
            steps[1].wait(5)
        states["first after"] = is_grad_enabled()
        steps[2].set()

    def second() -> None:
        steps[0].wait(5)
        with no_grad():
            steps[1].set()
            steps[2].wait(5)
        states["second after"] = is_grad_enabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert states == {"first after": True, "second after": True}
    assert is_grad_enabled()


# ---- 7. gradients handed out share no memory ----------------------------------------------------
def test_leaf_and_reshaped_view_gradients_share_no_memory() -> None:
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x.reshape(6)
    (y * np.arange(6.0)).sum().backward()
    assert not np.shares_memory(x.grad.data, y.grad.data)
    x.grad.data[...] = 0  # zeroing one leaves the other alone
    assert_close(y.grad, np.arange(6.0), 0, 0)
    with pytest.raises(ValueError, match="read-only"):  # an intermediate's gradient is read-only
        y.grad.data[0] = 1.0


def test_two_leaves_reshaped_and_added_get_separate_gradients() -> None:
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    b = Tensor(np.ones((3, 2)), requires_grad=True)
    (a.reshape(6) + b.reshape(6)).sum().backward()
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data[...] = 0
    assert_close(b.grad, np.ones((3, 2)), 0, 0)
    ga, gb = grad((a.reshape(6) + b.reshape(6)).sum(), (a, b))
    assert not np.shares_memory(ga.data, gb.data)


def test_a_leaf_used_as_the_output_gets_a_copy_of_the_seed() -> None:
    x = Tensor(np.zeros(3), requires_grad=True)
    seed = np.array([1.0, 2.0, 3.0])
    x.backward(seed)
    assert not np.shares_memory(x.grad.data, seed)
    x.grad.data[...] = 0
    assert seed.tolist() == [1.0, 2.0, 3.0]


# ---- and: differentiating a gradient that was not recorded ---------------------------------------
def test_grad_of_an_unrecorded_gradient_says_to_pass_create_graph() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    first = grad((x**3).sum(), x)  # no create_graph: a plain array
    with pytest.raises(RuntimeError, match="create_graph=True"):
        grad(first.sum(), x)
    with pytest.raises(RuntimeError, match="create_graph=True"):
        (first * 2).sum().backward()
    (x**3).sum().backward()
    with pytest.raises(RuntimeError, match="create_graph=True"):
        grad((x.grad**2).sum(), x)
    recorded = grad((x**3).sum(), x, create_graph=True)  # what the message asks for
    assert_close(grad(recorded.sum(), x), [6.0, 12.0], 0, 0)


def test_a_constant_output_still_has_zero_gradients() -> None:
    """Outputs that do not depend on the input at all keep giving zeros (not an error)."""
    x = Tensor([1.0, 2.0], requires_grad=True)
    with no_grad():
        out = (x * x).sum()
    assert_close(grad(out, x), [0.0, 0.0], 0, 0)
    linear = grad((x * 3.0).sum(), x, create_graph=True)  # constant: 3 everywhere
    assert_close(grad(linear.sum(), x), [0.0, 0.0], 0, 0)
