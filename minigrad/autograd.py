"""The reverse walk: from an output back to its inputs, calling each recorded VJP once.

Every tensor is numbered as it is made, so a result has a larger number than its inputs. Taking
the waiting node with the largest number first (a heap) visits a node only after every use of it
has added its contribution (that is what makes ``(x + x) * x`` come out right), then applies its
VJPs once. No recursion and no separate sorting pass: a chain of 100,000 operations works.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from minigrad import _fast, tensor
from minigrad.grad_mode import _GradMode

if TYPE_CHECKING:
    from minigrad.tensor import Tensor

__all__ = ["backward", "grad", "graph"]


def backward(output: Tensor, gradient: Any = None, create_graph: bool = False) -> None:
    """``output.backward()``: add d(output)/d(node) to ``node.grad`` for every node."""
    seed = _seed(output, gradient, "backward()")
    for node, node_grad in _walk(output, seed, create_graph):
        if node.grad is not None:
            node_grad = node.grad + node_grad
            if node._parents:  # an intermediate's gradient stays read-only
                node_grad.data.setflags(write=False)
        node.grad = node_grad


def grad(
    output: Tensor,
    inputs: Tensor | Sequence[Tensor],
    grad_output: Any = None,
    create_graph: bool = False,
) -> Any:
    """Gradients of `output` with respect to `inputs`, returned without touching ``.grad``.

    `inputs` is one tensor (one gradient is returned) or a sequence (a tuple is returned). An
    input the output does not depend on gets zeros. With ``create_graph=True`` the gradients are
    themselves recorded, so they can be differentiated again (second derivatives). Every
    gradient returned is a writeable array of its own.
    """
    single = isinstance(inputs, tensor.Tensor)
    wanted = (inputs,) if isinstance(inputs, tensor.Tensor) else tuple(inputs)
    for i, x in enumerate(wanted):
        if not isinstance(x, tensor.Tensor) or not x.requires_grad:
            raise ValueError(f"minigrad.grad: input {i} is not a Tensor with requires_grad=True")
    grads: dict[int, Tensor] = {}  # a constant output: every derivative is zero
    if output.requires_grad:
        seed = _seed(output, grad_output, "grad()")
        grads = {id(x): g for x, g in _walk(output, seed, create_graph, wanted)}
    elif output._from_grad:
        raise RuntimeError(_fast.UNRECORDED.format(caller="grad()"))
    result: list[Tensor] = []
    for x in wanted:
        g = grads.get(id(x))
        if g is None:
            g = tensor.constant(np.zeros_like(x.data))
            g._from_grad = not create_graph
        elif any(g is earlier for earlier in result):  # the same input asked for twice
            g = tensor.copy(g)
        result.append(g)
    return result[0] if single else tuple(result)


def graph(root: Tensor) -> list[Tensor]:
    """Every node that requires grad and feeds `root`, inputs first (in the order made)."""
    seen, stack = {id(root): root}, [root]
    while stack:  # an explicit stack, not recursion: any depth works
        for parent in stack.pop()._parents:
            if parent.requires_grad and id(parent) not in seen:
                seen[id(parent)] = parent
                stack.append(parent)
    return sorted(seen.values(), key=lambda node: node._seq)


def _seed(output: Tensor, gradient: Any, caller: str) -> Tensor:
    """The starting gradient of a reverse pass: 1 for one-element outputs, else as given."""
    if not output.requires_grad:
        if output._from_grad:
            raise RuntimeError(_fast.UNRECORDED.format(caller=caller))
        raise RuntimeError(
            f"minigrad: {caller} was called on a tensor that does not require grad "
            "(no input had requires_grad=True, or it was computed under no_grad)"
        )
    if gradient is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"minigrad: {caller} needs a gradient for an output of shape {output.shape}; "
                "reduce it to one element (e.g. .sum()) or pass a gradient of that shape"
            )
        one = output.data.dtype.type(1)
        return tensor.constant(np.full(output.data.shape, one) if output.data.shape else one)
    seed = tensor.as_tensor(gradient, output)
    if seed.shape != output.shape:
        raise ValueError(
            f"minigrad: {caller} gradient has shape {seed.shape}, output has shape {output.shape}"
        )
    # a copy in the output's dtype: the caller's array never becomes a gradient handed out
    return seed.astype(output.dtype) if seed.dtype != output.dtype else tensor.copy(seed)


def _walk(
    root: Tensor, seed: Tensor, create_graph: bool, wanted: tuple[Tensor, ...] | None = None
) -> list[tuple[Tensor, Tensor]]:
    """Visit the graph from `root` back to its inputs, applying each node's VJPs once.

    Returns (node, gradient) for the `wanted` nodes, or (for backward) for every node.
    """
    grads: dict[int, Tensor] = {id(root): seed}  # gradients so far, keyed by identity
    waiting = [(-root._seq, root)]  # a heap: the largest number comes out first
    kept: list[tuple[Tensor, Tensor]] = []
    handed: dict[int, bool] = {}  # what _fast.hand_out has handed out
    wanted_ids = None if wanted is None else {id(x) for x in wanted}
    with _GradMode(create_graph):  # the VJPs' own operations are recorded only for create_graph
        while waiting:
            node = heapq.heappop(waiting)[1]
            g = grads.pop(id(node))
            if wanted_ids is None or id(node) in wanted_ids:
                yours = wanted_ids is not None or not node._parents  # grad() results and leaves
                kept.append((node, _fast.hand_out(g, yours, handed, create_graph)))
            for i, (parent, vjp) in enumerate(zip(node._parents, node._vjps, strict=True)):
                if not parent.requires_grad:
                    continue  # a constant: its gradient is never computed
                contribution = vjp(g, node)
                if contribution.data.shape != parent.data.shape:
                    contribution = tensor.unbroadcast_vjp(contribution, parent.data.shape, node, i)
                if contribution.data.dtype != parent.data.dtype:  # float32 input: float32 gradient
                    contribution = contribution.astype(parent.dtype)
                previous = grads.get(id(parent))
                if previous is None:  # its first contribution: it starts waiting
                    grads[id(parent)] = contribution
                    heapq.heappush(waiting, (-parent._seq, parent))
                else:
                    grads[id(parent)] = previous + contribution
    return kept
