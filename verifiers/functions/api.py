"""The Python API of function checks: :func:`check_function` and :func:`check_problem`.

    from verifiers import check_function

    def forward(x, *, xp):
        return xp.tanh(x)

    def vjp(g, x):
        return {"x": g * (1 - np.tanh(x) ** 2)}

    report = check_function(forward, {"x": (3, 4)}, vjp=vjp)
    report.ok, report.derivatives["vjp"].arrays["x"].worst

The command line ``python -m verifiers.check FILE.py`` loads the file into a
:class:`~verifiers.functions.problem.Problem` and calls :func:`check_problem`, like this module.
The steps: draw the points and run forward on numpy (:mod:`~verifiers.functions.run`), compute
every derivative, judge (:mod:`~verifiers.functions.judge`), and, for a wrong hand derivative,
compute what the diagnosis needs and diagnose (:mod:`~verifiers.functions.diagnosis`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from verifiers.functions import run
from verifiers.functions.diagnosis import diagnose
from verifiers.functions.judge import judge
from verifiers.functions.problem import Derivative, Problem, problem_from_functions
from verifiers.functions.results import FunctionReport
from verifiers.results import Outcome

__all__ = ["check_function", "check_problem"]


def check_function(
    forward: Callable[..., Any],
    inputs: Mapping[str, Any] | Callable[..., Mapping[str, Any]],
    *,
    vjp: Callable[..., Any] | None = None,
    jvp: Callable[..., Any] | None = None,
    gradient: Callable[..., Any] | None = None,
    hvp: Callable[..., Any] | None = None,
    constants: Iterable[str] = (),
    points: int = run.DEFAULT_POINTS,
    seed: int = 0,
    dtype: str = "float64",
    engines: Iterable[str] | None = None,
) -> FunctionReport:
    """Check the hand derivatives given of ``forward(*inputs, xp)`` against every engine.

    `inputs` maps each of forward's inputs to its shape (values drawn from a standard normal
    distribution) or is a function ``inputs(rng) -> {name: array}``. Any of `vjp` (``vjp(g,
    *inputs) -> dict``), `jvp` (``jvp(t, *inputs) -> array``), `gradient` (``gradient(*inputs)
    -> dict``, for a scalar output) and `hvp` (``hvp(v, *inputs) -> dict``) is checked at
    `points` random points (seeded by `seed`) in `dtype` against `engines` (None: every engine
    installed that differentiates functions). `constants` names floating-point inputs that are
    data, not differentiated (integers and booleans always are). See
    :mod:`verifiers.functions.problem`.

    Returns the report; ``report.ok`` is the verdict. Raises
    :class:`~verifiers.functions.problem.CheckFileError` (a :class:`~verifiers.UsageError`) for
    a problem that cannot be checked, a hand derivative that raises or returns a wrong shape
    included (:class:`~verifiers.functions.problem.HandDerivativeError`).
    """
    hand = {Derivative.VJP: vjp, Derivative.JVP: jvp, Derivative.GRADIENT: gradient,
            Derivative.HVP: hvp}  # fmt: skip
    problem = problem_from_functions(forward, inputs, hand, constants=tuple(constants))
    return check_problem(problem, points=points, seed=seed, dtype=dtype, engines=engines)


def check_problem(
    problem: Problem,
    *,
    points: int = run.DEFAULT_POINTS,
    seed: int = 0,
    dtype: str = "float64",
    engines: Iterable[str] | None = None,
) -> FunctionReport:
    """Check a :class:`~verifiers.functions.problem.Problem` (see :func:`check_function`)."""
    report = run.start_report(
        problem, points, seed, dtype, None if engines is None else tuple(engines)
    )
    run.compute(report)
    judge(report)
    for entry in report.derivatives.values():
        if entry.outcome is Outcome.FORMULA_WRONG:
            entry.diagnosis = diagnose(report, entry, run.diagnostic_values(report, entry))
    for entry in report.derivatives.values():
        for name, engine in entry.engines.items():
            if engine.status.value == "skipped" and name not in report.unavailable:
                report.notes.append(f"{name} left out of the {entry.kind.value}: {engine.reason}")
    return report
