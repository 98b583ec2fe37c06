"""The printed report: one short section per question, laid out for the output's width.

It opens with what is checked (with ``--manual``, the user's file and function first), then
answers three questions, each with the reference values once and one row per engine saying how
far that engine is from the consensus: are the loss and gradient right, are the Hessians, do the
descents agree. It ends with the verdict (about the user's formula, with ``--manual``).

When something is wrong the answer comes first: right under the banner naming the formula, the
verdict, the diagnosis and the details of every disagreement (the worst difference, both values),
then the evidence, section by section; the verdict sentence is repeated at the very end, for a
reader of the last lines. A run that agrees reads top to bottom and ends with its verdict.

How many digits: every number printed is the same on every machine. Values from ``loop`` are
exact Python arithmetic and are shown in full (17 significant digits: the reference example's
published figures). The last bits of the other engines' values depend on the CPU's kernels
(BLAS, vectorised sums and exponentials), so a value from them shows only the digits that its
rounding, as the run's tolerance bounds it, cannot reach (:func:`_stable`); an eigenvalue that
close to zero is 0. An agreement is said in words ("within rounding"): how far below the
tolerance it lands is itself rounding, of another size on another machine. A disagreement is
shown with two significant digits. Everything, at full precision, is in the JSON report; so
are the wall times, which are left out here so that the report is the same on every run.
"""

from __future__ import annotations

import math

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
from verifiers.words import listing

__all__ = ["plural", "print_report", "verdict"]

# Parameters listed one per line up to this many; beyond, the worst element and --json.
MAX_LISTED = 10
# Hessian entries are listed for models with at most this many parameters.
MAX_HESSIAN_LISTED = 3
# Sections and their details are indented by this much.
INDENT = "  "
# Engines whose arithmetic is the same on every machine (plain Python floats): shown in full.
EXACT_ARITHMETIC = {"loop"}
# A value shows the digits whose place is at least 10**ROUNDING_MARGIN times the most its
# rounding can be (the tolerance's bound is itself generous): no CPU can change them.
ROUNDING_MARGIN = 1
# The optimum's entries are shown to at most 10 digits, and to none below this share of the
# largest entry.
OPTIMUM_FLOOR = 1e-12


def print_report(report: Report, console: Console, quiet: bool = False) -> None:
    """Print the report at `console`'s width. Every line fits the width and has no trailing
    spaces.

    A run that agrees: the sections, the notes and the verdict. Otherwise the answer first:
    the banner naming the formula under test, the verdict, the diagnosis and each disagreement
    in detail, then the sections and the notes, and the verdict sentence once more at the end.
    With `quiet`, only the notes and the answer.
    """
    width = console.width
    notes: list[tuple[str, str | None]] = []
    for note in report.notes:
        first = "" if note.startswith("warning:") else "note: "
        notes += [(line, None) for line in wrap(note, width, first, INDENT)]
    lines: list[tuple[str, str | None]]
    if quiet:
        lines = [*notes, *_answer(report, width)]
    elif report.ok:
        lines = [(line, None) for line in [*_banner(report, width), *_sections(report, width)]]
        lines += [*notes, *_answer(report, width)]
    else:
        lines = [(line, None) for line in _banner(report, width)]
        lines += [*_answer(report, width), ("", None)]
        lines += [(line, None) for line in _sections(report, width)]
        lines += [*notes, *_verdict_lines(report, width)]
    for text, style in lines:
        console.print(text, style=style, markup=False, highlight=False, emoji=False, soft_wrap=True)


# ---- words and numbers --------------------------------------------------------------------------
def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 engine``, ``2 engines``, ``1,000 iterations``."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


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


ROUNDING_ZERO = "0 (within rounding)"


def _stable_digits(value: float, noise: float, most: int = 17) -> int | None:
    """How many significant digits of `value` rounding of up to `noise` cannot change (at most
    `most`, at least 1); None when the value is within `noise` of zero; `most` when the noise
    is unknown (not a positive finite number)."""
    value, noise = float(value), float(noise)
    if not math.isfinite(value) or not (0 < noise < math.inf):
        return most
    if abs(value) <= noise:
        return None
    digits = math.floor(math.log10(abs(value) / noise)) - ROUNDING_MARGIN
    return max(1, min(most, digits))


def _stable(value: float, noise: float, most: int = 17) -> str:
    """`value` with only the digits that rounding of up to `noise` cannot change (so the same
    on every CPU), at most `most`: in full (it round-trips) when all 17 are sure, and
    ``0 (within rounding)`` when the value could be rounding alone."""
    digits = _stable_digits(value, noise, most)
    if digits is None:
        return ROUNDING_ZERO
    return _full(value) if digits >= 17 else _short(value, digits)


# What an agreeing row's difference column says. How far below the tolerance an agreeing engine
# lands is the CPU's rounding (its BLAS and vectorised kernels), different on another machine:
# so the cell says which kind of agreement it is, in words, and never the size.
WITHIN_ROUNDING = "within rounding"
WITHIN_ITS_ERROR = "within its own error"


def _difference_cell(difference: Difference, approximate: bool = False) -> str:
    """What a row's difference column says: how it agrees (within rounding; an approximate
    engine, within its own error as well), or the relative size and the place of the worst
    difference when it does not (``relative 0.5 (dL/db at start)``)."""
    if difference.ok:
        return WITHIN_ITS_ERROR if approximate else WITHIN_ROUNDING
    where = glue(f"({difference.where})")  # wraps as a whole, never "at point" / "1)"
    if _relative_means_something(difference):
        return f"relative {difference.relative:.2g} {where}"
    return f"{_short(difference.absolute, 2)} absolute {where}"


def _relative_means_something(difference: Difference) -> bool:
    """Whether the difference relative to the expected value is worth saying: not when that
    value is within rounding of zero (its size, and so the ratio, is the CPU's rounding)."""
    return math.isfinite(difference.relative) and abs(difference.expected) > difference.allowed


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


def _gradient_noise(report: Report, name: str, index: int) -> tuple[float, np.ndarray] | None:
    """How far rounding can move engine `name`'s loss and gradient at check point `index`
    (the gradient check's tolerance applied to their terms); None where the values are exact
    on every machine, or the terms' sizes are unknown."""
    if name in EXACT_ARITHMETIC:
        return None
    entry = report.engines[name].evaluations.get(index)
    try:
        scales = report.model.scales_at(report.points[index].theta)
    except Exception:
        return None
    tol = report.tolerance
    gradient_terms = np.asarray(scales.gradient, dtype=np.float64)
    if entry is not None and entry.noise is not None:  # central differences' own error
        gradient_terms = gradient_terms + np.broadcast_to(entry.noise, gradient_terms.shape)
    loss = tol.atol * float(scales.loss) + tol.rtol * abs(float(entry.loss if entry else 0.0))
    gradient = tol.atol * gradient_terms
    if entry is not None:
        gradient = gradient + tol.rtol * np.abs(np.asarray(entry.gradient, dtype=np.float64))
    return loss, gradient


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
    verdict = report.verdicts[check]
    for name in verdict.compared:
        entry = report.engines[name]
        if name == verdict.reference:
            shown = "—"
        else:
            approximate = verdict.trust[name] is Trust.APPROXIMATE
            shown = _difference_cell(verdict.differences[name], approximate)
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
    """What was checked (the data, the model, the engines) and the evidence, a section per
    question, ending with a blank line."""
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
    rows = []
    for entry in runs:
        run, comparison = entry.sharded, entry.vs_single_process
        worst = max((comparison.gradient, comparison.descent), key=lambda d: d.ratio)
        rows.append(
            [
                entry.name,
                run.backend,
                "/".join(map(str, run.shard_rows)),
                _difference_cell(worst),
                "agrees" if comparison.ok else "DISAGREES",
            ]
        )
    if rows:
        lines += wrap(
            "Each engine against itself in one process, over the gradient at the start and the "
            "whole descent:",
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


def _banner(report: Report, width: int) -> list[str]:
    """``Under test: your gradient, ...``: the formula the run is about (with --manual)."""
    words = _under_test_words(report)
    if words is None:
        return []
    function, path = words
    source = f"{function} in {path}" if path else function
    return wrap(
        f"Under test: your gradient, {source} (--manual), run as the manual engine and "
        "checked against every other engine.",
        width,
        rest=INDENT,
    )


def _heading(report: Report, width: int) -> list[str]:
    data = report.data
    lines: list[str] = []
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
    return f"checked at {plural(len(report.points), 'point')}: {listing(where)}"


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
        noise = _gradient_noise(report, source, 0)
        lines += _gradient_values(names, start.loss, start.gradient, width, noise)
    pivot = report.reference(Check.GRADIENT)
    if pivot is None:
        return lines
    lines += wrap(
        f"Each engine against the consensus ({pivot}) at every point:",
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


def _gradient_values(
    names: list[str],
    loss: float,
    gradient: np.ndarray,
    width: int,
    noise: tuple[float, np.ndarray] | None = None,
) -> list[str]:
    """The loss and the gradient at the start, with the digits their rounding (`noise`: the
    loss's and each derivative's; None: exact) cannot change."""
    indent = INDENT * 2
    loss_noise, gradient_noise = noise if noise is not None else (0.0, np.zeros(len(names)))
    shown_loss = _stable(loss, loss_noise)
    if len(names) <= MAX_LISTED:
        pairs = [("loss", shown_loss)]
        pairs += [
            (f"dL/d{n}", _stable(g, e))
            for n, g, e in zip(names, gradient, gradient_noise, strict=True)
        ]
        return _assignments(pairs, indent)
    largest = int(np.nanargmax(np.abs(gradient))) if np.isfinite(gradient).any() else 0
    pairs = [
        ("loss", shown_loss),
        (f"dL/d{names[largest]}", _stable(gradient[largest], gradient_noise[largest])),
    ]
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
        lines += wrap(_eigen_text(report, stability), width, INDENT, INDENT * 2)
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
        noise = _hessian_noise(report, reference)
        pairs = [(i, j) for i in range(len(names)) for j in range(i, len(names))]
        lines += _assignments(
            [(hessian_label(names[i], names[j]), _stable(reference.hessian[i, j], noise[i, j], 10))
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
    lines += wrap(f"Each engine against the consensus ({pivot}):", width, INDENT, INDENT)
    rows = _rows(report, Check.HESSIAN, lambda entry: [])
    lines += table(["engine", "difference", "result"], rows, width)
    return lines


def _hessian_noise(report: Report, entry: EngineReport) -> np.ndarray:
    """How far rounding can move each entry of `entry`'s Hessian: the tolerance applied to the
    sizes of the entry's terms (the model's Hessian scales, plus the engine's own error); 0
    (unknown: all digits up to the cap) when the model cannot say."""
    H = np.asarray(entry.hessian, dtype=np.float64)
    tol = report.tolerance
    try:
        with np.errstate(all="ignore"):
            scales = report.model.hessian_scales(report.points[report.hessian_from].theta)
        scales = np.asarray(scales, dtype=np.float64) + entry.hessian_noise
        scales = np.broadcast_to(scales, H.shape)
    except Exception:
        return np.zeros(H.shape)
    noise = tol.atol * np.abs(scales) + tol.rtol * np.abs(H)
    return np.where(np.isfinite(noise), noise, 0.0)


def _eigen_text(report: Report, stability) -> str:
    """The eigenvalues (those within rounding of zero as 0), what they say about the loss's
    shape, and the stable-rate bound from the meaningful ones, with stable digits only."""
    values = stability.eigenvalues
    rounding = float(stability.rounding)
    zeros = stability.zeros
    within = glue(f"±{_short(rounding, 1)}")

    def shown(value: float) -> str:
        return "0" if value == 0 else _stable(value, rounding, 6)

    if zeros == len(values):
        eigen = (
            f"eigenvalues {listing(['0'] * zeros)} (zero within rounding, {within})"
            if zeros <= 4
            else f"{zeros} eigenvalues, all zero within rounding ({within})"
        )
    elif len(values) <= 4:
        eigen = "eigenvalues " + listing([shown(v) for v in values])
        if zeros:
            eigen += f" (0: zero within rounding, {within})"
    else:
        eigen = f"{len(values)} eigenvalues from {shown(values[0])} to {shown(values[-1])}"
        if zeros:
            eigen += f" ({zeros} of them zero within rounding, {within})"
    flat = (
        "flat along every direction"
        if zeros == len(values)
        else "flat along some direction"
        if zeros == 1
        else f"flat along {zeros} directions"
    )
    if stability.negative:
        condition = "indefinite (negative curvature along some direction)"
        if zeros:
            condition += f" and {flat}"
    elif zeros == len(values):
        condition = flat
    elif zeros:
        condition = f"singular: {flat}"
    else:
        kappa = float(stability.condition_number)
        relative = rounding / float(values[0]) + rounding / float(values[-1])
        condition = f"condition number {_stable(kappa, kappa * relative, 3)}"
    largest = float(values[-1])
    if largest > 0:
        rate = float(stability.max_stable_lr)
        verdict = "stable" if stability.stable else "too large: expect the descent to diverge"
        bound = (
            "largest stable learning rate "
            + glue(f"2/λ_max = {_stable(rate, rate * rounding / largest, 6)}")
            + f" (lr {report.lr:g} is {verdict})"
        )
    else:
        bound = "no eigenvalue is above zero, so the curvature sets no bound on the learning rate"
    return f"{eigen}; {condition}; {bound}"


def _descent_noise(report: Report, source: str) -> tuple[float, np.ndarray] | None:
    """How far rounding can move the final loss and θ of `source`'s descent: the descent's
    tolerance (widened by √(steps + 1)) applied to their terms, and at least how far apart the
    agreeing engines ended (where the descent amplifies rounding, that is more). None when
    they are exact on every machine, or unknown."""
    if source in EXACT_ARITHMETIC:
        return None
    t = report.engines[source].trajectory
    if t is None or t.diverged_at is not None or not np.isfinite(t.theta).all():
        return None
    tol = report.tolerance.scaled(math.sqrt(report.settings.iterations + 1))
    start = report.points[report.descent_from].theta
    try:
        with np.errstate(all="ignore"):
            loss_terms = max(report.model.scales_at(x).loss for x in (start, t.theta))
            steps = report.lr * np.max(
                [report.model.scales_at(x).gradient for x in (start, t.theta)], axis=0
            )
    except Exception:
        return None
    theta_terms = max(float(np.abs(t.theta).max()), float(np.abs(start).max())) + steps
    loss = tol.atol * float(loss_terms) + tol.rtol * abs(float(t.losses[-1]))
    theta = tol.atol * theta_terms + tol.rtol * np.abs(t.theta)
    verdict = report.verdicts.get(Check.DESCENT)
    for name in verdict.agreeing if verdict is not None else []:
        other = report.engines[name].trajectory
        if other is None or other.steps != t.steps or not np.isfinite(other.theta).all():
            continue
        loss = max(loss, abs(float(other.losses[-1]) - float(t.losses[-1])))
        theta = np.maximum(theta, np.abs(other.theta - t.theta))
    if not (math.isfinite(loss) and np.isfinite(theta).all()):
        return None
    return loss, theta


def _end_words(report: Report, entry: EngineReport, noise: float = 0.0) -> str:
    """How an engine's descent ended, in words (the loss with the digits `noise`, its
    rounding, cannot change)."""
    t = entry.trajectory
    if t.diverged_at is not None:
        return glue(f"diverged at iteration {t.diverged_at:,}")
    loss = glue(f"loss {_stable(t.losses[-1], noise, 6)}")
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
    noise = _descent_noise(report, source)
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
        loss_noise, theta_noise = noise if noise is not None else (0.0, np.zeros(len(names)))
        if len(names) <= MAX_LISTED:
            pairs = [
                (n, _stable(v, e)) for n, v, e in zip(names, t.theta, theta_noise, strict=True)
            ]
        else:
            pairs = []
        lines += _assignments([*pairs, ("loss", _stable(t.losses[-1], loss_noise))], INDENT * 2)
        if len(names) > MAX_LISTED:
            lines.append(f"{INDENT * 2}(θ's {len(names)} values are in --json)")
    pivot = report.reference(Check.DESCENT)
    if pivot is not None:
        lines += wrap(
            f"Each engine against the consensus ({pivot}), over the loss at every step and the "
            "final θ:",
            width,
            INDENT,
            INDENT,
        )
        reference = report.engines[pivot].trajectory

        # The end of each descent to the digits the consensus's rounding leaves sure.
        shared = _descent_noise(report, pivot)
        end_noise = shared[0] if shared is not None else 0.0

        def cells(entry: EngineReport) -> list[str]:
            return [_end_words(report, entry, end_noise)]

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
        # 10 digits (the solvers agree to about 1e-15 from CPU to CPU), none below 1e-12 of
        # the largest entry: an entry that small is zero within the solver's rounding.
        floor = OPTIMUM_FLOOR * float(np.abs(optimum).max())
        where = ", ".join(
            glue(f"{n} = {_stable(v, floor, 10)}") for n, v in zip(names, optimum, strict=True)
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
        parts.append(f"{listing(approximate)} (central differences) {verb} it")
    if verdict.unconfirmed:
        parts.append(f"{listing(verdict.unconfirmed)} (central differences) not counted")
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


def _descent_length(report: Report) -> str:
    """How far the compared descents went: ``1,000 iterations``; ``8 of 1,000 iterations``
    when every one was cut short; with both kinds, how many ran all the way."""
    iterations = report.settings.iterations
    compared = report.verdicts[Check.DESCENT].compared
    capped = {n: report.engines[n].capped_iterations for n in compared}
    cut = sorted({c for c in capped.values() if c is not None})
    whole = [n for n, c in capped.items() if c is None]
    if not cut:
        return plural(iterations, "iteration")
    if len(whole) < 2:
        return f"{min(cut):,} of {plural(iterations, 'iteration')}"
    return (
        f"{plural(iterations, 'iteration')} by {len(whole)} engines, the others' first {_span(cut)}"
    )


def _span(counts: list[int]) -> str:
    """``50``, or ``8 to 50`` (`counts` sorted)."""
    return f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,} to {counts[-1]:,}"


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
            checks.append(f"the descent ({_descent_length(report)})")
        exact = gradient.exact if gradient is not None else []
        confirming = _confirming(report)
        if under_test is not None:
            others = exact if confirming else [n for n in compared if n != under_test.name]
            return (
                f"OK: your formula ({spec}) agrees with {listing(others)}: "
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
    failing = listing([e.name for e in bad])
    verb = "disagrees" if len(bad) == 1 else "disagree"
    if all(e.status is Status.ERROR for e in bad):
        verb = "failed"
    if under_test is not None:
        agreeing = [
            n for n in compared if n != under_test.name and report.engines[n].status is Status.OK
        ]
        return (
            f"NOT OK: your formula ({spec}) agrees with {listing(agreeing)}, but {failing} {verb}"
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
    text = f"WRONG: your formula ({spec}) disagrees with {listing(against or others)}"
    if len(against) > 1 and all(verdict.pairs[a, b].ok for a in against for b in against if a != b):
        text += ", which agree with each other"
    coarse = [n for n in agreeing if verdict.trust[n] is Trust.APPROXIMATE]
    exact = [n for n in agreeing if n not in coarse]
    # Engines whose descent was shortened agree over their first iterations only: say so, or
    # the one engine that descended all the way would look like the odd one out.
    short = [
        n for n in exact
        if check is Check.DESCENT and report.engines[n].capped_iterations is not None
    ]  # fmt: skip
    whole = [n for n in exact if n not in short]
    if whole:
        text += f" (it agrees with {listing(whole)})"
    if short:
        steps = sorted({report.engines[n].capped_iterations or 0 for n in short})
        text += (
            f" ({listing(short)} descended the first {_span(steps)} iterations only, where it "
            "agrees)"
        )
    if coarse:
        text += (
            f" ({listing(coarse)}'s central differences are too coarse to tell, and do not decide)"
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
            f"{listing(outside)} {'disagrees' if len(outside) == 1 else 'disagree'} with "
            f"{listing(group)}, which agree with each other"
        )
    else:
        a, b = verdict.disagreeing[0]
        text = f"NOT OK: the exact engines disagree in the {verdict.check.value}: {a} and {b}"
    under_test = report.under_test
    if under_test is not None and under_test.name in verdict.compared:
        mine = [n for n in group if verdict.pairs[under_test.name, n].ok]
        if mine:
            text += f"; your formula agrees with {listing(mine)}"
    return text


def _verdict_lines(report: Report, width: int) -> list[tuple[str, str | None]]:
    """The verdict sentence, in the verdict's colour."""
    style = "bold green" if report.ok else "bold red"
    return [(line, style) for line in wrap(verdict(report), width, rest=INDENT)]


def _answer(report: Report, width: int) -> list[tuple[str, str | None]]:
    """The verdict, the diagnosis right after it, then each disagreement in detail."""
    lines = _verdict_lines(report, width)
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
    # from CPU to CPU with the BLAS kernel, and none below what the comparison allows for
    # rounding (a value that small is 0 within rounding); --json has every value in full.
    digits = 10
    if 0 < difference.relative < 1e-7:
        digits = min(17, 3 - math.floor(math.log10(difference.relative)))
    values = _assignments(
        [
            (entry.name, _stable(difference.actual, difference.allowed, digits)),
            (pivot, _stable(difference.expected, difference.allowed, digits)),
        ],
        INDENT,
    )
    relative = (
        f", relative {difference.relative:.2g}" if _relative_means_something(difference) else ""
    )
    size = (
        f"difference {_short(difference.absolute, 3)}{relative} (allowed "
        f"{_short(difference.allowed, 3)})"
    )
    lines += [(value, None) for value in values]  # a name and a number: always fit
    return lines + [(line, None) for line in wrap(size, width, INDENT, INDENT * 2)]
