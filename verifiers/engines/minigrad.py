"""`minigrad`: the loss built from minigrad operations, its gradient by reverse mode."""

from __future__ import annotations

import numpy as np

from minigrad import Tensor, grad
from verifiers.data import Dataset
from verifiers.engines.base import Engine, Evaluation


class MinigradEngine(Engine):
    name = "minigrad"
    summary = "this project's reverse-mode engine (minigrad/), loss written from its operations"

    def __init__(self, data: Dataset, device: str = "auto") -> None:
        super().__init__(data, device)
        self.X = Tensor(data.X)
        self.y = Tensor(data.y)
        # One feature: the reference expression w * x + b, with x a column of its own.
        self.x = Tensor(np.ascontiguousarray(data.X[:, 0])) if data.features == 1 else None

    def _parameters(self, theta: np.ndarray) -> tuple[Tensor, Tensor]:
        theta = np.asarray(theta, dtype=self.dtype)
        b = Tensor(theta[0], requires_grad=True, name="b")
        w = Tensor(
            theta[1] if self.x is not None else theta[1:].copy(), requires_grad=True, name="w"
        )
        return b, w

    def loss(self, b: Tensor, w: Tensor) -> Tensor:
        """``((y - (w·x + b))²).mean()`` as minigrad operations."""
        prediction = w * self.x + b if self.x is not None else self.X @ w + b
        return ((self.y - prediction) ** 2).mean()

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        b, w = self._parameters(theta)
        loss = self.loss(b, w)
        grad_b, grad_w = grad(loss, (b, w))
        return Evaluation(loss.item(), np.concatenate([grad_b.data.ravel(), grad_w.data.ravel()]))

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """Second derivatives by differentiating the gradient again (``create_graph=True``)."""
        b, w = self._parameters(theta)
        grad_b, grad_w = grad(self.loss(b, w), (b, w), create_graph=True)
        components = [grad_b] + ([grad_w] if self.x is not None else list(grad_w))
        rows = []
        for component in components:
            row_b, row_w = grad(component, (b, w))
            rows.append(np.concatenate([row_b.data.ravel(), row_w.data.ravel()]))
        return np.array(rows, dtype=np.float64)
