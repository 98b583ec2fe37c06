"""format_graph / print_graph: op names, shapes, values, gradients, shared nodes, deep graphs.

The expected printouts are written out by hand (tanh(0.5) = 0.462117, 1 - tanh²(0.5) = 0.786448).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from minigrad import Tensor, format_graph, print_graph

TANH_GRAPH_BEFORE = """\
#0 tanh  shape=()  value=0.462117  grad=None
└─ #1 +  shape=()  value=0.5  grad=None
   ├─ #2 *  shape=()  value=-0.5  grad=None
   │  ├─ #3 input x  shape=()  value=0.5  grad=None
   │  └─ #4 input w  shape=()  value=-1.  grad=None
   └─ #5 constant  shape=()  value=1.  grad=None"""

TANH_GRAPH_AFTER = """\
#0 tanh  shape=()  value=0.462117  grad=1.
└─ #1 +  shape=()  value=0.5  grad=0.786448
   ├─ #2 *  shape=()  value=-0.5  grad=0.786448
   │  ├─ #3 input x  shape=()  value=0.5  grad=-0.786448
   │  └─ #4 input w  shape=()  value=-1.  grad=0.393224
   └─ #5 constant  shape=()  value=1.  grad=None"""


@pytest.fixture
def tanh_graph() -> Tensor:
    x = Tensor(0.5, requires_grad=True, name="x")
    w = Tensor(-1.0, requires_grad=True, name="w")
    return (x * w + 1.0).tanh()


def test_values_before_and_gradients_after_backward(tanh_graph: Tensor) -> None:
    assert format_graph(tanh_graph) == TANH_GRAPH_BEFORE
    tanh_graph.backward()
    assert format_graph(tanh_graph) == TANH_GRAPH_AFTER


def test_print_graph_prints_format_graph(
    tanh_graph: Tensor, capsys: pytest.CaptureFixture[str]
) -> None:
    print_graph(tanh_graph)
    assert capsys.readouterr().out == TANH_GRAPH_BEFORE + "\n"


def test_shared_nodes_are_printed_once_then_referenced() -> None:
    a = Tensor([1.0, 2.0], requires_grad=True, name="a")
    s = a * a
    out = (s + s).sum()  # = 2 Σ a², gradient 4a
    out.backward()
    assert format_graph(out) == (
        "#0 sum  shape=()  value=10.  grad=1.\n"
        "└─ #1 +  shape=(2,)  value=[2., 8.]  grad=[1., 1.]\n"
        "   ├─ #2 *  shape=(2,)  value=[1., 4.]  grad=[2., 2.]\n"
        "   │  ├─ #3 input a  shape=(2,)  value=[1., 2.]  grad=[4., 8.]\n"
        "   │  └─ (see #3)\n"
        "   └─ (see #2)"
    )


def test_matrix_values_and_shapes() -> None:
    m = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, name="m")
    out = m.T.sum()
    lines = format_graph(out).split("\n")
    assert lines[1] == "└─ #1 transpose  shape=(2, 2)  value=[[1., 3.], [2., 4.]]  grad=None"
    assert lines[2] == "   └─ #2 input m  shape=(2, 2)  value=[[1., 2.], [3., 4.]]  grad=None"


def test_every_op_is_named() -> None:
    x = Tensor(np.array([[0.5, 1.0], [1.5, 2.0]]), requires_grad=True)
    v = Tensor(np.array([1.0, -1.0]))
    parts = [
        x + 1.0, x - 1.0, x * 2.0, x / 2.0, x**x, x**2, x**3, -x, x.exp(), x.log(), x.tanh(),
        x.sigmoid(), x.relu(), x.abs(), x.reshape(4), x.T, x[0], x @ v, x.mean(),
    ]  # fmt: skip
    out = parts[0].sum()
    for part in parts[1:]:
        out = out + part.sum()
    names = set(re.findall(r"#\d+ (\S+)", format_graph(out)))
    expected = {"+", "-", "*", "/", "**", "**2", "**3", "neg", "exp", "log", "tanh", "sigmoid"}
    expected |= {"relu", "abs", "reshape", "transpose", "index", "@", "sum", "mean", "input"}
    expected |= {"constant"}
    assert names == expected


def test_deep_lines_stop_indenting_and_show_their_level() -> None:
    x = Tensor(1.5, requires_grad=True, name="x")
    z = x
    depth = 45
    for _ in range(depth):
        z = -z
    lines = format_graph(z).split("\n")

    def node(k: int) -> str:
        value = "1.5" if (depth - k) % 2 == 0 else "-1.5"
        kind = "input x" if k == depth else "neg"
        return f"#{k} {kind}  shape=()  value={value}  grad=None"

    assert lines[0] == node(0)
    assert lines[40] == "   " * 39 + "└─ " + node(40)
    assert lines[41] == "   " * 40 + "└─ [41] " + node(41)
    assert lines[45] == "   " * 40 + "└─ [45] " + node(45)
    assert len(lines) == depth + 1
