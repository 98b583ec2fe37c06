"""`minigrad`: the loss built from minigrad operations, its gradient by reverse mode.

The data is taken in chunks of CHUNK_ROWS points: the loss of each chunk is
``((y - (w·x + b))²).sum() / N``, and the loss and gradient are the sums over chunks. With one
chunk (N ≤ 65,536) that is exactly the reference's ``((y - (w * x + b)) ** 2).mean()``.
"""

from __future__ import annotations

import numpy as np

from minigrad import Tensor, grad
from verifiers.data import Dataset
from verifiers.engines.base import Engine, Evaluation, row_chunks


class MinigradEngine(Engine):
    name = "minigrad"
    summary = "this project's reverse-mode engine (minigrad/), loss written from its operations"

    def __init__(self, data: Dataset, device: str = "auto") -> None:
        super().__init__(data, device)
        self.one_feature = data.features == 1
        # One feature: the reference expression w * x + b, with x a column of its own (a view).
        features = data.X[:, 0] if self.one_feature else data.X
        self.chunks = [(Tensor(features[s]), Tensor(data.y[s])) for s in row_chunks(data.rows)]

    def _parameters(self, theta: np.ndarray) -> tuple[Tensor, Tensor]:
        theta = np.asarray(theta, dtype=self.dtype)
        b = Tensor(theta[0], requires_grad=True, name="b")
        w = Tensor(theta[1] if self.one_feature else theta[1:].copy(), requires_grad=True, name="w")
        return b, w

    def loss(self, b: Tensor, w: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """This chunk's share of the mean squared error: ``((y - (w·x + b))²).sum() / N``."""
        prediction = w * x + b if self.one_feature else x @ w + b
        return ((y - prediction) ** 2).sum() / self.data.rows

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        b, w = self._parameters(theta)
        total, gradient = 0.0, np.zeros(theta.size)
        for x, y in self.chunks:
            loss = self.loss(b, w, x, y)
            grad_b, grad_w = grad(loss, (b, w))
            total += loss.item()
            gradient += np.concatenate([grad_b.data.ravel(), grad_w.data.ravel()])
        return Evaluation(total, gradient)

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """Second derivatives by differentiating the gradient again (``create_graph=True``)."""
        b, w = self._parameters(theta)
        H = np.zeros((theta.size, theta.size))
        for x, y in self.chunks:
            grad_b, grad_w = grad(self.loss(b, w, x, y), (b, w), create_graph=True)
            components = [grad_b] + ([grad_w] if self.one_feature else list(grad_w))
            for i, component in enumerate(components):
                row_b, row_w = grad(component, (b, w))
                H[i] += np.concatenate([row_b.data.ravel(), row_w.data.ravel()])
        return H
