"""The one small interface every engine implements.

An engine is a backend: given a model (a loss with named parameters, bound to a data set) it
answers three questions at a flat parameter vector θ: the loss and its gradient
(:meth:`Engine.evaluate`), the Hessian (:meth:`Engine.hessian`), and where gradient descent from
θ goes (:meth:`Engine.descend`). Numbers cross the interface as numpy arrays and Python floats,
whatever the engine uses inside. Each engine also carries its own role in the verdict: how far
it is trusted when engines disagree, and whether it is the formula under test.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from verifiers.chunks import on_one_blas_thread, one_blas_thread
from verifiers.models.base import Model
from verifiers.results import Check, Evaluation, Trajectory, Trust

if TYPE_CHECKING:
    from verifiers.distributed import ShardedResult

__all__ = [
    "DIVERGENCE_FACTOR",
    "Derivatives",
    "Differentiable",
    "Engine",
    "EngineUnavailable",
    "Evaluation",
    "FunctionEngine",
    "Trajectory",
    "diverged",
    "finish_trajectory",
    "first_divergence",
    "on_one_blas_thread",
    "one_blas_thread",
]

# A descent has diverged at the first iteration whose loss is not finite or has grown past this
# many times the starting loss.
DIVERGENCE_FACTOR = 1e6

Progress = Callable[[int], None]  # called with the number of iterations done so far


class EngineUnavailable(RuntimeError):
    """An engine cannot run here: its package is missing or the device asked for is absent."""

    def __init__(self, engine: str, reason: str, install: str | None = None) -> None:
        self.engine = engine
        self.reason = reason
        self.install = install
        super().__init__(f"{engine}: {reason}" + (f" (install with: {install})" if install else ""))


def first_divergence(losses: np.ndarray) -> int | None:
    """The first index whose loss is not finite or exceeds DIVERGENCE_FACTOR × the first."""
    losses = np.asarray(losses, dtype=np.float64)
    limit = DIVERGENCE_FACTOR * abs(float(losses[0]))
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(losses) | (losses > limit)
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


def diverged(loss: float, start_loss: float) -> bool:
    """Whether a descent that started at `start_loss` has diverged by reaching `loss`."""
    return not np.isfinite(loss) or loss > DIVERGENCE_FACTOR * abs(start_loss)


def finish_trajectory(theta: np.ndarray, losses: np.ndarray, seconds: float) -> Trajectory:
    """A Trajectory with `diverged_at` filled in from the losses.

    `theta` keeps the engine's dtype's values exactly (float32 numbers widen to float64 exactly).
    """
    losses = np.asarray(losses, dtype=np.float64)
    return Trajectory(
        theta=np.asarray(theta).astype(np.float64),
        losses=losses,
        seconds=seconds,
        diverged_at=first_divergence(losses),
    )


class Engine(ABC):
    """Base class: subclasses set the class facts below and implement :meth:`evaluate`.

    What the rest of the tool knows about an engine before importing it (its trust, package,
    preference as a reference) is its row in :data:`verifiers.engines.ENGINES`.
    """

    name: ClassVar[str]
    # The engine that takes a user's hand formula (--manual) and then runs the formula under
    # test; `under_test` is set on the instance that was given one.
    accepts_formula: ClassVar[bool] = False
    under_test: bool = False
    # The engine computes Hessians (the per-point loop does not).
    computes_hessian: ClassVar[bool] = True
    # The longest its descent is given, when less than the time limit (None: the limit).
    descent_seconds: ClassVar[float | None] = None
    # How it differentiates is decided at run time and may be approximate (numeric falls back
    # to central differences): such an engine never descends all the way alone in the hand
    # formulas' place as the exact reference (see plan._share_descents).
    method_decided_at_run_time: ClassVar[bool] = False

    def __init__(self, model: Model, device: str = "auto") -> None:
        self.model = model
        self.data = model.data
        self.dtype = model.data.dtype
        self.device = "cpu"
        self.background = False  # compiling in the background (see prepare)

    @classmethod
    def unsupported(cls, model: Model) -> str | None:
        """Why this engine cannot compute `model`'s loss (None: it can)."""
        return None

    def trust(self, check: Check) -> Trust:
        """How far this engine's values for `check` are trusted (see :mod:`verifiers.judge`).

        Known once the engine has computed (numeric chooses its method at the first point)."""
        return Trust.EXACT

    def prepare(self, iterations: int) -> bool:
        """Start slow one-off work (compiling) for a descent of `iterations` steps; optional.

        It may run in the background; the engine's methods wait for it when they need it.
        Returns whether background work was started (most engines have nothing to prepare).
        """
        return False

    def close(self) -> None:  # noqa: B027 - most engines hold nothing
        """Wait for background work and release what the engine holds (always called)."""

    @abstractmethod
    def evaluate(self, theta: np.ndarray) -> Evaluation:
        """Loss and gradient at θ."""

    def hessian(self, theta: np.ndarray) -> np.ndarray | None:
        """The Hessian at θ, or None when this engine has no way to compute it."""
        return None

    @classmethod
    def estimate_seconds(cls, model: Model) -> float:
        """A conservative estimate of one evaluation's time (loss and gradient) on `model`.

        It accounts for every size that drives the cost, through the model's work (rows,
        features, classes, hidden units) and the number of parameters where an engine's cost
        grows with it. Used to bound the work before it starts: an engine whose check points or
        descent would take too long is checked at fewer points, or its descent capped, or its
        Hessian skipped, with a note.
        """
        from verifiers.engines import row

        entry = row(cls.name)  # the rates are in the engine's registry row
        return entry.seconds_per_work * model.work() + entry.seconds_per_call

    @classmethod
    def hessian_evaluations(cls, model: Model) -> float:
        """How many evaluations one Hessian costs (for the same work bound)."""
        return 2.0 * model.size

    def hessian_noise(self, theta: np.ndarray) -> np.ndarray | float:
        """Extra Σ|terms|-like scale of this engine's own Hessian error (finite differences)."""
        return 0.0

    def run_sharded(
        self, theta: np.ndarray, lr: float, iterations: int, workers: int
    ) -> ShardedResult | None:
        """The loss, gradient and descent data-parallel over `workers` (``--shards``), as a
        :class:`verifiers.distributed.ShardedResult`; None for engines without a distributed
        form (only torch.distributed and jax sharding have one)."""
        return None

    def descend(
        self,
        theta: np.ndarray,
        lr: float,
        iterations: int,
        progress: Progress | None = None,
    ) -> Trajectory:
        """Plain gradient descent ``θ ← θ - lr·∇L(θ)`` for `iterations` steps from θ.

        Every number stays in the data's dtype (float32 descents stay float32). This generic
        version calls :meth:`evaluate` once per step; engines that can run the loop faster (on
        a device, compiled) override it with the same arithmetic.
        """
        theta = np.array(theta, dtype=self.dtype)
        lr = self.dtype.type(lr)
        losses = np.empty(iterations + 1)  # the history is a float array: nothing else is kept
        report_every = max(iterations // 100, 1)
        started = time.perf_counter()
        with one_blas_thread, np.errstate(over="ignore", invalid="ignore"):
            for k in range(iterations + 1):
                losses[k], gradient = self.step_values(theta)
                if k == iterations or diverged(losses[k], losses[0]):
                    break
                theta = theta - lr * gradient.astype(self.dtype, copy=False)
                if progress and (k + 1) % report_every == 0:
                    progress(k + 1)
        seconds = time.perf_counter() - started
        return finish_trajectory(theta, losses[: k + 1], seconds)

    def step_values(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The loss and the flat gradient at θ for one step of :meth:`descend`.

        By default :meth:`evaluate`; an engine may compute both in one pass over the data.
        """
        evaluation = self.evaluate(theta)
        return evaluation.loss, evaluation.gradient


# ---- derivatives of any function (verifiers.check) ----------------------------------------------
class Differentiable(Protocol):
    """A function of named arrays, as an engine sees it (:class:`verifiers.functions.Problem`):
    ``evaluate(xp, values, shifts)`` runs it on the namespace `xp`, and each intermediate the
    function taps comes back as ``h + shifts[name]``: differentiating with respect to that zero
    shift gives the gradient with respect to the intermediate."""

    names: tuple[str, ...]

    def differentiable(self, values: Mapping[str, Any]) -> list[str]: ...

    def evaluate(
        self,
        xp: Any,
        values: Mapping[str, Any],
        shifts: Mapping[str, Any] | None = None,
        record: dict[str, Any] | None = None,
    ) -> Any: ...


@dataclass
class Derivatives:
    """One engine's derivative at one point: float64 arrays by name (the inputs and tapped
    intermediates; ``"output"`` for a jvp). `noise` is the engine's own error where it has one
    (finite differences), per array, as a size of summed terms (see :mod:`verifiers.compare`)."""

    values: dict[str, np.ndarray]
    noise: dict[str, np.ndarray] | None = None


class FunctionEngine(ABC):
    """Derivatives of a :class:`Differentiable` at given inputs: the vjp (reverse mode, with
    the tapped intermediates), the jvp (forward mode) and the Hessian-vector product.

    One small class at the end of each engine's module; the registry row (``functions`` in
    :data:`verifiers.engines.ENGINES`) names it and says which derivatives it computes. Inputs
    are numpy arrays: the floating-point ones are differentiated, integers and booleans (labels,
    masks) are data. Everything the engine returns is float64 numpy. A function the engine
    cannot run (a name its namespace lacks, an operation it cannot differentiate) raises, and
    the engine is left out of that derivative with the reason.
    """

    name: ClassVar[str]
    method: str = "reverse mode"  # how it differentiates, for the report

    def __init__(self, function: Differentiable, dtype: np.dtype | str) -> None:
        self.function = function
        self.dtype = np.dtype(dtype)

    def trust(self, derivative: str) -> Trust:
        """How far its values of `derivative` (vjp, jvp, gradient, hvp) are trusted."""
        return Trust.EXACT

    def wrt(self, values: Mapping[str, Any]) -> list[str]:
        """The inputs differentiated: the floating-point ones the function does not declare as
        data (see :meth:`Differentiable.differentiable`)."""
        return self.function.differentiable(values)

    @abstractmethod
    def vjp(
        self,
        values: Mapping[str, np.ndarray],
        cotangent: np.ndarray,
        taps: Mapping[str, tuple[int, ...]],
    ) -> Derivatives:
        """``gᵀJ`` for the cotangent g: the gradient of ⟨g, f⟩ with respect to every
        floating-point input and every tapped intermediate (`taps`: name -> shape)."""

    @abstractmethod
    def jvp(
        self, values: Mapping[str, np.ndarray], tangents: Mapping[str, np.ndarray]
    ) -> Derivatives:
        """``J·t`` for tangents t (by input name), as ``{"output": ...}``."""

    @abstractmethod
    def hvp(
        self, values: Mapping[str, np.ndarray], vector: Mapping[str, np.ndarray]
    ) -> Derivatives:
        """The Hessian of a scalar function times v (by input name), by input name."""
