"""What a function check found, as typed data: the text report, the JSON and
``verifiers.testing.assert_derivatives_correct`` read these and nothing else.

:mod:`verifiers.functions.run` fills in the points and every engine's and the hand's values;
:mod:`verifiers.functions.judge` the verdicts, steps, detection power and Taylor slopes;
:mod:`verifiers.functions.diagnosis` the diagnosis. Nothing here computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from verifiers.compare import Tolerance
from verifiers.engines.base import Derivatives
from verifiers.functions.problem import Derivative, HandResult, Misshapen, Problem, Shape
from verifiers.results import CheckVerdict, Outcome, Status, Trust

__all__ = [
    "ArrayVerdict",
    "DerivativeReport",
    "EngineRun",
    "FunctionDiagnosis",
    "FunctionReport",
    "Point",
    "Remainders",
    "Step",
    "Taylor",
    "Worst",
]

HAND = "yours"  # the hand derivative's name among the engines of a verdict


@dataclass
class Point:
    """One check point: the inputs, forward's output and tapped intermediates there (numpy),
    and the random cotangent g (vjp), tangents t (jvp), vector v (hvp) and the direction of the
    Taylor test, drawn for it."""

    index: int
    inputs: dict[str, np.ndarray]
    output: np.ndarray
    taps: dict[str, np.ndarray]
    cotangent: np.ndarray
    tangents: dict[str, np.ndarray]
    vector: dict[str, np.ndarray]
    direction: dict[str, np.ndarray]

    @property
    def label(self) -> str:
        return f"point {self.index}"


@dataclass
class EngineRun:
    """What one engine did for one derivative: its values per point, or why it did not run."""

    name: str
    status: Status = Status.OK
    reason: str = ""
    trust: Trust = Trust.EXACT
    method: str = ""
    values: dict[int, Derivatives] = field(default_factory=dict)

    @property
    def ran(self) -> bool:
        return self.status is Status.OK and bool(self.values)


FLOAT64_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Worst:
    """The hand derivative's worst element in one array: the point, the element's index, its
    value and the engine's, the difference allowed there, and the array's scale at that point
    (its largest value, or its measured rounding: the S of the tolerance)."""

    point: int
    index: tuple[int, ...]
    yours: float
    expected: float
    engine: str
    allowed: float
    scale: float = 0.0

    @property
    def difference(self) -> float:
        if math.isnan(self.yours) and math.isnan(self.expected):
            return 0.0
        return 0.0 if self.yours == self.expected else abs(self.yours - self.expected)

    @property
    def relative(self) -> float:
        if self.difference == 0:
            return 0.0
        # Relative to the element; to the array's scale where the element is below the array's
        # float64 rounding (a saturated unit's 1e-37 beside its neighbours' 0.5 is a zero there).
        size = abs(self.expected)
        if size < FLOAT64_EPS * self.scale:
            size = self.scale
        return self.difference / size if size != 0 else math.inf


@dataclass
class ArrayVerdict:
    """The verdict on one array of a derivative: an input's gradient, a tapped intermediate's
    (a step of a hand backprop), or a jvp's output.

    `verdict` is the verdict rule's judgement over the engines and the hand values; `worst` the
    hand's worst element (against the exact engine it disagrees with most, else the reference);
    `misshapen` set when the hand's array has a slip's shape (no element can be compared);
    `detection` the smallest relative error in it that these points and tolerances catch.
    """

    name: str
    role: str  # "input", "tap" or "output"
    shape: Shape
    verdict: CheckVerdict | None
    worst: Worst | None = None
    misshapen: Misshapen | None = None
    detection: float | None = None

    @property
    def ok(self) -> bool:
        if self.misshapen is not None:
            return False
        return self.verdict is None or (
            self.verdict.outcome is Outcome.AGREE and HAND not in self.verdict.wrong
        )

    @property
    def checked(self) -> bool:
        return self.verdict is not None or self.misshapen is not None


@dataclass(frozen=True)
class Step:
    """One step of a hand backprop, in backward order: a tapped intermediate's gradient, or
    (the last step) an input's."""

    name: str
    role: str  # "tap" or "input"
    ok: bool
    downstream: bool  # after the first wrong step: may only inherit its error


@dataclass(frozen=True)
class Remainders:
    """The Taylor remainders at one point along one direction: ``steps[k]`` is h and
    ``remainders[k]`` the norm of f(x + h·v) - f(x) - h·(the hand's derivative along v)
    (for an hvp: of the gradient); `floor` the rounding level below which they say nothing."""

    steps: np.ndarray
    remainders: np.ndarray
    floor: float


@dataclass(frozen=True)
class Taylor:
    """The Taylor-remainder test of one hand derivative: the slope of log(remainder) against
    log(h) at the smallest steps above rounding (2: the derivative is right; 1: wrong), the
    smallest over the points; None when no step rises above rounding (`why` says so)."""

    slope: float | None
    points: int
    why: str = ""

    @property
    def right(self) -> bool | None:
        if self.slope is None:
            return None
        if self.slope >= 1.75:
            return True
        if self.slope <= 1.25:
            return False
        return None


@dataclass
class FunctionDiagnosis:
    """How a wrong hand derivative is wrong: `summary` one sentence, `pattern` a short key
    (None: no simple pattern), `arrays` a sentence per wrong array."""

    summary: str
    pattern: str | None
    arrays: dict[str, str] = field(default_factory=dict)


@dataclass
class DerivativeReport:
    """Everything about one hand derivative (vjp, jvp, gradient or hvp)."""

    kind: Derivative
    hand: dict[int, HandResult]
    engines: dict[str, EngineRun]
    arrays: dict[str, ArrayVerdict] = field(default_factory=dict)
    outcome: Outcome = Outcome.AGREE
    steps: list[Step] = field(default_factory=list)
    diagnosis: FunctionDiagnosis | None = None
    remainders: dict[int, Remainders] = field(default_factory=dict)
    taylor: Taylor | None = None
    # the exact engine whose values in the check's dtype and in the other one set each array's
    # scale (its largest value, and its measured rounding), and those other values
    scale_engine: str | None = None
    twin: dict[int, Derivatives] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.AGREE

    @property
    def first_wrong_step(self) -> str | None:
        return next((s.name for s in self.steps if not s.ok), None)

    @property
    def detection(self) -> float | None:
        """The weakest array's detection power: the smallest relative error caught in every
        array at once."""
        known = [a.detection for a in self.arrays.values() if a.detection is not None]
        return max(known) if known else None

    @property
    def ran(self) -> list[str]:
        return [n for n, e in self.engines.items() if e.ran]

    @property
    def exact(self) -> list[str]:
        return [n for n, e in self.engines.items() if e.ran and e.trust is Trust.EXACT]


@dataclass
class FunctionReport:
    """A whole check: the problem, the settings it ran with, the points and each derivative."""

    problem: Problem
    dtype: np.dtype
    seed: int
    tolerance: Tolerance
    points: list[Point]
    engines: list[str]  # the engines asked for (or every engine that differentiates functions)
    unavailable: dict[str, str]  # engine -> why it cannot run here (a package missing)
    derivatives: dict[Derivative, DerivativeReport] = field(default_factory=dict)
    outcome: Outcome = Outcome.AGREE
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.AGREE

    @property
    def output_shape(self) -> Shape:
        return tuple(self.points[0].output.shape)
