"""minigrad.draw: the SVG is well-formed, has one box per node, red for a wrong rule, and the
gradient norms once backward has run; a PNG is drawn with matplotlib."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import minigrad
from minigrad import Tensor, operation
from minigrad.draw import RED

SVG = "{http://www.w3.org/2000/svg}"


def _softplus(x: Tensor, factor: float = 1.0) -> Tensor:
    """ln(1 + eˣ); its rule is `factor` times the right one."""
    return operation(
        "softplus",
        np.logaddexp(0, x.data),
        (x,),
        lambda g, out: g * x.sigmoid() * factor,
        forward=lambda a: np.logaddexp(0, a),
    )


def _loss(factor: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    x = Tensor([0.5, -1.0, 2.0], requires_grad=True, name="x")
    w = Tensor(1.5, requires_grad=True, name="w")
    return (_softplus(w * x, factor) ** 2).mean(), x, w


def _groups(path: Path) -> list[ET.Element]:
    root = ET.parse(path).getroot()  # raises on malformed XML
    assert root.tag == f"{SVG}svg"
    return [g for g in root.iter(f"{SVG}g") if g.get("class")]


def _texts(group: ET.Element) -> list[str]:
    return [t.text or "" for t in group.iter(f"{SVG}text")]


def test_one_box_per_node_and_one_edge_per_input(tmp_path: Path) -> None:
    loss, _, _ = _loss()
    (written,) = minigrad.draw(loss, tmp_path / "graph.svg")
    groups = _groups(written)
    ops = [g for g in groups if g.get("class", "").startswith("op")]
    # x, w (inputs); *, softplus, **2, mean (operations): no other node
    assert sorted(_texts(g)[0] for g in ops) == ["*", "**2", "mean", "softplus"]
    assert sorted(_texts(g)[0] for g in groups if g.get("class") == "leaf") == [
        "input w",
        "input x",
    ]
    edges = ET.parse(written).getroot().findall(f"{SVG}line")
    assert len(edges) == 5  # x→*, w→*, *→softplus, softplus→**2, **2→mean
    assert not [g for g in groups if "wrong" in g.get("class", "")]
    shapes = {_texts(g)[0]: _texts(g)[1] for g in groups}
    assert shapes["mean"] == "shape scalar"
    assert shapes["softplus"] == "shape 3"


def test_gradient_norms_appear_after_backward(tmp_path: Path) -> None:
    loss, x, w = _loss()
    (before,) = minigrad.draw(loss, tmp_path / "before.svg")
    assert not any("grad" in t for g in _groups(before) for t in _texts(g))
    loss.backward()
    (after,) = minigrad.draw(loss, tmp_path / "after.svg")
    norms = {_texts(g)[0]: _texts(g)[2] for g in _groups(after)}
    assert norms["mean"] == "‖grad‖ 1"
    assert norms["input x"] == f"‖grad‖ {np.linalg.norm(x.grad.data):.4g}"
    assert norms["input w"] == f"‖grad‖ {abs(w.grad.item()):.4g}"


def test_a_wrong_rule_is_drawn_in_red_with_its_finding(tmp_path: Path) -> None:
    loss, _, _ = _loss(factor=2.0)
    (written,) = minigrad.draw(loss, tmp_path / "wrong.svg")
    wrong = [g for g in _groups(written) if "wrong" in g.get("class", "")]
    assert [_texts(g)[0] for g in wrong] == ["softplus"]
    rect = wrong[0].find(f"{SVG}rect")
    assert rect is not None
    assert rect.get("stroke") == RED
    title = wrong[0].find(f"{SVG}title")
    assert title is not None
    assert "finite differences" in (title.text or "")
    assert "rule" in _texts(wrong[0])[-1]
    assert minigrad.check_graph(loss)  # the same finding check_graph gives


def test_a_png_and_both(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    loss, _, _ = _loss()
    (png,) = minigrad.draw(loss, tmp_path / "graph.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    both = minigrad.draw(loss, tmp_path / "graph")
    assert [p.name for p in both] == ["graph.svg", "graph.png"]
    with pytest.raises(ValueError, match=r"\.svg or a \.png"):
        minigrad.draw(loss, tmp_path / "graph.pdf")


def test_a_deep_graph_draws(tmp_path: Path) -> None:
    x = Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(300):
        y = y * 1.001 + 0.5
    (written,) = minigrad.draw(y, tmp_path / "deep.svg", check=False)
    ops = [g for g in _groups(written) if g.get("class") == "op"]
    assert len(ops) == 600
