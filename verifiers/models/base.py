"""What a model is: a loss written once for every engine, its parameters, and its hand formulas.

A model is bound to one data set. Its parameters are named arrays (``b`` and ``w`` for the
linear models; ``W`` and ``b``; ``W1, b1, W2, b2``) that engines also handle as one flat
float64 vector θ, the parameters' entries in the order :attr:`Model.parameters` lists them.

The loss is written once, against the Python array API standard: ``xp`` is the namespace of the
engine that runs it (numpy, torch through array-api-compat, ``jax.numpy``, minigrad's
namespace), so the same lines run on every engine. Most losses are a mean over rows plus an
optional penalty, ``L = (1/N) Σ_i ℓ_i + P``. The per-row loss ℓ_i is written once, in
:meth:`Model.row_losses`; :meth:`Model.row_sum` adds it up over a block of rows, so engines can
work through large data a chunk of rows at a time, ``numeric`` on a batch of parameter vectors at
once, and the data-parallel workers (``--shards``) over their own shard of rows.

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

__all__ = ["Model", "ModelOption", "Optimum", "Parameter", "Scales", "Slip"]

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
class ModelOption:
    """A setting one model takes (``--l2`` for ridge, ``--hidden`` for mlp), declared by the
    model: the command line, its help, the JSON report and the checks of the settings read it."""

    name: str
    default: float | int
    help: str  # for --help
    sets: str  # what it sets, for the error when it is given with another model
    minimum: float = 0.0
    maximum: float | None = None
    integer: bool = False
    strictly_positive: bool = False

    def problem(self, value: Any) -> str | None:
        """Why `value` is not allowed (None: it is)."""
        flag = f"--{self.name}"
        if self.integer:
            if isinstance(value, bool) or not float(value).is_integer():
                return f"{flag} must be a whole number, not {value!r}"
            high = f"{self.maximum:,.0f}" if self.maximum is not None else "any"
            if not self.minimum <= value <= (self.maximum or math.inf):
                return f"{flag} must be between {self.minimum:,.0f} and {high}, not {value:,}"
            return None
        if (
            not math.isfinite(value)
            or value < self.minimum
            or (self.strictly_positive and value <= self.minimum)
        ):
            bound = ">" if self.strictly_positive else ">="
            return f"{flag} must be a finite number {bound} {self.minimum:g}, not {value!r}"
        if self.maximum is not None and value > self.maximum:
            return f"{flag} must be at most {self.maximum:g}, not {value!r}"
        return None


@dataclass
class Optimum:
    """Where the loss is smallest, when that can be computed.

    `name` is what the model calls it ("least-squares optimum", "ridge optimum", "optimum of
    smallest norm"), `how` how it was found ("Newton's method, 7 steps"); with no θ, `note` says
    why there is none.
    """

    theta: np.ndarray | None
    name: str = "optimum"
    how: str = ""
    note: str = ""


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


def saturating(
    directions: np.ndarray, largest: Callable[[np.ndarray], np.ndarray], targets: Sequence[float]
) -> list[np.ndarray]:
    """Check points that drive a model to the data's extremes: for each target T, two of the
    `directions` (the second with its signs flipped) scaled so that the largest of
    ``largest(θ)`` over the rows (|z|, a pre-activation's size; positively homogeneous in θ)
    is exactly T."""
    points = []
    for k, target in enumerate(targets):
        for sign, direction in ((1.0, directions[2 * k]), (-1.0, directions[2 * k + 1])):
            with np.errstate(all="ignore"):
                peak = float(np.max(largest(direction), initial=0.0))
            if np.isfinite(peak) and peak > 0:
                points.append(sign * direction * (target / peak))
    return points


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
    # The descent's learning rate unless --lr is given.
    default_lr: ClassVar[float] = 0.1
    # The settings this model alone takes (each becomes a command-line option).
    options: ClassVar[tuple[ModelOption, ...]] = ()
    # The data-parallel workers (--shards) compute this model's loss: each builds the model on
    # its own shard of rows and adds up its row_losses, so the parameters' shapes must follow
    # from the number of features and the options alone, never from the values in the rows
    # (softmax's classes, the largest label plus one, do not: a shard may lack the last class).
    shardable: ClassVar[bool] = False
    # A data set of the repository it is shown on (README, docs, tests).
    example: ClassVar[str] = "data/data.csv"
    # The parameters' names and shapes in words, for --manual's signature message.
    manual_signature: ClassVar[str] = (
        "gradient(params, X, y) -> dict of gradients by parameter name"
    )

    def __init__(
        self, data: Dataset, options: Mapping[str, Any] | None = None, seed: int = 0
    ) -> None:
        self.data = data
        known = {o.name for o in type(self).options}
        given = dict(options or {})
        unknown = set(given) - known
        if unknown:
            raise TypeError(f"{self.name} takes no option {', '.join(sorted(unknown))}")
        self.settings = {o.name: o.default for o in type(self).options} | given
        self.seed = seed
        self.check_data()
        self.parameters: list[Parameter] = self.parameter_shapes()

    def option(self, name: str) -> Any:
        """The value of one of this model's options."""
        return self.settings[name]

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
    def row_losses(self, params: Params, X: Any, y: Any, xp: Any) -> Any:
        """``ℓ_i`` of each of the given rows, in the engine's namespace `xp`: the model's loss,
        written once.

        Shape ``(rows,)``; ``(rows, batch)`` when `xp` is a namespace in which every array carries
        a batch of parameter vectors on a trailing axis (``numeric``'s batched evaluation). Every
        way of adding the rows up (a chunk at a time, a batch of θ's at once, one shard per
        worker) starts from these numbers, so no engine or worker writes the loss again.
        """

    def row_sum(self, params: Params, X: Any, y: Any, xp: Any) -> Any:
        """``Σ_i ℓ_i`` over the given rows, in the engine's namespace `xp` (under a batched
        namespace, whose ``sum`` keeps the trailing axis, one total per parameter vector)."""
        return xp.sum(self.row_losses(params, X, y, xp))

    def penalty(self, params: Params, xp: Any) -> Any | None:
        """The part of the loss that is not a sum over rows (None: there is none)."""
        return None

    def loss(self, params: Params, X: Any, y: Any, xp: Any) -> Any:
        """The whole loss ``(1/N) Σ_i ℓ_i + P`` on rows X, y (targets already prepared)."""
        total = self.row_sum(params, X, y, xp) / self.data.rows
        extra = self.penalty(params, xp)
        return total if extra is None else total + extra

    def loss_pieces(
        self, params: Params, chunks: Sequence[tuple[Any, Any]], xp: Any
    ) -> Iterator[Any]:
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
        prediction: np.ndarray = X @ theta[1:] + theta[0]
        return prediction

    # ---- what is known about the problem ------------------------------------------------------
    def optimum(self) -> Optimum:
        """The minimiser, when it can be computed (None, with a note, when it cannot)."""
        return Optimum(None, note="no closed form for the optimum of this model")

    @abstractmethod
    def scales(self, theta: np.ndarray) -> Scales:
        """Σ|terms| of the loss and of each gradient component at θ (float64)."""

    def scales_at(self, theta: np.ndarray) -> Scales:
        """:meth:`scales`, remembered for the last few θ (each costs a pass over the data)."""
        key = np.asarray(theta, dtype=np.float64).tobytes()
        cache: dict[bytes, Scales] = self.__dict__.setdefault("_scales_cache", {})
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

    def work(self) -> float:
        """Operations in one pass of the loss over the data (rows × operations per row, an
        exp or a tanh counted as 10): what the engines' cost estimates scale with."""
        return float(self.data.rows) * (self.data.features + 3)

    def parameter_scale(self, start: np.ndarray, optimum: np.ndarray | None) -> np.ndarray:
        """The size of each parameter that check points are spread around: 1 plus its size at
        the start and at the optimum (the data's own scale, where the optimum is known)."""
        scale: np.ndarray = 1 + np.abs(start)
        return scale if optimum is None else scale + np.abs(optimum)

    def anchored(self, theta: np.ndarray) -> np.ndarray | None:
        """θ with its intercept moved so that the model's line passes through the data's
        centre (``b = mean(y) - mean(X)·w``), for the (b, w) models: with a large or odd w the
        rows near the centre still have small residuals, a region a random θ seldom reaches.
        None for models without an intercept of that kind."""
        if not self.linear:
            return None
        X, y = self.data.X, self.data.y
        theta = np.array(theta, dtype=np.float64)
        theta[0] = float(np.mean(y, dtype=np.float64)) - float(
            np.mean(X, axis=0, dtype=np.float64) @ theta[1:]
        )
        return theta

    def extreme_points(self, directions: np.ndarray) -> tuple[list[np.ndarray], str]:
        """Check points that drive the model to the data's extremes, made from `directions`
        (rows of random θ's of unit size), and what they drive to in words. None by default;
        models whose loss saturates (σ, softmax, tanh) override it."""
        return [], ""

    def notes(self) -> list[str]:
        """Facts about the data the user should know that do not stop the check."""
        if self.data.degenerate is None:
            return []
        return [
            f"{self.data.degenerate}: the Hessian is singular and the {self.optimum_name} is not "
            "unique (gradients are still verified)"
        ]

    @property
    def optimum_name(self) -> str:
        return "optimum"

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
