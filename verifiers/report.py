"""Turn a :class:`~verifiers.api.Report` into the JSON document and the printed tables."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from verifiers.api import hessian_label
from verifiers.compare import Difference
from verifiers.results import EngineReport, Report

__all__ = ["print_report", "to_json"]


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
        "status": entry.status,
        "reason": entry.reason,
        "device": entry.device,
        "setup_seconds": entry.setup_seconds,
    }
    if entry.evaluations:
        start = entry.evaluations[0]
        result["gradient"] = {
            "loss": _number(start.loss),
            **_theta(start.gradient, report, params=True),
        }
        result["checks"] = [
            {"point": point.label, "loss": _number(e.loss), **_theta(e.gradient, report, True)}
            for point, e in zip(report.points, entry.evaluations, strict=True)
            if e is not None
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
    return result


def to_json(report: Report) -> dict[str, Any]:
    """The JSON report as a dict (see the README for its keys)."""
    data, settings, stability = report.data, report.settings, report.stability
    start = report.points[0].theta
    return {
        "ok": report.ok,
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
        "points": [{"label": p.label, **_theta(p.theta, report)} for p in report.points],
        "optimum": _theta(report.optimum.theta, report),
        "stability": None
        if stability is None
        else {
            "eigenvalues": [_number(v) for v in stability.eigenvalues],
            "condition_number": _number(stability.condition_number),
            "max_stable_lr": _number(stability.max_stable_lr),
            "stable": stability.stable,
            "iterations_to_optimum": stability.iterations_to_optimum,
            "hessian_constant": stability.constant,
            "where": stability.where,
        },
        "compared": report.compared,
        "engines": {name: _engine_json(e, report) for name, e in report.engines.items()},
        "diagnosis": None
        if report.diagnosis is None
        else {
            "summary": report.diagnosis.summary,
            "pattern": report.diagnosis.pattern,
            "parameters": report.diagnosis.parameters,
        },
        "notes": report.notes,
        "failures": report.failures,
    }


def _fmt(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else str(float(value))


# The tables show every entry of θ up to this many (of the Hessian, up to TABLE_HESSIAN_ENTRIES);
# beyond, a norm and the largest entry, and the JSON report has every value.
TABLE_ENTRIES = 6
TABLE_HESSIAN_ENTRIES = 3


def _vector_cells(values: np.ndarray, names: list[str]) -> list[str]:
    """Every entry, or for long vectors the norm and the largest entry with its name."""
    if len(names) <= TABLE_ENTRIES:
        return [_fmt(v) for v in values]
    largest = int(np.argmax(np.abs(values)))
    return [f"{np.linalg.norm(values):.6g}", f"{_fmt(values[largest])} ({names[largest]})"]


def _short_difference(difference: Difference | None) -> str:
    if difference is None:
        return "-"
    mark = "" if difference.ok else " ✗"
    return f"{difference.relative:.1e} ({difference.where}){mark}"


def print_report(report: Report, console: Console, quiet: bool = False) -> None:
    """Print the tables (unless `quiet`), then the notes and the verdict."""
    if not quiet:
        _print_tables(report, console)
    for note in report.notes:
        console.print(note if note.startswith("warning:") else f"note: {note}", highlight=False)
    if report.diagnosis is not None:
        console.print(f"diagnosis: {report.diagnosis.summary}", highlight=False)
    if report.ok:
        console.print(verdict(report), style="bold green", highlight=False)
    else:
        for failure in report.failures:
            console.print(f"MISMATCH: {failure}", style="bold red", highlight=False)


def verdict(report: Report) -> str:
    """The one-line verdict of a run that agrees, saying what was compared."""
    gradient = report.compared.get("gradient", [])
    points = len(report.points)
    checks = [f"the gradient at {points} check point{'s' if points != 1 else ''}"]
    if report.compared.get("Hessian"):
        checks.append(f"the Hessian ({len(report.compared['Hessian'])} engines)")
    if report.compared.get("descent"):
        steps = report.settings.iterations
        checks.append(f"the descent ({steps} iteration{'s' if steps != 1 else ''})")
    under_test = report.under_test
    if under_test is not None:
        others = [n for n in gradient if n != under_test.name]
        return (
            f"OK: your formula ({report.settings.manual or 'the given formula'}) agrees with "
            f"{', '.join(others)}: " + ", ".join(checks)
        )
    return f"OK: all {len(gradient)} engines agree ({', '.join(gradient)}): " + ", ".join(checks)


def _print_tables(report: Report, console: Console) -> None:
    data = report.data
    names = report.parameter_names
    console.print(
        f"[bold]{data.path}[/bold]: {data.rows} rows, {data.features} feature(s), {data.dtype}; "
        f"{report.model.formula}",
        highlight=False,
    )
    labels = ", ".join(p.label for p in report.points)
    tol = report.tolerance
    summary = "" if len(names) <= TABLE_ENTRIES else (
        f"; θ has {len(names)} entries: the tables show norms and largest entries, --json "
        "gives every one"
    )  # fmt: skip
    gradients = Table(
        title=f"Loss and gradient at the start; every engine checked at {labels} "
        f"(rtol {tol.rtol:.2g}, atol {tol.atol:.2g} × Σ|terms|){summary}",
        title_justify="left",
    )
    vector_columns = [f"dL/d{n}" for n in names] if not summary else ["|∇L|", "largest |dL/dθ|"]
    for column in ["engine", "device", "loss", *vector_columns]:
        gradients.add_column(column)
    gradients.add_column("worst vs manual (relative)")
    gradients.add_column("worst vs numeric (relative)")
    gradients.add_column("status")
    for entry in report.engines.values():
        if not entry.evaluations:
            gradients.add_row(
                entry.name, entry.device or "-", *["-"] * (len(vector_columns) + 3),
                _status(entry),
            )  # fmt: skip
            continue
        start = entry.evaluations[0]
        gradients.add_row(
            entry.name,
            entry.device,
            _fmt(start.loss),
            *_vector_cells(start.gradient, names),
            _short_difference(entry.vs_manual),
            _short_difference(entry.vs_numeric),
            _status(entry),
        )
    console.print(gradients)

    stability = report.stability
    if stability is not None:
        _print_hessians(report, console, names)
    _print_descents(report, console, names)


def _print_hessians(report: Report, console: Console, names: list[str]) -> None:
    stability = report.stability
    where = "constant for this loss" if stability.constant else stability.where
    eigenvalues = stability.eigenvalues
    shown = eigenvalues if len(eigenvalues) <= TABLE_ENTRIES else eigenvalues[[0, -1]]
    hessians = Table(
        title=f"Hessian ({where}): eigenvalues "
        + (", " if len(shown) == len(eigenvalues) else " to ").join(f"{v:.6g}" for v in shown)
        + f"; condition number {stability.condition_number:.4g}; "
        f"largest stable lr 2/λ_max = {stability.max_stable_lr:.6g}",
        title_justify="left",
    )
    hessians.add_column("engine")
    pairs = [(i, j) for i in range(len(names)) for j in range(i, len(names))]
    entries = len(names) <= TABLE_HESSIAN_ENTRIES
    columns = [hessian_label(names[i], names[j]) for i, j in pairs] if entries else [
        "trace", "largest |entry|"
    ]  # fmt: skip
    for column in columns:
        hessians.add_column(column)
    hessians.add_column("worst vs consensus (relative)")
    for entry in report.engines.values():
        if entry.hessian is not None:
            H = entry.hessian
            cells = (
                [f"{H[i, j]:.15g}" for i, j in pairs]
                if entries
                else [f"{np.trace(H):.15g}", f"{np.abs(H).max():.15g}"]
            )
            hessians.add_row(entry.name, *cells, _short_difference(entry.vs_reference_hessian))
    console.print(hessians)


def _print_descents(report: Report, console: Console, names: list[str]) -> None:
    settings, stability = report.settings, report.stability
    entries = len(names) <= TABLE_ENTRIES
    start = (
        ", ".join(f"{n}={v:g}" for n, v in zip(names, report.points[0].theta, strict=True))
        if entries
        else f"|θ| = {np.linalg.norm(report.points[0].theta):.4g}"
    )
    descents = Table(
        title=f"Gradient descent: lr {report.lr:g}, {settings.iterations} iterations from {start}",
        title_justify="left",
    )
    columns = names if entries else ["|θ|"]
    for column in ["engine", *columns, "loss", "|θ - θ*|", "seconds", "worst vs consensus"]:
        descents.add_column(column)
    for entry in report.engines.values():
        t = entry.trajectory
        if t is None:
            continue
        steps = f" after {t.steps} steps" if t.steps != settings.iterations else ""
        diverged = f" (diverged at {t.diverged_at})" if t.diverged_at is not None else ""
        descents.add_row(
            entry.name,
            *((_fmt(v) for v in t.theta) if entries else [f"{np.linalg.norm(t.theta):.6g}"]),
            _fmt(t.losses[-1]) + steps + diverged,
            "-"
            if report.optimum.theta is None
            else f"{np.linalg.norm(t.theta - report.optimum.theta):.4g}",
            f"{t.seconds:.3f}",
            _short_difference(entry.vs_reference_descent),
        )
    console.print(descents)
    if report.optimum.theta is None or stability is None:
        return
    theta = report.optimum.theta
    optimum = (
        ", ".join(f"{n} = {v!r}" for n, v in zip(names, theta.tolist(), strict=True))
        if entries
        else f"|θ*| = {np.linalg.norm(theta):.6g} (every entry in --json)"
    )
    note = report.optimum.note or "optimum"
    line = f"{note[:1].upper()}{note[1:]} θ*: {optimum}"
    if stability.constant:  # the iterations follow from H only when H is the same everywhere
        reach = stability.iterations_to_optimum
        line += (
            f"; at lr {report.lr:g}, gradient descent needs "
            + (f"{reach} iterations" if reach is not None else "forever (it never gets there)")
            + " to come within 1e-6 of it."
        )
    console.print(line, highlight=False, markup=False)


def _status(entry: EngineReport) -> str:
    if entry.status == "skipped":
        return f"skipped: {entry.reason}"
    if entry.status == "error":
        return f"error: {entry.reason}"
    return entry.status
