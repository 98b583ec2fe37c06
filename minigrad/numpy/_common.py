"""What every part of the namespace shares: turning arguments into Tensors, and recording."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad.tensor import Tensor, apply, as_tensor, constant

__all__ = ["Rule", "pair_of", "tensor_of", "unary", "zero_rule"]

Rule = Callable[[Tensor, Tensor], Tensor]


def tensor_of(x: Any) -> Tensor:
    """`x` as a Tensor: a Tensor as it is, anything else a constant in the dtype numpy gives it
    (integers and booleans stay so: indices, masks and labels)."""
    return x if isinstance(x, Tensor) else constant(np.asarray(x))


def pair_of(x1: Any, x2: Any) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors; a Python number takes the other operand's dtype."""
    if isinstance(x1, Tensor):
        return x1, as_tensor(x2, x1) if isinstance(x2, (int, float)) else tensor_of(x2)
    if isinstance(x2, Tensor):
        return (as_tensor(x1, x2) if isinstance(x1, (int, float)) else tensor_of(x1)), x2
    a = tensor_of(x1)
    return a, as_tensor(x2, a) if isinstance(x2, (int, float)) else tensor_of(x2)


def unary(name: str, forward: Callable[[np.ndarray], Any], x: Any, rule: Rule) -> Tensor:
    """Record an elementwise function of one tensor, with its VJP `rule(g, out)`."""
    return apply(name, forward, (tensor_of(x),), rule)


def zero_rule(g: Tensor, out: Tensor) -> Tensor:
    """The VJP of a function that is constant almost everywhere (floor, round, ...): zeros."""
    return constant(np.zeros(g.shape, g.dtype))
