"""The Python API: :func:`verify` runs every check and returns a :class:`~verifiers.results.Report`.

The command line (``python -m verifiers.run``) is a thin layer over this module, and this module
is a thin layer over three others, called in order:

1. :mod:`verifiers.plan` checks the settings and data, and decides the check points, the
   engines and each engine's budget (nothing is differentiated);
2. :mod:`verifiers.compute` has every engine compute the loss and gradient at the check points,
   its Hessian, the stability of the learning rate (warned about before any descent) and its
   descent;
3. :mod:`verifiers.judge` compares, and decides each check and the run's outcome.

Where judging finds something that needs more numbers (a possible kink at a check point, the
shape of a wrong formula's error) it says so, :mod:`verifiers.compute` computes them, and the
judge looks again: judging itself never computes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from verifiers import compute, judge
from verifiers.data import Dataset, load_csv
from verifiers.diagnosis import Diagnosis, diagnose
from verifiers.engines import Engine, row
from verifiers.plan import Plan, build_model, check_points, make_plan, moved_off_kink
from verifiers.results import Check, PointKind, Report, Sensitivity, Status, Trust
from verifiers.settings import Settings, UsageError

__all__ = ["Report", "Settings", "UsageError", "build_model", "verify"]

ProgressFactory = compute.ProgressFactory


def verify(
    data: Dataset | str | Path,
    settings: Settings | None = None,
    *,
    formula: Callable[..., Any] | None = None,
    loss: Callable[..., Any] | None = None,
    combination: Callable[..., Any] | None = None,
    progress: ProgressFactory | None = None,
    warn: Callable[[str], None] | None = None,
    processes: bool = False,
) -> Report:
    """Check the gradient on `data` against every engine, then descend on each.

    `formula` replaces the model's built-in hand formula in the `manual` engine and becomes the
    thing under test (see :mod:`verifiers.engines.manual`); `loss` replaces the model with a
    user's loss of the linear model, ``loss(b, w, X, y, xp)`` (see :mod:`verifiers.models.user`).
    `combination` is the user's combination of the shards' results (with ``settings.shards``,
    see :mod:`verifiers.sharded`).
    `progress(engine, iterations)` may return a callback that receives the iterations done;
    `warn(message)` hears warnings (an unstable learning rate) before the descents start; they
    are in the report's notes too. With `processes`, a large run without user code puts half
    the engines in a worker process (:mod:`verifiers.lanes`); the results are the same.

    Raises :class:`UsageError` for bad settings, an engine asked for by name that cannot run, too
    much work, or a formula that fails; :class:`~verifiers.data.DataError` for bad data.
    """
    settings = settings or Settings()
    if not isinstance(data, Dataset):
        data = load_csv(data, settings.dtype)
    plan = make_plan(data, settings, formula, loss)
    report = Report(
        data=data,
        settings=settings,
        model=plan.model,
        lr=plan.lr,
        tolerance=plan.tolerance,
        points=list(plan.points),
        coverage=plan.coverage,
        engines={},
        optimum=plan.optimum,
        notes=list(plan.notes),
        hessian_from=plan.hessian_point,
    )
    engines, close = compute.build_engines(plan, report, processes)
    sensitivity = None
    try:
        compute.evaluate(plan, report, engines)
        compute.require_exact_gradient(report)
        _handle_kinks(plan, report, engines)
        _hessians(plan, report, engines)
        report.stability = compute.stability(plan, report, warn)
        if report.stability is not None:
            report.notes.extend(report.stability.notes)
        compute.descend(plan, report, engines, progress)
        sensitivity = compute.descent_sensitivity(plan, report, engines)
        _judge_checks(plan, report, sensitivity)
        _diagnose(plan, report, engines)
        if settings.shards:  # each sharded run is judged against its own single-process run
            from verifiers.sharded import check_sharded

            check_sharded(report, engines, combination)
    finally:
        close()
    if sensitivity is not None:
        report.notes.append(
            "the descent amplifies rounding: moving its start by one step's rounding moved "
            + (
                "the iteration where it diverges"
                if sensitivity.divergence_moved
                else f"the final θ {sensitivity.growth:.3g} times as far"
            )
            + f" (on {sensitivity.engine}), so descents are compared allowing for that; the "
            "gradient checks are unaffected"
        )
    judge.conclude(report)
    return report


def _handle_kinks(plan: Plan, report: Report, engines: dict[str, Engine]) -> None:
    """Look for kinks where engines disagree; at each one found, check the point moved off it.

    A check point on a kink of the loss (|r| or max(r, 0) at r = 0) gives each engine's own
    valid subgradient: they differ without any being wrong. Each such point is recorded as a
    kink, its values judged against the one-sided slopes, and a point moved off the kink is
    checked in its place (the descents start there too when the start is a kink).
    """
    for _ in range(3):  # a moved point may sit on another kink: move again, a few times at most
        known = {k.point for k in report.kinks}
        suspects = [i for i in judge.suspected_kinks(report) if report.points[i].label not in known]
        moved = []
        for index in suspects:
            slopes = compute.one_sided_slopes(report, engines, index)
            kink = None if slopes is None else judge.confirm_kink(report, index, slopes)
            if kink is None:
                continue
            point = moved_off_kink(plan, report.points[index], len(report.kinks))
            kink.moved_to = point.label
            report.kinks.append(kink)
            report.points.append(point)
            moved.append(len(report.points) - 1)
            if index == report.descent_from:
                report.descent_from = len(report.points) - 1
        if not moved:
            break
        compute.evaluate(plan, report, engines, moved)
    if report.kinks:
        judge.judge_kinks(report)
        names = ", ".join(k.point for k in report.kinks)
        report.notes.append(
            f"the loss is not differentiable at {names}: the one-sided slopes of "
            f"{_derivatives(report)} differ there (a kink, such as |r| or max(r, 0) at 0), so "
            "engines may each give a different valid subgradient; any value between the "
            "one-sided slopes is accepted there, no engine is blamed, and the check is made at "
            "a point moved off the kink instead"
            + (" (the descents start there too)" if report.descent_from != 0 else "")
        )


def _hessians(plan: Plan, report: Report, engines: dict[str, Engine]) -> None:
    """The Hessians; where exact engines disagree on them, once more at a point moved off.

    A loss written through |r| (a smooth log-cosh, say) has a kink inside its formula where
    some r = 0, though not in its value: engines that take |r|'s second derivative at 0 by
    different conventions then give different Hessians there, and none of them is wrong about
    the loss anywhere else. So the Hessians are compared at a point moved off it instead.
    """
    compute.hessians(plan, report, engines)
    if plan.model.constant_hessian:
        return
    verdict = judge.judge_hessians(report, report.hessian_from)
    if verdict is None or not verdict.disagreeing:
        return
    here = report.points[report.hessian_from]
    point = moved_off_kink(plan, here, len(report.kinks) + 100)
    point.label = f"{here.label} (moved, for the Hessian)"
    report.points.append(point)
    report.hessian_from = len(report.points) - 1
    compute.evaluate(plan, report, engines, [report.hessian_from])
    compute.hessians(plan, report, engines)
    moved = judge.judge_hessians(report, report.hessian_from)
    if moved is not None and not moved.disagreeing:
        report.notes.append(
            f"the exact engines' Hessians differ at {here.label} (a kink inside the loss's "
            "formula, such as |r| at r = 0, that engines differentiate twice by different "
            f"conventions), so the Hessians are compared at {point.label} instead"
        )


def _derivatives(report: Report) -> str:
    names = report.parameter_names
    found = sorted({j for k in report.kinks for j in k.components})
    shown = [f"dL/d{names[j]}" for j in found[:4]]
    return ", ".join(shown) + (f" and {len(found) - 4} more" if len(found) > 4 else "")


def _judge_checks(plan: Plan, report: Report, sensitivity: Sensitivity | None) -> None:
    verdicts = {
        Check.GRADIENT: judge.judge_gradients(report),
        Check.HESSIAN: judge.judge_hessians(report, report.hessian_from),
        Check.DESCENT: judge.judge_descents(report, sensitivity),
    }
    report.verdicts = {check: v for check, v in verdicts.items() if v is not None}
    report.detection = judge.detection_power(report)


def _diagnose(plan: Plan, report: Report, engines: dict[str, Engine]) -> None:
    """When the hand formula's gradient is wrong, say how: compare it with the most preferred
    exact engine that agrees with the consensus, at the check points and a few more."""
    verdict = report.verdicts.get(Check.GRADIENT)
    hand = next((n for n, e in engines.items() if e.accepts_formula), None)
    if verdict is None or hand is None or hand not in verdict.wrong:
        return
    if report.engines[hand].trust is not Trust.EXACT and not report.engines[hand].under_test:
        return
    trusted = sorted(
        (
            n for n in verdict.agreeing
            if n != hand and verdict.trust[n] is Trust.EXACT
            and report.engines[n].status is Status.OK
            and report.engines[n].checked_points >= plan.budgets[n].points
            and plan.budgets[n].points == len(plan.points)
        ),
        key=lambda n: row(n).preference(Check.GRADIENT),
    )  # fmt: skip
    if not trusted:
        report.diagnosis = Diagnosis(
            "no exact engine agreed, so the shape of the error is unknown", None
        )
        return
    more, _ = check_points(
        plan.model, plan.start, plan.optimum.theta, 4, plan.settings.seed + 1, plan.data.dtype
    )
    extra = [p for p in more if p.kind is PointKind.RANDOM]
    values = compute.diagnostic_values(report, engines, hand, trusted[0], extra)
    with np.errstate(all="ignore"):
        report.diagnosis = diagnose(
            values.got,
            values.want,
            values.scales,
            values.slips,
            plan.model,
            plan.tolerance,
            getattr(engines[hand], "result_dtypes", None),
            where=(values.thetas, values.kinds),
        )
    if getattr(plan.model, "intermediates", ()):  # a backprop that may return its steps
        from verifiers.functions.steps import locate_step

        locate_step(report, engines[hand])
