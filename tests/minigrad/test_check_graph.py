"""check_graph: every recorded rule tested against finite differences of its own forward.

It must name the op whose rule is wrong (and the input, and where), find nothing on graphs of
built-in ops (kinks included: relu and |x| at 0, max at a tie, a clip bound), and cope with
float32, second-order graphs and 10,000 nodes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import minigrad
from minigrad import Tensor, check_graph, grad, operation
from tests.minigrad.helpers import (
    BINARY_CASES,
    FUNCTION_CASES,
    MATMUL_CASE,
    MINIGRAD_OPS,
    UNARY_CASES,
    Case,
    pair_id,
    sample_in,
)

RNG_SEED = 11


def softplus(x: Tensor, factor: float = 1.0) -> Tensor:
    """ln(1 + eˣ), an op of one's own; with factor != 1 its rule is wrong by that factor."""
    return operation(
        "softplus",
        np.logaddexp(0, x.data),
        (x,),
        lambda g, out: g * x.sigmoid() * factor,  # d softplus(x)/dx = σ(x)
        forward=lambda a: np.logaddexp(0, a),
    )


def mlp(x: Tensor, w1: Tensor, w2: Tensor, activation: Any) -> Tensor:
    return minigrad.log_softmax(activation(x @ w1) @ w2, axis=-1).sum()


@pytest.fixture
def weights() -> tuple[Tensor, Tensor, Tensor]:
    rng = np.random.default_rng(RNG_SEED)
    x = Tensor(rng.normal(size=(5, 3)))
    w1 = Tensor(rng.normal(size=(3, 4)), requires_grad=True, name="w1")
    w2 = Tensor(rng.normal(size=(4, 2)), requires_grad=True, name="w2")
    return x, w1, w2


# ---- a wrong rule is named ----------------------------------------------------------------------
def test_names_the_op_with_a_wrong_rule(weights: tuple[Tensor, Tensor, Tensor]) -> None:
    assert check_graph(mlp(*weights, softplus)) == []
    findings = check_graph(mlp(*weights, lambda t: softplus(t, factor=2.0)))
    assert len(findings) == 1
    (finding,) = findings
    assert finding.op == "softplus"
    assert finding.input == 0
    assert finding.input_shape == (5, 4)
    assert finding.output_shape == (5, 4)
    assert finding.where is not None
    assert finding.rule == pytest.approx(2 * finding.numeric, rel=1e-4)
    assert finding.error == pytest.approx(1.0, rel=1e-3)
    text = str(finding)
    assert "'softplus'" in text
    assert "input 0" in text
    assert "(5, 4)" in text


def test_names_the_input_whose_rule_is_wrong() -> None:
    a = Tensor([1.5, -0.5, 2.0], requires_grad=True)
    b = Tensor([0.5, 2.5, -1.0], requires_grad=True)
    product = operation(
        "times",
        a.data * b.data,
        (a, b),
        lambda g, out: g * b,  # right
        lambda g, out: g * b,  # wrong: should be g * a
        forward=np.multiply,
    )
    (finding,) = check_graph((product * product).sum())
    assert (finding.op, finding.input) == ("times", 1)


def test_a_wrong_rule_at_a_kink_is_reported_as_such() -> None:
    x = Tensor([0.0, 1.0, -1.0], requires_grad=True)
    # at 0 any value in [0, 1] is a valid convention; 2 is not
    relu = operation(
        "my_relu",
        np.maximum(x.data, 0),
        (x,),
        lambda g, out: g * Tensor(np.where(x.data > 0, 1.0, np.where(x.data == 0, 2.0, 0.0))),
        forward=lambda a: np.maximum(a, 0),
    )
    (finding,) = check_graph(relu.sum())
    assert finding.where == (0,)
    assert "kink" in finding.problem


def test_a_rule_that_is_not_linear_in_g_is_reported() -> None:
    x = Tensor([0.5, 1.5], requires_grad=True)
    double = operation("double", 2 * x.data, (x,), lambda g, out: 2 * g * g.abs(),
                       forward=lambda a: 2 * a)  # fmt: skip
    (finding,) = check_graph(double.sum())
    assert finding.op == "double"


def test_a_wrong_element_outside_the_sample_is_found_along_a_random_direction() -> None:
    x = Tensor(np.linspace(-1, 1, 2000), requires_grad=True)
    bad = np.ones(2000)
    bad[1234] = 50.0  # the rule of 3x is wrong at one element only

    cube = operation("scaled", 3 * x.data, (x,), lambda g, out: g * Tensor(3 * bad),
                     forward=lambda a: 3 * a)  # fmt: skip
    findings = check_graph(cube.sum(), max_elements=16)
    assert [f.op for f in findings] == ["scaled"]
    assert findings[0].where in (None, (1234,))


def test_nodes_that_cannot_be_checked_are_reported() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    no_forward = operation("mystery", 3 * x.data, (x,), lambda g, out: 3 * g)
    (finding,) = check_graph(no_forward.sum())
    assert (finding.op, finding.input) == ("mystery", -1)
    assert "no forward" in finding.problem
    wrong_shape = operation("bad_shape", x.data * 2, (x,), lambda g, out: Tensor(np.ones(3)),
                            forward=lambda a: a * 2)  # fmt: skip
    (finding,) = check_graph(wrong_shape.sum())
    assert "does not sum back" in finding.problem
    raising = operation("raises", x.data * 2, (x,), lambda g, out: g.nonexistent,
                        forward=lambda a: a * 2)  # fmt: skip
    (finding,) = check_graph(raising.sum())
    assert "raised" in finding.problem


# ---- nothing on built-in ops --------------------------------------------------------------------
def _last_shapes(cases: list[Case]) -> list[Any]:
    return [
        pytest.param(case, case.shapes[-1], id=f"{case.name}-{pair_id(case.shapes[-1])}")
        for case in cases
    ]


@pytest.mark.parametrize(
    ("case", "shapes"), _last_shapes([*UNARY_CASES, *BINARY_CASES, *FUNCTION_CASES, MATMUL_CASE])
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_finds_nothing_on_each_built_in_op(
    case: Case, shapes: tuple[tuple[int, ...], ...], dtype: type
) -> None:
    rng = np.random.default_rng(RNG_SEED)
    tensors = [
        Tensor(sample_in(shape, domain, rng).astype(dtype), requires_grad=True)
        for shape, domain in zip(shapes, case.domains, strict=True)
    ]
    out = case.fn(MINIGRAD_OPS, *tensors)
    assert check_graph(out) == []


def test_finds_nothing_on_softmax_logsumexp_and_batched_matmul() -> None:
    rng = np.random.default_rng(RNG_SEED)
    a = Tensor(rng.normal(size=(2, 3, 4)), requires_grad=True)
    b = Tensor(rng.normal(size=(4, 5)), requires_grad=True)
    scores = a @ b  # (2, 3, 5)
    out = (
        (minigrad.softmax(scores, axis=-1) * scores).sum()
        + minigrad.logsumexp(scores, axis=(0, 2)).sum()
        + minigrad.log_softmax(scores * 30.0, axis=0).mean()  # large logits
        + minigrad.cross_entropy(scores, np.array([[0, 1, 4], [2, 3, 3]]))
    )
    assert check_graph(out) == []


def test_kinks_at_their_conventions_are_not_errors() -> None:
    z = Tensor([0.0, 1.0, 1.0, -0.5, 0.5, 0.0], requires_grad=True)
    out = (
        z.relu().sum()  # relu at 0 passes 0
        + z.abs().sum()  # |z| at 0 passes 0
        + z.max()  # a tie between two elements: each gets half
        + minigrad.maximum(z, 1.0).sum()  # ties with the constant
        + minigrad.minimum(z, z[::-1]).sum()  # ties between elements
        + minigrad.clip(z, -0.5, 0.5).sum()  # on both bounds
    )
    assert check_graph(out) == []


def test_finds_nothing_on_a_second_order_graph() -> None:
    q = Tensor(np.array([0.3, -1.2, 0.8, 2.0]), requires_grad=True)
    m = q.reshape(2, 2)
    first = grad((q.exp() * q.sin()).sum() + (m.T @ m).sum() + (q**2).mean(), q, create_graph=True)
    assert check_graph((first**2).sum()) == []


@pytest.fixture
def default_recursion_limit() -> Iterator[None]:
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


@pytest.mark.usefixtures("default_recursion_limit")
def test_handles_a_10000_node_graph() -> None:
    x = Tensor(0.5, requires_grad=True)
    y = x
    for i in range(5000):  # 10,000 operations (plus the constants they use)
        y = (y * 1.0001).tanh() if i % 2 else y + 0.1
    bad = operation("wrong", y.data * 2, (y,), lambda g, out: g * 3, forward=lambda a: a * 2)
    (finding,) = check_graph(bad + x)  # the one wrong rule, and nothing among the 10,000
    assert finding.op == "wrong"
