"""What a model is: a loss written once for every engine, its parameters, and its hand formulas.

A model is bound to one data set. Its parameters are named arrays (``b`` and ``w`` for the
linear models; ``W`` and ``b``; ``W1, b1, W2, b2``) that engines also handle as one flat
float64 vector θ, the parameters' entries in the order :attr:`Model.parameters` lists them.

The loss is written once, against the Python array API standard: ``xp`` is the namespace of the
engine that runs it (numpy, torch through array-api-compat, ``jax.numpy``, minigrad's
namespace), so the same lines run on every engine. Most losses are a mean over rows plus an
optional penalty, ``L = (1/N) Σ_i ℓ_i + P``: :meth:`Model.row_sum` gives ``Σ_i ℓ_i`` for a block
of rows, so engines can work through large data a chunk of rows at a time.

The hand formulas (the gradient, and the Hessian where a closed form exists) are plain numpy:
they are what a learner derives on paper, and what the ``manual`` engine runs.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from verifiers.chunks import row_chunks
from verifiers.data import Dataset

__all__ = ["Model", "ModelOptions", "Optimum", "Parameter", "Slip"]

Params = dict[str, Any]  # parameter name -> array of the engine's namespace


@dataclass(frozen=True)
class Parameter:
    """A named parameter array and its shape (``()`` for a scalar)."""

    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class ModelOptions:
    """The settings some models take (each model reads the ones it needs)."""

    l2: float = 0.1  # ridge: the weight λ of λ‖w‖²
    hidden: int = 8  # mlp: hidden units
    seed: int = 0  # mlp: initial weights


@dataclass
class Optimum:
    """Where the loss is smallest, when that can be computed; `note` says why not, or what."""

    theta: np.ndarray | None
    note: str = ""

    @property
    def name(self) -> str:
        """What the optimum is, from its note: "least-squares optimum", "ridge optimum",
        "optimum of smallest norm"..."""
        name = self.note.split(" (")[0].strip()
        return name if name.endswith("optimum") or name.startswith("optimum") else "optimum"

    @property
    def how(self) -> str:
        """How it was found, from the parenthesis after the name in its note: "Newton's
        method, 7 steps", "the normal equations" ("" when the note has none)."""
        rest = self.note.strip()[len(self.name) :].strip()
        named = self.note.strip().startswith(self.name)
        if named and rest.startswith("(") and rest.endswith(")"):
            return rest[1:-1]
        return ""


@dataclass(frozen=True)
class Slip:
    """A classic mistake in a hand derivation and the (wrong) gradient it produces.

    `gradient(θ)` returns the flat gradient that a derivation with this slip computes; the
    diagnosis recognises the slip when a formula under test matches it at every check point.
    """

    key: str
    explanation: str
    gradient: Callable[[np.ndarray], np.ndarray]


@dataclass
class Scales:
    """Σ|terms| of the loss and of each gradient component at one θ (see verifiers.compare)."""

    loss: float
    gradient: np.ndarray


class Model(ABC):
    """A loss with named parameters, its hand formulas and what is known about its optimum."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for --help
    formula: ClassVar[str]  # the loss, for the report's first line
    # (b, w) models: --start applies and the JSON keeps gradient.b and gradient.w.
    linear: ClassVar[bool] = True
    # L = (1/N) Σ_i ℓ_i + P: engines may take the rows a chunk at a time.
    additive: ClassVar[bool] = True
    # The Hessian does not depend on θ (the MSE and ridge): it is computed once.
    constant_hessian: ClassVar[bool] = False
    # The loss written with complex numbers is analytic (complex-step derivatives apply).
    analytic: ClassVar[bool] = True
    # The model has hand formulas of its own (a user's --loss does not: --manual gives them).
    has_hand_gradient: ClassVar[bool] = True

    def __init__(self, data: Dataset, options: ModelOptions | None = None) -> None:
        self.data = data
        self.options = options or ModelOptions()
        self.check_data()
        self.parameters: list[Parameter] = self.parameter_shapes()

    # ---- parameters ---------------------------------------------------------------------------
    @abstractmethod
    def parameter_shapes(self) -> list[Parameter]:
        """The parameters in θ's order."""

    @property
    def size(self) -> int:
        """The number of entries of θ."""
        return sum(p.size for p in self.parameters)

    def unflatten(self, theta: Any) -> Params:
        """Named parameters from a flat θ of any namespace (slices and reshapes only)."""
        params, start = {}, 0
        for p in self.parameters:
            part = theta[start : start + p.size]
            params[p.name] = part.reshape(p.shape) if p.shape != (p.size,) else part
            start += p.size
        return params

    def flatten(self, params: Mapping[str, Any]) -> np.ndarray:
        """A flat float64 θ from named numpy-like arrays."""
        return np.concatenate(
            [np.asarray(params[p.name], dtype=np.float64).reshape(-1) for p in self.parameters]
        )

    def labels(self) -> list[str]:
        """A name for each entry of θ: ``b``, ``w`` (one feature) or ``w[0]``, ``W[1,2]``..."""
        labels = []
        for p in self.parameters:
            if p.size == 1 and len(p.shape) <= 1:
                labels.append(p.name)
            else:
                labels += [
                    f"{p.name}[{','.join(map(str, index))}]" for index in np.ndindex(*p.shape)
                ]
        return labels

    def start(self) -> np.ndarray:
        """The default starting point of the descent (zeros; models that need more override)."""
        return np.zeros(self.size)

    # ---- the loss, written once for every engine ----------------------------------------------
    def targets(self, y: np.ndarray) -> np.ndarray:
        """The targets as the loss uses them (softmax turns labels into one-hot rows)."""
        return y

    @abstractmethod
    def row_sum(self, params: Params, X: Any, y: Any, xp: Any) -> Any:
        """``Σ_i ℓ_i`` over the given rows, in the engine's namespace `xp`."""

    def penalty(self, params: Params, xp: Any) -> Any | None:
        """The part of the loss that is not a sum over rows (None: there is none)."""
        return None

    def loss(self, params: Params, X: Any, y: Any, xp: Any) -> Any:
        """The whole loss ``(1/N) Σ_i ℓ_i + P`` on rows X, y (targets already prepared)."""
        total = self.row_sum(params, X, y, xp) / self.data.rows
        extra = self.penalty(params, xp)
        return total if extra is None else total + extra

    def loss_pieces(self, params: Params, chunks: Sequence[tuple[Any, Any]], xp: Any) -> Iterator:
        """The loss as a sum of pieces: one per chunk of rows ``(1/N) Σ_chunk ℓ_i``, then the
        penalty. An engine differentiates each piece on its own and adds the gradients, so only
        one chunk's graph is alive at a time. A loss that is not a sum over rows (a user's
        ``--loss``) is one piece, on the one chunk such a model is given."""
        if not self.additive:
            yield self.loss(params, *chunks[0], xp)
            return
        for X, y in chunks:
            yield self.row_sum(params, X, y, xp) / self.data.rows
        extra = self.penalty(params, xp)
        if extra is not None:
            yield extra

    # ---- the hand formulas (numpy) -------------------------------------------------------------
    @abstractmethod
    def hand_gradient(self, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The hand-derived gradient on the whole data set, by parameter name."""

    def hand_hessian(self, theta: np.ndarray) -> np.ndarray | None:
        """The closed-form Hessian over θ, where one exists (None otherwise)."""
        return None

    def hand_loss(self, theta: np.ndarray) -> float:
        """The loss in numpy on the whole data set, a chunk of rows at a time."""
        X, y = self.data.X, self.prepared_targets
        params = self.unflatten(np.asarray(theta, dtype=self.data.dtype))
        total = sum(self.row_sum(params, X[rows], y[rows], np) for rows in self.chunks)
        extra = self.penalty(params, np)
        total = total / self.data.rows
        return float(total if extra is None else total + extra)

    def hand_loss_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """:meth:`hand_loss` and the flat :meth:`hand_gradient` at θ, for one descent step of
        the manual engine: two passes over the data here; a model may override it with one
        pass (the MSE, softmax), which a model built on it must then keep in step (ridge)."""
        theta = np.asarray(theta, dtype=self.data.dtype)
        gradient = self.flatten(self.hand_gradient(self.unflatten(theta.copy())))
        return self.hand_loss(theta), gradient

    def predict(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray | None:
        """What the model predicts for y at each row of X, in numpy (for the plot).

        ``X·w + b`` for the (b, w) models; models whose prediction is something else say so
        (logistic: a probability), and None means it is not one number per row.
        """
        if not self.linear:
            return None
        theta = np.asarray(theta, dtype=np.float64)
        return X @ theta[1:] + theta[0]

    # ---- what is known about the problem ------------------------------------------------------
    def optimum(self) -> Optimum:
        """The minimiser, when it can be computed (None, with a note, when it cannot)."""
        return Optimum(None, "no closed form for the optimum of this model")

    @abstractmethod
    def scales(self, theta: np.ndarray) -> Scales:
        """Σ|terms| of the loss and of each gradient component at θ (float64)."""

    def scales_at(self, theta: np.ndarray) -> Scales:
        """:meth:`scales`, remembered for the last few θ (each costs a pass over the data)."""
        key = np.asarray(theta, dtype=np.float64).tobytes()
        cache = self.__dict__.setdefault("_scales_cache", {})
        if key not in cache:
            if len(cache) >= 64:
                cache.pop(next(iter(cache)))
            with np.errstate(all="ignore"):
                cache[key] = self.scales(np.asarray(theta, dtype=np.float64))
        return cache[key]

    def hessian_scales(self, theta: np.ndarray) -> np.ndarray:
        """Σ|terms| of each Hessian entry at θ.

        This default, for models without a closed form of their own, treats every entry as
        made of terms as large as the largest entry of the closed-form Hessian.
        """
        H = self.hand_hessian(theta)
        if H is None:
            raise NotImplementedError(f"{self.name}: no Hessian scales")
        return np.full(H.shape, float(np.abs(H).max()))

    def slips(self) -> list[Slip]:
        """The classic mistakes of this model's hand derivation (beyond constant factors)."""
        return []

    def check_data(self) -> None:  # noqa: B027 - most models take any data
        """Raise DataError for data this model cannot use (labels out of range...)."""

    # ---- helpers ------------------------------------------------------------------------------
    @property
    def chunks(self) -> list[slice]:
        return row_chunks(self.data.rows)

    @property
    def prepared_targets(self) -> np.ndarray:
        cached = getattr(self, "_prepared_targets", None)
        if cached is None:
            cached = self._prepared_targets = self.targets(self.data.y)
        return cached
