"""Running: every engine computes what the plan asks of it. Nothing is judged here.

Each step fills in the engines' own :class:`~verifiers.results.EngineReport` (values, Hessians,
trajectories) or returns plain data for :mod:`verifiers.judge`:

- :func:`build_engines` makes the engines the plan chose (an engine that cannot start is
  skipped with its reason, or refused when it was asked for by name);
- :func:`evaluate` computes every engine's loss and gradient at the check points (those its
  budget allows) and its Hessian; the engines run side by side (:mod:`verifiers.concurrency`);
- :func:`one_sided_slopes` measures, at suspected kinks, the loss's one-sided slopes;
- :func:`stability` analyses the Hessian for the learning rate (the warning comes before any
  descent); :func:`descend` runs every engine's descent;
- :func:`descent_sensitivity` measures, with one more descent, whether the descent amplifies
  rounding; :func:`diagnostic_values` evaluates the formula under test and a trusted engine at
  the points the diagnosis looks at.

A user's formula that fails is a usage error; any other engine failure is that engine's result
(its status becomes ERROR, with the reason).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from verifiers import lanes
from verifiers.concurrency import WORKERS_VARIABLE, Task, run_tasks, stoppable
from verifiers.engines import Engine, EngineUnavailable, engine_class, planning_facts, row
from verifiers.engines.manual import FormulaError
from verifiers.models.user import UserLossError
from verifiers.plan import Plan
from verifiers.results import (
    Check,
    CheckPoint,
    EngineReport,
    OneSided,
    PointKind,
    Report,
    Sensitivity,
    Status,
    Trust,
)
from verifiers.settings import UsageError
from verifiers.stability import Stability, analyse

if TYPE_CHECKING:
    from verifiers.engines.numeric import NumericEngine

__all__ = [
    "ProgressFactory",
    "Sensitivity",
    "build_engines",
    "descend",
    "descent_sensitivity",
    "diagnostic_values",
    "evaluate",
    "one_sided_slopes",
    "stability",
]

ProgressFactory = Callable[[str, int], Callable[[int], None]]


def build_engines(
    plan: Plan, report: Report, processes: bool = False
) -> tuple[dict[str, Engine], Callable[[], None]]:
    """Make the engines the plan chose, each starting its slow one-off work (compiling) in the
    background; record each one's device and trust in the report.

    With `processes` (the command line), a run large enough, or one with both torch and jax,
    and without user code, puts half the engines in a worker process (:mod:`verifiers.lanes`).
    Returns the engines and a function that closes them all.
    """
    settings = plan.settings
    explicit = settings.engines is not None
    engines: dict[str, Engine] = {}
    closers: list[Callable[[], None]] = []
    there = _worker_lane(plan) if processes else []
    pending = None
    if there:
        try:  # the worker builds its engines while this process builds its own
            pending = lanes.PendingWorker(plan.model, there, settings.device)
        except Exception:  # the worker could not start: every engine runs here instead
            pending = None
    names = [
        n for n in settings.engines or [*plan.engines, *plan.skipped]
        if n in plan.skipped or n in plan.engines
    ]  # fmt: skip

    def close() -> None:
        for engine in engines.values():
            engine.close()
        for closer in closers:
            closer()

    def build(name: str, remote: dict[str, Any]) -> None:
        if name in plan.skipped:
            report.engines[name] = EngineReport(name, Status.SKIPPED, plan.skipped[name])
            return
        entry = report.engines[name] = EngineReport(name)
        started = time.perf_counter()
        try:
            if name in remote:  # its module (and package) is loaded in the worker alone
                engine = remote[name]
            elif plan.formula is not None and (cls := engine_class(name)).accepts_formula:
                # Such an engine takes the formula (Engine's own signature does not).
                engine = cls(  # type: ignore[call-arg]
                    plan.model, settings.device, formula=plan.formula,
                    formula_name=plan.formula_label,
                )  # fmt: skip
            else:
                engine = engine_class(name)(plan.model, settings.device)
        except EngineUnavailable as error:
            if explicit:
                raise UsageError(str(error)) from None
            if settings.device == "cuda" and row(name).follows_device:
                raise UsageError(f"--device cuda is for {name}, but {error}") from None
            entry.status = Status.SKIPPED
            entry.reason = error.reason + (
                f" (install with: {error.install})" if error.install else ""
            )
            return
        entry.setup_seconds = time.perf_counter() - started
        entry.device = engine.device
        entry.under_test = engine.under_test
        entry.notes.extend(plan.budgets[name].notes)
        if plan.budgets[name].iterations < settings.iterations:
            entry.capped_iterations = plan.budgets[name].iterations
        engines[name] = engine
        # Slow one-off work (jax compiles) starts now, in the background: in this process it
        # overlaps the wait for the worker's engines.
        engine.background = engine.prepare(plan.budgets[name].iterations)

    try:
        for name in names:
            if pending is None or name not in there:
                build(name, {})
        remote: dict[str, Any] = {}
        if pending is not None:
            try:
                remote, close_worker = pending.ready()
                closers.append(close_worker)
            except Exception:  # the worker failed to start: its engines run here instead
                remote = {}
            pending = None
            for name in names:
                if name in there:
                    build(name, remote)
    except BaseException:
        if pending is not None:
            pending.close()
        close()
        raise
    # The report lists the engines in the registry's order, whatever order they were named in.
    order = [n for n in (settings.engines or plan.engines) if n in report.engines]
    order += [n for n in report.engines if n not in order]
    report.engines = {n: report.engines[n] for n in order}
    return engines, close


def _worker_lane(plan: Plan) -> list[str]:
    """The engines to run in a worker process (none: all run here). Only a run without user
    code, on two cores or more, that is large enough or runs both torch and jax."""
    from verifiers.models.user import UserLossModel

    if plan.formula is not None or isinstance(plan.model, UserLossModel):
        return []  # a user's code stays in the process the command line supervises
    if os.environ.get(WORKERS_VARIABLE, "").strip() == "1":
        return []  # everything one after another, in this process
    costs = {
        name: planning_facts(name).estimate_seconds(plan.model)
        * (budget.points + budget.iterations)
        for name, budget in plan.budgets.items()
    }
    both = {"torch", "jax"} <= set(costs)
    if lanes.cores() < 2 or not (both or lanes.worth_a_worker(sum(costs.values()))):
        return []
    _, there = lanes.assign(costs)
    return there


def _guarded(entry: EngineReport, action: Callable[[], Any], what: str = "") -> Any:
    """Run an engine's action; a user's formula failing is a usage error, any other failure a
    result to report (the engine's status becomes ERROR)."""
    try:
        with np.errstate(all="ignore"):
            return action()
    except FormulaError as error:
        raise UsageError(str(error)) from None
    except UserLossError as error:
        if error.missing is None:
            raise  # the user's loss is broken: a usage error for every engine
        entry.status, entry.reason = Status.SKIPPED, str(error)
        return None
    except Exception as error:
        entry.status, entry.reason = Status.ERROR, f"{what}{type(error).__name__}: {error}"
        return None


def _run_each(
    plan: Plan, report: Report, engines: dict[str, Engine], step: Callable[[str], None]
) -> None:
    """`step(name)` for every engine that is still running, side by side; the engine running
    the user's formula on the calling thread. Engines in a worker process form their own lane:
    one thread here drives them one after another (it waits on the worker, holding nothing),
    while this process's engines run in the other lanes."""
    names = [n for n in engines if report.engines[n].status in (Status.OK, Status.MISMATCH)]
    # Engines that compile in the background go last, so their compiling overlaps the others.
    order = sorted(names, key=lambda n: engines[n].background)

    def lane(names: list[str]) -> Callable[[threading.Event], None]:
        def run(stop: threading.Event) -> None:
            for name in names:
                step(name)

        return run

    remote = [n for n in order if isinstance(engines[n], lanes.RemoteEngine)]
    if not remote:  # a lane per engine
        run_tasks([Task(n, lane([n]), main_thread=engines[n].under_test) for n in order])
        return
    here = [n for n in order if n not in remote]
    run_tasks([Task("here", lane(here), main_thread=True), Task("worker", lane(remote))], 2)


def evaluate(
    plan: Plan, report: Report, engines: dict[str, Engine], indices: list[int] | None = None
) -> None:
    """Every engine's loss and gradient at the check points `indices` (default: all) that its
    budget allows."""
    points = report.points
    chosen = list(range(len(points))) if indices is None else indices

    def step(name: str) -> None:
        entry, engine = report.engines[name], engines[name]
        budget = plan.budgets[name]
        mine = [i for i in chosen if i < budget.points or points[i].moved_from == "start"]
        values = _guarded(entry, lambda: [engine.evaluate(points[i].theta) for i in mine])
        if values is None:
            return
        entry.evaluations.update(zip(mine, values, strict=True))
        entry.device = engine.device  # an engine may say more once it has run (numeric's method)
        entry.trust = engine.trust(Check.GRADIENT)
        entry.hessian_trust = engine.trust(Check.HESSIAN)

    _run_each(plan, report, engines, step)


def hessians(plan: Plan, report: Report, engines: dict[str, Engine]) -> None:
    """Every engine's Hessian (those that compute one, within their budget) at the report's
    Hessian point."""
    if not plan.hessians:
        return
    theta = report.points[report.hessian_from].theta

    def step(name: str) -> None:
        entry, engine = report.engines[name], engines[name]
        if not plan.budgets[name].hessian:
            return
        H = _guarded(entry, lambda: engine.hessian(theta), "Hessian: ")
        entry.hessian = None if H is None else np.asarray(H, dtype=np.float64)
        if entry.hessian is not None:
            entry.hessian_noise = engine.hessian_noise(theta)

    _run_each(plan, report, engines, step)


def require_exact_gradient(report: Report) -> None:
    """A verdict needs an engine that computed the gradient exactly, beside the formula under
    test (or two engines, without one); fewer is a usage error: there is nothing to decide by."""
    entries = list(report.engines.values())
    computed = [e for e in entries if e.start() is not None and e.ran]
    exact = [e for e in computed if e.trust is Trust.EXACT]
    skipped = "; ".join(f"{e.name}: {e.reason}" for e in entries if e not in computed and e.reason)
    if len(computed) < 2:
        raise UsageError(
            f"only {', '.join(e.name for e in computed) or 'no engine'} could compute the "
            f"gradient, so there is nothing to compare it with ({skipped})"
        )
    if not exact:
        approximate = ", ".join(e.name for e in computed if e.trust is Trust.APPROXIMATE)
        raise UsageError(
            f"no engine computed the gradient exactly: {approximate} used central differences, "
            "which can confirm a formula but not decide alone (the loss cannot take complex "
            "numbers); install torch or jax, or write the loss with functions minigrad has"
            + (f" ({skipped})" if skipped else "")
        )


# ---- kinks --------------------------------------------------------------------------------------
def one_sided_slopes(report: Report, engines: dict[str, Engine], index: int) -> OneSided | None:
    """One-sided slopes of the loss at check point `index` (the numeric engine's loss, or the
    model's own in numpy when numeric does not run)."""
    model = report.model
    theta = np.asarray(report.points[index].theta, dtype=np.float64)
    numeric = cast("NumericEngine | None", engines.get("numeric"))

    def loss(t: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            if numeric is not None:
                return float(np.real(numeric.loss(np.asarray(t, dtype=model.data.dtype))))
            return float(model.hand_loss(t))

    eps = float(np.finfo(model.data.dtype).eps)
    try:
        centre = loss(theta)
        size = model.scales_at(theta).loss
    except Exception:
        return None
    n = theta.size
    slopes = {key: np.empty(n) for key in ("left", "right", "left_fine", "right_fine")}
    rounding = np.empty(n)
    for j in range(n):
        h = eps ** (1 / 3) * max(1.0, abs(theta[j]))
        for suffix, step in (("", h), ("_fine", h / 8)):
            up, down = theta.copy(), theta.copy()
            up[j] += step
            down[j] -= step
            slopes["right" + suffix][j] = (loss(up) - centre) / (up[j] - theta[j])
            slopes["left" + suffix][j] = (centre - loss(down)) / (theta[j] - down[j])
        rounding[j] = 4 * eps * (abs(centre) + size) / (h / 8)
    return OneSided(rounding=rounding, **slopes)


# ---- stability and descents ---------------------------------------------------------------------
def stability(
    plan: Plan, report: Report, warn: Callable[[str], None] | None = None
) -> Stability | None:
    """The stability of the learning rate, from the closed-form Hessian, else from the most
    preferred exact engine's, with the model's Hessian term sizes and the run's tolerance (which
    say which eigenvalues are zero within rounding); its warnings go to `warn` before any
    descent starts."""
    if not plan.hessians:
        return None
    model = plan.model
    theta = report.points[report.hessian_from].theta
    H = model.hand_hessian(np.asarray(theta, dtype=model.data.dtype))
    if H is None:
        exact = [
            n for n, e in report.engines.items()
            if e.hessian is not None and e.hessian_trust is Trust.EXACT
        ]  # fmt: skip
        exact.sort(key=lambda n: row(n).preference(Check.HESSIAN))
        H = report.engines[exact[0]].hessian if exact else None
    if H is None or not np.isfinite(H).all():
        return None
    point = report.points[report.hessian_from]
    where = {
        PointKind.OPTIMUM: "at the optimum",
        PointKind.START: "at the start",
    }.get(point.kind, f"at {point.label}")
    try:  # the sizes of the terms in each entry: how far rounding can move an eigenvalue
        with np.errstate(all="ignore"):
            scales = np.asarray(model.hessian_scales(theta), dtype=np.float64)
    except Exception:  # a loss that cannot say (it raised at this θ): the solver's error only
        scales = None
    result = analyse(
        H, plan.lr, report.points[0].theta, plan.optimum.theta, model.constant_hessian, where,
        scales=scales, tolerance=report.tolerance,
    )  # fmt: skip
    if warn:
        for note in result.notes:
            warn(note)
    return result


def descend(
    plan: Plan,
    report: Report,
    engines: dict[str, Engine],
    progress: ProgressFactory | None = None,
) -> None:
    """Every engine's descent from the start (its budget's number of iterations)."""
    stop = threading.Event()
    start = report.points[report.descent_from].theta

    def step(name: str) -> None:
        entry, engine = report.engines[name], engines[name]
        iterations = plan.budgets[name].iterations
        callback = progress(name, iterations) if progress and iterations else None
        callback = stoppable(callback, stop)  # ends the descent early if another engine failed
        entry.trajectory = _guarded(
            entry,
            lambda: engine.descend(start, plan.lr, iterations, callback),
            "descent failed: ",
        )

    _run_each(plan, report, engines, step)


def descent_sensitivity(
    plan: Plan, report: Report, engines: dict[str, Engine]
) -> Sensitivity | None:
    """Measure whether the descent amplifies rounding, with one more descent.

    The tolerance assumes each step's rounding adds up like a random walk. Where the map
    ``θ ← θ - lr·∇L(θ)`` stretches distances (a learning rate above the stable one, or a
    non-convex loss's negative curvature), rounding grows instead, and correct engines end
    apart. So the fastest exact engine not under test descends again from the start moved by
    one step's rounding (atol × θ's terms, random signs). If that moved the final θ further than
    the random walk allows, or moved the iteration where the descent diverges, the descent
    amplifies rounding: the change is returned (as its largest entry, and the largest loss
    change so far at each step, since stretching mixes the directions), and the comparisons
    allow for it. None otherwise, or when there is nothing to measure.
    """
    atol, iterations = plan.tolerance.atol, plan.settings.iterations
    trajectories = {
        n: e.trajectory for n, e in report.engines.items() if e.trajectory is not None and e.ran
    }
    ran = list(trajectories)
    candidates = [
        n for n in ran
        if not report.engines[n].under_test and report.engines[n].capped_iterations is None
        and report.engines[n].trust is Trust.EXACT
    ]  # fmt: skip
    if len(ran) < 2 or not candidates or atol == 0 or iterations == 0:
        return None
    stable = report.stability is not None and report.stability.stable
    if plan.model.constant_hessian and stable:
        # θ ← θ - lr·(Hθ - c) with lr < 2/λ_max moves no two points further apart: rounding
        # cannot be amplified, only added step by step, which the tolerance allows for.
        return None
    name = min(candidates, key=lambda n: trajectories[n].seconds)
    base = trajectories[name]
    start = report.points[report.descent_from].theta
    with np.errstate(all="ignore"):
        step = plan.lr * plan.model.scales_at(start).gradient
    size = atol * (np.abs(start).max() + step)
    signs = np.random.default_rng(plan.settings.seed).choice([-1.0, 1.0], size=start.size)
    moved = np.asarray(start + signs * size, dtype=plan.data.dtype).astype(np.float64)
    try:
        with np.errstate(all="ignore"):
            probe = engines[name].descend(moved, plan.lr, iterations)
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
    return Sensitivity(
        np.maximum.accumulate(losses), float(theta.max()), divergence_moved, name, growth
    )


# ---- for the diagnosis --------------------------------------------------------------------------
@dataclass(frozen=True)
class DiagnosticValues:
    """The formula under test and a trusted engine at the same θ's (rows), and what each of the
    model's classic slips gives there, for the diagnosis."""

    thetas: np.ndarray
    got: np.ndarray
    want: np.ndarray
    scales: np.ndarray
    slips: dict[str, np.ndarray]
    trusted: str
    kinds: list[PointKind] = field(default_factory=list)  # where each row's θ comes from


def diagnostic_values(
    report: Report,
    engines: dict[str, Engine],
    hand: str,
    trusted: str,
    extra: list[CheckPoint],
) -> DiagnosticValues:
    """`hand`'s and `trusted`'s gradients at the check points both computed, reused, and at the
    `extra` points, computed now (a pattern must hold well away from the check points too)."""
    mine, theirs = report.engines[hand].evaluations, report.engines[trusted].evaluations
    kinks = {k.point for k in report.kinks}
    shared = [
        i for i in sorted(mine)
        if i in theirs and report.points[i].label not in kinks
    ]  # fmt: skip
    thetas = [report.points[i].theta for i in shared]
    kinds = [report.points[i].kind for i in shared] + [point.kind for point in extra]
    got = [mine[i].gradient for i in shared]
    want = [theirs[i].gradient for i in shared]
    model = report.model
    with np.errstate(all="ignore"):
        for point in extra:
            thetas.append(point.theta)
            got.append(engines[hand].evaluate(point.theta).gradient)
            want.append(engines[trusted].evaluate(point.theta).gradient)
        slips = {
            slip.key: np.array([slip.gradient(t) for t in thetas], dtype=np.float64)
            for slip in model.slips()
        }
    return DiagnosticValues(
        thetas=np.array(thetas),
        got=np.array(got, dtype=np.float64),
        want=np.array(want, dtype=np.float64),
        scales=np.array([model.scales_at(t).gradient for t in thetas]),
        slips=slips,
        trusted=trusted,
        kinds=kinds,
    )
