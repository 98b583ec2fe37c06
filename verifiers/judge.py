"""Judging: compare what the engines computed and decide. Nothing here computes a derivative.

The rule, for each check (the gradient at the check points, the Hessian, the descent):

- Engines that compute the derivative **exactly** (reverse or forward mode, the complex step, a
  built-in hand formula) decide. Each pair is compared under both engines' own error bounds
  (:mod:`verifiers.compare`). When two exact engines disagree, that is the outcome, named (which
  engines, where), and never OK: there is no consensus to trust.
- The formula **under test** (``--manual``) is OK only when it agrees with *every* exact engine.
  One exact engine disagreeing with it is enough to call it wrong.
- An **approximate** engine (central differences) is compared with the exact consensus under
  its own, wider, error bound. It can confirm, never decide alone and never outvote an exact
  engine: where it is off by more than its bound, it is set aside with a note (it is the one
  that is wrong), and the verdict stands on the exact engines.
- At a **kink** of the loss (the one-sided slopes differ, so engines may each return a different
  valid subgradient) no engine is blamed: the formula's value there is accepted anywhere in
  the range of the one-sided slopes, and the check proper is done at the point moved off it.

Beside the verdict: the table's reference engine for each check (the exact engine most others
agree with, ties broken by the registry's preference), and the check's detection power.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from verifiers.compare import Difference, worst_difference
from verifiers.engines import row
from verifiers.results import (
    Check,
    CheckVerdict,
    Detection,
    Failure,
    FailureKind,
    Kink,
    OneSided,
    Outcome,
    Report,
    Sensitivity,
    Status,
    Trust,
)

__all__ = [
    "conclude",
    "confirm_kink",
    "decide",
    "detection_power",
    "hessian_label",
    "judge_descents",
    "judge_gradients",
    "judge_hessians",
    "suspected_kinks",
]


# ---- the rule -----------------------------------------------------------------------------------
def decide(
    check: Check,
    names: list[str],
    trust: dict[str, Trust],
    compare: Callable[[str, str], Difference],
) -> CheckVerdict:
    """Compare every pair of `names` once each way and apply the rule (module docstring)."""
    pairs: dict[tuple[str, str], Difference] = {}
    for a, b in itertools.combinations(names, 2):
        pairs[a, b] = compare(a, b)
        pairs[b, a] = compare(b, a)
    exact = [n for n in names if trust[n] is Trust.EXACT]
    order = {name: i for i, name in enumerate(names)}

    def agreements(name: str, among: list[str]) -> int:
        return sum(pairs[name, other].ok for other in among if other != name)

    approximate = [n for n in names if trust[n] is Trust.APPROXIMATE]
    if exact:
        # The exact engine most other exact engines agree with; where exact engines split
        # evenly, the approximate ones break the tie (they confirm a side, never outvote one).
        reference: str | None = min(
            exact,
            key=lambda n: (
                -agreements(n, exact),
                -agreements(n, approximate),
                row(n).preference(check),
                order[n],
            ),
        )
    else:
        reference = None
    differences = {
        n: pairs[n, reference] for n in names if reference is not None and n != reference
    }
    verdict = CheckVerdict(
        check=check,
        compared=list(names),
        reference=reference,
        differences=differences,
        pairs=pairs,
        outcome=Outcome.AGREE,
        trust=dict(trust),
    )
    if reference is None:
        return verdict
    verdict.disagreeing = [
        (a, b) for a, b in itertools.combinations(exact, 2) if not pairs[a, b].ok
    ]
    for name in names:
        if name == reference:
            continue
        if trust[name] is Trust.UNDER_TEST:
            if not all(pairs[name, other].ok for other in exact):
                verdict.wrong.append(name)
        elif trust[name] is Trust.EXACT:
            if not pairs[name, reference].ok:
                verdict.wrong.append(name)
        elif not pairs[name, reference].ok:
            verdict.unconfirmed.append(name)
    if verdict.disagreeing:
        verdict.outcome = Outcome.ENGINES_DISAGREE
    elif any(trust[n] is Trust.UNDER_TEST for n in verdict.wrong):
        verdict.outcome = Outcome.FORMULA_WRONG
    return verdict


def worst_against_exact(verdict: CheckVerdict, name: str) -> tuple[str, Difference] | None:
    """The exact engine `name` disagrees with most, and that difference."""
    found = [
        (other, verdict.pairs[name, other])
        for other in verdict.exact
        if other != name and (name, other) in verdict.pairs
    ]
    bad = [(o, d) for o, d in found if not d.ok]
    if not bad:
        return None
    # The reference first when it is among them: the tables measure everyone against it.
    bad.sort(key=lambda item: (item[0] != verdict.reference, -item[1].ratio))
    return bad[0]


# ---- the gradient -------------------------------------------------------------------------------
def _gradient_vectors(report: Report) -> tuple[list[np.ndarray], list[list[str]]]:
    """Σ|terms| of (loss, gradient) and the labels of each entry, per check point."""
    names = report.parameter_names
    scales, labels = [], []
    for point in report.points:
        s = report.model.scales_at(point.theta)
        scales.append(np.concatenate([[s.loss], s.gradient]))
        labels.append([f"loss at {point.label}"] + [f"dL/d{n} at {point.label}" for n in names])
    return scales, labels


def _noise(report: Report, name: str, index: int) -> np.ndarray:
    """An engine's own error at a point, for (loss, gradient): none, or central differences'."""
    evaluation = report.engines[name].evaluations[index]
    size = report.model.size
    if evaluation.noise is None:
        return np.zeros(size + 1)
    return np.concatenate([[0.0], np.broadcast_to(evaluation.noise, (size,))])


def _checked(report: Report) -> set[int]:
    """The point indices compared pairwise: all but the kinks (their values are judged
    against the one-sided slopes instead)."""
    kinks = {k.point for k in report.kinks}
    return {i for i, p in enumerate(report.points) if p.label not in kinks}


def gradient_comparison(
    report: Report, indices: set[int] | None = None
) -> Callable[[str, str], Difference]:
    """`compare(a, b)`: a's worst difference from b over the check points both evaluated (among
    `indices`, default every point that is not a kink)."""
    scales, labels = _gradient_vectors(report)
    chosen = _checked(report) if indices is None else indices

    def compare(a: str, b: str) -> Difference:
        ea, eb = report.engines[a].evaluations, report.engines[b].evaluations
        both = sorted(i for i in chosen if i in ea and i in eb)
        vector = {
            e: np.concatenate([[v[i].loss, *v[i].gradient] for i in both])
            for e, v in ((a, ea), (b, eb))
        }
        return worst_difference(
            vector[a],
            vector[b],
            np.concatenate([scales[i] + _noise(report, a, i) + _noise(report, b, i) for i in both]),
            report.tolerance,
            [label for i in both for label in labels[i]],
        )

    return compare


def judge_gradients(report: Report) -> CheckVerdict | None:
    ran = [n for n, e in report.engines.items() if e.ran and e.evaluations]
    if len(ran) < 2:
        return None
    trust = {n: _gradient_trust(report, n) for n in ran}
    return decide(Check.GRADIENT, ran, trust, gradient_comparison(report))


def _gradient_trust(report: Report, name: str) -> Trust:
    entry = report.engines[name]
    return Trust.UNDER_TEST if entry.under_test else entry.trust


# ---- kinks --------------------------------------------------------------------------------------
def suspected_kinks(report: Report) -> list[int]:
    """The check points where some pair of engines that decide or are judged (exact, or the
    formula under test) disagree: a kink of the loss can explain that, so it is looked for."""
    names = [
        n for n, e in report.engines.items()
        if e.ran and e.evaluations and _gradient_trust(report, n) is not Trust.APPROXIMATE
    ]  # fmt: skip
    suspects = []
    for i, _ in enumerate(report.points):
        compare = gradient_comparison(report, {i})
        here = [n for n in names if i in report.engines[n].evaluations]
        if any(not compare(a, b).ok for a, b in itertools.combinations(here, 2)):
            suspects.append(i)
    return suspects


def confirm_kink(report: Report, index: int, slopes: OneSided) -> Kink | None:
    """A :class:`Kink` at check point `index` when some entry's one-sided slopes differ by more
    than their truncation and rounding, and keep differing as the step shrinks (a smooth loss's
    gap shrinks with the step; a kink's stays)."""
    gap = np.abs(slopes.right - slopes.left)
    fine = np.abs(slopes.right_fine - slopes.left_fine)
    kinked = (fine > 0.5 * gap) & (fine > 10 * slopes.rounding) & (fine > 0)
    if not kinked.any():
        return None
    lower = np.minimum(slopes.left_fine, slopes.right_fine)
    upper = np.maximum(slopes.left_fine, slopes.right_fine)
    # The one-sided slopes are off by their truncation (the change from h to h/8) and rounding.
    slack = (
        np.abs(slopes.left_fine - slopes.left)
        + np.abs(slopes.right_fine - slopes.right)
        + slopes.rounding
    )
    return Kink(
        point=report.points[index].label,
        components=[int(j) for j in np.flatnonzero(kinked)],
        lower=lower - slack,
        upper=upper + slack,
    )


def judge_kinks(report: Report) -> None:
    """Record, for each kink, the engines whose derivative there is outside the range of the
    one-sided slopes (for the formula under test, that makes it wrong)."""
    index = {p.label: i for i, p in enumerate(report.points)}
    for kink in report.kinks:
        i = index[kink.point]
        scale = report.model.scales_at(report.points[i].theta).gradient
        for name, entry in report.engines.items():
            evaluation = entry.evaluations.get(i)
            if evaluation is None or not entry.ran:
                continue
            g = evaluation.gradient
            allowed = report.tolerance.atol * scale + report.tolerance.rtol * np.abs(g)
            outside = (g < kink.lower - allowed) | (g > kink.upper + allowed) | np.isnan(g)
            if outside.any():
                kink.outside[name] = int(np.flatnonzero(outside)[0])


# ---- the Hessian --------------------------------------------------------------------------------
def hessian_label(a: str, b: str) -> str:
    """``d²L/db²`` on the diagonal, ``d²L/db dw`` off it."""
    return f"d²L/d{a}²" if a == b else f"d²L/d{a} d{b}"


def judge_hessians(report: Report, hessian_point: int) -> CheckVerdict | None:
    hessians = {n: e.hessian for n, e in report.engines.items() if e.ran and e.hessian is not None}
    ran = list(hessians)
    if len(ran) < 2:
        return None
    trust = {n: report.engines[n].hessian_trust for n in ran}
    if not any(t is Trust.EXACT for t in trust.values()):
        return None
    theta = report.points[hessian_point].theta
    scale = report.model.hessian_scales(theta)
    names = report.parameter_names
    labels = [hessian_label(a, b) for a in names for b in names]

    def compare(a: str, b: str) -> Difference:
        ea, eb = report.engines[a], report.engines[b]
        return worst_difference(
            hessians[a], hessians[b], scale + ea.hessian_noise + eb.hessian_noise,
            report.tolerance, labels,
        )  # fmt: skip

    return decide(Check.HESSIAN, ran, trust, compare)


# ---- the descent --------------------------------------------------------------------------------
def judge_descents(report: Report, sensitivity: Sensitivity | None) -> CheckVerdict | None:
    trajectories = {
        n: e.trajectory for n, e in report.engines.items() if e.trajectory is not None and e.ran
    }
    ran = list(trajectories)
    if len(ran) < 2:
        return None
    trust = {n: _gradient_trust(report, n) for n in ran}
    if not any(t is Trust.EXACT for t in trust.values()):
        return None
    iterations = report.settings.iterations
    # Rounding accumulates over the steps like a random walk: widen by √(steps + 1).
    tolerance = report.tolerance.scaled(math.sqrt(iterations + 1))
    model = report.model
    start = report.points[report.descent_from].theta
    names = report.parameter_names
    atol = report.tolerance.atol
    with np.errstate(all="ignore"):
        start_gradient = np.abs(model.scales_at(start).gradient)

    def own_error(name: str, steps: int) -> tuple[np.ndarray, np.ndarray | float]:
        """An approximate engine's own error: how far its θ may drift (lr × its gradient error,
        step after step), and what that does to the loss at each step, as sizes of terms."""
        noise = trajectories[name].theta_noise
        if noise is None:
            return np.zeros(steps + 1), 0.0
        drift = np.broadcast_to(noise, start.shape)
        share = np.arange(steps + 1) / max(trajectories[name].steps, 1)
        return share * float(start_gradient @ drift) / tolerance.atol, drift / tolerance.atol

    def compare(a: str, b: str) -> Difference:
        ta, tb = trajectories[a], trajectories[b]
        moved = sensitivity is not None and sensitivity.divergence_moved
        if ta.diverged_at != tb.diverged_at and not moved:
            return _divergence_difference(ta.diverged_at, tb.diverged_at)
        steps = min(ta.steps, tb.steps)
        finite = [t for t in (start, tb.theta) if np.isfinite(t).all()]
        with np.errstate(all="ignore"):
            loss_scale = max(model.scales_at(t).loss for t in finite)
        loss_a, theta_a = own_error(a, steps)
        loss_b, theta_b = own_error(b, steps)
        loss_scale = loss_scale + loss_a + loss_b
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
            theta_scale = theta_scale + theta_a + theta_b
            if sensitivity is not None:
                theta_scale = np.maximum(theta_scale, sensitivity.theta / atol)
            final = worst_difference(
                ta.theta, tb.theta, theta_scale, tolerance, [f"final {n}" for n in names]
            )
            worst = max((worst, final), key=lambda d: d.ratio)
        return worst

    return decide(Check.DESCENT, ran, trust, compare)


def _divergence_difference(a: int | None, b: int | None) -> Difference:
    """Two descents that diverge at different iterations (or one that does not) disagree."""
    where = "the iteration where the descent diverged"
    return Difference(where, -1.0 if a is None else float(a), -1.0 if b is None else float(b), 0.0)


# ---- detection power ----------------------------------------------------------------------------
def detection_power(report: Report) -> Detection | None:
    """For each derivative, the smallest relative error in the hand formula's value (the formula
    under test, or the built-in one) that the gradient check would have caught: at each check
    point that is not a kink, what the comparison with the reference allows as a share of the
    true value; the smallest share over the points. (An error that large at any one point is
    caught there.)"""
    verdict = report.verdicts.get(Check.GRADIENT)
    hand = next((n for n in ("manual",) if n in report.engines), None)
    if verdict is None or verdict.reference is None or hand is None:
        return None
    reference = verdict.reference
    if hand == reference or not report.engines[hand].evaluations:
        return None
    scales, _ = _gradient_vectors(report)
    names = report.parameter_names
    best = np.full(len(names), np.inf)
    mine, theirs = report.engines[hand].evaluations, report.engines[reference].evaluations
    for i in sorted(_checked(report)):
        if i not in mine or i not in theirs:
            continue
        true = np.abs(theirs[i].gradient)
        noise = (_noise(report, hand, i) + _noise(report, reference, i))[1:]
        allowed = report.tolerance.atol * (scales[i][1:] + noise) + report.tolerance.rtol * true
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(true > 0, allowed / true, np.inf)
        best = np.minimum(best, np.nan_to_num(share, nan=np.inf))
    return Detection(
        {n: (float(v) if np.isfinite(v) else None) for n, v in zip(names, best, strict=True)}
    )


# ---- the run's outcome --------------------------------------------------------------------------
_PRECEDENCE = (
    Outcome.ENGINES_DISAGREE,
    Outcome.FORMULA_WRONG,
    Outcome.ENGINE_WRONG,
    Outcome.ENGINE_FAILED,
    Outcome.COMBINATION_WRONG,
)


def conclude(report: Report) -> None:
    """Each engine's status, the failures and the run's outcome, from the checks' verdicts (and
    the data-parallel checks), plus the notes the verdicts call for."""
    outcomes: set[Outcome] = set()
    reasons: dict[str, list[str]] = {}

    def flag(failure: Failure, reason: str) -> None:
        report.failures.append(failure)
        if failure.engine is not None:
            report.engines[failure.engine].status = Status.MISMATCH
            reasons.setdefault(failure.engine, []).append(reason)

    for verdict in report.verdicts.values():
        for name, difference in verdict.differences.items():
            report.engines[name].differences[verdict.check] = difference
        if verdict.check is Check.GRADIENT:
            for (a, b), difference in verdict.pairs.items():
                report.engines[a].against[b] = difference
        for name in verdict.wrong:
            found = worst_against_exact(verdict, name)
            if found is None:
                # An engine is only found wrong against an exact reference (see decide).
                assert verdict.reference is not None
                found = verdict.reference, verdict.pairs[name, verdict.reference]
            against, difference = found
            reason = f"{verdict.check.value}: {difference.describe()} against {against}"
            flag(
                Failure(
                    FailureKind.MISMATCH,
                    f"{name} disagrees: {reason}",
                    engine=name,
                    check=verdict.check,
                    against=against,
                    difference=difference,
                ),
                reason,
            )
        if verdict.disagreeing:
            a, b = verdict.disagreeing[0]
            report.failures.append(
                Failure(
                    FailureKind.EXACT_DISAGREE,
                    f"the exact engines disagree: {verdict.check.value}: {a} and {b}: "
                    f"{verdict.pairs[a, b].describe()}",
                    engine=a,
                    check=verdict.check,
                    against=b,
                    difference=verdict.pairs[a, b],
                )
            )
        for name in verdict.unconfirmed:
            difference = verdict.differences[name]
            report.notes.append(
                f"{name} ({report.engines[name].device or 'approximate'}) differs from the exact "
                f"engines in the {verdict.check.value} by more than its own error bound "
                f"({difference.describe()}): it confirms nothing there, and decides nothing"
            )
        if verdict.outcome is not Outcome.AGREE:
            outcomes.add(verdict.outcome)
        elif verdict.wrong:
            outcomes.add(Outcome.ENGINE_WRONG)
    for kink in report.kinks:
        for name, j in kink.outside.items():
            entry = report.engines[name]
            if not entry.under_test:
                continue
            value = entry.evaluations[
                next(i for i, p in enumerate(report.points) if p.label == kink.point)
            ].gradient[j]
            label = report.parameter_names[j]
            outcomes.add(Outcome.FORMULA_WRONG)
            reason = (
                f"gradient: dL/d{label} at {kink.point}, a kink of the loss: {value!r} is "
                f"outside the range of the one-sided slopes [{kink.lower[j]!r}, "
                f"{kink.upper[j]!r}]"
            )
            flag(
                Failure(
                    FailureKind.MISMATCH,
                    f"{name} disagrees: {reason}",
                    engine=name,
                    check=Check.GRADIENT,
                    difference=Difference(
                        f"dL/d{label} at {kink.point}",
                        float(value),
                        float(np.clip(value, kink.lower[j], kink.upper[j])),
                        0.0,
                    ),
                ),
                reason,
            )
    for entry in report.engines.values():
        if entry.status is Status.ERROR:
            outcomes.add(Outcome.ENGINE_FAILED)
            report.failures.append(
                Failure(
                    FailureKind.ERROR,
                    f"{entry.name} failed: {entry.reason}",
                    engine=entry.name,
                )
            )
        if entry.vs_single_process is not None and not entry.vs_single_process.ok:
            outcomes.add(Outcome.ENGINE_WRONG)
            for check, difference in (
                ("gradient", entry.vs_single_process.gradient),
                ("descent", entry.vs_single_process.descent),
            ):
                if not difference.ok:
                    reason = (
                        f"sharded {check} over {report.settings.shards} workers: "
                        f"{difference.describe()} against {entry.name} in one process"
                    )
                    flag(
                        Failure(
                            FailureKind.SHARDED,
                            f"{entry.name} disagrees: {reason}",
                            engine=entry.name,
                            difference=difference,
                        ),
                        reason,
                    )
    for combination in report.combinations[1:]:
        if not combination.ok:
            outcomes.add(Outcome.COMBINATION_WRONG)
            if combination.error:
                what = combination.error
            else:
                assert combination.difference is not None  # set whenever there is no error
                what = (
                    f"{combination.difference.describe()} against the true combination "
                    "(sums over N)"
                )
            report.failures.append(
                Failure(FailureKind.COMBINATION, f"--combine {combination.name}: {what}")
            )
    for entry in report.engines.values():
        if entry.name in reasons:
            entry.reason = "; ".join(reasons[entry.name])
        report.notes.extend(f"{entry.name}: {note}" for note in entry.notes)
    report.outcome = next((o for o in _PRECEDENCE if o in outcomes), Outcome.AGREE)
