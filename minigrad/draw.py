"""A picture of the recorded graph: one box per operation, its inputs above it, the result at the
bottom.

    minigrad.draw(loss, "graph.svg")     # an SVG, written directly (no dependency)
    minigrad.draw(loss, "graph.png")     # a PNG, drawn with matplotlib (the `plot` extra)

Each box shows the op's name and shape; after ``backward()``, the norm of its gradient; the rules
`check_graph` finds wrong are drawn in red with the finding. The layout is a simple layered one:
an operation's layer is its longest path from an input, an input sits just above the first
operation that uses it, and each layer is ordered by the mean position of its inputs, which
keeps most edges short and uncrossed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from minigrad.check import Finding, check_graph
from minigrad.tensor import Tensor

__all__ = ["draw", "layout"]

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 190, 58, 30, 46, 20
RED, INK, FILL, LEAF_FILL = "#c62828", "#263238", "#eef3f8", "#fff8e1"


@dataclass
class Box:
    """One node of the picture: where it is and what it says."""

    node: Tensor
    x: float
    y: float
    lines: list[str]
    wrong: list[Finding]


def layout(output: Tensor, findings: list[Finding] | None = None) -> tuple[list[Box], float, float]:
    """Boxes for every node behind `output` (inputs that require grad, constants, operations),
    placed in layers; returns the boxes and the picture's width and height."""
    nodes = _nodes(output)
    index = {id(n): i for i, n in enumerate(nodes)}
    layer: dict[int, int] = {}
    for node in nodes:  # inputs first: each parent's layer is known before its result's
        layer[id(node)] = 1 + max((layer[id(p)] for p in node._parents), default=-1)
    first_use: dict[int, int] = {}
    for node in nodes:
        for parent in node._parents:
            first_use[id(parent)] = min(first_use.get(id(parent), layer[id(node)]), layer[id(node)])
    for node in nodes:  # an input sits just above the first operation that uses it
        if not node._parents and id(node) in first_use:
            layer[id(node)] = first_use[id(node)] - 1
    layers: dict[int, list[Tensor]] = {}
    for node in nodes:
        layers.setdefault(layer[id(node)], []).append(node)
    position: dict[int, float] = {}
    for depth in sorted(layers):
        row = layers[depth]

        def mean_parent(n: Tensor) -> float:
            spots = [position[id(p)] for p in n._parents if id(p) in position]
            return sum(spots) / len(spots) if spots else index[id(n)]

        row.sort(key=mean_parent)
        for i, node in enumerate(row):
            position[id(node)] = i
    width = max(len(row) for row in layers.values())
    wrong: dict[int, list[Finding]] = {}
    for finding in findings or []:
        if finding.node is not None:
            wrong.setdefault(id(finding.node), []).append(finding)
    boxes = []
    for depth, row in layers.items():
        offset = (width - len(row)) * (BOX_W + GAP_X) / 2
        for i, node in enumerate(row):
            x = MARGIN + offset + i * (BOX_W + GAP_X)
            y = MARGIN + depth * (BOX_H + GAP_Y)
            boxes.append(Box(node, x, y, _lines(node), wrong.get(id(node), [])))
    total_w = 2 * MARGIN + width * BOX_W + (width - 1) * GAP_X
    total_h = 2 * MARGIN + len(layers) * BOX_H + (len(layers) - 1) * GAP_Y
    return boxes, total_w, total_h


def _nodes(output: Tensor) -> list[Tensor]:
    """Every node behind `output`, inputs first (the order they were made)."""
    seen, stack = {id(output): output}, [output]
    while stack:
        for parent in stack.pop()._parents:
            if id(parent) not in seen:
                seen[id(parent)] = parent
                stack.append(parent)
    return sorted(seen.values(), key=lambda n: n._seq)


def _lines(node: Tensor) -> list[str]:
    kind = node._op if node._parents else "input" if node.requires_grad else "constant"
    title = f"{kind} {node.name}" if node.name else kind
    shape = "×".join(map(str, node.shape)) or "scalar"
    lines = [title, f"shape {shape}"]
    if node.grad is not None:
        norm = float(np.linalg.norm(np.asarray(node.grad.data, dtype=np.float64)))
        lines.append(f"‖grad‖ {norm:.4g}")
    return lines


def _svg(boxes: list[Box], width: float, height: float) -> str:
    where = {id(b.node): b for b in boxes}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
        f'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{INK}"/></marker>'
        "</defs>",
    ]
    for box in boxes:  # edges first, so boxes cover their ends
        for parent in box.node._parents:
            start = where[id(parent)]
            parts.append(
                f'<line class="edge" x1="{start.x + BOX_W / 2:.1f}" y1="{start.y + BOX_H:.1f}" '
                f'x2="{box.x + BOX_W / 2:.1f}" y2="{box.y:.1f}" stroke="{INK}" '
                'stroke-width="1" marker-end="url(#arrow)"/>'
            )
    for box in boxes:
        wrong = bool(box.wrong)
        fill = "#ffebee" if wrong else FILL if box.node._parents else LEAF_FILL
        stroke = RED if wrong else INK
        kind = "op" if box.node._parents else "leaf"
        title = "; ".join(str(f) for f in box.wrong) if wrong else box.lines[0]
        parts.append(f'<g class="{kind}{" wrong" if wrong else ""}">')
        parts.append(f"<title>{escape(title)}</title>")
        parts.append(
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="6" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{2 if wrong else 1}"/>'
        )
        lines = box.lines + ([_short_finding(box.wrong[0])] if wrong else [])
        for i, line in enumerate(lines):
            weight = ' font-weight="bold"' if i == 0 else ""
            color = RED if wrong and (i == 0 or i == len(lines) - 1) else INK
            parts.append(
                f'<text x="{box.x + BOX_W / 2:.1f}" y="{box.y + 15 + 13 * i:.1f}" '
                f'text-anchor="middle" fill="{color}"{weight}>{escape(line)}</text>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _short_finding(finding: Finding) -> str:
    """The finding in one line that fits a box."""
    if finding.rule is not None and finding.numeric is not None:
        return f"input {finding.input}: rule {finding.rule:.3g} ≠ {finding.numeric:.3g}"
    return finding.problem[:30]


def _png(boxes: list[Box], width: float, height: float, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import FancyBboxPatch
    except ImportError as error:  # the `plot` extra
        raise ImportError(
            "minigrad.draw: a PNG needs matplotlib (pip install 'minigrad-verifiers[plot]'); "
            "an .svg path needs nothing"
        ) from error
    dpi = 100
    figure = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)
    axes.axis("off")
    where = {id(b.node): b for b in boxes}
    for box in boxes:
        for parent in box.node._parents:
            start = where[id(parent)]
            axes.annotate(
                "",
                xy=(box.x + BOX_W / 2, box.y),
                xytext=(start.x + BOX_W / 2, start.y + BOX_H),
                arrowprops={"arrowstyle": "->", "color": INK, "lw": 0.8},
            )
    for box in boxes:
        wrong = bool(box.wrong)
        fill = "#ffebee" if wrong else FILL if box.node._parents else LEAF_FILL
        axes.add_patch(
            FancyBboxPatch(
                (box.x, box.y),
                BOX_W,
                BOX_H,
                boxstyle="round,pad=0,rounding_size=6",
                facecolor=fill,
                edgecolor=RED if wrong else INK,
                linewidth=2 if wrong else 1,
            )
        )
        lines = box.lines + ([_short_finding(box.wrong[0])] if wrong else [])
        for i, line in enumerate(lines):
            axes.text(
                box.x + BOX_W / 2, box.y + 12 + 13 * i, line, ha="center", va="center",
                fontsize=8, color=RED if wrong and i in (0, len(lines) - 1) else INK,
                fontweight="bold" if i == 0 else "normal",
            )  # fmt: skip
    figure.savefig(path, dpi=dpi)
    plt.close(figure)


def draw(output: Tensor, path: str | Path, *, check: bool = True) -> list[Path]:
    """Write a picture of the graph behind `output` to `path`; return the files written.

    An ``.svg`` path gets an SVG, written directly; a ``.png`` path a PNG, drawn with matplotlib
    (imported only then); a path with neither suffix gets both, ``path.svg`` and ``path.png``.
    With `check` (the default), :func:`check_graph` runs first and the nodes it finds wrong are
    drawn in red with the finding (a ``<title>`` in the SVG holds it in full).
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".svg", ".png", ""):
        raise ValueError(f"minigrad.draw: write a .svg or a .png, not {target.name!r}")
    findings = check_graph(output) if check and output.requires_grad else []
    boxes, width, height = layout(output, findings)
    written = []
    if suffix in (".svg", ""):
        svg = target if suffix else target.with_name(target.name + ".svg")
        svg.write_text(_svg(boxes, width, height), encoding="utf-8")
        written.append(svg)
    if suffix in (".png", ""):
        png = target if suffix else target.with_name(target.name + ".png")
        _png(boxes, width, height, png)
        written.append(png)
    return written
