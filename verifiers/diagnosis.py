"""Say *how* a hand-derived gradient is wrong, when the error has a recognisable shape.

The formula under test and a trusted gradient are evaluated at several points. The difference
is matched against a catalogue of classic mistakes: the model's own slips (a term left out of the
MSE's residual, ``(y - σ)`` for ``(σ - y)`` in the logistic loss, a one-hot left out of the
softmax's, a missing tanh' in a network's backprop...), a constant factor (2, 1/2, N, 1/N, -1 and
their products with -1), and, per derivative, one derivative found where another belongs (the
factor x left out or put in; two derivatives swapped). A mistake is recognised only when it
explains the wrong values at every point; otherwise the answer is "no simple pattern". Errors
too small for any of these are described by their size, so the diagnosis never contradicts the
verdict: a formula the verdict calls wrong is never said to agree.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from verifiers.compare import Tolerance
from verifiers.models.base import Model
from verifiers.results import PointKind

__all__ = ["Diagnosis", "diagnose"]

# How much looser than the gradient check a catalogue match may be: a wrong formula written
# differently from ours rounds differently, and factors like N magnify the rounding. A match is
# never looser than _LOOSEST (per unit of Σ|terms|), or in float32 on large data any small
# error would match some slip.
_SLACK = 1e3
_LOOSEST = 1e-5


@dataclass
class Diagnosis:
    """`summary` is one sentence; `pattern` a short key (None: no simple pattern)."""

    summary: str
    pattern: str | None
    parameters: dict[str, str] = field(default_factory=dict)
    first_wrong_step: str | None = None  # of a backprop that returned its intermediates


def _factors(n: int) -> list[tuple[float, str, str]]:
    """(factor, key, explanation) for the constant factors a derivation commonly gets wrong."""
    plain = [
        (0.5, "1/2", "half the true value: the 2 from differentiating the square is missing"),
        (2.0, "2", "twice the true value: a factor 2 too many"),
        (float(n), "N", "N times the true value: a sum where the mean belongs (no 1/N)"),
        (1 / n, "1/N", "1/N of the true value: divided by N once too often"),
    ]
    factors = [(-1.0, "-1", "the true value with the sign flipped")]
    for value, key, text in plain:
        factors.append((value, key, text))
        factors.append((-value, f"-{key}", f"{text.split(':')[0]}, with the sign flipped too"))
    return [(v, k, t) for v, k, t in factors if v != 1.0]  # N = 1 or 2 would repeat the truth


def _in_place_of(names: list[str], i: int, j: int, linear: bool) -> tuple[str, str]:
    """(key, explanation) for finding the derivative of parameter i where j's belongs."""
    if linear and j == 0:
        return "extra-x", f"it has a factor x too many: it equals dL/d{names[i]}"
    if linear and i == 0:
        return "missing-x", "the factor x is missing: it equals dL/db"
    return "swapped", f"it equals dL/d{names[i]}: two derivatives are swapped"


def diagnose(
    got: np.ndarray,
    want: np.ndarray,
    scales: np.ndarray,
    slips: dict[str, np.ndarray],
    model: Model,
    tolerance: Tolerance,
    result_dtypes: set[str] | None = None,
    where: tuple[np.ndarray, Sequence[PointKind]] | None = None,
) -> Diagnosis:
    """Explain the difference between the formula under test's gradients `got` and the trusted
    ones `want` (one row per point; `scales` their Σ|terms|), given what each of the model's
    slips gives at the same points (`slips[key]`). Reads values only: computes no gradient.

    With `where` (each row's θ and the kind of its point), an error that no classic mistake
    explains and that only some points show is also located: the kind of point, the sign of a
    parameter or of a product of two, or a parameter's size that sets those points apart.
    """
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # each value within the check's own tolerance
        exact = np.abs(got - want) <= _allowed(want, scales, 1.0, tolerance)
    found = _diagnose(got, want, scales, slips, model, tolerance, result_dtypes, exact)
    if where is None or found.pattern not in (None, "small"):
        return found
    wrong_points = ~exact.all(axis=1)
    region = _region(wrong_points, np.asarray(where[0], dtype=np.float64), list(where[1]), model)
    if region is not None:
        found.summary = f"{found.summary}; it is wrong {region}"
    return found


def _allowed(
    candidate: np.ndarray, scale: np.ndarray, slack: float, tolerance: Tolerance
) -> np.ndarray:
    """The tolerance `slack` times looser (never looser than _LOOSEST per unit) around
    `candidate`, whose terms have sizes `scale`."""
    atol = min(slack * tolerance.atol, max(tolerance.atol, _LOOSEST))
    rtol = min(slack * tolerance.rtol, max(tolerance.rtol, _LOOSEST))
    return atol * scale + rtol * np.abs(candidate)


def _diagnose(
    got: np.ndarray,
    want: np.ndarray,
    scales: np.ndarray,
    slips: dict[str, np.ndarray],
    model: Model,
    tolerance: Tolerance,
    result_dtypes: set[str] | None,
    exact: np.ndarray,
) -> Diagnosis:
    """:func:`diagnose` without locating the error; `exact` says which values are within the
    check's tolerance."""
    names = model.labels()

    def matches(values: np.ndarray, candidate: np.ndarray, scale: np.ndarray) -> bool:
        with np.errstate(invalid="ignore"):
            allowed = _allowed(candidate, scale, _SLACK, tolerance)
            return bool(np.all(np.abs(values - candidate) <= allowed))

    wrong = [j for j in range(len(names)) if not exact[:, j].all()]
    if not wrong:  # the verdict saw a difference these points do not show
        return Diagnosis(
            "the formula agrees with the trusted gradient at these points, but not at every "
            "point checked",
            None,
        )
    every = len(wrong) == len(names)

    # A slip of the model's own derivation, or one constant factor, explaining everything.
    for slip in model.slips():
        values = slips[slip.key]
        if matches(got, values, scales):
            parameters = {names[j]: f"dL/d{names[j]}: {slip.explanation}" for j in wrong}
            return Diagnosis(slip.explanation, slip.key, parameters)
    for value, key, text in _factors(model.data.rows):
        if every and matches(got, value * want, abs(value) * scales):
            parameters = {name: f"dL/d{name}: {text}" for name in names}
            return Diagnosis(f"every derivative is {text}", f"factor {key}", parameters)

    # Otherwise derivative by derivative.
    findings: dict[str, tuple[str, str]] = {}
    for j in wrong:
        candidates = [
            (*_in_place_of(names, i, j, model.linear), want[:, i], scales[:, i])
            for i in range(len(names))
            if i != j
        ]
        candidates += [
            (f"factor {key}", text, value * want[:, j], abs(value) * scales[:, j])
            for value, key, text in _factors(model.data.rows)
        ]
        found = next(
            ((k, t) for k, t, v, s in candidates if matches(got[:, j], v, s)),
            None,
        )
        if found is None:
            ratio = _constant_ratio(got[:, j], want[:, j], scales[:, j], tolerance)
            if ratio is not None:
                shown = _factor_text(ratio)
                found = (
                    "factor",
                    f"{shown} times the true value at every point: a constant factor",
                )
        if found is None:
            found = _small(got[:, j], want[:, j], scales[:, j], result_dtypes, model, tolerance)
        findings[names[j]] = found or ("none", "no simple pattern")

    parameters = {name: f"dL/d{name}: {text}" for name, (_, text) in findings.items()}
    keys = {key for key, _ in findings.values()}
    if keys <= {"small", "float32"} and len(keys) == 1:
        key, text = _small(
            got[:, wrong], want[:, wrong], scales[:, wrong], result_dtypes, model, tolerance
        )
        return Diagnosis(text, key, parameters)
    if "none" in keys:
        explained = {p: found for p, found in findings.items() if found[0] != "none"}
        unexplained = [p for p, (key, _) in findings.items() if key == "none"]
        summary = f"no simple pattern in {_join(unexplained)}" + (
            f"; {_grouped(explained, names)}" if explained else ""
        )
        return Diagnosis(summary, None, parameters)
    if keys == {"extra-x", "missing-x"} and len(findings) == len(names) == 2:
        return Diagnosis("the derivatives of b and w are swapped", "swapped", parameters)
    if len(keys) == 1 and len(findings) == len(names):
        key = keys.pop()
        text = next(iter(findings.values()))[1]
        return Diagnosis(
            f"every derivative is {text}" if key.startswith("factor") else text, key, parameters
        )
    return Diagnosis(_grouped(findings, names), "+".join(sorted(keys)), parameters)


# How each kind of check point is named when an error shows only there.
_KIND_WORDS = {
    PointKind.START: "the start",
    PointKind.OPTIMUM: "the optimum",
    PointKind.NEAR: "the points near the optimum",
    PointKind.RANDOM: "the random points",
    PointKind.ANCHORED: "the points whose line passes through the data's centre",
    PointKind.EXTREME: "the extreme points (the model driven to the data's extremes)",
    PointKind.MOVED: "the points moved off a kink",
}
# Products of two parameters' signs are tried up to this many parameters.
_PAIRS_UP_TO = 12
_SIGN = {-1.0: "< 0", 1.0: "> 0"}


def _region(
    wrong: np.ndarray, thetas: np.ndarray, kinds: list[PointKind], model: Model
) -> str | None:
    """Words for what sets the points where the formula is wrong apart from those where it is
    right, tried in this order: the kind of point; the distance from the optimum (when it is
    among the points); one parameter's sign; the sign of a product of two, or the signs of two
    together; one parameter's size; a band of one parameter's values.
    None unless both kinds of points exist; when nothing simple separates them, or one point
    alone is wrong (its coordinates would single out some parameter by chance), how many points
    are wrong."""
    total, count = len(wrong), int(np.count_nonzero(wrong))
    if count in (0, total) or len(thetas) != total or len(kinds) != total:
        return None
    right = ~wrong
    share = f"(at {count} of the {total} points compared; right at the others)"
    bad = {kinds[i] for i in np.flatnonzero(wrong)}
    good = {kinds[i] for i in np.flatnonzero(right)}
    if not bad & good:
        words = [_KIND_WORDS[k] for k in PointKind if k in bad]
        if bad == {PointKind.OPTIMUM, PointKind.NEAR}:
            words = ["the optimum and near it"]
        return f"only at {' and '.join(words)} {share}"
    if count < 2:  # one point's coordinates would single out some parameter by chance
        return f"at one point only (of the {total} compared; right at the others)"
    optimum = [i for i, kind in enumerate(kinds) if kind is PointKind.OPTIMUM]
    if optimum:  # the points closest to the optimum, each parameter measured on its own size
        centre = thetas[optimum[0]]
        distance = np.max(np.abs(thetas - centre) / (1 + np.abs(centre)), axis=1)
        if distance[wrong].max() < distance[right].min():
            return f"only close to the optimum {share}"
        if distance[wrong].min() > distance[right].max():
            return f"only far from the optimum {share}"
    names = model.labels()
    signs = np.sign(thetas)
    for j, name in enumerate(names):
        for sign, text in _SIGN.items():
            if np.all(signs[wrong, j] == sign) and not np.any(signs[right, j] == sign):
                return f"only where {name} {text} {share}"
    if len(names) <= _PAIRS_UP_TO:
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                product = signs[:, i] * signs[:, j]
                for sign, text in _SIGN.items():
                    if np.all(product[wrong] == sign) and not np.any(product[right] == sign):
                        return f"only where {names[i]}·{names[j]} {text} {share}"
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                for si, sj in itertools.product(_SIGN, repeat=2):
                    here = (signs[:, i] == si) & (signs[:, j] == sj)
                    if np.all(here[wrong]) and not np.any(here[right]):
                        return (
                            f"only where {names[i]} {_SIGN[si]} and {names[j]} {_SIGN[sj]} {share}"
                        )
    sizes = np.abs(thetas)
    for j, name in enumerate(names):
        top, bottom = sizes[wrong, j].min(), sizes[right, j].max()
        if top > bottom:
            return (
                f"only where |{name}| is large (at the {count} of the {total} points compared "
                f"with |{name}| ≥ {top:.2g}; right at the others, where |{name}| ≤ {bottom:.2g})"
            )
        top, bottom = sizes[wrong, j].max(), sizes[right, j].min()
        if top < bottom:
            return (
                f"only where |{name}| is small (at the {count} of the {total} points compared "
                f"with |{name}| ≤ {top:.2g}; right at the others, where |{name}| ≥ {bottom:.2g})"
            )
    for j, name in enumerate(names):  # a band of one parameter's values
        low, high = thetas[wrong, j].min(), thetas[wrong, j].max()
        inside = (thetas[right, j] >= low) & (thetas[right, j] <= high)
        if low < high and not inside.any():
            return (
                f"only where {name} is between {low:.4g} and {high:.4g} (at the {count} of the "
                f"{total} points compared in that band; right at the others, all outside it)"
            )
    return f"at some points only {share}"


def _grouped(findings: dict[str, tuple[str, str]], names: list[str]) -> str:
    """One clause per parameter array and finding (``dL/db1 (every entry): ...``), not one per
    entry: a matrix parameter's entries usually share what is wrong with them."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name, (_, text) in findings.items():
        groups.setdefault((name.split("[")[0], text), []).append(name)
    clauses = []
    for (base, text), members in groups.items():
        entries = sum(n.split("[")[0] == base for n in names)
        if len(members) > 1 and len(members) == entries:
            clauses.append(f"dL/d{base} (every entry): {text}")
        else:
            clauses.append(f"{_join(members)}: {text}")
    return "; ".join(clauses)


def _join(names: list[str]) -> str:
    shown = [f"dL/d{name}" for name in names[:4]]
    more = f" and {len(names) - 4} more" if len(names) > 4 else ""
    return " and ".join(shown) + more


def _constant_ratio(
    got: np.ndarray, want: np.ndarray, scales: np.ndarray, tolerance: Tolerance
) -> float | None:
    """The constant c, when ``got = c·want`` at every point (c ≠ 1, within the check's own
    tolerance, loosened as for the catalogue), judged on the points where the true value stands
    well above rounding; None when no single factor explains the values."""
    loose = min(_SLACK * tolerance.atol, max(tolerance.atol, _LOOSEST))
    clear = np.abs(want) > 100 * loose * scales
    if not clear.any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.median(got[clear] / want[clear]))
    if not np.isfinite(ratio) or abs(ratio - 1) <= 10 * loose:
        return None
    allowed = loose * (abs(ratio) * scales + np.abs(got))
    allowed = allowed + min(_SLACK * tolerance.rtol, _LOOSEST) * np.abs(got)
    with np.errstate(invalid="ignore"):
        fits = np.abs(got - ratio * want) <= allowed
    return ratio if bool(fits.all()) else None


def _factor_text(ratio: float) -> str:
    """A factor with the digits that show how far it is from 1 (``2``, ``1.00000001``)."""
    distance = abs(ratio - 1)
    digits = 4 if distance >= 1e-3 else min(17, 3 - math.floor(math.log10(distance)))
    return f"{ratio:.{digits}g}"


def _relative(got: np.ndarray, want: np.ndarray) -> float:
    """The largest difference as a share of the largest true value (per derivative)."""
    largest = np.max(np.abs(want), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.max(np.abs(got - want), axis=0) / largest
    return float(np.nanmax(np.where(largest > 0, relative, np.inf)))


def _small(
    got: np.ndarray,
    want: np.ndarray,
    scales: np.ndarray,
    dtypes: set[str] | None,
    model: Model,
    tolerance: Tolerance,
) -> tuple[str, str] | None:
    """(key, sentence) for an error too small to be a classic slip; None if it is not small.

    Float32 rounding in a float64 check is recognised: within float32's tolerance, and either
    float32 numbers returned or differences too large for float64 arithmetic (over 1e-9) at
    most of the values (a region's error is not rounding).
    """
    relative = _relative(got, want)
    # A constant factor (a 2, an N) is a slip of the derivation, not float32 rounding, even
    # where it is as small as float32's error compared with the terms' sizes.
    columns = [np.reshape(a, (np.shape(a)[0], -1)) for a in (got, want, scales)]
    ratios = [
        _constant_ratio(columns[0][:, j], columns[1][:, j], columns[2][:, j], tolerance)
        for j in range(columns[0].shape[1])
    ]
    constant = any(r is not None for r in ratios)
    if model.data.dtype == np.float64 and not constant:
        float32 = Tolerance.for_dtype("float32", model.data.rows)
        within = np.abs(got - want) <= 4 * (float32.atol * scales + float32.rtol * np.abs(want))
        returned32 = bool(dtypes and "float32" in dtypes)
        # float32 arithmetic misses at nearly every value; a formula wrong in one region (near
        # the optimum, where b·w < 0) matches to float64's rounding everywhere else.
        allowed64 = _allowed(want, scales, 1.0, tolerance)
        widespread = float(np.mean(np.abs(got - want) > allowed64)) >= 0.5
        if bool(within.all()) and (returned32 or (relative > 1e-9 and widespread)):
            where = (
                "it returns float32 numbers"
                if returned32
                else "it computes in float32 somewhere (a torch tensor made from a Python float, "
                "or jax without 64-bit mode)"
            )
            return "float32", (
                f"it agrees only to float32 accuracy (relative error up to {relative:.2g}): "
                f"{where}; a float64 check needs float64 arithmetic throughout"
            )
    if relative < 1e-2:
        return "small", (
            f"it is close but not equal: off by up to {relative:.2g} of the largest value, more "
            "than rounding allows and less than any classic slip (a slightly wrong constant, or "
            "a term that almost cancels?)"
        )
    return None
