"""Locate a wrong hand backprop of a model to its step (``--manual`` for ``--model mlp``).

A model that documents its backprop's intermediates (``Model.intermediates``, e.g. mlp's
``dZ2``, ``dA1``, ``dZ1``) lets a ``--manual`` formula return them beside the gradients. When the
gradient is wrong, the model's loss becomes a function check: its parameters at the check point
where the formula is most wrong, the data as constants, the intermediates tapped
(``Model.tapped_loss``), and the formula's gradient and intermediates there as the hand
``gradient``. :func:`verifiers.functions.api.check_problem` then judges each step against every
function engine of the run and names the first wrong one, which is added to the model's
diagnosis. Nothing new is judged here: this module only builds the problem and reads the answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from verifiers.engines import row
from verifiers.functions.problem import CheckFileError, Derivative, Problem
from verifiers.judge import worst_against_exact
from verifiers.results import Check, Report, Status

__all__ = ["locate_step"]

# Finite differences take one evaluation per element: with more elements (parameters and
# intermediates) than this, the numeric engine is left out of the location.
NUMERIC_ELEMENTS = 5_000


def locate_step(report: Report, formula: Any) -> None:
    """Add the first wrong step of the formula under test's backprop to ``report.diagnosis``
    (``formula`` is the manual engine that ran it); nothing when it returned no intermediates."""
    model = report.model
    steps = getattr(model, "intermediates", ())
    kept = getattr(formula, "steps", {})
    if not steps or not kept or report.diagnosis is None:
        return
    index = _worst_point(report, formula.name)
    theta = report.points[index].theta
    returned = kept.get(np.asarray(theta, dtype=np.float64).tobytes())
    if returned is None:
        return
    from verifiers.functions.api import check_problem

    mine = report.engines[formula.name].evaluations[index].gradient
    params = model.unflatten(np.asarray(theta, dtype=np.float64))
    gradient = model.unflatten(np.asarray(mine, dtype=np.float64))
    names = [p.name for p in model.parameters]
    data = {"X": model.data.X, "y": model.data.y}

    def forward(X, y, *args, xp, tap):
        return model.tapped_loss(dict(zip(names, args, strict=True)), X, y, xp, tap)

    def hand(*_: Any) -> dict[str, Any]:
        taps = {k.removeprefix("d"): v for k, v in returned.items()}
        return {**gradient, **taps}

    problem = Problem(
        forward=forward,
        names=("X", "y", *names),
        inputs=lambda rng: {**data, **params},
        hand={Derivative.GRADIENT: hand},
        label=formula.formula_name,
        takes_tap=True,
        data=frozenset(data),
    )
    engines = _engines(report, sum(np.size(v) for v in returned.values()) + theta.size)
    try:
        found = check_problem(problem, points=1, dtype=str(model.data.dtype), engines=engines)
    except CheckFileError as error:  # the intermediates have the wrong shapes, or cannot be read
        report.notes.append(f"the backprop's intermediates cannot be checked: {error}")
        return
    entry = found.derivatives[Derivative.GRADIENT]
    first = entry.first_wrong_step
    diagnosis = report.diagnosis
    if first is None:
        return
    tapped = {k.removeprefix("d") for k in returned}
    label = f"d{first}" if first in tapped else f"dL/d{first}"
    right = [f"d{s.name}" for s in entry.steps if s.role == "tap" and s.ok and not s.downstream]
    where = report.points[index].label
    text = f"the first wrong step of the backprop is {label} (at {where}"
    listed = right[0] if len(right) == 1 else ", ".join(right[:-1]) + f" and {right[-1]}"
    text += f"; {listed} {'is' if len(right) == 1 else 'are'} right)" if right else ")"
    diagnosis.summary = f"{diagnosis.summary}; {text}"
    diagnosis.first_wrong_step = label
    diagnosis.parameters[label] = text
    if entry.diagnosis is not None and first in tapped:
        diagnosis.parameters[label] += f": {entry.diagnosis.arrays.get(first, '')}".rstrip(": ")


def _worst_point(report: Report, name: str) -> int:
    """The check point of the formula's worst gradient difference (the start when unknown)."""
    verdict = report.verdicts.get(Check.GRADIENT)
    found = worst_against_exact(verdict, name) if verdict is not None else None
    if found is not None:
        for i, point in enumerate(report.points):
            if found[1].where.endswith(f" at {point.label}"):
                return i
    return 0


def _engines(report: Report, elements: int) -> list[str]:
    """The run's engines that differentiate functions and ran (numeric only when small)."""
    names = []
    for name, entry in report.engines.items():
        if row(name).functions is None or entry.status not in (Status.OK, Status.MISMATCH):
            continue
        if name == "numeric" and elements > NUMERIC_ELEMENTS:
            continue
        names.append(name)
    return names
