"""What a run found, as typed data: the report, the JSON, the plots and `verifiers.testing` read
these and nothing else.

:mod:`verifiers.plan` decides the check points, :mod:`verifiers.compute` fills in each engine's
values, :mod:`verifiers.judge` stores one :class:`CheckVerdict` per check and the run's
:class:`Outcome`. Nothing here computes anything, and no reader has to parse a message: each
status, failure and outcome is an enum or a dataclass with fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from verifiers.compare import Difference, Tolerance
from verifiers.data import Dataset
from verifiers.settings import Settings

if TYPE_CHECKING:
    from verifiers.diagnosis import Diagnosis
    from verifiers.distributed import CombinationCheck, ShardedComparison, ShardedResult
    from verifiers.models.base import Model, Optimum
    from verifiers.stability import Stability

__all__ = [
    "Check",
    "CheckPoint",
    "CheckVerdict",
    "Coverage",
    "Detection",
    "EngineReport",
    "Evaluation",
    "Failure",
    "FailureKind",
    "Kink",
    "OneSided",
    "Outcome",
    "PointKind",
    "Report",
    "Sensitivity",
    "Status",
    "Trajectory",
    "Trust",
]


class Check(StrEnum):
    """The three questions every run answers (the value is how the report names it)."""

    GRADIENT = "gradient"
    HESSIAN = "Hessian"
    DESCENT = "descent"


class Status(StrEnum):
    """How one engine's run ended."""

    OK = "ok"  # it ran, and nothing it computed was found wrong
    SKIPPED = "skipped"  # it could not run here (a package, the model, a budget): says why
    MISMATCH = "mismatch"  # it ran, and a check found it wrong
    ERROR = "error"  # it raised while computing


class Trust(StrEnum):
    """What an engine's numbers can decide (see :mod:`verifiers.judge`)."""

    EXACT = "exact"  # reverse or forward mode, the complex step, a hand formula: decides
    APPROXIMATE = "approximate"  # central differences: confirms, never decides alone
    UNDER_TEST = "under test"  # the user's formula: what is judged


class Outcome(StrEnum):
    """The run's answer, in order of precedence when several hold."""

    AGREE = "agree"  # every check agrees
    ENGINES_DISAGREE = "engines disagree"  # the exact engines disagree among themselves
    FORMULA_WRONG = "formula wrong"  # the formula under test disagrees with an exact engine
    ENGINE_WRONG = "engine wrong"  # an engine disagrees with the exact consensus
    ENGINE_FAILED = "engine failed"  # an engine raised while computing
    COMBINATION_WRONG = "combination wrong"  # --combine: the user's combination of shards


class PointKind(StrEnum):
    """Where a check point comes from (see :mod:`verifiers.plan`)."""

    START = "start"
    OPTIMUM = "optimum"
    RANDOM = "random"  # every sign pattern of pairs, magnitudes over several decades
    ANCHORED = "anchored"  # a random w, with b so that the line passes through the data's centre
    NEAR = "near"  # close to the optimum, at distances over four decades
    EXTREME = "extreme"  # the model driven to the data's extremes (saturated σ, tanh...)
    MOVED = "moved"  # a point moved off a kink of the loss


class FailureKind(StrEnum):
    MISMATCH = "mismatch"  # an engine (or the formula) disagrees in a check
    EXACT_DISAGREE = "exact engines disagree"  # no exact consensus in a check
    ERROR = "error"  # an engine raised
    SHARDED = "sharded"  # a data-parallel run disagrees with its own single-process run
    COMBINATION = "combination"  # --combine is wrong


@dataclass
class Evaluation:
    """The loss and its gradient (flat, in θ's order) at one θ.

    `noise` is the engine's own error where it has one (central differences), per entry of the
    gradient, as a size of summed terms like :meth:`verifiers.models.base.Model.scales`: the
    comparisons allow that much more. Exact engines have none.
    """

    loss: float
    gradient: np.ndarray
    noise: np.ndarray | None = None


@dataclass
class Trajectory:
    """The result of a descent.

    ``losses[k]`` is the loss at θ after k steps, for k = 0 .. `steps`; `theta` is θ after `steps`
    steps. When the descent diverged, `steps` is the iteration where it did (``diverged_at``)
    and the descent stopped there: `theta` is θ at that iteration, not one step further.
    `theta_noise` is what an approximate engine's own gradient error can move θ by (each step's
    error times lr, added up); exact engines have none.
    """

    theta: np.ndarray
    losses: np.ndarray
    seconds: float
    diverged_at: int | None = None
    theta_noise: np.ndarray | None = None

    @property
    def steps(self) -> int:
        return len(self.losses) - 1


@dataclass
class CheckPoint:
    """A parameter vector θ at which every engine's loss and gradient are compared."""

    label: str
    theta: np.ndarray
    kind: PointKind = PointKind.RANDOM
    moved_from: str | None = None  # for a MOVED point: the label of the kink it replaces


@dataclass(frozen=True)
class Coverage:
    """Where the check points went, for the report's one line about them."""

    random: int  # random points (pairs of opposite signs)
    extreme: int  # points at the data's extremes
    anchored: int  # random w's with the line through the data's centre
    near: int  # points close to the optimum
    smallest: float  # the random magnitudes span smallest..largest times each parameter's scale
    largest: float
    sign_pairs: bool  # every pair of parameters is seen with all four sign combinations
    every_orthant: bool  # every combination of all the parameters' signs
    extreme_what: str = ""  # what the extreme points drive to ("|z| up to 60")


@dataclass
class Failure:
    """One thing a run found wrong. `message` is a full sentence for people; the fields are for
    programs (the report, the JSON, ``verifiers.testing``): nothing needs to parse the message."""

    kind: FailureKind
    message: str
    engine: str | None = None
    check: Check | None = None
    against: str | None = None
    difference: Difference | None = None


@dataclass
class Kink:
    """A check point where the loss is not differentiable: the one-sided slopes of some
    derivatives differ. Any value between them is a valid subgradient."""

    point: str  # the label of the point
    components: list[int]  # θ's entries whose one-sided slopes differ
    lower: np.ndarray  # for each entry of θ, the smaller and the larger one-sided slope
    upper: np.ndarray
    moved_to: str | None = None  # the label of the point checked instead
    outside: dict[str, int] = field(default_factory=dict)  # engine -> entry outside the range


@dataclass
class CheckVerdict:
    """The judgement of one check over the engines that took part in it.

    `reference` is the exact engine the tables measure everyone against (None when there is no
    exact engine); `differences[name]` is an engine's worst difference from it. `outcome` is the
    check's own answer; `wrong` the engines found wrong; `disagreeing` the pairs of exact engines
    that disagree (no consensus then); `unconfirmed` the approximate engines whose difference from
    the exact consensus exceeds their own error bound (they confirm nothing, and decide nothing).
    """

    check: Check
    compared: list[str]
    reference: str | None
    differences: dict[str, Difference]
    pairs: dict[tuple[str, str], Difference]
    outcome: Outcome
    trust: dict[str, Trust]
    wrong: list[str] = field(default_factory=list)
    disagreeing: list[tuple[str, str]] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)

    @property
    def exact(self) -> list[str]:
        return [n for n in self.compared if self.trust[n] is Trust.EXACT]

    @property
    def approximate(self) -> list[str]:
        return [n for n in self.compared if self.trust[n] is Trust.APPROXIMATE]

    @property
    def agreeing(self) -> list[str]:
        """The engines whose values agree with the reference (the reference included)."""
        return [
            n for n in self.compared
            if n == self.reference or (n in self.differences and self.differences[n].ok)
        ]  # fmt: skip


@dataclass(frozen=True)
class OneSided:
    """The loss's one-sided slopes along each entry of θ at one point, at steps h and h/8:
    where the loss has a kink the gap between left and right stays as h shrinks; where it is
    smooth it shrinks with h. `rounding` is the size of the slopes' own rounding at h/8."""

    left: np.ndarray
    right: np.ndarray
    left_fine: np.ndarray
    right_fine: np.ndarray
    rounding: np.ndarray


@dataclass
class Sensitivity:
    """What rounding alone did to a descent that amplifies it: the largest change of the loss
    so far at each step, the largest change of any entry of the final θ, whether the iteration
    where it diverged moved, and on which engine and by how much that was measured."""

    loss_changes: np.ndarray
    theta: float
    divergence_moved: bool
    engine: str
    growth: float

    def losses(self, steps: int) -> np.ndarray:
        """The change of each loss up to `steps`; past the probe's end, unbounded."""
        changes = np.full(steps + 1, np.inf)
        known = min(steps + 1, self.loss_changes.size)
        changes[:known] = self.loss_changes[:known]
        return changes


@dataclass(frozen=True)
class Detection:
    """The check's power: for each entry of θ, the smallest relative error in the formula's
    derivative that the check would have caught at these points and tolerances (None where the
    derivative is zero at every point, so no relative error is defined)."""

    smallest: dict[str, float | None]

    @property
    def weakest(self) -> tuple[str, float] | None:
        """The derivative where the check is least sensitive, and its smallest caught error."""
        known = [(name, value) for name, value in self.smallest.items() if value is not None]
        return max(known, key=lambda item: item[1]) if known else None


@dataclass
class EngineReport:
    """What one engine computed and how it compared."""

    name: str
    status: Status = Status.OK
    reason: str = ""
    device: str = ""
    trust: Trust = Trust.EXACT  # for the gradient (numeric's falls to APPROXIMATE at run time)
    hessian_trust: Trust = Trust.EXACT
    under_test: bool = False  # runs the user's formula
    setup_seconds: float = 0.0
    # point index -> loss and gradient there; the points an engine's budget left out are absent
    evaluations: dict[int, Evaluation] = field(default_factory=dict)
    hessian: np.ndarray | None = None
    hessian_noise: np.ndarray | float = 0.0  # its own error, as a size of summed terms
    trajectory: Trajectory | None = None
    capped_iterations: int | None = None  # set when the descent was shortened on purpose
    # gradients: this engine's worst difference against each other engine
    against: dict[str, Difference] = field(default_factory=dict)
    # each check's worst difference against the check's reference engine
    differences: dict[Check, Difference] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sharded: ShardedResult | None = None  # the data-parallel run (--shards)
    vs_single_process: ShardedComparison | None = None  # and how it compares

    @property
    def ran(self) -> bool:
        return self.status in (Status.OK, Status.MISMATCH)

    @property
    def vs_consensus(self) -> Difference | None:
        """The gradients' worst difference against the gradient check's reference."""
        return self.differences.get(Check.GRADIENT)

    @property
    def vs_reference_hessian(self) -> Difference | None:
        return self.differences.get(Check.HESSIAN)

    @property
    def vs_reference_descent(self) -> Difference | None:
        return self.differences.get(Check.DESCENT)

    @property
    def vs_manual(self) -> Difference | None:
        """The gradients' worst difference against the hand formula's engine."""
        return self.against.get("manual")

    @property
    def vs_numeric(self) -> Difference | None:
        """The gradients' worst difference against finite differences."""
        return self.against.get("numeric")

    @property
    def checked_points(self) -> int:
        return len(self.evaluations)

    def start(self) -> Evaluation | None:
        """The loss and gradient at the start (point 0), where the engine computed them."""
        return self.evaluations.get(0)


@dataclass
class Report:
    """Everything a run found; ``ok`` is the verdict."""

    data: Dataset
    settings: Settings
    model: Model
    lr: float
    tolerance: Tolerance
    points: list[CheckPoint]
    coverage: Coverage
    engines: dict[str, EngineReport]
    optimum: Optimum
    descent_from: int = 0  # the check point the descents start at (the start, or it moved)
    hessian_from: int = 0  # the check point the Hessians are compared at
    stability: Stability | None = None
    diagnosis: Diagnosis | None = None
    notes: list[str] = field(default_factory=list)
    verdicts: dict[Check, CheckVerdict] = field(default_factory=dict)
    outcome: Outcome = Outcome.AGREE
    failures: list[Failure] = field(default_factory=list)
    kinks: list[Kink] = field(default_factory=list)
    detection: Detection | None = None
    combinations: list[CombinationCheck] = field(default_factory=list)  # --shards

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.AGREE

    @property
    def compared(self) -> dict[str, list[str]]:
        """Check name -> the engines compared in it."""
        return {check.value: verdict.compared for check, verdict in self.verdicts.items()}

    @property
    def parameter_names(self) -> list[str]:
        """A label for each entry of θ (``b``, ``w``, ``W[0,1]``...)."""
        return self.model.labels()

    @property
    def under_test(self) -> EngineReport | None:
        """The engine running the user's formula, if there is one."""
        return next((e for e in self.engines.values() if e.under_test), None)

    def reference(self, check: Check) -> str | None:
        """The engine a check's differences are measured against (None: not compared)."""
        verdict = self.verdicts.get(check)
        return None if verdict is None else verdict.reference
