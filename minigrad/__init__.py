"""minigrad: a small reverse-mode automatic differentiation engine on numpy arrays.

Reading order (the README's "Reading the engine" walks through it): ``grad_mode.py`` (recording
on or off), ``tensor.py`` (the Tensor, every primitive operation beside its gradient rule, the
reverse walk), ``functional.py`` and ``losses.py`` (functions made of those operations, with no
rules of their own), ``numpy.py`` (the same operations under the array API's names),
``check.py`` (testing each recorded rule against finite differences) and ``graph.py``
(printing a graph).
"""

# minigrad.numpy, the array namespace, is left out of __all__: `from minigrad import *` must not
# shadow numpy itself
from minigrad import numpy  # noqa: F401
from minigrad.autograd import grad
from minigrad.check import Finding, check_graph
from minigrad.draw import draw
from minigrad.functional import log_softmax, logsumexp, softmax
from minigrad.grad_mode import enable_grad, is_grad_enabled, no_grad
from minigrad.graph import format_graph, print_graph
from minigrad.losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss
from minigrad.tensor import (
    Tensor,
    clip,
    concatenate,
    eye,
    full,
    logaddexp,
    maximum,
    minimum,
    ones,
    operation,
    randn,
    stack,
    where,
    zeros,
)

__all__ = [
    "Finding",
    "Tensor",
    "binary_cross_entropy_with_logits",
    "check_graph",
    "clip",
    "concatenate",
    "cross_entropy",
    "draw",
    "enable_grad",
    "eye",
    "format_graph",
    "full",
    "grad",
    "is_grad_enabled",
    "log_softmax",
    "logaddexp",
    "logsumexp",
    "maximum",
    "minimum",
    "mse_loss",
    "no_grad",
    "ones",
    "operation",
    "print_graph",
    "randn",
    "softmax",
    "stack",
    "where",
    "zeros",
]
