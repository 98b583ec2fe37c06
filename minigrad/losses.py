"""Loss functions built from Tensor operations (they need no backward code of their own)."""

from __future__ import annotations

from typing import Any

from minigrad.tensor import Tensor, _tensor


def mse_loss(prediction: Tensor, target: Any) -> Tensor:
    """Mean squared error ``mean((target - prediction)²)``, the loss of the reference example."""
    return ((_tensor(target, prediction) - prediction) ** 2).mean()
