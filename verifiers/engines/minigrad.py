"""`minigrad`: the model's loss run on this project's engine, its gradient by reverse mode.

The loss is the model's own, written once against the array API: here ``xp`` is minigrad's
namespace (:mod:`minigrad.numpy`). Each parameter is a leaf tensor. For losses that are a mean
over rows the data is taken CHUNK_ROWS rows at a time: the loss of each chunk is
``row_sum(chunk) / N``, and the loss and gradient are the sums over chunks (with one chunk,
N ≤ 65,536, that is the plain whole-array loss).
"""

from __future__ import annotations

import numpy as np

from minigrad import Tensor, grad
from minigrad import numpy as xp
from verifiers.engines.base import Engine, Evaluation
from verifiers.models.base import Model


class MinigradEngine(Engine):
    name = "minigrad"
    seconds_per_work = 3e-9
    seconds_per_call = 5e-4

    def __init__(self, model: Model, device: str = "auto") -> None:
        super().__init__(model, device)
        X, y = model.data.X, model.prepared_targets
        rows = model.chunks if model.additive else [slice(0, model.data.rows)]
        self.chunks = [(Tensor(X[r]), Tensor(y[r])) for r in rows]

    def _leaves(self, theta: np.ndarray) -> dict[str, Tensor]:
        params = self.model.unflatten(np.asarray(theta, dtype=self.dtype).copy())
        return {
            name: Tensor(value, requires_grad=True, name=name) for name, value in params.items()
        }

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        params = self._leaves(theta)
        leaves = list(params.values())
        total, gradient = 0.0, np.zeros(self.model.size)
        for piece in self.model.loss_pieces(params, self.chunks, xp):
            total += piece.item()
            gradient += _flat(grad(piece, leaves))
        return Evaluation(total, gradient)

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """Second derivatives by differentiating the gradient again (``create_graph=True``)."""
        params = self._leaves(theta)
        leaves = list(params.values())
        H = np.zeros((self.model.size, self.model.size))
        for piece in self.model.loss_pieces(params, self.chunks, xp):
            grads = grad(piece, leaves, create_graph=True)
            components = [g.reshape(-1)[k] for g in grads for k in range(g.size)]
            for i, component in enumerate(components):
                if component.requires_grad:  # a component that is constant has no second term
                    H[i] += _flat(grad(component, leaves))
        return H


def _flat(grads: tuple[Tensor, ...]) -> np.ndarray:
    return np.concatenate([np.asarray(g.data, dtype=np.float64).reshape(-1) for g in grads])
