"""Graphs far deeper than Python's recursion limit: backward, grad() and format_graph walk them
with explicit stacks. Each test runs at the default limit of 1000 frames."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator

import pytest

from minigrad import Tensor, format_graph, grad

DEPTH = 100_000


@pytest.fixture
def default_recursion_limit() -> Iterator[None]:
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # CPython's default, whatever the runner set
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


@pytest.mark.usefixtures("default_recursion_limit")
def test_backward_and_grad_through_a_100000_op_chain() -> None:
    """y ← a·y + 0.5, 50,000 times (100,000 ops): dy/dx = aⁿ, y = aⁿx + 0.5(aⁿ - 1)/(a - 1)."""
    a, n, x0 = 1.00001, DEPTH // 2, 0.3
    x = Tensor(x0, requires_grad=True)
    y = x
    for _ in range(n):
        y = y * a
        y = y + 0.5
    power = math.exp(n * math.log(a))  # aⁿ without repeating the product minigrad computed
    assert y.item() == pytest.approx(power * x0 + 0.5 * (power - 1) / (a - 1), rel=1e-9)
    assert grad(y, x).item() == pytest.approx(power, rel=1e-9)
    y.backward()
    assert x.grad.item() == pytest.approx(power, rel=1e-9)
    assert sys.getrecursionlimit() == 1000


def _negation_chain(depth: int) -> tuple[Tensor, Tensor]:
    x = Tensor(1.5, requires_grad=True, name="x")
    z = x
    for _ in range(depth):
        z = -z
    return x, z


@pytest.mark.slow  # the 100,000-op chain itself is walked in the fast tier (backward and grad)
@pytest.mark.usefixtures("default_recursion_limit")
def test_format_graph_of_a_100000_deep_graph() -> None:
    _, z = _negation_chain(DEPTH)
    text = format_graph(z)
    lines = text.split("\n")
    assert len(lines) == DEPTH + 1
    assert lines[0] == "#0 neg  shape=()  value=1.5  grad=None"
    assert lines[-1].endswith(f"#{DEPTH} input x  shape=()  value=1.5  grad=None")
    assert f"#{DEPTH // 2} neg  shape=()  value=1.5  grad=None" in lines[DEPTH // 2]
    # the printout stays proportional to the graph: every line short, not indented by its depth
    assert max(map(len, lines)) < 300


def test_format_graph_output_grows_linearly_with_depth() -> None:
    """Indentation that grew with depth would make the text quadratic (15 GB for 100,000 ops)."""
    small = len(format_graph(_negation_chain(1000)[1]))
    large = len(format_graph(_negation_chain(4000)[1]))
    assert large < 4.5 * small
