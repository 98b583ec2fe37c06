"""The engines: one module each, behind the interface in :mod:`verifiers.engines.base`, and one
row each in :data:`ENGINES`.

A row says everything the rest of the tool needs to know about an engine without importing it:
its module, how far its derivatives are trusted, the optional package it needs and how to install
it, whether ``--device cuda`` is meant for it, and the order in which it is preferred as the
reference that the report measures the others against. The command line, the tests and the
benchmarks read this table; adding an engine is its module and one row.

Modules are imported only when their engine is used, so the package works without torch or jax;
an engine whose package is missing raises :class:`EngineUnavailable` with the install command.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from typing import Any

from verifiers.engines.base import Engine, EngineUnavailable, Evaluation, Trajectory
from verifiers.results import Check, Trust

__all__ = [
    "ENGINES",
    "ENGINE_NAMES",
    "FUNCTION_ENGINE_NAMES",
    "Engine",
    "EngineRow",
    "EngineUnavailable",
    "Evaluation",
    "Trajectory",
    "engine_class",
    "function_engine_class",
    "optional_packages",
    "planning_facts",
    "row",
]


@dataclass(frozen=True)
class EngineRow:
    """One engine, as the registry knows it before its module is imported."""

    name: str
    module: str  # ``module:Class`` under verifiers.engines
    summary: str  # one line for --help and the README
    # How its derivatives are computed: EXACT (reverse or forward mode, the complex step, a hand
    # formula) decide a verdict; APPROXIMATE (central differences) only confirm. An engine whose
    # method is chosen at run time says so per check (`Engine.trust`); this is its usual one.
    trust: Trust = Trust.EXACT
    package: str | None = None  # the optional package it needs
    install: str | None = None  # how to install that package
    follows_device: bool = False  # --device cuda is a request for this engine
    # Preference as the reference of each check (lower first; ties: table order). Independent
    # engines first for the gradient, the closed form for the Hessian, the reference example's
    # own arithmetic for the descent; the formula under test is never the reference.
    prefer: tuple[int, int, int] = (50, 50, 50)
    # Its cost, for the plan's budgets: seconds per unit of the model's work (rows × operations
    # per row) for one loss and gradient, and per evaluation whatever the size. Fixed rates,
    # measured on a busy 2-core machine and rounded up, so that the same run gets the same plan.
    seconds_per_work: float = 4e-9
    seconds_per_call: float = 5e-4
    # `python -m verifiers.check`: the class (``module:Class``) that differentiates any function
    # of named arrays, and the derivatives it computes ("vjp" with tapped intermediates, "jvp",
    # "hvp"; a gradient is the vjp of a scalar). None: the engine checks models only.
    functions: str | None = None
    derivatives: tuple[str, ...] = ()

    def preference(self, check: Check) -> int:
        return self.prefer[(Check.GRADIENT, Check.HESSIAN, Check.DESCENT).index(check)]


ENGINES: tuple[EngineRow, ...] = (
    EngineRow(
        "loop",
        "loop:LoopEngine",
        "the hand formulas accumulated point by point, exactly as the reference example",
        prefer=(40, 50, 0),
    ),
    EngineRow(
        "manual",
        "manual:ManualEngine",
        "the hand formulas (or yours, with --manual) vectorised with numpy",
        prefer=(90, 0, 90),
        seconds_per_work=2.5e-9,
        seconds_per_call=1e-4,
    ),
    EngineRow(
        "minigrad",
        "minigrad:MinigradEngine",
        "this project's reverse-mode engine (minigrad/), the loss run on its namespace",
        prefer=(10, 10, 20),
        seconds_per_work=3e-9,
        functions="minigrad:MinigradFunctions",
        derivatives=("vjp", "jvp", "hvp"),
    ),
    EngineRow(
        "torch",
        "torch:TorchEngine",
        "torch.autograd (CUDA when available, else CPU)",
        package="torch",
        install='pip install "torch==2.13.0"',
        follows_device=True,
        prefer=(20, 20, 30),
        seconds_per_work=2.5e-9,
        seconds_per_call=1e-3,
        functions="torch:TorchFunctions",
        derivatives=("vjp", "jvp", "hvp"),
    ),
    EngineRow(
        "jax",
        "jax:JaxEngine",
        "jax.grad with x64 switched on for its own calls; the descent as one jitted loop",
        package="jax",
        install="pip install jax jaxlib",
        prefer=(30, 30, 40),
        seconds_per_work=1.5e-9,
        seconds_per_call=2e-4,
        functions="jax:JaxFunctions",
        derivatives=("vjp", "jvp", "hvp"),
    ),
    EngineRow(
        "autograd",
        "autograd:AutogradEngine",
        "HIPS autograd, the original reverse mode on numpy, the loss run on autograd.numpy",
        package="autograd",
        install="pip install autograd",
        prefer=(35, 35, 45),
        seconds_per_call=1e-3,
        functions="autograd:AutogradFunctions",
        derivatives=("vjp", "jvp", "hvp"),
    ),
    EngineRow(
        "numeric",
        "numeric:NumericEngine",
        "finite differences of the loss alone (complex step, or central differences)",
        prefer=(0, 40, 10),
        functions="numeric:NumericFunctions",
        derivatives=("vjp", "jvp", "hvp"),
    ),
)
ENGINE_NAMES: tuple[str, ...] = tuple(r.name for r in ENGINES)
# The engines that differentiate any function (python -m verifiers.check), in the table's order.
FUNCTION_ENGINE_NAMES: tuple[str, ...] = tuple(r.name for r in ENGINES if r.functions)
_ROWS = {r.name: r for r in ENGINES}


def row(name: str) -> EngineRow:
    """The registry row of engine `name`."""
    if name not in _ROWS:
        raise ValueError(f"unknown engine {name!r}; choose from {', '.join(ENGINE_NAMES)}")
    return _ROWS[name]


def engine_class(name: str) -> type[Engine]:
    """The Engine subclass for `name`, importing its module (and its package) now."""
    entry = row(name)
    module, cls = entry.module.split(":")
    try:
        loaded = importlib.import_module(f"verifiers.engines.{module}")
    except ImportError as error:
        if entry.package is None or (error.name or "").split(".")[0] != entry.package:
            raise
        raise EngineUnavailable(
            name, f"the {entry.package} package is not installed", entry.install
        ) from None
    engine: type[Engine] = getattr(loaded, cls)
    return engine


class _Declared:
    """What the plan needs of an engine whose module imports a large package (torch, jax),
    read from its row instead: checking that the package is there and estimating a cost must
    not load it into a process that may never run the engine (the worker may). Such engines
    differentiate any model's loss, compute Hessians and take no formula of the user's."""

    accepts_formula = False
    computes_hessian = True
    descent_seconds = None
    method_decided_at_run_time = False

    def __init__(self, entry: EngineRow) -> None:
        self.name = entry.name
        self.row = entry

    @staticmethod
    def unsupported(model: Any) -> str | None:
        return None

    def estimate_seconds(self, model: Any) -> float:
        return float(self.row.seconds_per_work * model.work() + self.row.seconds_per_call)

    @staticmethod
    def hessian_evaluations(model: Any) -> float:
        return 2.0 * float(model.size)


def planning_facts(name: str) -> Any:
    """The engine class, or for an engine whose package is large (and not yet loaded) the facts
    its row declares; raises EngineUnavailable when its package is not installed."""
    entry = row(name)
    if entry.package is None or entry.package in sys.modules:
        return engine_class(name)
    if importlib.util.find_spec(entry.package) is None:
        raise EngineUnavailable(
            name, f"the {entry.package} package is not installed", entry.install
        )
    return _Declared(entry)


def optional_packages() -> dict[str, str]:
    """Engine name -> the optional package it needs, for the engines that need one."""
    return {r.name: r.package for r in ENGINES if r.package is not None}


def function_engine_class(name: str) -> type:
    """The FunctionEngine subclass of engine `name` (see :class:`EngineRow`'s ``functions``),
    importing its module (and its package) now; EngineUnavailable when the package is missing."""
    entry = row(name)
    if entry.functions is None:
        raise ValueError(f"engine {name!r} differentiates models only, not any function")
    module, cls = entry.functions.split(":")
    try:
        loaded = importlib.import_module(f"verifiers.engines.{module}")
    except ImportError as error:
        if entry.package is None or (error.name or "").split(".")[0] != entry.package:
            raise
        raise EngineUnavailable(
            name, f"the {entry.package} package is not installed", entry.install
        ) from None
    found: type = getattr(loaded, cls)
    return found
