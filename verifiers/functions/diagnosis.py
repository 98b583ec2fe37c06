"""Say *how* a hand derivative of any function is wrong, when the error has a recognisable shape.

Each wrong array (an input's gradient, a tapped intermediate's, a jvp's output) is matched at
every point against what the classic slips give, in this order:

- a shape that is itself the slip: a broadcast input's gradient not summed back over the axes it
  was broadcast along, or a matrix's gradient transposed;
- the cotangent g not multiplied in (a vjp equal to the Jacobian's rows summed, the vjp of a
  cotangent of ones), or for a jvp the tangent;
- two inputs' gradients swapped; a transposed square matrix;
- a broadcast input's gradient summed over the wrong axis;
- an elementwise derivative written in terms of the input where the output belongs
  (``tanh'`` as ``1 - x²`` for ``1 - y²``, ``σ'`` as ``x(1 - x)`` for ``y(1 - y)``...);
- a constant factor: the sign flipped, 2, 1/2, or any constant (named as an axis's length when
  it is one: a sum where a mean belongs).

A slip is recognised only when it explains the values at every point, within a tolerance looser
than the verdict's (a wrong formula written differently rounds differently), never looser than
1e-5 per unit of the terms. Otherwise the answer is "no simple pattern". Reads values only: the
few extra derivatives a diagnosis needs (with a cotangent of ones, with an input given already
broadcast) are computed by :func:`verifiers.functions.run.diagnostic_values`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from verifiers.functions.judge import scales
from verifiers.functions.problem import Derivative, Misshapen
from verifiers.functions.results import DerivativeReport, FunctionDiagnosis, FunctionReport
from verifiers.words import listing

__all__ = ["OUTPUT_DERIVATIVES", "diagnose"]

_SLACK = 1e3
_LOOSEST = 1e-5

# Elementwise functions whose derivative is usually written in terms of their output y:
# (name, the derivative as text with a placeholder, the derivative as a function of y).
OUTPUT_DERIVATIVES: tuple[tuple[str, str, Callable[[np.ndarray], np.ndarray]], ...] = (
    ("tanh", "1 - {}²", lambda y: 1 - y * y),
    ("the sigmoid", "{0}(1 - {0})", lambda y: y * (1 - y)),
    ("exp", "{}", lambda y: y),
    ("sqrt", "1/(2{})", lambda y: 0.5 / y),
    ("1/x", "-{}²", lambda y: -(y * y)),
)


class _Arrays:
    """The values one diagnosis compares, per point: the hand's, the true ones (the reference
    engine of each array's verdict), the scales, and the extra diagnostic values."""

    def __init__(self, report: FunctionReport, entry: DerivativeReport, extra: dict[str, Any]):
        self.report, self.entry, self.extra = report, entry, extra
        self.points = [p.index for p in report.points]
        self.scale = {name: scales(report, entry, name) for name in entry.arrays}
        tolerance = report.tolerance
        self.atol = min(_SLACK * tolerance.atol, max(tolerance.atol, _LOOSEST))
        self.rtol = min(_SLACK * tolerance.rtol, max(tolerance.rtol, _LOOSEST))

    def hand(self, name: str, k: int) -> np.ndarray:
        value = self.entry.hand[k][name]
        return value.values if isinstance(value, Misshapen) else value

    def true(self, name: str, k: int) -> np.ndarray:
        verdict = self.entry.arrays[name].verdict
        engine = verdict.reference if verdict and verdict.reference else self.entry.scale_engine
        return self.entry.engines[engine].values[k].values[name]

    def engine_values(self, name: str, k: int) -> np.ndarray | None:
        """Any array the scale engine computed (a tap the hand did not return, too)."""
        return self.entry.engines[self.entry.scale_engine].values[k].values.get(name)

    def matches(self, name: str, candidate: Callable[[int], np.ndarray | None], of=None) -> bool:
        """Whether the hand's `name` (or the array `of` returns) equals `candidate` at every
        point, within the diagnosis's tolerance."""
        for k in self.points:
            want = candidate(k)
            got = self.hand(name, k) if of is None else of(k)
            if want is None or got is None or np.shape(want) != np.shape(got):
                return False
            allowed = self.atol * self.scale[name][k] + self.rtol * np.abs(want)
            with np.errstate(invalid="ignore"):
                if not np.all(np.abs(got - want) <= allowed):
                    return False
        return True


def diagnose(
    report: FunctionReport, entry: DerivativeReport, extra: dict[str, Any]
) -> FunctionDiagnosis:
    """The diagnosis of `entry`'s wrong arrays (see the module docstring)."""
    arrays = _Arrays(report, entry, extra)
    wrong = [a.name for a in entry.arrays.values() if not a.ok]
    if entry.steps:  # a hand backprop: what went wrong at the first wrong step is the story
        first = entry.first_wrong_step
        wrong = [first] + [n for n in wrong if n != first] if first else wrong
    found: dict[str, tuple[str, str]] = {}
    for name in wrong:
        if name in found:
            continue
        found |= _explain(arrays, name, wrong)
    sentences = {name: text for name, (_, text) in found.items()}
    if not found:
        return FunctionDiagnosis("no simple pattern", None)
    keys = [key for key, _ in found.values()]
    names = list(found)
    if entry.steps and entry.first_wrong_step in found:
        first = entry.first_wrong_step
        key, text = found[first]
        later = [s.name for s in entry.steps if s.downstream and not s.ok]
        summary = f"the first wrong step is {_d(first)}: {text}"
        if later:
            summary += f"; {listing([_d(n) for n in later])} after it inherit its error"
        return FunctionDiagnosis(summary, key, sentences)
    if len(set(keys)) == 1 and len(names) > 1 and keys[0].startswith("factor"):
        first = names[0]
        what = found[first][1].removeprefix(f"{_d(first)} is ")
        return FunctionDiagnosis(f"every derivative is {what}", keys[0], sentences)
    if len(names) == 1 or len(set(found.values())) == 1:
        key, text = found[names[0]]
        return FunctionDiagnosis(text, None if key == "none" else key, sentences)
    clauses = [f"{_d(n)}: {t}" for n, (_, t) in found.items()]
    pattern = "+".join(sorted(set(keys))) if all(k != "none" for k in keys) else None
    return FunctionDiagnosis("; ".join(clauses), pattern, sentences)


def _d(name: str) -> str:
    return "the output" if name == "output" else f"d{name}"


def _explain(arrays: _Arrays, name: str, wrong: list[str]) -> dict[str, tuple[str, str]]:
    """(key, sentence) for `name` (and for its partner, when two gradients are swapped)."""
    entry, report = arrays.entry, arrays.report
    misshapen = next(
        (h[name] for h in entry.hand.values() if isinstance(h.get(name), Misshapen)), None
    )
    if misshapen is not None:
        return {name: _misshapen(arrays, name, misshapen)}
    points = arrays.points
    # g (or t) not multiplied in
    ones = arrays.extra.get("ones", {})
    complete = ones and all(k in ones and name in ones[k] for k in points)
    if complete and arrays.matches(name, lambda k: ones[k][name]):
        if entry.kind is Derivative.JVP:
            return {name: ("tangent-not-multiplied", (
                "the tangent t is not multiplied in: it equals J·1, the Jacobian's columns "
                "summed (the jvp of a tangent of ones)"
            ))}  # fmt: skip
        return {name: ("cotangent-not-multiplied", (
            f"the cotangent g is not multiplied in: d{name} equals the Jacobian's rows "
            "summed (the vjp of a cotangent of ones), where gᵀJ belongs"
        ))}  # fmt: skip
    # a jvp with the Jacobian transposed
    transposed = arrays.extra.get("transposed", {})
    complete = transposed and all(k in transposed for k in points)
    if complete and arrays.matches(name, lambda k: transposed[k]):
        return {name: ("transposed-jacobian", (
            "it computes tᵀJ (the vjp with t as the cotangent) where J·t belongs: the "
            "Jacobian is transposed (its rows and columns mixed up)"
        ))}  # fmt: skip
    # two gradients swapped
    role = entry.arrays[name].role
    for other, array in entry.arrays.items():
        if other == name or array.role != role or array.shape != entry.arrays[name].shape:
            continue
        if arrays.matches(name, lambda k, other=other: arrays.true(other, k)):
            if arrays.matches(other, lambda k: arrays.true(name, k)):
                text = f"the gradients of {name} and {other} are swapped"
                return {name: ("swapped", text), other: ("swapped", text)}
            return {name: ("swapped", f"d{name} equals d{other}: the gradient of another input")}
    # a square matrix's gradient transposed
    shape = entry.arrays[name].shape
    if (
        len(shape) >= 2
        and shape == shape[::-1]
        and arrays.matches(name, lambda k: np.transpose(arrays.true(name, k)))
    ):
        return {name: ("transposed", f"d{name} is transposed: its transpose is right")}
    # summed over the wrong axis
    found = _wrong_axis(arrays, name)
    if found:
        return {name: found}
    # an elementwise derivative in terms of the input
    found = _input_for_output(arrays, name)
    if found:
        return {name: found}
    # a constant factor
    found = _factor(arrays, name, report)
    if found:
        return {name: found}
    return {name: ("none", "no simple pattern")}


def _misshapen(arrays: _Arrays, name: str, misshapen: Misshapen) -> tuple[str, str]:
    expected = arrays.entry.arrays[name].shape
    if misshapen.kind == "transposed":
        text = (
            f"d{name} has shape {misshapen.shape} where {name}'s shape {expected} belongs: it "
            "is transposed"
        )
        right = arrays.matches(
            name, lambda k: arrays.true(name, k), lambda k: np.transpose(arrays.hand(name, k))
        )
        return "transposed", text + ("; its transpose is right" if right else "")
    axes = misshapen.axes
    noun = "axis" if len(axes) == 1 else "axes"
    text = (
        f"d{name} has shape {misshapen.shape} where {name}'s shape {expected} belongs: it is not "
        f"summed back over the {noun} {name} is broadcast along ({noun} "
        f"{', '.join(map(str, axes))})"
    )

    def summed(k: int) -> np.ndarray:
        return np.sum(arrays.hand(name, k), axis=axes).reshape(expected)

    right = arrays.matches(name, lambda k: arrays.true(name, k), summed)
    return "not-summed-back", text + ("; summed over it, it is right" if right else "")


def _wrong_axis(arrays: _Arrays, name: str) -> tuple[str, str] | None:
    """A broadcast input's gradient summed over other axes than those it is broadcast along."""
    expanded = arrays.extra.get("expanded", {}).get(name, {})
    shape = arrays.entry.arrays[name].shape
    for broadcast, values in expanded.items():
        if not all(k in values for k in arrays.points):
            continue
        from verifiers.functions.problem import unbroadcast_axes

        right = unbroadcast_axes(shape, broadcast)
        if right is None:
            continue
        for axes in itertools.combinations(range(len(broadcast)), len(broadcast) - len(shape)):
            if set(axes) == set(right) or tuple(
                n for i, n in enumerate(broadcast) if i not in axes
            ) != tuple(shape):
                continue
            if arrays.matches(
                name, lambda k, axes=axes, values=values: np.sum(values[k], axis=axes)
            ):
                return "wrong-axis", (
                    f"d{name} is summed over {_axes(axes)} where {name} is broadcast along "
                    f"{_axes(right)}"
                )
    return None


def _axes(axes: tuple[int, ...]) -> str:
    return ("axis " if len(axes) == 1 else "axes ") + ", ".join(map(str, axes))


def _input_for_output(arrays: _Arrays, name: str) -> tuple[str, str] | None:
    """``f'(x)`` written with x where it is written with y = f(x): for each later quantity q of
    the same shape (forward's output, or a tap after `name`), with the true gradient G of q, the
    true values are G·P(y) and the hand's G·P(x) for one P of OUTPUT_DERIVATIVES."""
    entry, report = arrays.entry, arrays.report
    point0 = report.points[0]
    kind = entry.kind
    role = entry.arrays[name].role
    tap_order = list(point0.taps)

    def forward_value(k: int) -> np.ndarray:
        point = report.points[k]
        if role == "tap":
            return point.taps[name]
        if role == "output":  # a jvp: the input of the output's shape
            return point.inputs[_jvp_input(arrays)]
        return point.inputs[name]

    later: list[tuple[str, Callable[[int], np.ndarray], Callable[[int], np.ndarray | None]]] = []
    if kind is Derivative.VJP:
        later.append(("y", lambda k: report.points[k].output, lambda k: report.points[k].cotangent))
    if kind is Derivative.JVP and _jvp_input(arrays):
        source = _jvp_input(arrays)
        later.append(
            ("y", lambda k: report.points[k].output, lambda k: report.points[k].tangents[source])
        )
    start = tap_order.index(name) + 1 if role == "tap" else 0
    if kind.tapped:
        for tap in tap_order[start:]:
            later.append(
                (
                    tap,
                    lambda k, tap=tap: report.points[k].taps[tap],
                    lambda k, tap=tap: arrays.engine_values(tap, k),
                )
            )
    x_name = _jvp_input(arrays) if role == "output" else name
    for y_name, y_value, weight in later:
        if np.shape(y_value(0)) != np.shape(forward_value(0)):
            continue
        for function, text, derivative in OUTPUT_DERIVATIVES:
            with np.errstate(all="ignore"):
                if not arrays.matches(
                    name, lambda k, d=derivative, y=y_value, w=weight: _times(w(k), d(y(k))),
                    lambda k: arrays.true(name, k),
                ):  # fmt: skip
                    continue
                if arrays.matches(
                    name, lambda k, d=derivative, w=weight: _times(w(k), d(forward_value(k)))
                ):
                    right, slip = text.format(y_name), text.format(x_name)
                    return "input-for-output", (
                        f"the derivative of {function} is written in terms of its input where its "
                        f"output belongs: {slip} where {right} belongs ({y_name} = "
                        f"{function}({x_name}))"
                    )
    return None


def _times(weight: np.ndarray | None, values: np.ndarray) -> np.ndarray | None:
    return None if weight is None else weight * values


def _jvp_input(arrays: _Arrays) -> str | None:
    """For a jvp: the one input with the output's shape, when there is one."""
    point = arrays.report.points[0]
    same = [n for n in point.tangents if point.inputs[n].shape == point.output.shape]
    return same[0] if len(same) == 1 else None


def _factor(arrays: _Arrays, name: str, report: FunctionReport) -> tuple[str, str] | None:
    """The hand values are c times the true ones at every point: a fixed list first, then the
    ratio measured where the true values stand clear of rounding."""
    fixed = [
        (-1.0, "the true value with the sign flipped"),
        (2.0, "twice the true value: a factor 2 too many"),
        (0.5, "half the true value: a factor 2 missing (the 2 of a square?)"),
        (-2.0, "twice the true value with the sign flipped"),
        (-0.5, "half the true value with the sign flipped"),
    ]
    for value, text in fixed:
        if arrays.matches(name, lambda k, v=value: v * arrays.true(name, k)):
            return f"factor {value:g}", f"d{name} is {text}"
    ratios = []
    for k in arrays.points:
        true, got = arrays.true(name, k), arrays.hand(name, k)
        clear = np.abs(true) > 100 * arrays.atol * arrays.scale[name][k]
        if clear.any():
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios.append(got[clear] / true[clear])
    if not ratios:
        return None
    ratio = float(np.median(np.concatenate(ratios)))
    if not math.isfinite(ratio) or abs(ratio - 1) <= 10 * arrays.atol or ratio == 0:
        return None
    if not arrays.matches(name, lambda k: ratio * arrays.true(name, k)):
        return None
    return f"factor {ratio:.4g}", f"d{name} is {_constant(ratio, report)} times the true value"


def _constant(ratio: float, report: FunctionReport) -> str:
    """The factor, named as an axis's length (or its inverse) when it is one."""
    point = report.points[0]
    arrays = {**point.inputs, "the output": point.output, **point.taps}
    for label, array in arrays.items():
        for axis, n in enumerate(np.shape(array)):
            if n < 2:
                continue
            for value, shown in ((n, f"{n}"), (1 / n, f"1/{n}")):
                if abs(ratio - value) <= 1e-6 * abs(value):
                    hint = (
                        "a sum where a mean belongs?"
                        if value > 1
                        else "a mean where a sum belongs?"
                    )
                    return f"{shown} (the length of {label}'s axis {axis}: {hint})"
    return f"{ratio:.4g}"
