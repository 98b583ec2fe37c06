"""The Python API: :func:`verify` runs every check and returns a :class:`Report`.

The command line (``python -m verifiers.run``) is a thin layer over this module.

How engines are judged: for each check (gradients, Hessians, descents) every pair of engines is
compared. The engine agreeing with the most others, ties broken by a fixed order of trust
(independent engines first, the formula under test last), is the pivot; the engines that agree
with it form the consensus and every other engine is reported as a mismatch, with its worst
element against the pivot. So one wrong engine is named, whichever it is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from verifiers import formulas
from verifiers.compare import Difference, Tolerance, worst_difference
from verifiers.data import DataError, Dataset, load_csv
from verifiers.diagnosis import Diagnosis, diagnose
from verifiers.engines import ENGINE_NAMES, Engine, EngineUnavailable, engine_class
from verifiers.engines.base import Evaluation, Trajectory
from verifiers.engines.manual import FormulaError, GradientFormula
from verifiers.stability import Stability, analyse

__all__ = [
    "DEFAULT_ENGINES",
    "EngineReport",
    "Report",
    "Settings",
    "UsageError",
    "check_settings",
    "verify",
]

DEFAULT_ENGINES = ENGINE_NAMES
# Whom to trust when agreement counts tie: independent engines first, the formula under test last.
_GRADIENT_TRUST = ("numeric", "minigrad", "torch", "jax", "loop", "manual")
_DESCENT_TRUST = ("loop", "numeric", "minigrad", "torch", "jax", "manual")
# The Hessian's closed form is always the built-in one (never --manual's), and exact.
_HESSIAN_TRUST = ("manual", "minigrad", "torch", "jax", "numeric")
# Engines that run slowly in pure Python are capped to about this many seconds of descent.
LOOP_SECONDS_BUDGET = 10.0

ProgressFactory = Callable[[str, int], Callable[[int], None]]


class UsageError(ValueError):
    """Bad arguments or an engine that was asked for and cannot run (the CLI exits with 2)."""


@dataclass
class Settings:
    """Everything that decides the outcome of a run (written to the JSON report)."""

    lr: float = 1e-4
    iterations: int = 1000
    start: np.ndarray | None = None  # θ0 = (b, w...); zeros when None
    points: int = 3
    seed: int = 0
    rtol: float | None = None
    atol: float | None = None
    device: str = "auto"
    dtype: str = "float64"
    # None: every engine, a missing package only skipping its engine. Named engines must run.
    engines: tuple[str, ...] | None = None
    manual: str | None = None  # "file.py:function", for the report


@dataclass
class CheckPoint:
    label: str
    theta: np.ndarray


@dataclass
class EngineReport:
    """What one engine computed and how it compared."""

    name: str
    status: str = "ok"  # ok | skipped | mismatch | error
    reason: str = ""
    device: str = ""
    setup_seconds: float = 0.0
    evaluations: list[Evaluation] = field(default_factory=list)
    hessian: np.ndarray | None = None
    trajectory: Trajectory | None = None
    capped_iterations: int | None = None  # set when the descent was shortened on purpose
    budget: int | None = None  # evaluations this engine can afford (None: no limit)
    vs_manual: Difference | None = None
    vs_numeric: Difference | None = None
    vs_reference_descent: Difference | None = None
    vs_reference_hessian: Difference | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ran(self) -> bool:
        return self.status in ("ok", "mismatch")


@dataclass
class Report:
    """Everything a run found; ``ok`` is the verdict."""

    data: Dataset
    settings: Settings
    tolerance: Tolerance
    points: list[CheckPoint]
    engines: dict[str, EngineReport]
    optimum: np.ndarray
    stability: Stability
    diagnosis: Diagnosis | None = None
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def parameter_names(self) -> list[str]:
        return formulas.parameter_names(self.data.features)


def verify(
    data: Dataset | str | Path,
    settings: Settings | None = None,
    *,
    formula: GradientFormula | None = None,
    progress: ProgressFactory | None = None,
    warn: Callable[[str], None] | None = None,
) -> Report:
    """Check the gradient formula on `data` against every engine, then descend on each.

    `formula` replaces the built-in hand formula of the `manual` engine (see
    :mod:`verifiers.engines.manual`). `progress(engine, iterations)` may return a callback that
    receives the iterations done; `warn(message)` hears warnings (an unstable learning rate)
    before the descents start; they are in the report's notes too.

    Raises :class:`UsageError` for bad settings, an engine asked for by name that cannot run, or
    a formula that fails; DataError for bad data.
    """
    settings = settings or Settings()
    check_settings(settings)
    if not isinstance(data, Dataset):
        data = load_csv(data, settings.dtype)
    _check_start(settings, data)
    tolerance = Tolerance.for_dtype(data.dtype, data.rows, settings.rtol, settings.atol)
    start = _start(settings, data)
    b_star, w_star = formulas.least_squares(data.X, data.y)
    optimum = np.concatenate([[b_star], w_star])
    _check_representable(data, [start, optimum])
    points = _check_points(start, optimum, settings.points, settings.seed, data.dtype)
    report = Report(
        data=data,
        settings=settings,
        tolerance=tolerance,
        points=points,
        engines={},
        optimum=optimum,
        stability=analyse(data, settings.lr, start, optimum),
        notes=list(data.notes),
    )
    engines = _build_engines(report, formula)
    if warn:
        for note in report.stability.notes:
            warn(note)
    # Engines that compile in the background go last, so their compiling overlaps the others.
    background = [name for name, engine in engines.items() if engine.prepare(settings.iterations)]
    for name in sorted(engines, key=lambda name: name in background):
        _run_evaluations(report, name, engines[name])
        _run_descent(report, name, engines[name], start, progress)
    _compare_gradients(report)
    _compare_hessians(report, engines)
    _compare_descents(report, start)
    manual = report.engines.get("manual")
    if manual is not None and manual.status == "mismatch" and manual.evaluations:
        report.diagnosis = _diagnose_manual(report, engines)
    _finish(report)
    return report


def check_settings(settings: Settings) -> None:
    """Raise UsageError for settings that are wrong whatever the data (run before loading it)."""
    if not (math.isfinite(settings.lr) and settings.lr > 0):
        raise UsageError(f"--lr must be a positive finite number, not {settings.lr!r}")
    if settings.iterations < 0:
        raise UsageError(f"--iterations must be 0 or more, not {settings.iterations}")
    if settings.points < 0:
        raise UsageError(f"--points must be 0 or more, not {settings.points}")
    for name in settings.engines or ():
        if name not in ENGINE_NAMES:
            raise UsageError(f"unknown engine {name!r}; choose from {', '.join(ENGINE_NAMES)}")
    if settings.engines is not None and not settings.engines:
        raise UsageError("no engines to run: --engines needs at least one name")
    for option in ("rtol", "atol"):
        value = getattr(settings, option)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise UsageError(f"--{option} must be a finite number >= 0, not {value!r}")


def _check_start(settings: Settings, data: Dataset) -> None:
    if settings.start is not None and np.size(settings.start) != data.features + 1:
        names = ",".join(formulas.parameter_names(data.features))
        raise UsageError(
            f"--start needs {data.features + 1} values ({names}) for {data.features} feature(s), "
            f"got {np.size(settings.start)}"
        )


def _check_representable(data: Dataset, thetas: list[np.ndarray]) -> None:
    """Refuse data whose squared errors or Hessian overflow the dtype: nothing could be checked."""
    largest = float(np.finfo(data.dtype).max)
    with np.errstate(over="ignore", invalid="ignore"):
        sizes = [formulas.loss_scale(t[0], t[1:], data.X, data.y) for t in thetas]
        sizes.append(float(formulas.hessian_scales(data.X).max()))
    if not all(math.isfinite(size) and size < largest for size in sizes):
        peak = max(float(np.abs(data.X).max()), float(np.abs(data.y).max()))
        raise DataError(
            data.path,
            f"values up to {peak:.3g} are too large: their squares overflow {data.dtype} "
            "(rescale the data)",
        )


def _start(settings: Settings, data: Dataset) -> np.ndarray:
    if settings.start is None:
        return np.zeros(data.features + 1)
    start = np.asarray(settings.start, dtype=np.float64).reshape(-1)
    if not np.isfinite(start).all():
        raise UsageError("--start values must be finite")
    return start


def _check_points(
    start: np.ndarray, optimum: np.ndarray, extra: int, seed: int, dtype: np.dtype
) -> list[CheckPoint]:
    """The start, the least-squares optimum, and `extra` seeded random points around them."""
    rng = np.random.default_rng(seed)
    spread = 1 + np.abs(optimum) + np.abs(start)
    points = [CheckPoint("start", start), CheckPoint("optimum", optimum)]
    points += [
        CheckPoint(f"point {k}", optimum + spread * rng.standard_normal(optimum.size))
        for k in range(1, extra + 1)
    ]
    # Every engine sees exactly the same θ, already rounded to the data's dtype.
    for point in points:
        point.theta = point.theta.astype(dtype).astype(np.float64)
    return points


def _build_engines(report: Report, formula: GradientFormula | None) -> dict[str, Engine]:
    settings, data = report.settings, report.data
    explicit = settings.engines is not None
    engines: dict[str, Engine] = {}
    for name in settings.engines or DEFAULT_ENGINES:
        entry = report.engines[name] = EngineReport(name)
        started = time.perf_counter()
        try:
            cls = engine_class(name)
            if name == "manual" and formula is not None:
                label = f"--manual {settings.manual}" if settings.manual else "the given formula"
                engine = cls(data, settings.device, formula=formula, formula_name=label)
            else:
                engine = cls(data, settings.device)
        except EngineUnavailable as error:
            if explicit:
                raise UsageError(str(error)) from None
            if settings.device == "cuda" and name == "torch":
                raise UsageError(f"--device cuda is for torch, but {error}") from None
            entry.status, entry.reason = "skipped", str(error)
            continue
        entry.setup_seconds = time.perf_counter() - started
        entry.device = engine.device
        entry.budget = engine.affordable_evaluations(LOOP_SECONDS_BUDGET)
        if entry.budget is not None and entry.budget < 1:
            entry.status = "skipped"
            entry.reason = (
                f"one gradient over {data.rows:,} rows would take about "
                f"{engine.seconds_per_evaluation():.2g} s of per-point Python loop, more than "
                f"the {LOOP_SECONDS_BUDGET:.0f} s it is given"
            )
            report.notes.append(f"{name} skipped: {entry.reason}")
            continue
        engines[name] = engine
    return engines


def _run_evaluations(report: Report, name: str, engine: Engine) -> None:
    """Loss and gradient at every check point, and the Hessian at the start, on one engine.

    An engine with a time budget too small for every point and the whole descent is checked at
    the start point only, and its descent is capped to what the budget leaves.
    """
    iterations = report.settings.iterations
    entry = report.engines[name]
    points: list[CheckPoint | None] = list(report.points)
    if entry.budget is not None and entry.budget < len(points) + iterations + 1:
        points = [points[0]] + [None] * (len(points) - 1)
        entry.capped_iterations = max(min(iterations, entry.budget - 2), 0)
    try:
        with np.errstate(all="ignore"):
            entry.evaluations = [p and engine.evaluate(p.theta) for p in points]
            entry.hessian = engine.hessian(report.points[0].theta)
    except FormulaError as error:
        raise UsageError(str(error)) from None
    except Exception as error:  # an engine failing is a result to report, not a crash
        entry.status, entry.reason = "error", f"{type(error).__name__}: {error}"


def _gradient_scales(report: Report) -> tuple[list[np.ndarray], list[list[str]]]:
    """Per check point: Σ|terms| of the loss and gradient, and labels (``dL/dw at optimum``)."""
    X, y = report.data.X, report.data.y
    names = report.parameter_names
    scales, labels = [], []
    for point in report.points:
        b, w = point.theta[0], point.theta[1:]
        scales.append(
            np.concatenate(
                [[formulas.loss_scale(b, w, X, y)], formulas.gradient_scales(b, w, X, y)]
            )
        )
        labels.append([f"loss at {point.label}"] + [f"dL/d{n} at {point.label}" for n in names])
    return scales, labels


def _consensus(
    names: list[str], compare: Callable[[str, str], Difference], trust: Sequence[str]
) -> tuple[str, dict[str, Difference]]:
    """The pivot engine and each engine's worst difference against it (see the module doc)."""
    differences = {(a, b): compare(a, b) for a in names for b in names if a != b}
    agreements = {a: sum(differences[a, b].ok for b in names if b != a) for a in names}
    rank = {name: i for i, name in enumerate(trust)}
    pivot = min(names, key=lambda n: (-agreements[n], rank.get(n, len(rank))))
    return pivot, {n: differences[n, pivot] for n in names if n != pivot}


def _flag(entry: EngineReport, check: str, pivot: str, difference: Difference) -> None:
    if difference.ok:
        return
    entry.status = "mismatch"
    entry.problems.append(f"{check}: {difference.describe()} against {pivot}")


def _compare_gradients(report: Report) -> None:
    ran = [n for n, e in report.engines.items() if e.status == "ok"]
    if not ran:
        return
    scales, labels = _gradient_scales(report)
    evaluations = {n: report.engines[n].evaluations for n in ran}

    def compare(a: str, b: str) -> Difference:
        """Over the check points both engines evaluated."""
        both = [
            i
            for i, (x, y) in enumerate(zip(evaluations[a], evaluations[b], strict=True))
            if x and y
        ]
        vector = {
            n: np.concatenate([[evaluations[n][i].loss, *evaluations[n][i].gradient] for i in both])
            for n in (a, b)
        }
        return worst_difference(
            vector[a],
            vector[b],
            np.concatenate([scales[i] for i in both]),
            report.tolerance,
            [label for i in both for label in labels[i]],
        )

    for name in ran:
        entry = report.engines[name]
        if name != "manual" and "manual" in evaluations:
            entry.vs_manual = compare(name, "manual")
        if name != "numeric" and "numeric" in evaluations:
            entry.vs_numeric = compare(name, "numeric")
    if len(ran) < 2:
        return
    pivot, differences = _consensus(ran, compare, _GRADIENT_TRUST)
    for name, difference in differences.items():
        _flag(report.engines[name], "gradient", pivot, difference)


def _compare_hessians(report: Report, engines: dict[str, Engine]) -> None:
    ran = [
        n
        for n, e in report.engines.items()
        if e.status in ("ok", "mismatch") and e.hessian is not None
    ]
    if len(ran) < 2:
        return
    X = report.data.X
    theta = report.points[0].theta
    scale = formulas.hessian_scales(X)
    noise = {n: engines[n].hessian_noise(theta) for n in ran}
    names = report.parameter_names
    labels = [hessian_label(a, b) for a in names for b in names]

    def compare(a: str, b: str) -> Difference:
        entries = report.engines
        return worst_difference(
            entries[a].hessian,
            entries[b].hessian,
            scale + noise[a] + noise[b],
            report.tolerance,
            labels,
        )

    pivot, differences = _consensus(ran, compare, _HESSIAN_TRUST)
    for name, difference in differences.items():
        report.engines[name].vs_reference_hessian = difference
        _flag(report.engines[name], "Hessian", pivot, difference)


def hessian_label(a: str, b: str) -> str:
    """``d²L/db²`` on the diagonal, ``d²L/db dw`` off it."""
    return f"d²L/d{a}²" if a == b else f"d²L/d{a} d{b}"


def _run_descent(
    report: Report, name: str, engine: Engine, start: np.ndarray, progress: ProgressFactory | None
) -> None:
    """Descend on one engine unless it has failed (the capped loop for fewer iterations)."""
    settings = report.settings
    entry = report.engines[name]
    if entry.status == "error":
        return
    iterations = settings.iterations
    if entry.capped_iterations is not None:
        iterations = entry.capped_iterations
    callback = progress(name, iterations) if progress and iterations else None
    try:
        with np.errstate(all="ignore"):
            entry.trajectory = engine.descend(start, settings.lr, iterations, callback)
    except FormulaError as error:
        raise UsageError(str(error)) from None
    except Exception as error:
        entry.status, entry.reason = "error", f"descent failed: {type(error).__name__}: {error}"


def _compare_descents(report: Report, start: np.ndarray) -> None:
    ran = [n for n, e in report.engines.items() if e.trajectory is not None]
    if len(ran) < 2:
        return
    trajectories = {n: report.engines[n].trajectory for n in ran}
    # Rounding accumulates over the steps like a random walk: widen by √(steps + 1).
    tolerance = report.tolerance.scaled(math.sqrt(report.settings.iterations + 1))
    X, y = report.data.X, report.data.y
    names = report.parameter_names

    def compare(a: str, b: str) -> Difference:
        ta, tb = trajectories[a], trajectories[b]
        if ta.diverged_at != tb.diverged_at:
            where = "iteration at which the descent diverged (None: it did not)"
            return Difference(
                where, _nan_if_none(ta.diverged_at), _nan_if_none(tb.diverged_at), 0.0
            )
        steps = min(ta.steps, tb.steps)
        finite_thetas = [t for t in (start, tb.theta) if np.isfinite(t).all()]
        loss_scale = max(formulas.loss_scale(t[0], t[1:], X, y) for t in finite_thetas)
        worst = worst_difference(
            ta.losses[: steps + 1], tb.losses[: steps + 1], loss_scale, tolerance,
            [f"loss after {k} steps" for k in range(steps + 1)],
        )  # fmt: skip
        if ta.steps == tb.steps:  # a capped descent stops early; its final θ is not comparable
            theta_scale = max(np.abs(tb.theta).max(), np.abs(start).max())
            final = worst_difference(
                ta.theta, tb.theta, theta_scale, tolerance, [f"final {n}" for n in names]
            )
            worst = max((worst, final), key=lambda d: d.ratio)
        return worst

    pivot, differences = _consensus(ran, compare, _DESCENT_TRUST)
    for name, difference in differences.items():
        report.engines[name].vs_reference_descent = difference
        _flag(report.engines[name], "descent", pivot, difference)


def _nan_if_none(value: int | None) -> float:
    return math.nan if value is None else float(value)


def _diagnose_manual(report: Report, engines: dict[str, Engine]) -> Diagnosis:
    """Compare the formula under test with an agreeing autodiff gradient at many points."""
    trusted = [
        n
        for n in ("minigrad", "torch", "jax", "numeric")
        if n in engines and report.engines[n].status == "ok"
    ]
    if not trusted:
        return Diagnosis("no trusted engine agreed, so the shape of the error is unknown", None)
    # The check points plus a few more, so a pattern must hold well away from them too.
    more = _check_points(
        report.points[0].theta, report.optimum, 4, report.settings.seed + 1, report.data.dtype
    )
    thetas = np.array([p.theta for p in report.points + more[2:]])
    with np.errstate(all="ignore"):
        return diagnose(
            lambda t: engines["manual"].evaluate(t).gradient,
            lambda t: engines[trusted[0]].evaluate(t).gradient,
            thetas,
            report.data,
            report.tolerance,
        )


def _finish(report: Report) -> None:
    """Reasons per engine, the failures list and the notes."""
    for entry in report.engines.values():
        if entry.status == "mismatch":
            entry.reason = "; ".join(entry.problems)
            report.failures.append(f"{entry.name} disagrees: {entry.problems[0]}")
        elif entry.status == "error":
            report.failures.append(f"{entry.name} failed: {entry.reason}")
        if entry.capped_iterations is not None:
            report.notes.append(
                f"{entry.name}: checked at the start point only, and its descent capped at "
                f"{entry.capped_iterations} of {report.settings.iterations} iterations (about "
                f"{LOOP_SECONDS_BUDGET:.0f} s of per-point Python loop for {report.data.rows:,} "
                "rows); compared over those iterations only"
            )
    ran = [e for e in report.engines.values() if e.ran]
    if len(ran) < 2:
        report.notes.append("fewer than two engines ran: there was nothing to compare against")
    report.notes.extend(report.stability.notes)
