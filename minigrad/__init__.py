"""minigrad: a small reverse-mode automatic differentiation engine on numpy arrays.

Start reading at ``minigrad/tensor.py``: every operation's forward computation sits beside the
rule that sends gradients back through it.
"""

from minigrad.graph import format_graph, print_graph
from minigrad.losses import mse_loss
from minigrad.tensor import Tensor, grad, is_grad_enabled, no_grad

__all__ = [
    "Tensor",
    "format_graph",
    "grad",
    "is_grad_enabled",
    "mse_loss",
    "no_grad",
    "print_graph",
]
