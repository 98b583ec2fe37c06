"""The fast paths give what the plain rules give: bit for bit where the order of operations is
the same, within a stated tolerance where it is not (a dot product adds in BLAS's order).

The plain rules run when a graph is being recorded (``create_graph=True``), so each test computes
a gradient both ways.
"""

from __future__ import annotations

import numpy as np
import pytest

from minigrad import Tensor, grad, no_grad
from minigrad._fast import broadcast_view as _broadcast_view
from minigrad._fast import times as _times
from minigrad._fast import twice as _twice
from minigrad.tensor import broadcast_to as _broadcast_to


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("spread", [True, False], ids=["one value spread", "any values"])
def test_square_rule_is_bit_identical(dtype: type, spread: bool) -> None:
    rng = np.random.default_rng(1)
    a = Tensor(rng.normal(size=(7, 5)).astype(dtype), requires_grad=True)
    if spread:  # what a sum or a mean sends back: one value broadcast, strides 0
        g = _broadcast_to(Tensor(np.asarray(rng.normal(), dtype=dtype)), (7, 5))
        assert not any(g.data.strides)
    else:
        g = Tensor(rng.normal(size=(7, 5)).astype(dtype))
    with no_grad():
        fast = _twice(g, a)
    plain = g * (2 * a)  # recording: the rule as written
    assert plain.requires_grad
    assert fast.dtype == plain.dtype
    assert np.array_equal(fast.data, plain.data)


def test_product_summed_to_a_number_matches_the_plain_rule() -> None:
    rng = np.random.default_rng(2)
    g = Tensor(rng.normal(size=10_000))
    b = Tensor(rng.normal(50, 15, size=10_000), requires_grad=True)
    with no_grad():
        fast = _times(g, b, ())  # a dot product
    plain = (g * b).sum()  # recording: the product, then numpy's pairwise sum
    assert fast.shape == ()
    # summed in another order: equal to a few units in the last place of the terms' size
    tolerance = 1e-13 * float(np.sum(np.abs(g.data * b.data)))
    assert abs(fast.item() - plain.item()) <= tolerance


@pytest.mark.parametrize(
    ("shape", "target"),
    [((), (5,)), ((), (2, 3)), ((1, 4), (3, 4)), ((3, 1), (2, 3, 4)), ((4,), (2, 3, 4))],
)
def test_broadcast_view_is_numpys(shape: tuple[int, ...], target: tuple[int, ...]) -> None:
    x = np.arange(float(np.prod(shape))).reshape(shape)
    view, reference = _broadcast_view(x, target), np.broadcast_to(x, target)
    assert view.shape == reference.shape
    assert view.strides == reference.strides
    assert np.array_equal(view, reference)
    assert not view.flags.writeable
    assert np.shares_memory(view, x)
    odd = np.arange(8.0)[::2]  # not contiguous: numpy's own broadcast_to
    assert np.array_equal(_broadcast_view(odd, (3, 4)), np.broadcast_to(odd, (3, 4)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 2), -1])
def test_mean_is_numpys_mean_bit_for_bit(dtype: type, axis: object) -> None:
    x = np.random.default_rng(3).normal(size=(6, 5, 4)).astype(dtype)
    mean = Tensor(x).mean(axis=axis)
    assert mean.dtype == dtype
    assert np.array_equal(mean.data, np.mean(x, axis=axis))


@pytest.mark.parametrize("rows", [100, 100_000])
def test_learner_step_gradients_match_the_plain_rules(rows: int) -> None:
    """The reference loss: backward() (fast paths) against grad(create_graph=True) (plain)."""
    rng = np.random.default_rng(4)
    x = Tensor(rng.normal(50, 15, rows))
    y = Tensor(1.3 * x.data + 8 + rng.normal(0, 10, rows))
    b = Tensor(0.5, requires_grad=True)
    w = Tensor(-1.0, requires_grad=True)
    loss = ((y - (w * x + b)) ** 2).mean()
    loss.backward()
    plain_b, plain_w = grad(loss, (b, w), create_graph=True)
    assert plain_b.requires_grad  # recorded: no fast path was taken
    assert b.grad.item() == plain_b.item()  # the same sums in the same order
    assert w.grad.item() == pytest.approx(plain_w.item(), rel=1e-12)  # a dot product


@pytest.mark.parametrize(
    ("a_shape", "b_shape"),
    [((7, 1), (1,)), ((7, 1), (1, 3)), ((2, 7, 1), (1, 3)), ((7, 1), (4, 1, 3)), ((0, 1), (1,))],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matmul_with_an_inner_dimension_of_one_is_numpys_bit_for_bit(
    a_shape: tuple[int, ...], b_shape: tuple[int, ...], dtype: type, monkeypatch
) -> None:
    from minigrad import _fast

    rng = np.random.default_rng(5)
    a = rng.normal(size=a_shape).astype(dtype)
    b = rng.normal(size=b_shape).astype(dtype)
    fast, plain = _fast.matmul(a, b), np.matmul(a, b)
    assert fast.shape == plain.shape
    assert fast.dtype == plain.dtype
    assert np.array_equal(fast, plain)

    def gradients() -> tuple[np.ndarray, np.ndarray]:
        A, B = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
        ((A @ B) * Tensor(np.arange(plain.size, dtype=dtype).reshape(plain.shape))).sum().backward()
        return A.grad.data, B.grad.data

    with_fast = gradients()
    monkeypatch.setattr(_fast, "matmul", np.matmul)
    without = gradients()
    assert all(np.array_equal(x, y) for x, y in zip(with_fast, without, strict=True))
