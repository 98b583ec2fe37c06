"""A loss of the linear model written once by the user, run on every engine (``--loss``).

The user writes ``loss(b, w, X, y, xp) -> scalar`` against the Python array API standard: `xp` is
the namespace of the engine running it (numpy, torch through array-api-compat, ``jax.numpy``,
minigrad's), `b` a scalar array, `w` of shape (d,), `X` (N, d) and `y` (N,). For example::

    def huber(b, w, X, y, xp):
        r = y - (X @ w + b)
        return xp.mean(xp.where(xp.abs(r) <= 1.0, 0.5 * r**2, xp.abs(r) - 0.5))

The engines differentiate it (minigrad, torch, jax, finite differences); the user's hand
gradient, given with ``--manual``, is the thing under test. Nothing is known about the loss's
structure, so it runs on the whole data at once, and the sizes of its summed terms (which set
the tolerance, see :mod:`verifiers.compare`) are estimated: the data and θ are perturbed at random
by a relative η, and the change in the loss and gradient, divided by η and multiplied by √(3N),
bounds Σ|terms| from above (a change of random sign adds up like √Σt², and Σ|t| ≤ √N·√Σt²).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from verifiers.data import Dataset
from verifiers.isolation import UserCodeError, user_call
from verifiers.models.base import Model, Optimum, Parameter, Params, Scales
from verifiers.settings import UsageError

__all__ = ["UserLossError", "UserLossModel"]

# The relative size of the perturbations that estimate the terms' sizes.
PERTURBATION = 1e-7


class UserLossError(UsageError):
    """The user's loss raised, or returned something that is not one real number.

    `missing` names a function the engine's namespace does not have: that engine cannot run the
    loss (it is skipped, saying so) while the others can.
    """

    def __init__(self, message: str, missing: str | None = None) -> None:
        super().__init__(message)
        self.missing = missing


def _is_numpy(xp: Any) -> bool:
    """Whether `xp` is numpy itself (real or complex-safe), where the loss is first run."""
    from verifiers.engines.numeric import complex_safe_numpy, real_numpy

    return xp is np or xp is real_numpy() or xp is complex_safe_numpy


def _namespace_name(xp: Any) -> str:
    name = getattr(xp, "__name__", None) or type(xp).__name__
    return {"_ComplexSafe": "numpy (complex)"}.get(name, name)


class UserLossModel(Model):
    """``y ≈ X·w + b`` with the user's loss (see the module docstring)."""

    name = "loss"
    summary = "your loss of the linear model, written once for every engine (--loss)"
    additive = False
    has_hand_gradient = False
    default_lr = 1e-4  # the reference example's, as for the MSE it usually replaces
    manual_signature = "gradient(b, w, X, y) -> (dL/db, dL/dw)"

    def __init__(
        self, data: Dataset, function: Callable[..., Any], label: str, seed: int = 0
    ) -> None:
        self.function = function
        self.label = label
        self._ran_on_numpy = False  # set once the loss has given a number on numpy
        self.formula = f"model y ≈ X·w + b, loss L = {label}"
        super().__init__(data, seed=seed)

    def work(self) -> float:
        return float(self.data.rows) * (self.data.features + 30)  # unknown: assume a few exps

    def parameter_shapes(self) -> list[Parameter]:
        return [Parameter("b", ()), Parameter("w", (self.data.features,))]

    def labels(self) -> list[str]:
        return ["b", "w"] if self.data.features == 1 else [
            "b", *(f"w[{j}]" for j in range(self.data.features))
        ]  # fmt: skip

    def row_losses(self, params: Params, X: Any, y: Any, xp: Any) -> Any:
        raise NotImplementedError("a user's loss is not split by rows")

    def loss(self, params: Params, X: Any, y: Any, xp: Any) -> Any:
        namespace = _namespace_name(xp)
        try:
            value = user_call(
                f"--loss {self.label}", self.function, params["b"], params["w"], X, y, xp
            )
        except UserCodeError as error:  # any BaseException other than an Exception
            raise UserLossError(self._raised(error.error, namespace)) from None
        except AttributeError as error:
            missing = getattr(error, "name", None)
            if missing and getattr(error, "obj", xp) is xp:
                raise UserLossError(
                    f"{self.label}: the array namespace {namespace} has no function {missing!r}"
                    " (the loss may use only functions of the array API standard)",
                    missing=missing,
                ) from None
            raise UserLossError(self._raised(error, namespace)) from None
        except Exception as error:
            if self._ran_on_numpy and not _is_numpy(xp):
                # The loss is fine (it runs on numpy); this engine cannot differentiate
                # something in it (autograd has no rule for vecdot, say): leave it out.
                raise UserLossError(
                    self._raised(error, namespace) + " (the loss runs on numpy: only this "
                    "engine is left out)",
                    missing=type(error).__name__,
                ) from None
            raise UserLossError(self._raised(error, namespace)) from None
        if _is_numpy(xp):
            self._ran_on_numpy = True
        if not hasattr(value, "shape") and not isinstance(value, numbers.Real):
            raise UserLossError(
                f"{self.label}: the loss must be one number, but it returned "
                f"{type(value).__name__} {value!r:.40}"
            )
        shape = getattr(value, "shape", ())
        if tuple(shape) not in ((), (1,)):
            raise UserLossError(
                f"{self.label}: the loss must be one number, but it has shape {tuple(shape)}"
            )
        return value.reshape(()) if tuple(shape) == (1,) else value

    def _raised(self, error: BaseException, namespace: str) -> str:
        first = f": {str(error).strip().splitlines()[0]}" if str(error).strip() else ""
        return f"{self.label}: the loss raised {type(error).__name__} on {namespace}{first}"

    def hand_loss(self, theta: np.ndarray) -> float:
        from verifiers.engines.numeric import real_numpy

        params = self.unflatten(np.asarray(theta, dtype=self.data.dtype))
        with np.errstate(all="ignore"):
            return float(np.real(self.loss(params, self.data.X, self.data.y, real_numpy())))

    def hand_gradient(self, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError("a user's loss has no built-in hand formula: give --manual")

    def optimum(self) -> Optimum:
        return Optimum(None)

    def parameter_scale(self, start: np.ndarray, optimum: np.ndarray | None) -> np.ndarray:
        """The loss is opaque and has no optimum here: the data's own scale is that of the
        least-squares fit, which most losses of the linear model have near their optimum."""
        from verifiers.models.mse import least_squares

        b, w = least_squares(self.data.X, self.data.y)
        return 1 + np.abs(start) + np.abs(np.concatenate([[b], w]))

    # ---- tolerance scales, estimated -----------------------------------------------------------
    def _gradient(
        self, theta: np.ndarray, X: np.ndarray, y: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """The loss and its central-difference gradient on the given data (float64)."""
        from verifiers.engines.numeric import real_numpy

        xp = real_numpy()
        theta = np.asarray(theta, dtype=np.float64)

        def value(t: np.ndarray) -> float:
            with np.errstate(all="ignore"):
                return float(np.real(self.loss(self.unflatten(t), X, y, xp)))

        gradient = np.empty(theta.size)
        for j in range(theta.size):
            h = 1e-5 * max(1.0, abs(theta[j]))
            up, down = theta.copy(), theta.copy()
            up[j] += h
            down[j] -= h
            gradient[j] = (value(up) - value(down)) / (up[j] - down[j])
        return value(theta), gradient

    def scales(self, theta: np.ndarray) -> Scales:
        X = self.data.X.astype(np.float64)
        y = self.data.y.astype(np.float64)
        loss, gradient = self._gradient(theta, X, y)
        if not np.isfinite(loss):
            at = ", ".join(f"{n} = {v:.6g}" for n, v in zip(self.labels(), theta, strict=False))
            raise UserLossError(
                f"{self.label}: the loss is {loss} at {at}; the engines can be compared only "
                "where it is a finite number"
            )
        rng = np.random.default_rng(0)
        loss_change, gradient_change = 0.0, np.zeros(theta.size)
        for _ in range(2):
            moved_X = X * (1 + PERTURBATION * rng.uniform(-1, 1, X.shape))
            moved_y = y * (1 + PERTURBATION * rng.uniform(-1, 1, y.shape))
            moved_theta = theta * (1 + PERTURBATION * rng.uniform(-1, 1, theta.shape))
            moved_loss, moved_gradient = self._gradient(moved_theta, moved_X, moved_y)
            loss_change = max(loss_change, abs(moved_loss - loss))
            gradient_change = np.maximum(gradient_change, np.abs(moved_gradient - gradient))
        bound = np.sqrt(3 * self.data.rows) / PERTURBATION
        loss_scale = abs(loss) + bound * loss_change
        gradient_scale = np.abs(gradient) + bound * gradient_change
        # A gradient made of terms that do not move when the data does (the signs of |r|, a
        # clipped residual) shows no change at all, and its rounding would be allowed nothing:
        # its terms are taken to be at least the loss's size per unit of each parameter.
        floor = loss_scale / (1.0 + np.abs(theta))
        return Scales(loss_scale, np.maximum(gradient_scale, floor))

    def hessian_scales(self, theta: np.ndarray) -> np.ndarray:
        """Every entry as large as the largest gradient scale per unit of θ's size."""
        g = self.scales_at(theta).gradient
        size = 1.0 + float(np.abs(theta).max())
        return np.full((self.size, self.size), float(g.max()) / size)
