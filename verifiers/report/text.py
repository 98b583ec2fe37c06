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

from verifiers.compare import Difference
from verifiers.judge import hessian_label
from verifiers.report.layout import glue, table, wrap
from verifiers.results import (
    Check,
    EngineReport,
    FailureKind,
    Outcome,
    PointKind,
    Report,
    Status,
    Trust,
)

__all__ = ["plural", "print_report", "verdict"]

# Parameters listed one per line up to this many; beyond, the worst element and --json.
MAX_LISTED = 10
# Hessian entries are listed for models with at most this many parameters.
MAX_HESSIAN_LISTED = 3
# Sections and their details are indented by this much.
INDENT = "  "


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
def _trusted_source(report: Report, check: Check) -> str | None:
    """Whose values to show in full: ``loop`` (exact on every machine) when it agrees, else the
    check's reference engine. For the descent, only an engine that ran every iteration."""
    verdict = report.verdicts.get(check)
    if verdict is None:
        return None
    agreeing = [n for n in verdict.agreeing if verdict.trust[n] is not Trust.APPROXIMATE]
    # The formula under test last: its values are what is being checked.
    pivot = verdict.reference
    order = sorted(agreeing, key=lambda n: (report.engines[n].under_test, n != "loop", n != pivot))
    if check is Check.DESCENT:
        order = [n for n in order if report.engines[n].capped_iterations is None]
    return order[0] if order else pivot


def _result(report: Report, check: Check, name: str) -> str:
    """What a table's result column says of one engine in one check."""
    verdict = report.verdicts[check]
    if name == verdict.reference:
        return "consensus"
    if name in verdict.unconfirmed:
        return "not counted"
    if name in verdict.wrong:
        return "DISAGREES"
    return "agrees" if verdict.differences[name].ok else "DISAGREES"


def _rows(report: Report, check: Check, cells) -> list[list[str]]:
    """One row per engine compared in `check`: its name, `cells(entry)`, its difference and
    the result, from the same comparison (they never contradict each other)."""
    rows = []
    eps = _eps(report)
    verdict = report.verdicts[check]
    for name in verdict.compared:
        entry = report.engines[name]
        if name == verdict.reference:
            shown = "—"
        else:
            shown = _difference_cell(verdict.differences[name], eps)
        rows.append(
            [_engine_label(entry, check), *cells(entry), shown, _result(report, check, name)]
        )
    return rows


def _engine_label(entry: EngineReport, check: Check) -> str:
    if check is Check.HESSIAN and entry.under_test:
        return glue(f"{entry.name} (built-in closed form)")
    if check is not Check.HESSIAN and entry.under_test:
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
    ran = [n for n, e in report.engines.items() if e.status is not Status.SKIPPED]
    lines += wrap(f"{plural(len(ran), 'engine')}: {', '.join(ran)}", width, rest=INDENT)
    for entry in report.engines.values():
        if entry.status is Status.SKIPPED:
            lines += wrap(entry.reason, width, f"skipped: {entry.name}: ", INDENT)
    return lines


def _decades(value: float) -> str:
    """``1e-4``, ``1e2``: a power of ten in few characters."""
    return f"1e{round(math.log10(value))}"


def _where_checked(report: Report) -> str:
    """The check points in words: how many of each kind, and over what range."""
    kinds = [p.kind for p in report.points]
    coverage = report.coverage
    where = ["the start"]
    if PointKind.OPTIMUM in kinds:
        where.append("the optimum")
    random = kinds.count(PointKind.RANDOM)
    if random:
        signs = (
            "every orthant"
            if coverage.every_orthant
            else "all four sign combinations of every pair of parameters"
            if coverage.sign_pairs
            else "random signs"
        )
        where.append(
            f"{plural(random, 'random point')} ({signs}; magnitudes "
            f"{_decades(coverage.smallest)} to {_decades(coverage.largest)} × each "
            "parameter's scale)"
        )
    anchored = kinds.count(PointKind.ANCHORED)
    if anchored:
        where.append(f"{plural(anchored, 'point')} with the line through the data's centre")
    near = kinds.count(PointKind.NEAR)
    if near:
        where.append(f"{plural(near, 'point')} near the optimum")
    extreme = kinds.count(PointKind.EXTREME)
    if extreme:
        where.append(f"{plural(extreme, 'extreme point')} ({coverage.extreme_what})")
    moved = kinds.count(PointKind.MOVED)
    if moved:
        where.append(f"{plural(moved, 'point')} moved off a kink")
    return f"checked at {plural(len(report.points), 'point')}: {_listing(where)}"


def _detection_lines(report: Report, width: int) -> list[str]:
    """The check's power: the smallest relative error in each derivative it would catch."""
    detection = report.detection
    if detection is None or detection.weakest is None:
        return []
    who = "your formula" if report.under_test is not None else "the hand formula"
    known = {n: v for n, v in detection.smallest.items() if v is not None}
    if len(detection.smallest) <= MAX_LISTED:
        listed = ", ".join(glue(f"dL/d{n} {v:.1g}") for n, v in known.items())
        text = f"smallest relative error in {who} that these points catch: {listed}"
    else:
        name, value = detection.weakest
        text = (
            f"smallest relative error in {who} that these points catch: at most {value:.1g} "
            f"in any derivative (the least sensitive: dL/d{name}; each one in --json)"
        )
    return wrap(text, width, INDENT, INDENT * 2)


def _gradient_section(report: Report, width: int) -> list[str]:
    names = report.parameter_names
    tol = report.tolerance
    lines = ["Loss and gradient"]
    lines += wrap(
        f"{_where_checked(report)}; two values agree when {glue('|a - b|')} <= "
        f"{tol.atol:.2g}·Σ|terms| + {tol.rtol:.2g}·|b|",
        width,
        INDENT,
        INDENT * 2,
    )
    lines += _detection_lines(report, width)
    source = _trusted_source(report, Check.GRADIENT)
    if source is None:  # fewer than two engines computed it
        source = next((n for n, e in report.engines.items() if e.start() is not None), None)
    if source is not None and report.engines[source].start() is not None:
        start = report.engines[source].start()
        lines += wrap(
            f"at the start ({_theta_text(names, report.points[0].theta)}), from {source}:",
            width,
            INDENT,
            INDENT * 2,
        )
        lines += _gradient_values(names, start.loss, start.gradient, width)
    pivot = report.reference(Check.GRADIENT)
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
        if points >= len(report.points):
            return [entry.device]
        where = "start only" if points == 1 else f"{points} of {len(report.points)} points"
        return [f"{entry.device}, {where}"]

    rows = _rows(report, Check.GRADIENT, cells)
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
    pivot = report.reference(Check.HESSIAN)
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
    rows = _rows(report, Check.HESSIAN, lambda entry: [])
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
    entries = [e for e in report.engines.values() if e.trajectory is not None]
    if not entries:
        return []
    names = report.parameter_names
    iterations = report.settings.iterations
    lines = wrap(
        f"Gradient descent: lr {report.lr:g}, {plural(iterations, 'iteration')} from "
        f"{_theta_text(names, report.points[report.descent_from].theta)}",
        width,
        rest=INDENT,
    )
    source = _trusted_source(report, Check.DESCENT) or entries[0].name
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
    pivot = report.reference(Check.DESCENT)
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

        rows = _rows(report, Check.DESCENT, cells)
        for row, name in zip(rows, report.verdicts[Check.DESCENT].compared, strict=True):
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
def _confirming(report: Report) -> str:
    """How the approximate engines bear on an OK: confirming it, or set aside."""
    verdict = report.verdicts.get(Check.GRADIENT)
    if verdict is None:
        return ""
    approximate = [n for n in verdict.approximate if n not in verdict.unconfirmed]
    parts = []
    if approximate:
        verb = "confirms" if len(approximate) == 1 else "confirm"
        parts.append(f"{_listing(approximate)} (central differences) {verb} it")
    if verdict.unconfirmed:
        parts.append(f"{_listing(verdict.unconfirmed)} (central differences) not counted")
    return f"; {' and '.join(parts)}" if parts else ""


def _compared_points(report: Report) -> int:
    """The check points where at least two engines of the gradient check computed values."""
    verdict = report.verdicts.get(Check.GRADIENT)
    if verdict is None:
        return 0
    counts = [
        sum(i in report.engines[n].evaluations for n in verdict.compared)
        for i in range(len(report.points))
    ]
    return sum(count >= 2 for count in counts)


def verdict(report: Report) -> str:
    """The verdict in one sentence: ``OK: all 6 engines agree ...`` for a run that agrees; with
    --manual, about the formula under test (``OK: your formula ...``, ``WRONG: your formula``)."""
    gradient = report.verdicts.get(Check.GRADIENT)
    compared = gradient.compared if gradient is not None else []
    under_test = report.under_test
    spec = report.settings.manual or "the given formula"
    if report.ok:
        checks = [f"the gradient at {plural(_compared_points(report), 'check point')}"]
        if Check.HESSIAN in report.verdicts:
            hessians = report.verdicts[Check.HESSIAN].compared
            checks.append(f"the Hessian ({plural(len(hessians), 'engine')})")
        if Check.DESCENT in report.verdicts:
            iterations = report.settings.iterations
            capped = [
                report.engines[n].capped_iterations for n in report.verdicts[Check.DESCENT].compared
            ]
            steps = min(iterations if c is None else c for c in capped)
            shown = (
                plural(iterations, "iteration")
                if steps >= iterations
                else f"{steps:,} of {plural(iterations, 'iteration')}"
            )
            checks.append(f"the descent ({shown})")
        exact = gradient.exact if gradient is not None else []
        confirming = _confirming(report)
        if under_test is not None:
            others = exact if confirming else [n for n in compared if n != under_test.name]
            return (
                f"OK: your formula ({spec}) agrees with {_listing(others)}: "
                + ", ".join(checks)
                + confirming
            )
        if confirming:
            return (
                f"OK: all {len(exact)} exact engines agree ({', '.join(exact)}): "
                + ", ".join(checks)
                + confirming
            )
        return f"OK: all {len(compared)} engines agree ({', '.join(compared)}): " + ", ".join(
            checks
        )
    outcome = report.outcome
    if outcome is Outcome.ENGINES_DISAGREE:
        return _engines_disagree(report)
    if outcome is Outcome.FORMULA_WRONG and under_test is not None:
        return _formula_wrong(report, under_test.name, spec)
    bad = [e for e in report.engines.values() if e.status in (Status.MISMATCH, Status.ERROR)]
    if not bad:  # only a --combine was wrong
        return "NOT OK: every engine agrees, but your combination of the shards is wrong"
    failing = _listing([e.name for e in bad])
    verb = "disagrees" if len(bad) == 1 else "disagree"
    if all(e.status is Status.ERROR for e in bad):
        verb = "failed"
    if under_test is not None:
        agreeing = [
            n for n in compared if n != under_test.name and report.engines[n].status is Status.OK
        ]
        return (
            f"NOT OK: your formula ({spec}) agrees with {_listing(agreeing)}, but {failing} {verb}"
        )
    return f"NOT OK: {failing} {verb}; the other engines agree"


def _formula_wrong(report: Report, name: str, spec: str) -> str:
    """``WRONG: your formula (...) disagrees with A, B and C, which agree with each other``."""
    check = next(
        (c for c in Check if c in report.verdicts and name in report.verdicts[c].wrong),
        Check.GRADIENT,
    )
    verdict = report.verdicts[check]
    others = [n for n in verdict.compared if n != name]
    against = [n for n in others if not verdict.pairs[name, n].ok]
    agreeing = [n for n in others if n not in against]
    text = f"WRONG: your formula ({spec}) disagrees with {_listing(against or others)}"
    if len(against) > 1 and all(verdict.pairs[a, b].ok for a in against for b in against if a != b):
        text += ", which agree with each other"
    coarse = [n for n in agreeing if verdict.trust[n] is Trust.APPROXIMATE]
    exact = [n for n in agreeing if n not in coarse]
    if exact:
        text += f" (it agrees with {_listing(exact)})"
    if coarse:
        text += (
            f" ({_listing(coarse)}'s central differences are too coarse to tell, and do not decide)"
        )
    return text


def _engines_disagree(report: Report) -> str:
    """``NOT OK: the exact engines disagree: torch disagrees with minigrad, jax and numeric``."""
    verdict = next(v for v in report.verdicts.values() if v.disagreeing)
    group = [n for n in verdict.exact if n == verdict.reference or verdict.differences[n].ok]
    outside = [n for n in verdict.exact if n not in group]
    if len(group) > 1:
        text = (
            f"NOT OK: the exact engines disagree in the {verdict.check.value}: "
            f"{_listing(outside)} {'disagrees' if len(outside) == 1 else 'disagree'} with "
            f"{_listing(group)}, which agree with each other"
        )
    else:
        a, b = verdict.disagreeing[0]
        text = f"NOT OK: the exact engines disagree in the {verdict.check.value}: {a} and {b}"
    under_test = report.under_test
    if under_test is not None and under_test.name in verdict.compared:
        mine = [n for n in group if verdict.pairs[under_test.name, n].ok]
        if mine:
            text += f"; your formula agrees with {_listing(mine)}"
    return text


def _ending(report: Report, width: int) -> list[tuple[str, str | None]]:
    """The verdict, the diagnosis right after it, then each disagreement in detail."""
    style = "bold green" if report.ok else "bold red"
    lines = [(line, style) for line in wrap(verdict(report), width, rest=INDENT)]
    if report.diagnosis is not None:
        lines += [
            (line, "bold") for line in wrap(report.diagnosis.summary, width, "diagnosis: ", INDENT)
        ]
    shown: set[str] = set()
    for failure in report.failures:
        if failure.kind is FailureKind.ERROR:
            lines += [(line, "red") for line in wrap(failure.message, width, "ERROR: ", INDENT)]
        elif failure.kind is FailureKind.COMBINATION:
            lines += [
                (line, "bold red") for line in wrap(failure.message, width, "MISMATCH: ", INDENT)
            ]
        elif failure.engine is not None and failure.engine not in shown:
            shown.add(failure.engine)
            lines += _mismatch(report, failure, width)
    return lines


def _mismatch(report: Report, failure, width: int) -> list[tuple[str, str | None]]:
    """One disagreement in detail: where, both values and by how much."""
    entry = report.engines[failure.engine]
    difference, check, pivot = failure.difference, failure.check, failure.against
    if failure.kind is FailureKind.EXACT_DISAGREE:
        who = f"the exact engines disagree: {check.value}"
    else:
        who = f"{entry.name} (your formula)" if entry.under_test else entry.name
        who = f"{who} disagrees: " + (check.value if check is not None else "")
    if difference is None or check is None:
        return [(line, "bold red") for line in wrap(failure.message, width, "MISMATCH: ", INDENT)]
    pivot = pivot or "the consensus"
    mine = entry.trajectory
    theirs = report.engines[pivot].trajectory if pivot in report.engines else None
    if check is Check.DESCENT and mine and theirs and mine.diverged_at != theirs.diverged_at:

        def said(name: str, at: int | None) -> str:
            return f"{name} did not diverge" if at is None else (
                f"{name} diverged at iteration {at:,}"
            )  # fmt: skip

        head = f"MISMATCH: {who}: {said(entry.name, mine.diverged_at)}"
        lines = [(line, "bold red") for line in wrap(head, width, rest=INDENT)]
        return lines + [
            (line, None) for line in wrap(said(pivot, theirs.diverged_at), width, INDENT, INDENT)
        ]
    head = f"MISMATCH: {who}: {difference.where}"
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
    relative = f", relative {difference.relative:.2g}" if math.isfinite(difference.relative) else ""
    size = (
        f"difference {_short(difference.absolute, 3)}{relative} (allowed "
        f"{_short(difference.allowed, 3)})"
    )
    lines += [(value, None) for value in values]  # a name and a number: always fit
    return lines + [(line, None) for line in wrap(size, width, INDENT, INDENT * 2)]
