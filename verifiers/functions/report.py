"""The report of a function check: text for the terminal (laid out for its width) and JSON.
Readers of :class:`~verifiers.functions.results.FunctionReport` only.

Numbers that engines compute are shown only to the digits every CPU agrees on (an agreement as
a power-of-ten bound, a disagreement to 10 digits), so a sample in the docs reads the same on
any machine; ``--json`` has every value in full.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from verifiers.functions.judge import array_names
from verifiers.functions.problem import Derivative
from verifiers.functions.results import (
    HAND,
    ArrayVerdict,
    DerivativeReport,
    FunctionReport,
    Worst,
)
from verifiers.report.layout import glue, table, wrap
from verifiers.results import Outcome, Status, Trust
from verifiers.words import listing

__all__ = ["text_lines", "to_json", "verdict_lines"]

INDENT = "  "
WHAT = {
    Derivative.VJP: "reverse mode, gᵀJ for a random cotangent g",
    Derivative.JVP: "forward mode, J·t for random tangents t",
    Derivative.GRADIENT: "of the scalar output",
    Derivative.HVP: "the Hessian times a random v",
}


# ---- words and numbers --------------------------------------------------------------------------
def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _short(value: float, digits: int = 10) -> str:
    value = float(value)
    if math.isnan(value):
        return "nan"
    return f"{value:.{digits}g}"


def _eps(report: FunctionReport) -> float:
    return float(np.finfo(report.dtype).eps)


def _yours(report: FunctionReport, kind: Derivative) -> str:
    where = report.problem.where(report.problem.hand[kind])
    return f"your {kind.value} ({where})"


# ---- the text -----------------------------------------------------------------------------------
def text_lines(report: FunctionReport, width: int, quiet: bool = False) -> list[str]:
    """The whole report (with `quiet`: the notes and the verdict only), as lines."""
    lines: list[str] = []
    if not quiet:
        lines += _heading(report, width)
        for entry in report.derivatives.values():
            lines += ["", *_section(report, entry, width)]
        lines.append("")
    for note in report.notes:
        lines += wrap(note, width, "note: ", INDENT)
    return lines + verdict_lines(report, width)


def _heading(report: FunctionReport, width: int) -> list[str]:
    problem, point = report.problem, report.points[0]
    inputs = ", ".join(
        glue(f"{n} {_shape(point.inputs[n].shape)}" + ("" if n in point.tangents else " data"))
        for n in problem.names
    )
    head = f"{problem.label}: forward({inputs}) -> {_shape(point.output.shape)}, {report.dtype}"
    lines = wrap(head, width, rest=INDENT)
    if point.taps:
        taps = ", ".join(glue(f"{t} {_shape(np.shape(v))}") for t, v in point.taps.items())
        lines += wrap(f"taps: {taps}", width, rest=INDENT)
    hand = ", ".join(k.value for k in problem.hand)
    lines += wrap(f"hand derivatives: {hand}", width, rest=INDENT)
    running = [n for n in report.engines if n not in report.unavailable]
    lines += wrap(f"engines: {', '.join(running)}", width, rest=INDENT)
    for name, why in report.unavailable.items():
        lines += wrap(f"skipped: {name}: {why}", width, rest=INDENT)
    tolerance = report.tolerance
    count = len(report.points)
    drawn = (
        "drawn by the file's inputs(rng)"
        if callable(problem.inputs)
        else "normal draws, every sign of every input, magnitudes from 1e-3 to 3"
    )
    lines += wrap(
        f"checked at {count} point{'s' if count != 1 else ''} of random inputs ({drawn}; seed "
        f"{report.seed}); two values agree when |a - b| <= {tolerance.atol:.2g}·S + "
        f"{tolerance.rtol:.2g}·|b|, S the array's largest value or its measured rounding "
        "(float32 against float64, ÷ ε32), whichever is larger",
        width,
        rest=INDENT,
    )
    return lines


def _difference_cell(array: ArrayVerdict, eps: float) -> str:
    if array.misshapen is not None:
        return f"shape {_shape(array.misshapen.shape)}"
    worst = array.worst
    if worst is None:
        return "—"
    if array.ok:
        # Its size is the CPU's rounding (which kernels sum the products): the same words on
        # every machine, as the tolerance is a model of that rounding.
        if worst.relative <= 1e-3:
            return "within rounding"
        return "within tolerance (values near 0)"
    if math.isfinite(worst.relative):
        return f"{worst.relative:.2g}"
    return f"{_short(worst.difference, 2)} absolute"


def _result_cell(array: ArrayVerdict, entry: DerivativeReport) -> str:
    if array.ok:
        return "agrees"
    if array.verdict is not None and array.verdict.disagreeing:
        return "engines disagree"
    step = next((s for s in entry.steps if s.name == array.name), None)
    if step is not None and step.downstream:
        return "WRONG (after it)"
    if step is not None:
        return "WRONG: first wrong step"
    return "WRONG"


def _section(report: FunctionReport, entry: DerivativeReport, width: int) -> list[str]:
    """One derivative: a row per array (in backward order for a backprop with taps: the last
    tapped intermediate first, the inputs last), the engines, the Taylor slope."""
    kind = entry.kind
    lines = wrap(f"{kind.value} ({WHAT[kind]}): {_yours(report, kind)}", width, rest=INDENT)
    eps = _eps(report)
    names = [s.name for s in entry.steps] or [n for n, _ in array_names(report, entry)]
    rows = []
    for name in names:
        array = entry.arrays[name]
        label = "output" if array.role == "output" else f"d{name}"
        rows.append(
            [
                label + (" (tap)" if array.role == "tap" else ""),
                _shape(array.shape),
                _difference_cell(array, eps),
                _result_cell(array, entry),
            ]
        )
    lines += table(["", "shape", "worst relative difference", "result"], rows, width)
    lines += _detection_lines(entry, width)
    lines += _engine_lines(entry, width)
    lines += _taylor_lines(entry, width)
    return lines


def _power(value: float) -> str:
    return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e+")


def _detection_lines(entry: DerivativeReport, width: int) -> list[str]:
    """The smallest relative error these points catch, for the least sensitive array."""
    known = {n: a.detection for n, a in entry.arrays.items() if a.detection is not None}
    if not known:
        return []
    weakest = max(known, key=lambda n: known[n])
    values = {_power(v) for v in known.values()}
    if len(values) == 1:
        text = f"smallest relative error in your values that these points catch: {values.pop()}"
    else:
        name = "output" if weakest == "output" else f"d{weakest}"
        text = (
            "smallest relative error in your values that these points catch: at most "
            f"{_power(known[weakest])} (the least sensitive: {name}; each one in --json)"
        )
    return wrap(text, width, INDENT, INDENT * 2)


def _engine_lines(entry: DerivativeReport, width: int) -> list[str]:
    ran = entry.ran
    parts = []
    for name in ran:
        run = entry.engines[name]
        bits = []
        if run.trust is Trust.APPROXIMATE:
            bits.append("approximate")
        if name == "numeric" and run.method:
            bits.insert(0, run.method)
        parts.append(f"{name} ({', '.join(bits)})" if bits else name)
    verdicts = [a.verdict for a in entry.arrays.values() if a.verdict is not None]
    reference = next((v.reference for v in verdicts if v.reference), None)
    disagree = sorted({n for v in verdicts for pair in v.disagreeing for n in pair})
    unconfirmed = sorted({n for v in verdicts for n in v.unconfirmed})
    if disagree:
        text = f"engines: {listing(parts)}; the exact engines {listing(disagree)} disagree"
    else:
        text = f"engines: {listing(parts)} agree with one another"
        if reference:
            text += f" (the differences are measured against {reference})"
    if unconfirmed:
        text += (
            f"; {listing(unconfirmed)} differs by more than its own error bound and confirms "
            "nothing"
        )
    lines = wrap(text, width, INDENT, INDENT * 2)
    for name, run in entry.engines.items():
        if (
            run.status is Status.SKIPPED
            and run.reason
            and name not in ran
            and "package" not in run.reason
        ):
            lines += wrap(f"left out: {name}: {run.reason}", width, INDENT, INDENT * 2)
    return lines


def _taylor_lines(entry: DerivativeReport, width: int) -> list[str]:
    taylor = entry.taylor
    if taylor is None:
        return []
    if taylor.slope is None:
        return wrap(f"Taylor remainder: {taylor.why}", width, INDENT, INDENT * 2)
    verdict = {True: "h²: right", False: "h: wrong", None: "neither h² nor h: unclear"}
    return wrap(
        f"Taylor remainder along random directions falls like h^{taylor.slope:.1f} as h "
        f"halves ({verdict[taylor.right]}; at the smallest steps above rounding, the least "
        f"steep of {taylor.points} point{'s' if taylor.points != 1 else ''})",
        width,
        INDENT,
        INDENT * 2,
    )


# ---- the verdict --------------------------------------------------------------------------------
def verdict_lines(report: FunctionReport, width: int) -> list[str]:
    """One verdict per hand derivative, then each one's diagnosis, first wrong step and worst
    element."""
    lines: list[str] = []
    for entry in report.derivatives.values():
        lines += wrap(_verdict(report, entry), width, rest=INDENT)
    for entry in report.derivatives.values():
        if entry.ok:
            continue
        if entry.diagnosis is not None:
            lines += wrap(entry.diagnosis.summary, width, "diagnosis: ", INDENT)
        first = entry.first_wrong_step
        if first is not None:
            before = [s.name for s in entry.steps[: [s.name for s in entry.steps].index(first)]]
            text = f"first wrong step: d{first}"
            if before:
                verb = "is" if len(before) == 1 else "are"
                text += f" ({listing(['d' + b for b in before])} {verb} right)"
            lines += wrap(text, width, rest=INDENT)
        lines += _mismatch_lines(report, entry, width)
    return lines


def _verdict(report: FunctionReport, entry: DerivativeReport) -> str:
    kind = entry.kind
    yours = _yours(report, kind)
    exact = entry.exact
    approximate = [n for n in entry.ran if n not in exact]
    count = len(report.points)
    at = f"at {count} point{'s' if count != 1 else ''}"
    if entry.outcome is Outcome.AGREE:
        text = f"OK: {yours} agrees with {listing(exact)} {at}"
        if approximate:
            text += f" ({listing(approximate)} too, to its own accuracy)"
        return text
    if entry.outcome is Outcome.ENGINES_DISAGREE:
        pairs = sorted(
            {pair for a in entry.arrays.values() if a.verdict for pair in a.verdict.disagreeing}
        )
        a, b = pairs[0]
        return f"NOT OK: the exact engines disagree in the {kind.value}: {a} and {b}"
    wrong = [a for a in entry.arrays.values() if not a.ok]
    against = sorted(
        {
            n
            for a in wrong
            if a.verdict is not None
            for n in a.verdict.exact
            if a.misshapen is not None
            or (HAND in a.verdict.compared and not a.verdict.pairs[HAND, n].ok)
        },
        key=exact.index,
    )
    text = f"WRONG: {yours} disagrees with {listing(against or exact)}"
    if len(against or exact) > 1:
        text += ", which agree with each other"
    order = [s.name for s in entry.steps] or list(entry.arrays)
    wrong.sort(key=lambda a: order.index(a.name) if a.name in order else len(order))
    return text + f" (in {listing([_d(a) for a in wrong])})"


def _d(array: ArrayVerdict) -> str:
    return "its output" if array.role == "output" else f"d{array.name}"


def _mismatch_lines(report: FunctionReport, entry: DerivativeReport, width: int) -> list[str]:
    """The worst element of the first wrong array: where, both values, the difference."""
    wrong = [a for a in entry.arrays.values() if not a.ok and a.worst is not None]
    if entry.first_wrong_step is not None:
        wrong.sort(key=lambda a: a.name != entry.first_wrong_step)
    if not wrong:
        return []
    array = wrong[0]
    worst = array.worst
    index = f"[{', '.join(map(str, worst.index))}]" if worst.index else ""
    what = "output" if array.role == "output" else f"d{array.name}"
    head = f"MISMATCH: {entry.kind.value}: {what}{index} at point {worst.point}"
    digits = 10
    if 0 < worst.relative < 1e-7:
        digits = min(17, 3 - math.floor(math.log10(worst.relative)))
    names = [HAND, worst.engine]
    pad = max(map(len, names))
    lines = wrap(head, width, rest=INDENT)
    lines.append(f"{INDENT}{HAND.ljust(pad)} = {_short(worst.yours, digits)}")
    lines.append(f"{INDENT}{worst.engine.ljust(pad)} = {_short(worst.expected, digits)}")
    relative = f", relative {worst.relative:.2g}" if math.isfinite(worst.relative) else ""
    lines += wrap(
        f"difference {_short(worst.difference, 3)}{relative} (allowed {_short(worst.allowed, 3)})",
        width,
        INDENT,
        INDENT * 2,
    )
    return lines


# ---- JSON ---------------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _worst_json(worst: Worst | None) -> dict[str, Any] | None:
    if worst is None:
        return None
    return {
        "point": worst.point,
        "index": list(worst.index),
        "yours": _number(worst.yours),
        "expected": _number(worst.expected),
        "engine": worst.engine,
        "difference": _number(worst.difference),
        "relative": _number(worst.relative),
        "allowed": _number(worst.allowed),
    }


def _array_json(array: ArrayVerdict) -> dict[str, Any]:
    verdict = array.verdict
    return {
        "ok": array.ok,
        "shape": list(array.shape),
        "worst": _worst_json(array.worst),
        "returned_shape": None if array.misshapen is None else list(array.misshapen.shape),
        "smallest_error_caught": array.detection,
        "reference": None if verdict is None else verdict.reference,
        "engines": {} if verdict is None else {
            name: {
                "ok": difference.ok,
                "relative": _number(difference.relative),
                "where": difference.where,
            }
            for name, difference in verdict.differences.items()
        },
        "exact_disagreements": [] if verdict is None else [list(p) for p in verdict.disagreeing],
    }  # fmt: skip


def _derivative_json(report: FunctionReport, entry: DerivativeReport) -> dict[str, Any]:
    arrays = {n: _array_json(a) for n, a in entry.arrays.items()}
    taylor = entry.taylor
    return {
        "ok": entry.ok,
        "outcome": entry.outcome.value,
        "function": report.problem.where(report.problem.hand[entry.kind]),
        "inputs": {n: arrays[n] for n, a in entry.arrays.items() if a.role == "input"},
        "taps": {n: arrays[n] for n, a in entry.arrays.items() if a.role == "tap"},
        "output": arrays.get("output"),
        "steps": [
            {"name": s.name, "kind": s.role, "ok": s.ok, "after_first_wrong": s.downstream}
            for s in entry.steps
        ],
        "first_wrong_step": entry.first_wrong_step,
        "diagnosis": None
        if entry.diagnosis is None
        else {
            "summary": entry.diagnosis.summary,
            "pattern": entry.diagnosis.pattern,
            "arrays": entry.diagnosis.arrays,
        },
        "smallest_error_caught": entry.detection,
        "taylor": None
        if taylor is None
        else {
            "slope": taylor.slope,
            "right": taylor.right,
            "points": taylor.points,
            "why": taylor.why,
            "remainders": {
                str(k): {
                    "steps": [float(h) for h in r.steps],
                    "remainders": [_number(v) for v in r.remainders],
                    "floor": r.floor,
                }
                for k, r in entry.remainders.items()
            },
        },
        "engines": {
            name: {
                "status": run.status.value,
                "reason": run.reason,
                "trust": run.trust.value,
                "method": run.method,
            }
            for name, run in entry.engines.items()
        },
        "scale_engine": entry.scale_engine,
    }


def to_json(report: FunctionReport) -> dict[str, Any]:
    """The JSON report as a dict: per derivative ``ok``, per input ``inputs.<name>`` with its
    ``ok`` and worst element, the ``diagnosis`` and the ``first_wrong_step``."""
    point = report.points[0]
    return {
        "ok": report.ok,
        "outcome": report.outcome.value,
        "file": report.problem.label,
        "forward": {
            "inputs": {
                n: {"shape": list(point.inputs[n].shape), "dtype": str(point.inputs[n].dtype)}
                for n in report.problem.names
            },
            "output": list(point.output.shape),
            "taps": {t: list(np.shape(v)) for t, v in point.taps.items()},
        },
        "settings": {
            "dtype": str(report.dtype),
            "points": len(report.points),
            "seed": report.seed,
            "engines": report.engines,
            "rtol": report.tolerance.rtol,
            "atol": report.tolerance.atol,
        },
        "unavailable": report.unavailable,
        "derivatives": {
            entry.kind.value: _derivative_json(report, entry)
            for entry in report.derivatives.values()
        },
        "notes": report.notes,
    }
