"""`numeric`: derivatives from loss values alone, independent of every derivative formula.

Gradient by the complex step: for a loss that is analytic in θ, ``dL/dθ_j = Im L(θ + i·h·e_j) / h``
with no subtraction, so no cancellation: it is accurate to rounding even with h = 1e-20. The
loss runs in a numpy namespace whose ``abs``, ``sign``, ``maximum``... decide by the real part,
so losses with kinks (|r|, a Huber loss, the stable form of the logistic loss) stay analytic
on either side of each kink. A loss that cannot run on complex numbers, or whose complex-step
gradient disagrees with central differences at the first point checked, is differentiated by
central differences ``(L(θ + h e_j) - L(θ - h e_j)) / 2h`` with ``h = ε^(1/3)·max(1, |θ_j|)``
instead; the engine's device column says which, and its own error is added to its tolerance.
The Hessian is the central difference of the gradient, with steps h and 2h extrapolated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from verifiers.engines.base import Engine, Evaluation
from verifiers.models.base import Model

__all__ = ["NumericEngine", "complex_safe_numpy", "real_numpy"]

COMPLEX_STEP = 1e-20


def real_numpy() -> Any:
    """numpy as an array API namespace (through array-api-compat when it is installed)."""
    try:
        import array_api_compat.numpy as xp
    except ImportError:  # numpy 2 itself has nearly all of the standard's names
        xp = np
    return xp


class _ComplexSafe:
    """numpy's namespace, with the functions that are not analytic on complex numbers replaced
    by the analytic branch that the real part selects (numpy compares complex numbers by their
    real part first, so ``maximum``, ``where(a > b, ...)`` and ``clip`` already do)."""

    def __init__(self) -> None:
        self._numpy = real_numpy()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._numpy, name)

    @staticmethod
    def abs(x: Any) -> Any:  # |x| = x·sign(Re x): the analytic branch on each side of 0
        return x * np.sign(np.real(x))

    @staticmethod
    def sign(x: Any) -> Any:
        return np.sign(np.real(x)).astype(np.result_type(x))

    def logaddexp(self, a: Any, b: Any) -> Any:  # log(eᵃ + eᵇ) = m + log(e^(a-m) + e^(b-m))
        m = np.maximum(a, b)
        return m + np.log(np.exp(a - m) + np.exp(b - m))


complex_safe_numpy = _ComplexSafe()


class NumericEngine(Engine):
    name = "numeric"
    summary = "finite differences of the loss alone (complex step, or central differences)"
    gradient_rank = 0  # independent of every derivative formula
    hessian_rank = 40  # finite differences of the gradient: the least exact Hessian
    descent_rank = 10

    def __init__(self, model: Model, device: str = "auto") -> None:
        super().__init__(model, device)
        self._complex = np.result_type(self.dtype, np.complex64)
        self._eps = float(np.finfo(self.dtype).eps)
        self._real = real_numpy()
        self.method: str | None = None  # decided at the first evaluation
        self.device = "cpu (complex step)"
        self._X = model.data.X
        self._y = model.prepared_targets

    # ---- the loss -----------------------------------------------------------------------------
    def loss(self, theta: np.ndarray, xp: Any = None) -> Any:
        """The model's own loss at θ (real or complex), a chunk of rows at a time."""
        xp = xp or self._real
        model = self.model
        params = model.unflatten(theta)
        if not model.additive:
            return model.loss(params, self._X, self._y, xp)
        total = sum(model.row_sum(params, self._X[r], self._y[r], xp) for r in model.chunks)
        total = total / self.data.rows
        extra = model.penalty(params, xp)
        return total if extra is None else total + extra

    # ---- gradients ----------------------------------------------------------------------------
    def complex_step_gradient(self, theta: np.ndarray) -> np.ndarray:
        """``Im L(θ + i h e_j) / h`` for every j; raises if the loss cannot take complex θ."""
        theta = np.asarray(theta, dtype=self._complex)
        gradient = np.empty(theta.size)
        # The smallest imaginary part that still carries every digit: above the subnormals.
        smallest = float(np.finfo(self.dtype).tiny) / self._eps
        for j in range(theta.size):
            h = COMPLEX_STEP * max(1.0, abs(theta[j].real))
            # Tiny data makes tiny imaginary parts: a larger step keeps them above the
            # subnormals, up to a step whose h² truncation error is still below rounding.
            largest = math.sqrt(self._eps) * max(1.0, abs(theta[j].real)) * 1e-2
            while True:
                probe = theta.copy()
                probe[j] += 1j * h
                with np.errstate(all="ignore"):
                    value = complex(self.loss(probe, complex_safe_numpy))
                part = value.imag
                if abs(part) >= smallest or part == 0 or h >= largest:
                    break
                h = min(h * 2.0**40, largest)
            if abs(part) < smallest and part != 0:
                raise ArithmeticError("the complex step underflows")
            gradient[j] = part / h
        return gradient

    def central_difference_gradient(self, theta: np.ndarray, factor: float = 1.0) -> np.ndarray:
        theta = np.asarray(theta, dtype=self.dtype)
        gradient = np.empty(theta.size)
        for j in range(theta.size):
            h = factor * self._step(theta[j])
            up, down = theta.copy(), theta.copy()
            up[j] += h
            down[j] -= h
            gradient[j] = (float(self.loss(up)) - float(self.loss(down))) / (
                float(up[j]) - float(down[j])
            )
        return gradient

    def _step(self, value: float) -> float:
        """A central-difference step: ε^(1/3), scaled by the size of the value it moves."""
        return self._eps ** (1 / 3) * max(1.0, abs(float(value)))

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        if self.method is None:
            self.method = self._choose_method(theta)
            self.device = f"cpu ({self.method})"
        if self.method == "complex step":
            return self.complex_step_gradient(theta)
        return self.central_difference_gradient(theta)

    def _choose_method(self, theta: np.ndarray) -> str:
        """The complex step when it runs and agrees with central differences, else the latter.

        Central differences are off by their rounding (about ε·L/h) and by their truncation
        (about h² times the third derivative: large where the loss curves fast, as with features
        of size 50); the truncation is estimated from a second difference with step 2h, whose
        error is 4 times as large, so that a correct complex step is not taken for a wrong one.
        """
        if not self.model.analytic:
            return "central differences"
        try:
            complex_step = self.complex_step_gradient(theta)
        except Exception:  # a loss that cannot take complex numbers, or underflows
            return "central differences"
        central = self.central_difference_gradient(theta)
        truncation = np.abs(self.central_difference_gradient(theta, 2.0) - central) / 3
        allowed = 1e3 * self._eps * (np.abs(central) + self._noise(theta)) + 2 * truncation
        if not np.all(np.abs(complex_step - central) <= allowed):
            return "central differences"
        return "complex step"

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        theta = np.asarray(theta, dtype=self.dtype)
        with np.errstate(all="ignore"):
            loss = float(self.loss(theta))
            gradient = self.gradient(theta)
        return Evaluation(loss, gradient)

    def _noise(self, theta: np.ndarray) -> np.ndarray:
        """Σ|terms|-like size of a central difference's error, per component: L's scale / h."""
        scale = self.model.scales_at(np.asarray(theta, dtype=np.float64)).loss
        return np.array([scale / self._step(t) for t in np.asarray(theta, dtype=np.float64)])

    def gradient_noise(self, theta: np.ndarray) -> np.ndarray | float:
        return 0.0 if self.method == "complex step" else self._noise(theta)

    # ---- the Hessian --------------------------------------------------------------------------
    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """Central differences of the gradient with steps h and 2h, extrapolated (Richardson).

        A central difference is off by about h²/6 times the gradient's third derivative: far
        above rounding when the loss curves on a shorter scale than θ's size (features of size
        50 move the scores 50 times faster than θ). That error shrinks 4-fold from 2h to h, so
        ``(4·H_h - H_2h)/3`` removes it, and ``|H_h - H_2h|/3`` estimates what is left (it is
        the error of H_h, larger than that of the result): :meth:`hessian_noise` adds it.
        """
        theta = np.asarray(theta, dtype=self.dtype)
        fine, coarse = self._central_hessian(theta, 1.0), self._central_hessian(theta, 2.0)
        truncation = np.abs(fine - coarse) / 3
        self._truncation = (np.asarray(theta, dtype=np.float64).tobytes(), truncation)
        return fine + (fine - coarse) / 3

    def _central_hessian(self, theta: np.ndarray, factor: float) -> np.ndarray:
        H = np.empty((theta.size, theta.size))
        with np.errstate(all="ignore"):
            for j in range(theta.size):
                h = factor * self._step(theta[j])
                up, down = theta.copy(), theta.copy()
                up[j] += h
                down[j] -= h
                H[:, j] = (self.gradient(up) - self.gradient(down)) / (
                    float(up[j]) - float(down[j])
                )
        return (H + H.T) / 2  # average the two estimates of each mixed derivative

    def hessian_noise(self, theta: np.ndarray) -> np.ndarray:
        """Column j divides gradient errors (of size ~ Σ|terms| of row i) by the step h_j
        (5/3 of it: the extrapolation weighs the two differences 4/3 and 1/3); plus the
        truncation estimate of :meth:`hessian` at this θ, as the Σ|terms| whose rounding
        (ε each) would be that large."""
        theta = np.asarray(theta, dtype=np.float64)
        scales = self.model.scales_at(theta).gradient + np.asarray(self.gradient_noise(theta))
        steps = np.array([self._step(t) for t in theta])
        noise = (5 / 3) * scales[:, None] / steps[None, :]
        noise = (noise + noise.T) / 2
        key, truncation = getattr(self, "_truncation", (None, None))
        if key == theta.tobytes():
            noise = noise + truncation / self._eps
        return noise

    def hessian_evaluations(self) -> float:
        return 4.0 * self.model.size  # gradients at θ ± h and θ ± 2h for each of θ's entries

    def seconds_per_evaluation(self) -> float:
        """One loss per parameter (complex numbers cost about 4 real passes) per evaluation."""
        return (self.model.size + 1) * 4 * _pass_seconds(self.data.rows, self.data.features)


# A conservative cost of one pass of numpy over the data: per row and feature, plus per call.
SECONDS_PER_ELEMENT = 2e-8
SECONDS_PER_CALL = 5e-5


def _pass_seconds(rows: int, features: int) -> float:
    return SECONDS_PER_CALL + SECONDS_PER_ELEMENT * rows * max(features, 1)
