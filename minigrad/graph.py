"""Print the graph behind a result: one line per node with its op, shape, value and gradient."""

from __future__ import annotations

from minigrad.tensor import Tensor, short

# Past this many levels the tree stops indenting and writes each line's level as "[n]" instead:
# indentation that kept growing would make the printout of a chain of 100,000 operations
# quadratic in size (about 15 GB of text).
MAX_INDENT_LEVELS = 40


def format_graph(root: Tensor) -> str:
    """The graph that produced `root` as an indented tree, the result first.

    Each node is numbered; a node used more than once is printed in full the first time and as
    ``(see #k)`` afterwards. Constants (inputs that do not require grad) appear as leaves. Run
    ``root.backward()`` first to see the gradients filled in. Lines deeper than
    ``MAX_INDENT_LEVELS`` keep that indentation and start with their level, e.g. ``[41]``.
    """
    numbers: dict[int, int] = {}
    lines: list[str] = []
    # An explicit stack (not recursion) so graphs of any depth print.
    stack: list[tuple[Tensor, str, str, int]] = [(root, "", "", 0)]
    while stack:
        node, branch, indent, depth = stack.pop()
        if id(node) in numbers:
            lines.append(f"{branch}(see #{numbers[id(node)]})")
            continue
        numbers[id(node)] = len(numbers)
        lines.append(f"{branch}{_describe(node, numbers[id(node)])}")
        parents = node._parents
        for i in reversed(range(len(parents))):  # reversed: the stack pops the first parent first
            last = i == len(parents) - 1
            elbow, rail = ("└─ ", "   ") if last else ("├─ ", "│  ")
            if depth < MAX_INDENT_LEVELS:
                stack.append((parents[i], indent + elbow, indent + rail, depth + 1))
            else:  # too deep to indent further: same indentation, the level written out
                stack.append((parents[i], f"{indent}{elbow}[{depth + 1}] ", indent, depth + 1))
    return "\n".join(lines)


def print_graph(root: Tensor) -> None:
    """Print :func:`format_graph` of `root`."""
    print(format_graph(root))


def _describe(node: Tensor, number: int) -> str:
    kind = node._op if node._parents else "input" if node.requires_grad else "constant"
    label = f" {node.name}" if node.name else ""
    grad = "None" if node.grad is None else short(node.grad.data)
    return f"#{number} {kind}{label}  shape={node.shape}  value={short(node.data)}  grad={grad}"
