"""The Python API: :func:`verify` runs every check and returns a :class:`~verifiers.results.Report`.

The command line (``python -m verifiers.run``) is a thin layer over this module. The steps:

1. settings and data are checked, the model is built, and the work is bounded before it starts
   (too many iterations or points is refused; an engine whose share would take too long is
   checked at fewer points, or its Hessian or descent skipped or capped, with a note);
2. every engine computes the loss and gradient at every check point, and its Hessian;
3. the stability of the learning rate is analysed (a warning is given before the descents);
4. every engine descends; then each check is judged by :mod:`verifiers.consensus`, and a formula
   under test that disagrees is diagnosed.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from verifiers.compare import Difference, Tolerance, worst_difference
from verifiers.concurrency import Task, run_tasks, stoppable
from verifiers.consensus import find_consensus
from verifiers.data import DataError, Dataset, load_csv
from verifiers.diagnosis import Diagnosis, diagnose
from verifiers.engines import (
    ENGINE_NAMES,
    Engine,
    EngineUnavailable,
    engine_class,
    follows_device,
)
from verifiers.engines.manual import FormulaError, GradientFormula
from verifiers.models import MODELS, Model, ModelOptions, Optimum
from verifiers.models.user import UserLossError
from verifiers.results import CheckPoint, EngineReport, Report
from verifiers.settings import LIMITS, Settings, UsageError, check_settings
from verifiers.stability import analyse

__all__ = ["Report", "Settings", "UsageError", "build_model", "verify"]

ProgressFactory = Callable[[str, int], Callable[[int], None]]


def verify(
    data: Dataset | str | Path,
    settings: Settings | None = None,
    *,
    formula: GradientFormula | None = None,
    loss: Callable | None = None,
    combination: Callable | None = None,
    progress: ProgressFactory | None = None,
    warn: Callable[[str], None] | None = None,
) -> Report:
    """Check the gradient on `data` against every engine, then descend on each.

    `formula` replaces the model's built-in hand formula in the `manual` engine and becomes the
    thing under test (see :mod:`verifiers.engines.manual`); `loss` replaces the model with a
    user's loss of the linear model, ``loss(b, w, X, y, xp)`` (see :mod:`verifiers.models.user`).
    `combination` is the user's combination of the shards' results (with ``settings.shards``,
    see :mod:`verifiers.sharded`).
    `progress(engine, iterations)` may return a callback that receives the iterations done;
    `warn(message)` hears warnings (an unstable learning rate) before the descents start; they
    are in the report's notes too.

    Raises :class:`UsageError` for bad settings, an engine asked for by name that cannot run, too
    much work, or a formula that fails; :class:`~verifiers.data.DataError` for bad data.
    """
    settings = settings or Settings()
    check_settings(settings, ENGINE_NAMES)
    if loss is not None and settings.model != "mse":
        raise UsageError(
            f"--loss replaces the model: it cannot be combined with --model {settings.model}"
        )
    if not isinstance(data, Dataset):
        data = load_csv(data, settings.dtype)
    model = build_model(settings, data, loss)
    lr = settings.lr if settings.lr is not None else MODELS.get(model.name, (None, 1e-4))[1]
    _check_work(settings, data)
    start = _start(settings, model)
    optimum = model.optimum()
    points = check_points(start, optimum.theta, settings.points, settings.seed, data.dtype)
    _check_magnitudes(model, points, optimum)
    report = Report(
        data=data,
        settings=settings,
        model=model,
        lr=lr,
        tolerance=Tolerance.for_dtype(data.dtype, data.rows, settings.rtol, settings.atol),
        points=points,
        engines={},
        optimum=optimum,
        notes=list(data.notes),
    )
    if optimum.theta is None and optimum.note:
        report.notes.append(optimum.note)
    engines = _build_engines(report, formula)
    try:
        _run(report, engines, progress, warn)
    finally:
        for engine in engines.values():
            engine.close()
    _judge(report, engines, combination)
    return report


def build_model(settings: Settings, data: Dataset, loss: Callable | None = None) -> Model:
    """The model the settings ask for, bound to `data` (DataError if it cannot use the data)."""
    options = ModelOptions(l2=settings.l2, hidden=settings.hidden, seed=settings.seed)
    if loss is not None:
        from verifiers.models.user import UserLossModel

        return UserLossModel(data, loss, settings.loss or "the given loss", options)
    model_class = MODELS[settings.model][0]
    return model_class(data, options)


# ---- bounding the work --------------------------------------------------------------------------
def _check_work(settings: Settings, data: Dataset) -> None:
    """Refuse a run whose size alone makes it take too long (it would look like a hang)."""
    steps = data.rows * settings.iterations
    if steps > LIMITS.point_steps:
        raise UsageError(
            f"--iterations {settings.iterations:,} over {data.rows:,} rows is {steps:.3g} "
            f"row-steps per engine, more than the {LIMITS.point_steps:.3g} this tool runs; "
            f"use at most {int(LIMITS.point_steps // data.rows):,} iterations"
        )
    checks = data.rows * (settings.points + 2)
    if checks > LIMITS.point_checks:
        raise UsageError(
            f"--points {settings.points:,} over {data.rows:,} rows is {checks:.3g} row-checks "
            f"per engine, more than the {LIMITS.point_checks:.3g} this tool runs; use at most "
            f"{max(int(LIMITS.point_checks // data.rows) - 2, 2):,} points"
        )


def _start(settings: Settings, model: Model) -> np.ndarray:
    if settings.start is None:
        return model.start()
    if not model.linear:
        raise UsageError(f"--start applies to the (b, w) models, not to {model.name}")
    start = np.asarray(settings.start, dtype=np.float64).reshape(-1)
    if start.size != model.size:
        names = ",".join(model.labels())
        raise UsageError(
            f"--start needs {model.size} values ({names}) for {model.data.features} "
            f"feature{'s' if model.data.features != 1 else ''}, got {start.size}"
        )
    return start


def check_points(
    start: np.ndarray, optimum: np.ndarray | None, count: int, seed: int, dtype: np.dtype
) -> list[CheckPoint]:
    """The start, the optimum (where known), and `count` seeded random points.

    The random points come in pairs of opposite signs (the second of a pair is the first with
    every sign flipped, at new magnitudes), so every parameter is checked at both signs: a
    formula that uses |w| for w is exposed. Their size follows the start's and the optimum's.
    """
    rng = np.random.default_rng(seed)
    spread = 1 + np.abs(start) + (0 if optimum is None else np.abs(optimum))
    points = [CheckPoint("start", start)]
    if optimum is not None:
        points.append(CheckPoint("optimum", optimum))
    signs = None
    for k in range(count):
        signs = rng.choice([-1.0, 1.0], size=start.size) if k % 2 == 0 else -signs
        magnitude = spread * rng.uniform(0.5, 1.5, size=start.size)
        points.append(CheckPoint(f"point {k + 1}", signs * magnitude))
    # Every engine sees exactly the same θ, already rounded to the data's dtype.
    for point in points:
        point.theta = np.asarray(point.theta, dtype=dtype).astype(np.float64)
    return points


def _check_magnitudes(model: Model, points: list[CheckPoint], optimum: Optimum) -> None:
    """Refuse data (or a start) whose sums overflow the dtype, or whose products underflow it.

    Engines add up N terms before dividing by N, so the sums, not the means, must fit; and a
    value below the smallest normal number divided by ε has lost digits to underflow, so no
    engine could be judged fairly on it.
    """
    info = np.finfo(model.data.dtype)
    n = model.data.rows
    largest, smallest = float(info.max) / 16, float(info.tiny) / float(info.eps)

    def sizes(theta: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            scales = model.scales_at(theta)
        return np.concatenate([[scales.loss], scales.gradient]) * n

    reference = optimum.theta if optimum.theta is not None else np.zeros(model.size)
    values = sizes(reference)
    peak = max(float(np.abs(model.data.X).max()), float(np.abs(model.data.y).max()))
    if not (np.isfinite(values).all() and values.max() < largest):
        raise DataError(
            model.data.path,
            f"values up to {peak:.3g} are too large: the sums of their squares overflow "
            f"{model.data.dtype} (rescale the data"
            + (", or use --dtype float64)" if model.data.dtype == np.float32 else ")"),
        )
    nonzero = values[values > 0]
    if nonzero.size and nonzero.min() < smallest * n:
        raise DataError(
            model.data.path,
            f"values are too small (largest {peak:.3g}): their products fall below "
            f"{model.data.dtype}'s normal range, where rounding loses digits (rescale the data)",
        )
    for point in points:
        values = sizes(point.theta)
        if not (np.isfinite(values).all() and values.max() < largest):
            shown = ",".join(f"{v:g}" for v in points[0].theta)
            raise UsageError(
                f"--start {shown}: the loss near it overflows {model.data.dtype} (the check "
                "points are drawn around the start); start nearer the data's scale"
            )


def _build_engines(report: Report, formula: GradientFormula | None) -> dict[str, Engine]:
    """Build the engines asked for; skip, with a reason, those that cannot run here."""
    settings, model = report.settings, report.model
    explicit = settings.engines is not None
    engines: dict[str, Engine] = {}
    for name in settings.engines or ENGINE_NAMES:
        entry = report.engines[name] = EngineReport(name)
        started = time.perf_counter()
        try:
            cls = engine_class(name)
            given = formula is not None and cls.accepts_formula
            # The user's formula makes its engine run whatever the model.
            reason = None if given else cls.unsupported(model)
            if reason is not None:
                raise EngineUnavailable(name, reason)
            if given:
                label = f"--manual {settings.manual}" if settings.manual else "the given formula"
                engine = cls(model, settings.device, formula=formula, formula_name=label)
            else:
                engine = cls(model, settings.device)
        except EngineUnavailable as error:
            if explicit:
                raise UsageError(str(error)) from None
            if settings.device == "cuda" and follows_device(name):
                raise UsageError(f"--device cuda is for {name}, but {error}") from None
            entry.status, entry.reason = (
                "skipped",
                error.reason + (f" (install with: {error.install})" if error.install else ""),
            )
            continue
        entry.setup_seconds = time.perf_counter() - started
        entry.device = engine.device
        entry.under_test = engine.under_test
        engines[name] = engine
    _bound_engines(report, engines)
    if formula is not None and not any(e.under_test for e in engines.values()):
        takes = next(n for n in ENGINE_NAMES if engine_class(n).accepts_formula)
        raise UsageError(
            f"the formula under test is run by the {takes} engine: add it to --engines"
        )
    if len(engines) < 2:
        only = ", ".join(engines) or "no engine"
        hint = _suggestion(model, engines)
        raise UsageError(
            f"only {only} can compute the gradient here, so there is nothing to compare it "
            f"with: add another engine (for example --engines {','.join([*engines, hint])})"
        )
    return engines


def _suggestion(model: Model, engines: dict[str, Engine]) -> str:
    """The most independent engine not yet in `engines` that can run here."""
    usable = []
    for name in ENGINE_NAMES:
        try:
            cls = engine_class(name)
        except EngineUnavailable:
            continue
        if name not in engines and cls.unsupported(model) is None:
            usable.append((cls.gradient_rank, name))
    return min(usable)[1] if usable else ENGINE_NAMES[-1]


def _bound_engines(report: Report, engines: dict[str, Engine]) -> None:
    """Skip, or check less, on engines whose estimated time is over the limit (with a note)."""
    budget = LIMITS.seconds
    iterations = report.settings.iterations
    for name in list(engines):
        engine, entry = engines[name], report.engines[name]
        seconds = engine.seconds_per_evaluation()
        if seconds is None:
            continue
        if seconds > budget:
            entry.status = "skipped"
            entry.reason = (
                f"one gradient over {report.data.rows:,} rows and {report.model.size:,} "
                f"parameters would take about {seconds:.2g} s, more than the {budget:.0f} s "
                "it is given"
            )
            report.notes.append(f"{name} skipped: {entry.reason}")
            del engines[name]
            continue
        affordable = int(budget / seconds)
        if affordable < len(report.points) + iterations:
            entry.evaluations = [None] * len(report.points)  # marks: start only
            entry.capped_iterations = max(min(iterations, affordable - 1), 0)
            if entry.capped_iterations < iterations:
                entry.notes.append(
                    f"checked at the start point only, and its descent capped at "
                    f"{entry.capped_iterations:,} of {iterations:,} iterations (about "
                    f"{budget:.2g} s at {seconds:.2g} s per step); compared over those only"
                )
            else:
                entry.capped_iterations = None
                entry.notes.append(f"checked at the start point only (about {budget:.2g} s)")
        hessian_cost = engine.hessian_evaluations() * seconds
        if engine.computes_hessian and hessian_cost > budget:
            entry.notes.append(
                f"Hessian skipped: about {engine.hessian_evaluations():.3g} evaluations "
                f"({hessian_cost:.2g} s)"
            )
            entry.extra["skip_hessian"] = True


# ---- running the engines ------------------------------------------------------------------------
def _run(
    report: Report,
    engines: dict[str, Engine],
    progress: ProgressFactory | None,
    warn: Callable[[str], None] | None,
) -> None:
    iterations = report.settings.iterations
    # Engines that compile in the background go last, so their compiling overlaps the others.
    background = [name for name, engine in engines.items() if engine.prepare(iterations)]
    order = sorted(engines, key=lambda name: name in background)
    hessians = report.model.size <= LIMITS.hessian_parameters
    if not hessians:
        report.notes.append(
            f"Hessians skipped: {report.model.size:,} parameters make a "
            f"{report.model.size:,}×{report.model.size:,} matrix (at most "
            f"{LIMITS.hessian_parameters:,} parameters are analysed)"
        )

    # Engines run side by side on the free cores (verifiers.concurrency: the same results bit
    # for bit); the user's formula stays on this thread. The warnings come before any descent:
    # with a closed-form Hessian they are known at once and each engine goes straight on from
    # its checks to its descent; otherwise every engine's checks (and Hessian) come first.
    def task(name: str, *steps: Callable) -> Task:
        def run(stop) -> None:
            for step in steps:
                step(report, name, engines[name], hessians, progress, stop)

        return Task(name, run, main_thread=engines[name].under_test)

    closed_form = _closed_form_hessian(report) if hessians else None
    if not hessians or closed_form is not None:
        _analyse_stability(report, engines, hessians, warn, closed_form)
        run_tasks([task(name, _evaluate, _descend) for name in order])
        _require_two_gradients(report, order)
    else:
        run_tasks([task(name, _evaluate) for name in order])
        _require_two_gradients(report, order)
        _analyse_stability(report, engines, hessians, warn, closed_form)
        run_tasks([task(name, _descend) for name in order])


def _require_two_gradients(report: Report, order: list[str]) -> None:
    """A verdict needs two engines that computed the gradient; fewer is a usage error."""
    entries = [report.engines[n] for n in order]
    computed = [e.name for e in entries if e.evaluations and e.evaluations[0] is not None]
    if len(computed) < 2:
        skipped = "; ".join(f"{e.name}: {e.reason}" for e in entries if e.name not in computed)
        raise UsageError(
            f"only {', '.join(computed) or 'no engine'} could compute the gradient, so there is "
            f"nothing to compare it with ({skipped})"
        )


def _closed_form_hessian(report: Report) -> np.ndarray | None:
    theta = np.asarray(_hessian_point(report), dtype=report.model.data.dtype)
    return report.model.hand_hessian(theta)


def _analyse_stability(
    report: Report,
    engines: dict[str, Engine],
    hessians: bool,
    warn: Callable[[str], None] | None,
    closed_form: np.ndarray | None,
) -> None:
    report.stability = _stability(report, engines, closed_form) if hessians else None
    if report.stability is not None:
        report.notes.extend(report.stability.notes)
        if warn:
            for note in report.stability.notes:
                warn(note)


def _guarded(entry: EngineReport, action: Callable[[], object], what: str = "") -> object:
    """Run an engine's action; a user's formula failing is a usage error, any other failure a
    result to report (the engine's status becomes "error")."""
    try:
        with np.errstate(all="ignore"):
            return action()
    except FormulaError as error:
        raise UsageError(str(error)) from None
    except UserLossError as error:
        if error.missing is None:
            raise  # the user's loss is broken: a usage error for every engine
        entry.status, entry.reason = "skipped", str(error)
        return None
    except Exception as error:
        entry.status, entry.reason = "error", f"{what}{type(error).__name__}: {error}"
        return None


def _evaluate(report: Report, name: str, engine: Engine, hessians: bool, *_: object) -> None:
    """Loss and gradient at every check point (or the start only), and the Hessian."""
    entry = report.engines[name]
    points = report.points
    if entry.evaluations:  # bounded: the start only
        points = points[:1]
    values = _guarded(entry, lambda: [engine.evaluate(p.theta) for p in points])
    if values is None:
        return
    entry.evaluations = values + [None] * (len(report.points) - len(values))
    entry.device = engine.device  # an engine may say more once it has run (numeric's method)
    if hessians and not entry.extra.pop("skip_hessian", False):
        H = _guarded(entry, lambda: engine.hessian(_hessian_point(report)), "Hessian: ")
        entry.hessian = None if H is None else np.asarray(H, dtype=np.float64)


def _hessian_point(report: Report) -> np.ndarray:
    """Where the Hessians are compared: the optimum when known (the stability bound's home)."""
    if report.model.constant_hessian or report.optimum.theta is None:
        return report.points[0].theta
    return report.points[1].theta


def _stability(report: Report, engines: dict[str, Engine], closed_form: np.ndarray | None):
    """The stability analysis from the closed-form Hessian, else a consensus engine's."""
    model = report.model
    theta = _hessian_point(report)
    H = closed_form
    if H is None:
        order = sorted(engines, key=lambda n: type(engines[n]).hessian_rank)
        H = next(
            (report.engines[n].hessian for n in order if report.engines[n].hessian is not None),
            None,
        )
    if H is None or not np.isfinite(H).all():
        return None
    where = "at the optimum" if theta is not report.points[0].theta else "at the start"
    optimum = report.optimum.theta
    return analyse(H, report.lr, report.points[0].theta, optimum, model.constant_hessian, where)


def _descend(
    report: Report,
    name: str,
    engine: Engine,
    hessians: bool,
    progress: ProgressFactory | None,
    stop: threading.Event,
) -> None:
    entry = report.engines[name]
    if entry.status in ("error", "skipped"):
        return
    iterations = report.settings.iterations
    if entry.capped_iterations is not None:
        iterations = entry.capped_iterations
    callback = progress(name, iterations) if progress and iterations else None
    callback = stoppable(callback, stop)  # ends the descent early if another engine failed
    start = report.points[0].theta
    entry.trajectory = _guarded(
        entry, lambda: engine.descend(start, report.lr, iterations, callback), "descent failed: "
    )


# ---- judging ------------------------------------------------------------------------------------
def _judge(report: Report, engines: dict[str, Engine], combination: Callable | None) -> None:
    _compare_gradients(report, engines)
    _compare_hessians(report, engines)
    _compare_descents(report, engines)
    hand = next((n for n, e in engines.items() if type(e).accepts_formula), None)
    entry = report.engines.get(hand) if hand else None
    if (
        entry is not None
        and entry.status == "mismatch"
        and any(p.startswith("gradient") for p in entry.problems)
    ):
        report.diagnosis = _diagnose(report, engines, hand)
    if report.settings.shards:  # judged against each engine's own single-process run
        from verifiers.sharded import check_sharded

        check_sharded(report, engines, combination)
    _finish(report)


def _ranks(engines: dict[str, Engine], check: str) -> dict[str, int]:
    return {name: getattr(type(engine), f"{check}_rank") for name, engine in engines.items()}


def _flag(entry: EngineReport, check: str, pivot: str, difference: Difference) -> None:
    if difference.ok:
        return
    entry.status = "mismatch"
    entry.problems.append(f"{check}: {difference.describe()} against {pivot}")


def _compare_gradients(report: Report, engines: dict[str, Engine]) -> None:
    ran = [n for n, e in report.engines.items() if e.status == "ok"]
    if len(ran) < 2:
        return
    names = report.parameter_names
    model = report.model
    scales, labels = [], []
    for point in report.points:
        s = model.scales_at(point.theta)
        scales.append(np.concatenate([[s.loss], s.gradient]))
        labels.append([f"loss at {point.label}"] + [f"dL/d{n} at {point.label}" for n in names])
    noise = {
        n: [_gradient_noise(engines[n], p.theta, model.size) for p in report.points] for n in ran
    }
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
            np.concatenate([scales[i] + noise[a][i] + noise[b][i] for i in both]),
            report.tolerance,
            [label for i in both for label in labels[i]],
        )

    consensus = find_consensus(ran, compare, _ranks(engines, "gradient"))
    report.compared["gradient"] = ran
    for (a, b), difference in consensus.pairs.items():
        report.engines[a].against[b] = difference
    for name, difference in consensus.differences.items():
        report.engines[name].vs_consensus = difference
        _flag(report.engines[name], "gradient", consensus.pivot, difference)


def _gradient_noise(engine: Engine, theta: np.ndarray, size: int) -> np.ndarray:
    """The engine's own error scale for the loss (none) and each gradient component."""
    return np.concatenate([[0.0], np.broadcast_to(engine.gradient_noise(theta), (size,))])


def _compare_hessians(report: Report, engines: dict[str, Engine]) -> None:
    ran = [n for n, e in report.engines.items() if e.ran and e.hessian is not None]
    if len(ran) < 2:
        return
    theta = _hessian_point(report)
    scale = report.model.hessian_scales(theta)
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

    consensus = find_consensus(ran, compare, _ranks(engines, "hessian"))
    report.compared["Hessian"] = ran
    for name, difference in consensus.differences.items():
        report.engines[name].vs_reference_hessian = difference
        _flag(report.engines[name], "Hessian", consensus.pivot, difference)


def hessian_label(a: str, b: str) -> str:
    """``d²L/db²`` on the diagonal, ``d²L/db dw`` off it."""
    return f"d²L/d{a}²" if a == b else f"d²L/d{a} d{b}"


def _compare_descents(report: Report, engines: dict[str, Engine]) -> None:
    ran = [n for n, e in report.engines.items() if e.trajectory is not None and e.ran]
    if len(ran) < 2:
        return
    trajectories = {n: report.engines[n].trajectory for n in ran}
    # Rounding accumulates over the steps like a random walk: widen by √(steps + 1).
    tolerance = report.tolerance.scaled(math.sqrt(report.settings.iterations + 1))
    model = report.model
    start = report.points[0].theta
    names = report.parameter_names
    # Where the descent itself amplifies rounding, what it does to a start moved by rounding.
    sensitivity = _descent_sensitivity(report, engines, ran)
    atol = report.tolerance.atol

    def compare(a: str, b: str) -> Difference:
        ta, tb = trajectories[a], trajectories[b]
        moved = sensitivity is not None and sensitivity.divergence_moved
        if ta.diverged_at != tb.diverged_at and not moved:
            return _divergence_difference(ta.diverged_at, tb.diverged_at)
        steps = min(ta.steps, tb.steps)
        finite = [t for t in (start, tb.theta) if np.isfinite(t).all()]
        with np.errstate(all="ignore"):
            loss_scale = max(model.scales_at(t).loss for t in finite)
        if sensitivity is not None:
            loss_scale = np.maximum(loss_scale, sensitivity.losses(steps) / atol)
        worst = worst_difference(
            ta.losses[: steps + 1], tb.losses[: steps + 1], loss_scale, tolerance,
            [f"loss after {k} step{'s' if k != 1 else ''}" for k in range(steps + 1)],
        )  # fmt: skip
        if ta.steps == tb.steps:  # a capped descent stops early; its final θ is not comparable
            # θ's terms: the start, and each step's lr·∇L, whose rounding is that of the
            # gradient's terms (large where the loss is flat but its terms are not)
            with np.errstate(all="ignore"):
                steps_scale = report.lr * np.max(
                    [model.scales_at(t).gradient for t in finite], axis=0
                )
            theta_scale = max(np.abs(tb.theta).max(), np.abs(start).max()) + steps_scale
            if sensitivity is not None:
                theta_scale = np.maximum(theta_scale, sensitivity.theta / atol)
            final = worst_difference(
                ta.theta, tb.theta, theta_scale, tolerance, [f"final {n}" for n in names]
            )
            worst = max((worst, final), key=lambda d: d.ratio)
        return worst

    consensus = find_consensus(ran, compare, _ranks(engines, "descent"))
    report.compared["descent"] = ran
    for name, difference in consensus.differences.items():
        report.engines[name].vs_reference_descent = difference
        _flag(report.engines[name], "descent", consensus.pivot, difference)


@dataclass
class _Sensitivity:
    """What rounding alone did to a descent that amplifies it: the largest change of the loss
    so far at each step, the largest change of any entry of the final θ, and whether the
    iteration where it diverged moved."""

    loss_changes: np.ndarray
    theta: float
    divergence_moved: bool

    def losses(self, steps: int) -> np.ndarray:
        """The change of each loss up to `steps`; past the probe's end, unbounded."""
        changes = np.full(steps + 1, np.inf)
        known = min(steps + 1, self.loss_changes.size)
        changes[:known] = self.loss_changes[:known]
        return changes


def _descent_sensitivity(
    report: Report, engines: dict[str, Engine], ran: list[str]
) -> _Sensitivity | None:
    """Measure whether the descent amplifies rounding, with one more descent.

    The tolerance assumes each step's rounding adds up like a random walk. Where the map
    ``θ ← θ - lr·∇L(θ)`` stretches distances (a learning rate above the stable one, or a
    non-convex loss's negative curvature), rounding grows instead, and correct engines end
    apart. So the fastest engine not under test descends again from the start moved by one
    step's rounding (atol × θ's terms, random signs). If that moved the final θ further than
    the random walk allows, or moved the iteration where the descent diverges, the descent
    amplifies rounding: the change is returned (as its largest entry, and the largest loss
    change so far at each step, since stretching mixes the directions), the comparisons allow
    for it, and a note says so. None otherwise, or when there is nothing to measure.
    """
    atol, iterations = report.tolerance.atol, report.settings.iterations
    candidates = [
        n for n in ran
        if not report.engines[n].under_test and report.engines[n].capped_iterations is None
    ]  # fmt: skip
    if not candidates or atol == 0 or iterations == 0:
        return None
    stability = report.stability
    if report.model.constant_hessian and stability is not None and stability.stable:
        # θ ← θ - lr·(Hθ - c) with lr < 2/λ_max moves no two points further apart: rounding
        # cannot be amplified, only added step by step, which the tolerance allows for.
        return None
    name = min(candidates, key=lambda n: report.engines[n].trajectory.seconds)
    base = report.engines[name].trajectory
    start = report.points[0].theta
    with np.errstate(all="ignore"):
        step = report.lr * report.model.scales_at(start).gradient
    size = atol * (np.abs(start).max() + step)
    signs = np.random.default_rng(report.settings.seed).choice([-1.0, 1.0], size=start.size)
    moved = np.asarray(start + signs * size, dtype=report.data.dtype).astype(np.float64)
    try:
        with np.errstate(all="ignore"):
            probe = engines[name].descend(moved, report.lr, iterations)
    except Exception:  # the engine's own descent worked; a failure here measures nothing
        return None
    known = min(base.losses.size, probe.losses.size)
    with np.errstate(invalid="ignore"):
        losses = np.nan_to_num(np.abs(probe.losses[:known] - base.losses[:known]), nan=np.inf)
        theta = np.abs(probe.theta - base.theta) if probe.steps == base.steps else np.inf
    theta = np.nan_to_num(np.broadcast_to(theta, start.shape), nan=np.inf)
    divergence_moved = probe.diverged_at != base.diverged_at
    growth = float(np.max(theta / size)) if np.all(size > 0) else 0.0
    if growth <= math.sqrt(iterations + 1) and not divergence_moved:
        return None  # within the random walk: the tolerance already covers it
    report.notes.append(
        "the descent amplifies rounding: moving its start by one step's rounding moved "
        + (
            "the iteration where it diverges"
            if divergence_moved
            else f"the final θ {growth:.3g} times as far"
        )
        + f" (on {name}), so descents are compared allowing for that; the gradient checks "
        "are unaffected"
    )
    return _Sensitivity(np.maximum.accumulate(losses), float(theta.max()), divergence_moved)


def _divergence_difference(a: int | None, b: int | None) -> Difference:
    """Two descents that diverge at different iterations (or one that does not) disagree."""
    where = "the iteration where the descent diverged"
    return Difference(where, -1.0 if a is None else float(a), -1.0 if b is None else float(b), 0.0)


def _diagnose(report: Report, engines: dict[str, Engine], hand: str) -> Diagnosis:
    """Compare the hand formula (engine `hand`) with an agreeing independent gradient."""
    trusted = [
        n
        for n in sorted(engines, key=lambda n: type(engines[n]).gradient_rank)
        if n != hand and report.engines[n].status == "ok"
        and report.engines[n].checked_points == len(report.points)
    ]  # fmt: skip
    if not trusted:
        return Diagnosis("no trusted engine agreed, so the shape of the error is unknown", None)
    # The check points plus a few more, so a pattern must hold well away from them too.
    more = check_points(
        report.points[0].theta, report.optimum.theta, 4, report.settings.seed + 1, report.data.dtype
    )
    extra = more[2:] if report.optimum.theta is not None else more[1:]
    thetas = np.array([p.theta for p in report.points + extra])
    manual = engines[hand]
    with np.errstate(all="ignore"):
        return diagnose(
            lambda t: manual.evaluate(t).gradient,
            lambda t: engines[trusted[0]].evaluate(t).gradient,
            thetas,
            report.model,
            report.tolerance,
            getattr(manual, "result_dtypes", None),
        )


def _finish(report: Report) -> None:
    """Reasons per engine, the failures list and the notes."""
    for entry in report.engines.values():
        if entry.status == "mismatch":
            entry.reason = "; ".join(entry.problems)
            report.failures.append(f"{entry.name} disagrees: {entry.problems[0]}")
        elif entry.status == "error":
            report.failures.append(f"{entry.name} failed: {entry.reason}")
        report.notes.extend(f"{entry.name}: {note}" for note in entry.notes)
