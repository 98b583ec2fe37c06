"""`manual`: the hand-derived formulas, vectorised with numpy; or yours, the formula under test.

By default it runs the model's own hand formulas (``Model.hand_gradient``).
A user's formula replaces them (``--manual file.py:function``) and then is the thing under test:

- for the (b, w) models, ``gradient(b, w, X, y) -> (dL/db, dL/dw)`` with b a float, w of shape
  (d,), X of shape (N, d) and y of shape (N,);
- for models with matrix parameters, ``gradient(params, X, y) -> dict`` mapping each parameter's
  name to its gradient, shaped like the parameter.

The formula may compute with numpy, torch or jax: whatever it returns is turned into numpy
(tensors are detached, jax runs with 64-bit floats when the check is float64). It gets private,
read-only copies of the data, so it cannot change what the other engines see; a formula that
makes them writeable is stopped with an error saying so.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from verifiers.engines.base import Engine, Evaluation, on_one_blas_thread
from verifiers.isolation import UserCodeError, user_call
from verifiers.models.base import Model
from verifiers.results import Check, Trust

__all__ = ["FormulaError", "GradientFormula", "ManualEngine", "to_numpy"]

GradientFormula = Callable[..., Any]


class FormulaError(ValueError):
    """A user's formula raised, or returned something that is not a gradient (exit status 2)."""


def to_numpy(value: Any) -> np.ndarray:
    """A numpy array from a numpy, torch or jax array, or a Python number or list."""
    detach = getattr(value, "detach", None)
    if callable(detach) and hasattr(value, "cpu"):  # a torch tensor, maybe requiring grad
        value = detach().cpu()
        return np.asarray(value.numpy())
    return np.asarray(value)


def _x64_for_jax(enabled: bool) -> contextlib.AbstractContextManager:
    """jax's 64-bit mode around a user's call, when the formula may use jax (already imported)."""
    if "jax" not in sys.modules or not enabled:
        return contextlib.nullcontext()
    from verifiers.engines.jax import x64

    return x64(True)


class ManualEngine(Engine):
    name = "manual"
    accepts_formula = True

    def __init__(
        self,
        model: Model,
        device: str = "auto",
        formula: GradientFormula | None = None,
        formula_name: str | None = None,
    ) -> None:
        super().__init__(model, device)
        self.formula = formula
        self.formula_name = formula_name or "the built-in hand formula"
        self.under_test = formula is not None
        # dtypes the formula returned (a float32 result in a float64 check is worth saying)
        self.result_dtypes: set[str] = set()
        # a backprop's intermediates returned with the gradient, by θ (as float64 bytes)
        self.steps: dict[bytes, dict[str, np.ndarray]] = {}
        self._theta: bytes | None = None
        self._kept = 0
        if formula is not None:
            self._wrong_signature = self._signature_problem()
            self._X = _private_read_only(model.data.X)
            self._y = _private_read_only(model.data.y)

    def trust(self, check: Check) -> Trust:
        """The formula under test is what is judged; the built-in formulas, and the closed-form
        Hessian in every case, are exact."""
        if self.under_test and check is not Check.HESSIAN:
            return Trust.UNDER_TEST
        return Trust.EXACT

    @classmethod
    def unsupported(cls, model: Model) -> str | None:
        if not model.has_hand_gradient:
            return "there is no built-in hand formula for this loss: give yours with --manual"
        return None

    @on_one_blas_thread
    def evaluate(self, theta: np.ndarray) -> Evaluation:
        loss, gradient = self.step_values(theta)
        return Evaluation(loss, gradient.astype(np.float64))

    def step_values(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.asarray(theta, dtype=self.dtype)
        if self.formula is None:  # the model's hand formulas (one pass over the data or two)
            return self.model.hand_loss_and_gradient(theta)
        loss = self.model.hand_loss(theta)
        self._theta = np.asarray(theta, dtype=np.float64).tobytes()
        return float(loss), self._user_gradient(self.model.unflatten(theta.copy()))

    @on_one_blas_thread
    def hessian(self, theta: np.ndarray) -> np.ndarray | None:
        H = self.model.hand_hessian(np.asarray(theta, dtype=self.dtype))
        return None if H is None else np.asarray(H, dtype=np.float64)

    # ---- the user's formula -------------------------------------------------------------------
    def _signature_problem(self) -> str | None:
        """What is wrong with the formula's parameters for this model, if anything: a formula
        written for the other kind of model fails with a sentence, not with Python's "missing
        1 required positional argument"."""
        linear = self.model.linear
        try:
            signature = inspect.signature(self.formula)
        except (TypeError, ValueError):  # a builtin or C function: let the call tell
            return None
        try:
            signature.bind(*([None] * (4 if linear else 3)))
        except TypeError:
            wanted = self.model.manual_signature
            return (
                f"{self.formula_name}: with --model {self.model.name}, --manual takes "
                f"{wanted}; this function takes {signature}"
            )
        return None

    def _user_gradient(self, params: dict[str, np.ndarray]) -> np.ndarray:
        linear = self.model.linear
        if self._wrong_signature is not None:
            raise FormulaError(self._wrong_signature)

        def call() -> Any:
            with _x64_for_jax(self.dtype == np.float64), np.errstate(all="ignore"):
                if linear:
                    b = float(params["b"])
                    return user_call(self.formula_name, self.formula, b, params["w"], *data)
                return user_call(self.formula_name, self.formula, dict(params), *data)

        data = (self._X, self._y)
        try:
            had_jax = "jax" in sys.modules
            result = call()
            if not had_jax and "jax" in sys.modules:  # it imported jax just now: redo in x64
                result = call()
        except Exception as error:  # UserCodeError included: any other BaseException
            cause = error.error if isinstance(error, UserCodeError) else error
            why = f": {cause}" if str(cause) else ""
            raise FormulaError(
                f"{self.formula_name}: the function raised {_name(cause)}{why}"
            ) from None
        finally:
            self._check_data_untouched()
        try:  # reading the result runs the user's code too (its __iter__, __array__, ...)
            return user_call(self.formula_name, self._flat if linear else self._flat_named, result)
        except UserCodeError as error:
            raise FormulaError(str(error)) from None

    def _check_data_untouched(self) -> None:
        for array, name in ((self._X, "X"), (self._y, "y")):
            if array.flags.writeable or (array.base is not None and array.base.flags.writeable):
                raise FormulaError(
                    f"{self.formula_name}: the function made its input {name} writeable; a "
                    "gradient formula must not modify the data it is given (work on a copy)"
                )

    def _convert(self, value: Any, what: str) -> np.ndarray:
        try:
            array = to_numpy(value)
        except Exception as error:
            raise FormulaError(
                f"{self.formula_name}: {what} cannot be read as numbers ({_name(error)}: {error})"
            ) from None
        if array.dtype.kind == "c":
            raise FormulaError(
                f"{self.formula_name}: {what} has complex numbers; a gradient of a real loss "
                "is real (look for a square root or log of a negative number)"
            )
        if array.dtype.kind not in "fiub" or array.dtype == object:
            raise FormulaError(f"{self.formula_name}: {what} is {array.dtype} data, not numbers")
        if array.dtype.kind == "f":
            self.result_dtypes.add(str(array.dtype))
        return array.astype(np.float64)

    def _flat(self, result: Any) -> np.ndarray:
        d = self.data.features
        try:
            grad_b, grad_w = result
        except Exception:  # not a pair (whatever a returned object's __iter__ raises)
            grad_b = grad_w = None
        if grad_b is not None:
            grad_b = self._convert(grad_b, "dL/db")
            grad_w = self._convert(grad_w, "dL/dw")
        # With one feature a plain number for dL/dw is accepted too.
        w_shapes = [(d,), ()] if d == 1 else [(d,)]
        if grad_b is None or grad_b.size != 1 or grad_w.shape not in w_shapes:
            raise FormulaError(
                f"{self.formula_name}: the function must return (dL/db as a float, dL/dw as an "
                f"array of shape ({d},)); it returned {_describe(result)}"
            )
        return np.concatenate([grad_b.reshape(1), grad_w.reshape(d)])

    def _flat_named(self, result: Any) -> np.ndarray:
        expected = {p.name: p.shape for p in self.model.parameters}
        wanted = ", ".join(f"{n}: {s}" for n, s in expected.items())
        steps = getattr(self.model, "intermediates", ())  # a backprop's documented steps
        if not isinstance(result, dict) or not set(expected) <= set(result) <= {*expected, *steps}:
            also = f", and optionally {', '.join(steps)}" if steps else ""
            raise FormulaError(
                f"{self.formula_name}: the function must return a dict of gradients by "
                f"parameter name ({wanted}{also}); it returned {_describe(result)}"
            )
        self._keep_steps({k: result[k] for k in steps if k in result})
        arrays = {}
        for name, shape in expected.items():
            array = self._convert(result[name], f"the gradient of {name}")
            if array.shape != shape:
                raise FormulaError(
                    f"{self.formula_name}: the gradient of {name} has shape {array.shape}, "
                    f"but {name} has shape {shape}"
                )
            arrays[name] = array
        return self.model.flatten(arrays)

    # ---- a backprop's intermediates (models that document them: mlp) --------------------------
    # What is kept, for locating a wrong step (verifiers.functions.steps): the intermediates at
    # the first θs evaluated (the check points come before any descent), up to so many numbers.
    KEPT_STEP_POINTS = 256
    KEPT_STEP_VALUES = 10_000_000

    def _keep_steps(self, values: dict[str, Any]) -> None:
        """Keep the intermediates returned at the θ being evaluated (`self._theta`)."""
        if not values or self._theta is None:
            return
        kept = self.steps
        size = sum(np.size(v) for v in values.values())
        if self._kept + size > self.KEPT_STEP_VALUES or len(kept) >= self.KEPT_STEP_POINTS:
            return
        self._kept += size
        kept[self._theta] = {
            k: self._convert(v, f"the intermediate {k}") for k, v in values.items()
        }


def _private_read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view of a private copy: the caller's array is out of reach."""
    copy = np.array(array, copy=True)
    copy.flags.writeable = False
    view = copy.view()
    view.flags.writeable = False
    return view


def _name(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"SystemExit (it called sys.exit({error.code!r}))"
    return type(error).__name__


def _describe(value: object) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_describe(v) for v in value) + ")"
    if isinstance(value, dict):
        return "a dict with keys " + ", ".join(map(repr, value)) if value else "an empty dict"
    shape = getattr(value, "shape", None)
    return (
        f"{type(value).__name__} of shape {tuple(shape)}"
        if shape is not None
        else (type(value).__name__)
    )
