"""Judge a function check: tolerances, the verdict per derivative and array, the first wrong
step of a hand backprop, detection power and the Taylor slope. Nothing here computes a
derivative: it reads what :mod:`verifiers.functions.run` computed.

The verdict rule is :func:`verifiers.judge.decide`, the one ``verifiers.run`` applies to a
model's gradient: for each array of each derivative (an input's gradient, a tapped
intermediate's, a jvp's output) every exact engine must agree with the hand values; exact
engines that disagree among themselves are an outcome of their own; central differences
confirm and never decide.

Tolerances. Two values agree when ``|a - b| <= atol·S + rtol·|b|``, with ``rtol`` and
``atol`` from :meth:`verifiers.compare.Tolerance.for_dtype` (the dtype's ε, and the longest
sum: the largest array's size). S, the size of the terms behind an array, is not known for an
arbitrary function, so it is taken at each point as the larger of

- the array's largest value (from the scale engine, the most preferred exact engine), and
- the array's measured rounding: the largest difference between the scale engine's values in
  float32 and in float64, divided by float32's ε. Rounding errors grow with ε, so this is what
  rounding does to this derivative here, in units of ε: it covers the arrays whose values are
  much smaller than the terms that cancelled to make them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from verifiers.compare import Difference, worst_difference
from verifiers.functions.problem import Derivative, Misshapen
from verifiers.functions.results import (
    HAND,
    ArrayVerdict,
    DerivativeReport,
    FunctionReport,
    Remainders,
    Step,
    Taylor,
    Worst,
)
from verifiers.judge import decide, worst_against_exact
from verifiers.results import Check, Outcome, Trust
from verifiers.settings import UsageError

__all__ = ["judge", "scales", "taylor_slope"]

FLOAT32_EPS = float(np.finfo(np.float32).eps)
_PRECEDENCE = (Outcome.ENGINES_DISAGREE, Outcome.FORMULA_WRONG, Outcome.ENGINE_WRONG)


def judge(report: FunctionReport) -> None:
    """Fill in every derivative's verdicts, steps, detection power and Taylor slope, and the
    check's outcome."""
    for entry in report.derivatives.values():
        _judge_derivative(report, entry)
    outcomes = {e.outcome for e in report.derivatives.values()}
    report.outcome = next((o for o in _PRECEDENCE if o in outcomes), Outcome.AGREE)


def array_names(report: FunctionReport, entry: DerivativeReport) -> list[tuple[str, str]]:
    """The arrays of a derivative with their roles: the inputs differentiated, then the taps the
    hand returned (in the order forward tapped them); a jvp's one output."""
    if entry.kind is Derivative.JVP:
        return [("output", "output")]
    point = report.points[0]
    names = [(n, "input") for n in point.tangents]
    if entry.kind.tapped:
        returned = {k for values in entry.hand.values() for k in values}
        names += [(t, "tap") for t in point.taps if t in returned]
    return names


def scales(report: FunctionReport, entry: DerivativeReport, name: str) -> dict[int, float]:
    """S for array `name` at each point (see the module docstring)."""
    engine = entry.engines[entry.scale_engine] if entry.scale_engine else None
    found = {}
    for point in report.points:
        k = point.index
        mine = engine.values[k].values[name] if engine is not None else np.zeros(1)
        largest = float(np.max(np.abs(np.nan_to_num(mine, posinf=0, neginf=0)), initial=0.0))
        rounding = 0.0
        if k in entry.twin:
            with np.errstate(invalid="ignore"):
                gap = np.abs(entry.twin[k].values[name] - mine)
            gap = gap[np.isfinite(gap)]
            rounding = float(np.max(gap, initial=0.0)) / FLOAT32_EPS
        found[k] = max(largest, rounding)
    return found


def _values(entry: DerivativeReport, engine: str, k: int, name: str) -> np.ndarray:
    if engine == HAND:
        value = entry.hand[k][name]
        return value.values if isinstance(value, Misshapen) else value
    return entry.engines[engine].values[k].values[name]


def _noise(entry: DerivativeReport, engine: str, k: int, name: str, shape) -> np.ndarray:
    if engine == HAND:
        return np.zeros(shape)
    noise = entry.engines[engine].values[k].noise
    if noise is None or name not in noise:
        return np.zeros(shape)
    return np.broadcast_to(noise[name], shape)


def _label(name: str, index: tuple[int, ...], k: int) -> str:
    where = f"{name}[{', '.join(map(str, index))}]" if index else name
    return f"{where} at point {k}"


def _comparison(
    report: FunctionReport, entry: DerivativeReport, name: str, scale: dict[int, float]
) -> tuple[Callable[[str, str], Difference], dict[str, tuple[int, tuple[int, ...]]]]:
    """`compare(a, b)` for array `name` over every point, and the element each label names."""
    points = [p.index for p in report.points]
    shape = tuple(np.shape(_values(entry, entry.scale_engine, points[0], name)))
    indices = list(np.ndindex(*shape)) if shape else [()]
    labels = [_label(name, index, k) for k in points for index in indices]
    where = {
        label: (k, index)
        for label, (k, index) in zip(labels, [(k, i) for k in points for i in indices], strict=True)
    }

    def compare(a: str, b: str) -> Difference:
        values = {
            e: np.concatenate([np.ravel(_values(entry, e, k, name)) for k in points])
            for e in (a, b)
        }
        sizes = np.concatenate(
            [
                scale[k]
                + np.ravel(_noise(entry, a, k, name, shape))
                + np.ravel(_noise(entry, b, k, name, shape))
                for k in points
            ]
        )
        return worst_difference(values[a], values[b], sizes, report.tolerance, labels)

    return compare, where


def _judge_derivative(report: FunctionReport, entry: DerivativeReport) -> None:
    ran = entry.ran
    if not entry.exact:
        reasons = "; ".join(
            f"{n}: {e.reason}" if e.reason else f"{n}: {e.method or 'approximate'}"
            for n, e in entry.engines.items()
        )
        raise UsageError(
            f"no exact engine could compute the {entry.kind.value}, so it cannot be judged "
            f"({reasons})"
        )
    check = Check.HESSIAN if entry.kind is Derivative.HVP else Check.GRADIENT
    for name, role in array_names(report, entry):
        scale = scales(report, entry, name)
        misshapen = next(
            (h[name] for h in entry.hand.values() if isinstance(h.get(name), Misshapen)), None
        )
        returned = all(name in h for h in entry.hand.values())
        compared = ran + ([HAND] if misshapen is None and returned else [])
        trust = {n: entry.engines[n].trust for n in ran} | {HAND: Trust.UNDER_TEST}
        compare, where = _comparison(report, entry, name, scale)
        verdict = decide(check, compared, {n: trust[n] for n in compared}, compare)
        shape = tuple(np.shape(_values(entry, entry.scale_engine, 0, name)))
        array = ArrayVerdict(name, role, shape, verdict, misshapen=misshapen)
        if HAND in compared and verdict.reference is not None:
            array.worst = _worst(verdict, where, scale)
            array.detection = _detection(report, entry, name, verdict.reference, scale)
        entry.arrays[name] = array
    entry.steps = _steps(entry)
    if any(a.verdict is not None and a.verdict.disagreeing for a in entry.arrays.values()):
        entry.outcome = Outcome.ENGINES_DISAGREE
    elif not all(a.ok for a in entry.arrays.values()):
        entry.outcome = Outcome.FORMULA_WRONG
    else:
        entry.outcome = Outcome.AGREE
    entry.taylor = _taylor(entry)


def _worst(verdict, where, scale: dict[int, float]) -> Worst:
    """The hand's worst element: against the exact engine it disagrees with most (the reference
    first), else against the reference."""
    found = worst_against_exact(verdict, HAND)
    against, difference = (
        found if found else (verdict.reference, verdict.pairs[HAND, verdict.reference])
    )
    k, index = where[difference.where]
    return Worst(
        k, index, difference.actual, difference.expected, against, difference.allowed, scale[k]
    )


def _detection(
    report: FunctionReport,
    entry: DerivativeReport,
    name: str,
    reference: str,
    scale: dict[int, float],
) -> float | None:
    """The smallest relative error in the hand's array that these points catch: at each point
    and element, what the comparison with the reference allows as a share of the true value;
    the smallest share (an error that large there is caught there)."""
    best = math.inf
    tolerance = report.tolerance
    for point in report.points:
        k = point.index
        true = np.abs(np.ravel(_values(entry, reference, k, name)))
        noise = np.ravel(_noise(entry, reference, k, name, np.shape(true)))
        allowed = tolerance.atol * (scale[k] + noise) + tolerance.rtol * true
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(true > 0, allowed / true, np.inf)
        share = share[np.isfinite(share)]
        if share.size:
            best = min(best, float(share.min()))
    return best if math.isfinite(best) else None


def _steps(entry: DerivativeReport) -> list[Step]:
    """The steps of a hand backprop, in backward order: the tapped intermediates the hand
    returned, last tapped first, then the inputs. None without taps."""
    taps = [a for a in entry.arrays.values() if a.role == "tap"]
    if not taps:
        return []
    ordered = [*reversed(taps), *(a for a in entry.arrays.values() if a.role == "input")]
    steps, wrong_seen = [], False
    for array in ordered:
        steps.append(Step(array.name, array.role, array.ok, wrong_seen))
        wrong_seen = wrong_seen or not array.ok
    return steps


# ---- the Taylor remainder -----------------------------------------------------------------------
def taylor_slope(remainders: Remainders) -> float | None:
    """The slope of log₂(remainder) per halving of h at the smallest steps whose remainders
    stand above the rounding floor (the median of the last three); None when none do."""
    r = remainders.remainders
    above = np.isfinite(r) & (r > remainders.floor)
    pairs = [k for k in range(len(r) - 1) if above[k] and above[k + 1]]
    if not pairs:
        return None
    slopes = [math.log2(r[k] / r[k + 1]) for k in pairs[-3:]]
    return float(np.median(slopes))


def _taylor(entry: DerivativeReport) -> Taylor | None:
    if not entry.remainders:
        return None
    slopes = [taylor_slope(r) for r in entry.remainders.values()]
    known = [s for s in slopes if s is not None]
    if not known:
        return Taylor(
            None,
            len(slopes),
            "the remainder stays at rounding level at every step: the function is linear "
            "along the directions tried, and the derivative right to rounding",
        )
    return Taylor(min(known), len(slopes))
