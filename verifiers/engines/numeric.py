"""`numeric`: derivatives from loss values alone, independent of every derivative formula.

Gradient by the complex step: for a loss that is analytic in θ (the MSE is a polynomial),
``dL/dθ_j = Im L(θ + i·h·e_j) / h`` with no subtraction, so no cancellation: it is accurate to
rounding even with h = 1e-20. Central differences ``(L(θ + h e_j) - L(θ - h e_j)) / 2h`` with
``h = ε^(1/3)·max(1, |θ_j|)`` are kept as a check on the complex step. The Hessian is the central
difference of the complex-step gradient.
"""

from __future__ import annotations

import numpy as np

from verifiers import formulas
from verifiers.data import Dataset
from verifiers.engines.base import Engine, Evaluation, row_chunks

COMPLEX_STEP = 1e-20


class NumericEngine(Engine):
    name = "numeric"
    summary = "finite differences of the loss alone (complex step; central differences)"

    def __init__(self, data: Dataset, device: str = "auto") -> None:
        super().__init__(data, device)
        self.device = "cpu (complex step)"
        self._complex = np.result_type(self.dtype, np.complex64)
        self._chunks = row_chunks(data.rows)

    def loss(self, theta: np.ndarray) -> complex | float:
        """The definition of the loss, ``mean((y - (X·w + b))²)``, for real or complex θ.

        Summed a chunk of rows at a time: complex temporaries are twice the size of the data.
        """
        X, y = self.data.X, self.data.y
        total = 0.0
        for rows in self._chunks:
            residual = y[rows] - (X[rows] @ theta[1:] + theta[0])
            total += (residual * residual).sum()
        return total / len(y)

    def complex_step_gradient(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=self._complex)
        gradient = np.empty(theta.size)
        for j in range(theta.size):
            probe = theta.copy()
            probe[j] += 1j * COMPLEX_STEP
            gradient[j] = self.loss(probe).imag / COMPLEX_STEP
        return gradient

    def central_difference_gradient(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=self.dtype)
        gradient = np.empty(theta.size)
        for j in range(theta.size):
            h = _step(theta[j], self.dtype, 1 / 3)
            up, down = theta.copy(), theta.copy()
            up[j] += h
            down[j] -= h
            gradient[j] = (self.loss(up) - self.loss(down)) / (up[j] - down[j])
        return gradient

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        theta = np.asarray(theta, dtype=self.dtype)
        return Evaluation(float(self.loss(theta)), self.complex_step_gradient(theta))

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=self.dtype)
        H = np.empty((theta.size, theta.size))
        for j in range(theta.size):
            # The gradient of a quadratic is linear, so this difference has no truncation error.
            h = _step(theta[j], self.dtype, 1 / 3)
            up, down = theta.copy(), theta.copy()
            up[j] += h
            down[j] -= h
            H[:, j] = (self.complex_step_gradient(up) - self.complex_step_gradient(down)) / (
                float(up[j]) - float(down[j])
            )
        return (H + H.T) / 2  # average the two estimates of each mixed derivative

    def hessian_noise(self, theta: np.ndarray) -> np.ndarray:
        """Column j divides gradient errors (of size ~ Σ|terms| of row i) by the step h_j."""
        theta = np.asarray(theta, dtype=np.float64)
        scales = formulas.gradient_scales(theta[0], theta[1:], self.data.X, self.data.y)
        steps = np.array([_step(t, self.dtype, 1 / 3) for t in theta])
        noise = scales[:, None] / steps[None, :]
        return (noise + noise.T) / 2


def _step(value: float, dtype: np.dtype, power: float) -> float:
    """A finite-difference step: ε^power, scaled by the size of the value it moves."""
    return float(np.finfo(dtype).eps) ** power * max(1.0, abs(float(value)))
