"""What a run found: the data types the report, the JSON and the plots read.

:func:`verifiers.api.verify` fills these in; nothing here computes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from verifiers.compare import Difference, Tolerance
from verifiers.data import Dataset
from verifiers.engines.base import Evaluation, Trajectory
from verifiers.settings import Settings

if TYPE_CHECKING:
    from verifiers.diagnosis import Diagnosis
    from verifiers.distributed import CombinationCheck, ShardedComparison, ShardedResult
    from verifiers.models.base import Model, Optimum
    from verifiers.stability import Stability

__all__ = ["CheckPoint", "EngineReport", "Report"]


@dataclass
class CheckPoint:
    """A parameter vector θ at which every engine's loss and gradient are compared."""

    label: str
    theta: np.ndarray


@dataclass
class EngineReport:
    """What one engine computed and how it compared."""

    name: str
    status: str = "ok"  # ok | skipped | mismatch | error
    reason: str = ""
    device: str = ""
    under_test: bool = False  # runs the user's formula
    setup_seconds: float = 0.0
    evaluations: list[Evaluation | None] = field(default_factory=list)  # None: not checked there
    hessian: np.ndarray | None = None
    trajectory: Trajectory | None = None
    capped_iterations: int | None = None  # set when the descent was shortened on purpose
    # gradients: this engine's worst difference against each other engine, and the consensus's
    against: dict[str, Difference] = field(default_factory=dict)
    vs_consensus: Difference | None = None
    vs_reference_hessian: Difference | None = None
    vs_reference_descent: Difference | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sharded: ShardedResult | None = None  # the data-parallel run (--shards)
    vs_single_process: ShardedComparison | None = None  # and how it compares
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ran(self) -> bool:
        return self.status in ("ok", "mismatch")

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
        return sum(e is not None for e in self.evaluations)


@dataclass
class Report:
    """Everything a run found; ``ok`` is the verdict."""

    data: Dataset
    settings: Settings
    model: Model
    lr: float
    tolerance: Tolerance
    points: list[CheckPoint]
    engines: dict[str, EngineReport]
    optimum: Optimum
    stability: Stability | None = None
    diagnosis: Diagnosis | None = None
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    compared: dict[str, list[str]] = field(default_factory=dict)  # check -> engines compared
    combinations: list[CombinationCheck] = field(default_factory=list)  # --shards

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def parameter_names(self) -> list[str]:
        """A label for each entry of θ (``b``, ``w``, ``W[0,1]``...)."""
        return self.model.labels()

    @property
    def under_test(self) -> EngineReport | None:
        """The engine running the user's formula, if there is one."""
        return next((e for e in self.engines.values() if e.under_test), None)
