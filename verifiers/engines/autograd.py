"""`autograd`: HIPS autograd, the original reverse mode on numpy, the loss run on its namespace.

``autograd.numpy`` wraps numpy's functions so that each call is recorded; ``autograd.grad``
walks the record backwards. It has no array API namespace of its own, but numpy's names are
nearly the standard's, so the model's loss, written once against the standard, runs on it
unchanged; a loss that uses a function it lacks skips this engine, saying which. The data is
taken a chunk of rows at a time, as the other engines take it, and the Hessian is autograd's
own (the Jacobian of the gradient, reverse over reverse).
"""

from __future__ import annotations

from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np

from verifiers.engines.base import Engine, Evaluation
from verifiers.models.base import Model


class AutogradEngine(Engine):
    name = "autograd"
    seconds_per_work = 4e-9
    seconds_per_call = 1e-3

    def __init__(self, model: Model, device: str = "auto") -> None:
        super().__init__(model, device)
        X, y = model.data.X, model.prepared_targets
        rows = model.chunks if model.additive else [slice(0, model.data.rows)]
        self.chunks = [(X[r], y[r]) for r in rows]

    def _loss(self, theta: Any) -> Any:
        """The loss at a traced θ: the sum of its pieces (a chunk of rows each, then any
        penalty), added in the same order as the other engines add them."""
        params = self.model.unflatten(theta)
        total = None
        for piece in self.model.loss_pieces(params, self.chunks, anp):
            total = piece if total is None else total + piece
        return total

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        theta = np.asarray(theta, dtype=self.dtype).copy()
        value, gradient = autograd.value_and_grad(self._loss)(theta)
        return Evaluation(float(value), np.asarray(gradient, dtype=np.float64))

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=self.dtype).copy()
        return np.asarray(autograd.hessian(self._loss)(theta), dtype=np.float64)
