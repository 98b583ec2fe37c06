"""minigrad: a small reverse-mode automatic differentiation engine on numpy arrays.

Reading order (the README's "Reading the engine" walks through it, and docs/minigrad.ipynb
with a student): ``grad_mode.py`` (recording on or off), ``tensor.py`` (the Tensor, every
primitive operation beside its gradient rule, the recording of a result), ``autograd.py`` (the
reverse walk), ``_fast.py`` (fast paths and the rules on shared gradient arrays, read last),
``functional.py`` and ``losses.py`` (functions made of those operations, with no rules of their
own), ``numpy/`` (the whole array API standard, with ``linalg``), ``check.py`` (testing each
recorded rule against finite differences), ``graph.py`` and ``draw.py`` (printing and drawing a
graph).
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
