"""The JSON report: the full record of a run, every value at full precision.

Floats are written with ``repr`` precision (they round-trip); values that are not finite become
``null``. Long loss histories are thinned to HISTORY_POINTS points, ends kept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from verifiers.compare import Difference
from verifiers.results import CheckVerdict, EngineReport, Failure, Report

__all__ = ["HISTORY_POINTS", "to_json"]


def _number(value: Any) -> float | None:
    """A float for JSON: full precision (repr round-trips); None where it is not finite."""
    value = float(value)
    return value if math.isfinite(value) else None


def _nested(array: np.ndarray) -> Any:
    """Nested lists of JSON numbers, shaped like `array`."""
    if np.ndim(array) == 0:
        return _number(array)
    return [_nested(part) for part in array]


def _theta(theta: np.ndarray | None, report: Report, params: bool = False) -> dict[str, Any] | None:
    """θ by parameter name: ``b`` and ``w`` for the (b, w) models; ``params``, a dict of every
    parameter by name, for the other models (and for every model's gradients)."""
    if theta is None:
        return None
    model = report.model
    named = {n: _nested(np.asarray(v)) for n, v in model.unflatten(np.asarray(theta)).items()}
    if not model.linear:
        return {"params": named}
    return {"b": named["b"], "w": named["w"], **({"params": named} if params else {})}


def _difference(difference: Difference | None) -> dict[str, Any] | None:
    if difference is None:
        return None
    return {
        "where": difference.where,
        "actual": _number(difference.actual),
        "expected": _number(difference.expected),
        "absolute": _number(difference.absolute),
        "relative": _number(difference.relative),
        "allowed": _number(difference.allowed),
        "ok": difference.ok,
    }


# The JSON report keeps at most this many points of each loss history (evenly spaced, ends kept).
HISTORY_POINTS = 1001


def _history(losses: np.ndarray) -> dict[str, list]:
    """Iterations and losses along the descent, thinned to HISTORY_POINTS for long descents."""
    steps = len(losses) - 1
    iterations = np.unique(
        np.linspace(0, steps, min(HISTORY_POINTS, steps + 1)).round().astype(int)
    )
    return {
        "iteration": iterations.tolist(),
        "loss": [_number(losses[k]) for k in iterations],
    }


def _engine_json(entry: EngineReport, report: Report) -> dict[str, Any]:
    result: dict[str, Any] = {
        "status": entry.status.value,
        "reason": entry.reason,
        "device": entry.device,
        "trust": entry.trust.value,
        "under_test": entry.under_test,
        "setup_seconds": entry.setup_seconds,
    }
    start = entry.start()
    if start is not None:
        result["gradient"] = {
            "loss": _number(start.loss),
            **_theta(start.gradient, report, params=True),
        }
        result["checks"] = [
            {
                "point": report.points[i].label,
                "loss": _number(e.loss),
                **_theta(e.gradient, report, True),
            }
            for i, e in sorted(entry.evaluations.items())
        ]
        result["checked_points"] = entry.checked_points
        result["vs_consensus"] = _difference(entry.vs_consensus)
        result["vs_manual"] = _difference(entry.vs_manual)
        result["vs_numeric"] = _difference(entry.vs_numeric)
    if entry.hessian is not None:
        result["hessian"] = [[_number(v) for v in row] for row in entry.hessian]
        result["vs_reference_hessian"] = _difference(entry.vs_reference_hessian)
    if entry.trajectory is not None:
        t = entry.trajectory
        result["descent"] = {
            **_theta(t.theta, report),
            "loss": _number(t.losses[-1]),
            "seconds": t.seconds,
            "steps": t.steps,
            "diverged_at": t.diverged_at,
            "capped_iterations": entry.capped_iterations,
            "distance_to_optimum": None
            if report.optimum.theta is None
            else _number(np.linalg.norm(t.theta - report.optimum.theta)),
            "loss_history": _history(t.losses),
        }
        result["vs_reference_descent"] = _difference(entry.vs_reference_descent)
    if entry.sharded is not None:
        result["sharded"] = _sharded_json(entry, report)
    return result


def _sharded_json(entry: EngineReport, report: Report) -> dict[str, Any]:
    """The data-parallel run of one engine (--shards) and how it compares with one process."""
    run, comparison = entry.sharded, entry.vs_single_process
    t = run.descent
    return {
        "workers": run.workers,
        "backend": run.backend,
        "device": run.device,
        "shard_rows": run.shard_rows,
        "seconds": run.seconds,
        "gradient": {"loss": _number(run.loss), **_theta(run.gradient, report, params=True)},
        "per_shard": [_shard_json(p, report) for p in run.per_shard],
        "descent": {
            **_theta(t.theta, report),
            "loss": _number(t.losses[-1]),
            "steps": t.steps,
            "diverged_at": t.diverged_at,
            "seconds": t.seconds,
            "loss_history": _history(t.losses),
        },
        "vs_single_process": None
        if comparison is None
        else {
            "gradient": _difference(comparison.gradient),
            "descent": _difference(comparison.descent),
            "ok": comparison.ok,
        },
    }


def _shard_json(part: Any, report: Report) -> dict[str, Any]:
    """One shard's sums at the start: its rows, Σ loss and Σ gradient over them."""
    gradient = _theta(part.gradient_sum, report, params=True)
    return {"rows": part.rows, "loss_sum": _number(part.loss_sum), **gradient}


def _combination_json(check: Any, report: Report) -> dict[str, Any]:
    return {
        "name": check.name,
        "gradient": None if check.gradient is None else _theta(check.gradient, report, True),
        "expected": _theta(check.expected, report, params=True),
        "difference": _difference(check.difference),
        "ok": check.ok,
        "explanation": check.explanation,
        "error": check.error,
    }


def _verdict_json(verdict: CheckVerdict) -> dict[str, Any]:
    return {
        "outcome": verdict.outcome.value,
        "compared": verdict.compared,
        "reference": verdict.reference,
        "trust": {name: trust.value for name, trust in verdict.trust.items()},
        "wrong": verdict.wrong,
        "exact_disagreements": [list(pair) for pair in verdict.disagreeing],
        "not_counted": verdict.unconfirmed,
    }


def _failure_json(failure: Failure) -> dict[str, Any]:
    return {
        "kind": failure.kind.value,
        "message": failure.message,
        "engine": failure.engine,
        "check": None if failure.check is None else failure.check.value,
        "against": failure.against,
        "difference": _difference(failure.difference),
    }


def to_json(report: Report) -> dict[str, Any]:
    """The JSON report as a dict (see the README for its keys)."""
    data, settings, stability = report.data, report.settings, report.stability
    start = report.points[0].theta
    coverage = report.coverage
    return {
        "ok": report.ok,
        "outcome": report.outcome.value,
        "data": {
            "path": data.path,
            "rows": data.rows,
            "features": data.features,
            "dtype": str(data.dtype),
            "header": data.header,
            "delimiter": data.delimiter,
        },
        "model": {
            "name": report.model.name,
            "formula": report.model.formula,
            "parameters": {p.name: list(p.shape) for p in report.model.parameters},
        },
        "settings": {
            **settings.to_json(),
            "lr": report.lr,
            "start": _theta(start, report),
            "rtol": report.tolerance.rtol,
            "atol": report.tolerance.atol,
            "engines": list(report.engines),
        },
        "points": [
            {"label": p.label, "kind": p.kind.value, **_theta(p.theta, report)}
            for p in report.points
        ],
        "coverage": {
            "random": coverage.random,
            "extreme": coverage.extreme,
            "anchored": coverage.anchored,
            "near": coverage.near,
            "magnitudes": [coverage.smallest, coverage.largest],
            "every_orthant": coverage.every_orthant,
            "sign_pairs": coverage.sign_pairs,
            "extremes": coverage.extreme_what,
        },
        "optimum": _theta(report.optimum.theta, report),
        "optimum_name": report.optimum.name,
        "descent_from": report.points[report.descent_from].label,
        "kinks": [
            {
                "point": k.point,
                "derivatives": [report.parameter_names[j] for j in k.components],
                "lower": [_number(v) for v in k.lower],
                "upper": [_number(v) for v in k.upper],
                "moved_to": k.moved_to,
                "outside": {name: report.parameter_names[j] for name, j in k.outside.items()},
            }
            for k in report.kinks
        ],
        "detection": None
        if report.detection is None
        else {name: value for name, value in report.detection.smallest.items()},
        "stability": None
        if stability is None
        else {
            # Those within rounding of zero are 0, as the report says; the arithmetic's own are
            # in computed_eigenvalues, and how far rounding can move one in eigenvalue_rounding.
            "eigenvalues": [_number(v) for v in stability.eigenvalues],
            "computed_eigenvalues": None
            if stability.computed is None
            else [_number(v) for v in stability.computed],
            "eigenvalue_rounding": _number(stability.rounding),
            "condition_number": _number(stability.condition_number),
            "max_stable_lr": _number(stability.max_stable_lr),
            "stable": stability.stable,
            "iterations_to_optimum": stability.iterations_to_optimum,
            "hessian_constant": stability.constant,
            "where": stability.where,
        },
        "compared": report.compared,
        "verdicts": {c.value: _verdict_json(v) for c, v in report.verdicts.items()},
        "engines": {name: _engine_json(e, report) for name, e in report.engines.items()},
        "diagnosis": None
        if report.diagnosis is None
        else {
            "summary": report.diagnosis.summary,
            "pattern": report.diagnosis.pattern,
            "parameters": report.diagnosis.parameters,
            "first_wrong_step": report.diagnosis.first_wrong_step,
        },
        "combinations": [_combination_json(c, report) for c in report.combinations],
        "notes": report.notes,
        "failures": [_failure_json(f) for f in report.failures],
    }
