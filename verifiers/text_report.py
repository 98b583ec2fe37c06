"""The printed report: one short section per question, laid out for the output's width.

It opens with what is checked (with ``--manual``, the user's file and function first), then
answers three questions, each with the reference values once and one row per engine saying how
far that engine is from the consensus: are the loss and gradient right, are the Hessians, do the
descents agree. It ends with the verdict (about the user's formula, with ``--manual``), the
diagnosis right after it, and the details of every disagreement.

How many digits: values from ``loop`` are exact Python arithmetic, the same on every machine,
and are shown in full (17 significant digits: the reference example's published figures). The
last bits of the other engines' values depend on the CPU's BLAS, so their agreement is shown as
a bound ("< 1e-15") and a disagreement with two significant digits; Hessian entries and the
least-squares optimum get 10 digits. Everything, at full precision, is in the JSON report; so
are the wall times, which are left out here so that the report is the same on every run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rich.console import Console

from verifiers.api import hessian_label
from verifiers.compare import Difference
from verifiers.layout import glue, table, wrap
from verifiers.results import EngineReport, Report

__all__ = ["plural", "print_report", "verdict"]

# Parameters listed one per line up to this many; beyond, the worst element and --json.
MAX_LISTED = 10
# Hessian entries are listed for models with at most this many parameters.
MAX_HESSIAN_LISTED = 3
# Sections and their details are indented by this much.
INDENT = "  "

# (check name in report.compared, EngineReport attribute with the difference from the pivot)
CHECKS = (
    ("gradient", "vs_consensus"),
    ("Hessian", "vs_reference_hessian"),
    ("descent", "vs_reference_descent"),
)


def print_report(report: Report, console: Console, quiet: bool = False) -> None:
    """Print the report at `console`'s width: the sections (unless `quiet`), the notes and the
    verdict. Every line fits the width and has no trailing spaces."""
    width = console.width
    lines: list[tuple[str, str | None]] = []
    if not quiet:
        lines += [(line, None) for line in _sections(report, width)]
    for note in report.notes:
        first = "" if note.startswith("warning:") else "note: "
        lines += [(line, None) for line in wrap(note, width, first, INDENT)]
    lines += _ending(report, width)
    for text, style in lines:
        console.print(text, style=style, markup=False, highlight=False, emoji=False, soft_wrap=True)


# ---- words and numbers --------------------------------------------------------------------------
def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 engine``, ``2 engines``, ``1,000 iterations``."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def _listing(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _full(value: float) -> str:
    """A value at full precision (it round-trips), or in words when it is not finite."""
    value = float(value)
    if math.isnan(value):
        return "not a number"
    if math.isinf(value):
        return "infinite" if value > 0 else "minus infinity"
    return repr(value)


def _short(value: float, digits: int) -> str:
    value = float(value)
    return f"{value:.{digits}g}" if math.isfinite(value) else _full(value)


def _bound(relative: float, eps: float) -> str:
    """An agreement as a power-of-ten bound: stable from CPU to CPU, unlike its last digits.

    Differences below the dtype's rounding level (identical values included) share one bound.
    """
    floor = 10.0 ** (math.floor(math.log10(eps)) + 1)
    bound = floor if relative <= 0 else max(10.0 ** (math.floor(math.log10(relative)) + 1), floor)
    return f"< {bound:.0e}".replace("e-0", "e-").replace("e+00", "")


def _difference_cell(difference: Difference, eps: float) -> str:
    """What a row's difference column says: a bound when it agrees, the size and place when not."""
    if difference.ok:
        if difference.relative <= 1e-3:
            return _bound(difference.relative, eps)
        return "within tolerance (values near 0)"
    where = glue(f"({difference.where})")  # wraps as a whole, never "at point" / "1)"
    if math.isfinite(difference.relative):
        return f"{difference.relative:.2g} {where}"
    return f"{_short(difference.absolute, 2)} absolute {where}"


def _theta_text(names: list[str], theta: np.ndarray) -> str:
    """θ in a few words: ``b = 0, w = 0``; ``all 51 parameters 0``; ``51 parameters``."""
    theta = np.asarray(theta)
    if len(names) <= MAX_LISTED:
        return ", ".join(glue(f"{n} = {_short(v, 6)}") for n, v in zip(names, theta, strict=True))
    if not theta.any():
        return f"all {len(names)} parameters 0"
    return f"{len(names)} parameters, listed in --json"


def _assignments(pairs: list[tuple[str, str]], indent: str) -> list[str]:
    """``name = value`` lines with the signs aligned."""
    width = max(len(name) for name, _ in pairs)
    return [f"{indent}{name.ljust(width)} = {value}" for name, value in pairs]


def _eps(report: Report) -> float:
    return float(np.finfo(report.data.dtype).eps)


# ---- who agrees with whom -----------------------------------------------------------------------
def _pivot(report: Report, check: str, attribute: str) -> str | None:
    """The consensus engine of a check: the one compared engine with no difference of its own."""
    compared = report.compared.get(check, [])
    return next((n for n in compared if getattr(report.engines[n], attribute) is None), None)


def _trusted_source(report: Report, check: str, attribute: str) -> str | None:
    """Whose values to show in full: ``loop`` (exact on every machine) when it agrees, else the
    consensus engine. For the descent, only an engine that ran every iteration."""
    compared = report.compared.get(check, [])
    pivot = _pivot(report, check, attribute)
    agreeing = [
        n
        for n in compared
        if n == pivot or getattr(report.engines[n], attribute) is None
        or getattr(report.engines[n], attribute).ok
    ]  # fmt: skip
    # The formula under test last: its values are what is being checked.
    order = sorted(agreeing, key=lambda n: (report.engines[n].under_test, n != "loop", n != pivot))
    if check == "descent":
        order = [n for n in order if report.engines[n].capped_iterations is None]
    return order[0] if order else pivot


def _rows(report: Report, check: str, attribute: str, pivot: str | None, cells) -> list[list[str]]:
    """One row per engine compared in `check`: its name, `cells(entry)`, its difference and
    the result, from the same comparison (they never contradict each other)."""
    rows = []
    eps = _eps(report)
    for name in report.compared.get(check, []):
        entry = report.engines[name]
        difference = getattr(entry, attribute)
        if name == pivot:
            shown, result = "—", "consensus"
        else:
            shown = _difference_cell(difference, eps)
            result = "agrees" if difference.ok else "DISAGREES"
        rows.append([_engine_label(entry, check), *cells(entry), shown, result])
    return rows


def _engine_label(entry: EngineReport, check: str) -> str:
    if check == "Hessian" and entry.under_test:
        return glue(f"{entry.name} (built-in closed form)")
    if check in ("gradient", "descent") and entry.under_test:
        return glue(f"{entry.name} (your formula)")
    return entry.name


# ---- the sections -------------------------------------------------------------------------------
def _sections(report: Report, width: int) -> list[str]:
    lines = _heading(report, width)
    lines += ["", *_gradient_section(report, width)]
    hessian = _hessian_section(report, width)
    if hessian:
        lines += ["", *hessian]
    descent = _descent_section(report, width)
    if descent:
        lines += ["", *descent]
    sharded = _sharded_section(report, width)
    if sharded:
        lines += ["", *sharded]
    lines.append("")
    return lines


def _sharded_section(report: Report, width: int) -> list[str]:
    """--shards: each data-parallel run against its own single-process run, then the
    combinations of the shards' results (the classic mean of means, and the user's)."""
    runs = [e for e in report.engines.values() if e.sharded is not None and e.vs_single_process]
    if not runs and not report.combinations:
        return []
    workers = report.settings.shards
    lines = [f"Data-parallel: {plural(workers, 'worker')}, contiguous shards of rows"]
    eps = _eps(report)
    rows = []
    for entry in runs:
        run, comparison = entry.sharded, entry.vs_single_process
        worst = max((comparison.gradient, comparison.descent), key=lambda d: d.ratio)
        rows.append(
            [
                entry.name,
                run.backend,
                "/".join(map(str, run.shard_rows)),
                _difference_cell(worst, eps),
                "agrees" if comparison.ok else "DISAGREES",
            ]
        )
    if rows:
        lines += wrap(
            "Largest relative difference from the same engine in one process, over the "
            "gradient at the start and the whole descent:",
            width,
            INDENT,
            INDENT,
        )
        lines += [
            INDENT + line
            for line in table(
                ["engine", "backend", "rows", "difference", "result"], rows, width - len(INDENT)
            )
        ]
    for check in report.combinations:
        lines += wrap(check.explanation, width, f"{INDENT}{check.name}: ", INDENT * 2)
    return lines


def _under_test_words(report: Report) -> tuple[str, str] | None:
    """(function, file) of the formula under test, as given with --manual."""
    spec = report.settings.manual
    if report.under_test is None:
        return None
    if not spec:
        return ("the given formula", "")
    path, _, function = spec.rpartition(":")
    return (f"{function}()", path) if path else (spec, "")


def _heading(report: Report, width: int) -> list[str]:
    data = report.data
    lines: list[str] = []
    words = _under_test_words(report)
    if words is not None:
        function, path = words
        source = f"{function} in {path}" if path else function
        lines += wrap(
            f"Under test: your gradient, {source} (--manual), run as the manual engine and "
            "checked against every other engine.",
            width,
            rest=INDENT,
        )
    lines += wrap(
        f"{data.path}: {plural(data.rows, 'row')}, {plural(data.features, 'feature')}, "
        f"{data.dtype}",
        width,
        rest=INDENT,
    )
    lines += wrap(report.model.formula, width, rest=INDENT)
    ran = [n for n, e in report.engines.items() if e.status != "skipped"]
    lines += wrap(f"{plural(len(ran), 'engine')}: {', '.join(ran)}", width, rest=INDENT)
    for entry in report.engines.values():
        if entry.status == "skipped":
            lines += wrap(entry.reason, width, f"skipped: {entry.name}: ", INDENT)
    return lines


def _gradient_section(report: Report, width: int) -> list[str]:
    names = report.parameter_names
    tol = report.tolerance
    random = sum(p.label.startswith("point") for p in report.points)
    where = ["the start"]
    if report.optimum.theta is not None:
        where.append("the optimum")
    where.append(plural(random, "random point"))
    lines = ["Loss and gradient"]
    lines += wrap(
        f"checked at {plural(len(report.points), 'point')}: {_listing(where)}; two values "
        f"agree when {glue('|a - b|')} <= {tol.atol:.2g}·Σ|terms| + {tol.rtol:.2g}·|b|",
        width,
        INDENT,
        INDENT * 2,
    )
    attribute = "vs_consensus"
    source = _trusted_source(report, "gradient", attribute)
    if source is None:  # fewer than two engines computed it
        source = next((n for n, e in report.engines.items() if e.evaluations), None)
    if source is not None:
        start = report.engines[source].evaluations[0]
        lines += wrap(
            f"at the start ({_theta_text(names, report.points[0].theta)}), from {source}:",
            width,
            INDENT,
            INDENT * 2,
        )
        lines += _gradient_values(names, start.loss, start.gradient, width)
    pivot = _pivot(report, "gradient", attribute)
    if pivot is None:
        return lines
    lines += wrap(
        f"Largest relative difference from the consensus ({pivot}) at any point:",
        width,
        INDENT,
        INDENT,
    )

    def cells(entry: EngineReport) -> list[str]:
        points = entry.checked_points
        device = entry.device + ("" if points == len(report.points) else ", start only")
        return [device]

    rows = _rows(report, "gradient", attribute, pivot, cells)
    lines += table(["engine", "device", "difference", "result"], rows, width)
    return lines


def _gradient_values(names: list[str], loss: float, gradient: np.ndarray, width: int) -> list[str]:
    indent = INDENT * 2
    if len(names) <= MAX_LISTED:
        pairs = [("loss", _full(loss))]
        pairs += [(f"dL/d{n}", _full(g)) for n, g in zip(names, gradient, strict=True)]
        return _assignments(pairs, indent)
    largest = int(np.nanargmax(np.abs(gradient))) if np.isfinite(gradient).any() else 0
    pairs = [("loss", _full(loss)), (f"dL/d{names[largest]}", _full(gradient[largest]))]
    note = f"(the largest of {len(names)} derivatives; all of them are in --json)"
    return [*_assignments(pairs, indent), *wrap(note, width, indent, indent)]


def _hessian_section(report: Report, width: int) -> list[str]:
    stability = report.stability
    attribute = "vs_reference_hessian"
    pivot = _pivot(report, "Hessian", attribute)
    if stability is None and pivot is None:
        return []
    names = report.parameter_names
    if report.model.constant_hessian:
        where = "constant for this loss"
    elif stability is not None and stability.where:
        where = f"{stability.where}; it changes with θ"
    else:
        where = "it changes with θ"
    lines = [f"Hessian ({where})"]
    if stability is not None:
        values = stability.eigenvalues
        if len(values) <= 4:
            eigen = "eigenvalues " + _listing([_short(v, 6) for v in values])
        else:
            eigen = (
                f"{len(values)} eigenvalues from {_short(values[0], 6)} to {_short(values[-1], 6)}"
            )
        tiny = 1e-13 * len(values) * max(abs(float(values[0])), abs(float(values[-1])))
        if float(values[0]) < -tiny:  # a saddle or a maximum along some direction
            condition = "indefinite (negative curvature along some direction)"
        elif math.isinf(stability.condition_number):
            condition = "singular (a flat direction)"
        else:
            condition = f"condition number {_short(stability.condition_number, 3)}"
        verdict = "stable" if stability.stable else "too large: expect the descent to diverge"
        lines += wrap(
            f"{eigen}; {condition}; largest stable learning rate "
            + glue(f"2/λ_max = {_short(stability.max_stable_lr, 6)}")
            + f" (lr {report.lr:g} is {verdict})",
            width,
            INDENT,
            INDENT * 2,
        )
    if pivot is None:
        return lines
    reference = report.engines[pivot]
    if len(names) <= MAX_HESSIAN_LISTED and reference.hessian is not None:
        built_in = (
            ", the built-in closed form (your --manual file gives only the gradient)"
            if reference.under_test
            else ""
        )
        lines += wrap(f"from {pivot}{built_in}:", width, INDENT, INDENT * 2)
        pairs = [(i, j) for i in range(len(names)) for j in range(i, len(names))]
        lines += _assignments(
            [(hessian_label(names[i], names[j]), _short(reference.hessian[i, j], 10))
             for i, j in pairs],
            INDENT * 2,
        )  # fmt: skip
    elif reference.under_test:
        lines += wrap(
            f"{pivot}'s Hessian is the built-in closed form (your --manual file gives only the "
            "gradient)",
            width,
            INDENT,
            INDENT * 2,
        )
    lines += wrap(
        f"Largest relative difference from the consensus ({pivot}):", width, INDENT, INDENT
    )
    rows = _rows(report, "Hessian", attribute, pivot, lambda entry: [])
    lines += table(["engine", "difference", "result"], rows, width)
    return lines


def _end_words(report: Report, entry: EngineReport) -> str:
    """How an engine's descent ended, in words."""
    t = entry.trajectory
    if t.diverged_at is not None:
        return glue(f"diverged at iteration {t.diverged_at:,}")
    loss = glue(f"loss {_short(t.losses[-1], 6)}")
    if t.steps != report.settings.iterations:
        loss += f" after {plural(t.steps, 'step')}"
    return loss


def _descent_section(report: Report, width: int) -> list[str]:
    attribute = "vs_reference_descent"
    entries = [e for e in report.engines.values() if e.trajectory is not None]
    if not entries:
        return []
    names = report.parameter_names
    iterations = report.settings.iterations
    lines = wrap(
        f"Gradient descent: lr {report.lr:g}, {plural(iterations, 'iteration')} from "
        f"{_theta_text(names, report.points[0].theta)}",
        width,
        rest=INDENT,
    )
    source = _trusted_source(report, "descent", attribute) or entries[0].name
    t = report.engines[source].trajectory
    if t.diverged_at is not None:
        lines += wrap(
            f"{source} diverged at iteration {t.diverged_at:,}: the loss grew past a million "
            "times its start, or overflowed",
            width,
            INDENT,
            INDENT * 2,
        )
    else:
        lines += wrap(f"after {plural(t.steps, 'step')}, from {source}:", width, INDENT, INDENT * 2)
        if len(names) <= MAX_LISTED:
            pairs = [(n, _full(v)) for n, v in zip(names, t.theta, strict=True)]
        else:
            pairs = []
        lines += _assignments([*pairs, ("loss", _full(t.losses[-1]))], INDENT * 2)
        if len(names) > MAX_LISTED:
            lines.append(f"{INDENT * 2}(θ's {len(names)} values are in --json)")
    pivot = _pivot(report, "descent", attribute)
    if pivot is not None:
        lines += wrap(
            f"Largest relative difference from the consensus ({pivot}), over the loss at every "
            "step and the final θ:",
            width,
            INDENT,
            INDENT,
        )
        reference = report.engines[pivot].trajectory

        def cells(entry: EngineReport) -> list[str]:
            return [_end_words(report, entry)]

        rows = _rows(report, "descent", attribute, pivot, cells)
        for row, name in zip(rows, report.compared["descent"], strict=True):
            mine = report.engines[name].trajectory
            if name != pivot and mine.diverged_at != reference.diverged_at:
                row[2] = (
                    f"{pivot} did not diverge"
                    if reference.diverged_at is None
                    else f"{pivot} diverged at iteration {reference.diverged_at:,}"
                )
        lines += table(["engine", "end of the descent", "difference", "result"], rows, width)
    lines += _optimum_lines(report, t, width)
    return lines


def _optimum_lines(report: Report, t, width: int) -> list[str]:
    optimum, stability = report.optimum.theta, report.stability
    if optimum is None:
        return []
    names = report.parameter_names
    if len(names) <= MAX_LISTED:
        where = ", ".join(
            glue(f"{n} = {_short(v, 10)}") for n, v in zip(names, optimum, strict=True)
        )
    else:
        where = f"{len(names)} values, in --json"
    name, how = report.optimum.name, report.optimum.how
    loss = _short(report.model.hand_loss(optimum), 7)
    text = f"{name[:1].upper()}{name[1:]} θ*: {where} (loss {loss}{'; ' + how if how else ''})"
    if t.diverged_at is None and np.isfinite(t.theta).all():
        text += (
            f"; after {plural(t.steps, 'step')} the descent is "
            f"{_short(np.linalg.norm(t.theta - optimum), 4)} from it"
        )
    if stability is not None and stability.constant:
        reach = stability.iterations_to_optimum
        text += (
            f"; at lr {report.lr:g} it needs {plural(reach, 'iteration')} to come within 1e-6"
            if reach is not None
            else f"; at lr {report.lr:g} it never gets there"
        )
    return wrap(text + ".", width, rest=INDENT)


# ---- the verdict --------------------------------------------------------------------------------
def verdict(report: Report) -> str:
    """The verdict in one sentence: ``OK: all 6 engines agree ...`` for a run that agrees; with
    --manual, about the formula under test (``OK: your formula ...``, ``WRONG: your formula``)."""
    gradient = report.compared.get("gradient", [])
    under_test = report.under_test
    spec = report.settings.manual or "the given formula"
    bad = [e for e in report.engines.values() if e.status in ("mismatch", "error")]
    if report.ok:
        points = len(report.points)
        checks = [f"the gradient at {plural(points, 'check point')}"]
        if report.compared.get("Hessian"):
            checks.append(f"the Hessian ({plural(len(report.compared['Hessian']), 'engine')})")
        if report.compared.get("descent"):
            checks.append(f"the descent ({plural(report.settings.iterations, 'iteration')})")
        if under_test is not None:
            others = [n for n in gradient if n != under_test.name]
            return f"OK: your formula ({spec}) agrees with {_listing(others)}: " + ", ".join(checks)
        return f"OK: all {len(gradient)} engines agree ({', '.join(gradient)}): " + ", ".join(
            checks
        )
    if under_test is not None and under_test.status == "mismatch":
        others = [n for n, e in report.engines.items() if e.ran and n != under_test.name]
        rest = [e for e in bad if e is not under_test]
        tail = ", which agree with each other" if not rest and len(others) > 1 else ""
        return f"WRONG: your formula ({spec}) disagrees with {_listing(others)}{tail}"
    if not bad:  # only a --combine was wrong
        return "NOT OK: every engine agrees, but your combination of the shards is wrong"
    failing = _listing([e.name for e in bad])
    verb = "disagrees" if len(bad) == 1 else "disagree"
    if all(e.status == "error" for e in bad):
        verb = "failed"
    if under_test is not None:
        agreeing = [
            n for n in gradient if n != under_test.name and report.engines[n].status == "ok"
        ]
        return (
            f"NOT OK: your formula ({spec}) agrees with {_listing(agreeing)}, but {failing} {verb}"
        )
    return f"NOT OK: {failing} {verb}; the other engines agree"


def _ending(report: Report, width: int) -> list[tuple[str, str | None]]:
    """The verdict, the diagnosis right after it, then each disagreement in detail."""
    style = "bold green" if report.ok else "bold red"
    lines = [(line, style) for line in wrap(verdict(report), width, rest=INDENT)]
    if report.diagnosis is not None:
        lines += [
            (line, "bold") for line in wrap(report.diagnosis.summary, width, "diagnosis: ", INDENT)
        ]
    for entry in report.engines.values():
        if entry.status == "mismatch":
            lines += _mismatch(report, entry, width)
        elif entry.status == "error":
            lines += [
                (line, "red")
                for line in wrap(entry.reason, width, f"ERROR: {entry.name} failed: ", INDENT)
            ]
    for failure in report.failures:  # those of no engine: a --combine that is wrong
        if failure.startswith("--combine"):
            lines += [(line, "bold red") for line in wrap(failure, width, "MISMATCH: ", INDENT)]
    return lines


def _mismatch(report: Report, entry: EngineReport, width: int) -> list[tuple[str, str | None]]:
    """The first check `entry` fails: where, both values and by how much."""
    who = f"{entry.name} (your formula)" if report.under_test is entry else entry.name
    for check, attribute in CHECKS:
        difference = getattr(entry, attribute)
        if difference is None or difference.ok:
            continue
        pivot = _pivot(report, check, attribute) or "the consensus"
        mine = entry.trajectory
        theirs = report.engines[pivot].trajectory if pivot in report.engines else None
        if check == "descent" and mine and theirs and mine.diverged_at != theirs.diverged_at:

            def said(name: str, at: int | None) -> str:
                return f"{name} did not diverge" if at is None else (
                    f"{name} diverged at iteration {at:,}"
                )  # fmt: skip

            head = f"MISMATCH: {who} disagrees: descent: {said(entry.name, mine.diverged_at)}"
            lines = [(line, "bold red") for line in wrap(head, width, rest=INDENT)]
            return lines + [
                (line, None)
                for line in wrap(said(pivot, theirs.diverged_at), width, INDENT, INDENT)
            ]
        head = f"MISMATCH: {who} disagrees: {check}: {difference.where}"
        lines = [(line, "bold red") for line in wrap(head, width, rest=INDENT)]
        # Enough digits to show the difference (at least 10), not the last bits: those vary
        # from CPU to CPU with the BLAS kernel; --json has every value in full.
        digits = 10
        if 0 < difference.relative < 1e-7:
            digits = min(17, 3 - math.floor(math.log10(difference.relative)))
        values = _assignments(
            [
                (entry.name, _short(difference.actual, digits)),
                (pivot, _short(difference.expected, digits)),
            ],
            INDENT,
        )
        relative = (
            f", relative {difference.relative:.2g}" if math.isfinite(difference.relative) else ""
        )
        size = (
            f"difference {_short(difference.absolute, 3)}{relative} (allowed "
            f"{_short(difference.allowed, 3)})"
        )
        lines += [(value, None) for value in values]  # a name and a number: always fit
        return lines + [(line, None) for line in wrap(size, width, INDENT, INDENT * 2)]
    return [
        (line, "bold red")
        for line in wrap(entry.reason, width, f"MISMATCH: {who} disagrees: ", INDENT)
    ]
