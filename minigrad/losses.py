"""Loss functions built from Tensor operations (they need no backward code of their own)."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.functional import log_softmax
from minigrad.tensor import Tensor, as_tensor, logaddexp

__all__ = ["binary_cross_entropy_with_logits", "cross_entropy", "mse_loss"]


def _target(value: Any, prediction: Tensor) -> Tensor:
    """A loss's target as a Tensor in the prediction's dtype (the data follows the model)."""
    target = as_tensor(value, prediction)
    return target if target.dtype == prediction.dtype else target.astype(prediction.dtype)


def mse_loss(prediction: Tensor, target: Any) -> Tensor:
    """Mean squared error ``mean((target - prediction)²)``, the loss of the reference example.

    The target is taken in the prediction's dtype, as in every loss here.
    """
    return ((_target(target, prediction) - prediction) ** 2).mean()


def binary_cross_entropy_with_logits(logits: Tensor, targets: Any) -> Tensor:
    """Mean of ``ln(1 + eᶻ) - y·z`` for logits z and targets y in [0, 1] (as torch's).

    ``ln(1 + eᶻ)`` is ``logaddexp(0, z)``, which never overflows and whose rule, σ(z), is smooth:
    the often-written ``max(z, 0) + ln(1 + e^-|z|)`` has the same value and first derivative,
    but its kinks at z = 0 give a second derivative of 0 there instead of 1/4.
    """
    z, y = logits, _target(targets, logits)
    return (logaddexp(0.0, z) - y * z).mean()


def cross_entropy(logits: Tensor, labels: Any) -> Tensor:
    """Mean of ``-ln softmax(logits)[label]`` over the rows: logits (..., C), integer labels (...).

    Labels may be an integer array, or a tensor or float array holding whole numbers.
    """
    values = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    if values.dtype.kind == "f":
        if not np.all(values == np.round(values)):
            raise ValueError("minigrad.cross_entropy: labels must be whole numbers (class indices)")
        values = values.astype(np.intp)
    if values.shape != logits.shape[:-1]:
        raise ValueError(
            f"minigrad.cross_entropy: labels of shape {values.shape} do not match logits of "
            f"shape {logits.shape} (expected {logits.shape[:-1]})"
        )
    picked = log_softmax(logits, axis=-1)[(*np.indices(values.shape, sparse=True), values)]
    return -picked.mean()
