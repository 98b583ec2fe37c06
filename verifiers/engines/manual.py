"""`manual`: the hand-derived formulas, vectorised with numpy; the reference for gradients.

By default it uses :func:`verifiers.formulas.gradient`. A user's own formula, a function
``(b, w, X, y) -> (dL/db, dL/dw)``, can replace it (``--manual file.py:function``): it then is
the thing under test.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from verifiers import formulas
from verifiers.data import Dataset
from verifiers.engines.base import Engine, Evaluation

GradientFormula = Callable[[float, np.ndarray, np.ndarray, np.ndarray], tuple[float, np.ndarray]]


class FormulaError(ValueError):
    """A user's gradient formula raised or returned something other than (float, (d,) array)."""


class ManualEngine(Engine):
    name = "manual"
    summary = "the hand formulas (or yours, with --manual) vectorised with numpy"

    def __init__(
        self,
        data: Dataset,
        device: str = "auto",
        formula: GradientFormula | None = None,
        formula_name: str | None = None,
    ) -> None:
        super().__init__(data, device)
        self.formula = formula or formulas.gradient
        self.formula_name = formula_name or "the built-in hand formula"
        # Read-only views: a formula under test must not be able to change the data.
        self._X, self._y = data.X.view(), data.y.view()
        self._X.flags.writeable = self._y.flags.writeable = False

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        X, y = self.data.X, self.data.y
        theta = np.asarray(theta, dtype=self.dtype)
        b, w = theta[0], theta[1:].copy()
        loss = formulas.loss(b, w, X, y)
        return Evaluation(float(loss), self._gradient(b, w))

    def _gradient(self, b: np.floating, w: np.ndarray) -> np.ndarray:
        d = self.data.features
        try:
            result = self.formula(float(b), w, self._X, self._y)
        except Exception as error:
            message = f"{self.formula_name}: the function raised {type(error).__name__}: {error}"
            raise FormulaError(message) from None
        try:
            grad_b, grad_w = result
            grad_b = np.asarray(grad_b, dtype=np.float64)
            grad_w = np.asarray(grad_w, dtype=np.float64)
        except (TypeError, ValueError):
            grad_b = grad_w = None
        # With one feature a plain number for dL/dw is accepted too.
        w_shapes = [(d,), ()] if d == 1 else [(d,)]
        if grad_b is None or grad_b.size != 1 or grad_w.shape not in w_shapes:
            raise FormulaError(
                f"{self.formula_name}: the function must return (dL/db as a float, dL/dw as an "
                f"array of shape ({d},)); it returned {_describe(result)}"
            )
        return np.concatenate([grad_b.reshape(1), grad_w.reshape(d)])

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        return formulas.hessian(self.data.X)


def _describe(value: object) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_describe(v) for v in value) + ")"
    shape = getattr(value, "shape", None)
    return f"{type(value).__name__} of shape {shape}" if shape is not None else type(value).__name__
