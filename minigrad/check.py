"""check_graph: test every recorded rule against finite differences of its own forward.

A wrong gradient at the end of a long computation says only that some rule is wrong somewhere.
Here each node of the graph is checked on its own, at the inputs it actually saw: its VJP applied
to a random cotangent u must match central differences of Σ u·forward(inputs), input by input
and element by element, and it must be linear in u. Each finding names the op, the input, the
shapes, and the worst element with both values.

Finite differences are taken in float64 (a float32 node's inputs are converted), with a step of
about ε^(1/3) of the forward's dtype, which balances truncation against rounding; the tolerance
follows the node's dtype. Where the one-sided slopes disagree however small the step, the point
is a kink (relu or |x| at 0, max at a tie, a clip bound): any value between the two slopes is a
valid convention there, and only a value outside them is reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from minigrad.autograd import graph
from minigrad.grad_mode import no_grad
from minigrad.tensor import Tensor, unbroadcast_vjp

__all__ = ["Finding", "check_graph"]


@dataclass(frozen=True)
class Finding:
    """One rule that disagrees with its forward, or one node that could not be checked."""

    op: str  # the node's op name, e.g. "*" or "softplus"
    input: int  # which input of the op (position in its parents); -1 for the whole node
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...]
    problem: str  # what is wrong, in words
    error: float = math.nan  # worst |rule - numeric| / max(|numeric|, 1% of the largest)
    where: tuple[int, ...] | None = None  # index of the worst element in the input
    rule: float | None = None  # the rule's value there
    numeric: float | None = None  # finite differences' value there
    node: Tensor | None = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        name = f"'{self.op}'" + (
            f" ({self.node.name})" if self.node is not None and self.node.name else ""
        )
        head = f"{name}, input {self.input} of shape {self.input_shape} -> {self.output_shape}"
        if self.input < 0:
            head = f"{name} -> {self.output_shape}"
        text = f"{head}: {self.problem}"
        if self.rule is not None and self.numeric is not None:
            at = f" at {self.where}" if self.where is not None else ""
            text += (
                f"; worst{at}: the rule gives {self.rule:.6g}, finite differences "
                f"{self.numeric:.6g} (relative error {self.error:.3g})"
            )
        return text


def check_graph(
    output: Tensor, *, rtol: float | None = None, max_elements: int = 64, seed: int = 0
) -> list[Finding]:
    """Check every recorded node behind `output`; return one Finding per wrong rule.

    An empty list means every rule agrees with finite differences of its forward. Inputs with
    more than `max_elements` elements are checked on that many elements chosen at random, plus
    the derivative along two random ±1 directions over all of them (a wrong rule at one element
    of a million changes that derivative by the error itself). Where several elements sit at a
    kink (a tie of max), the rule's total over them is checked along the direction that moves
    them together, on which the forward is smooth. `rtol` defaults by dtype:
    1e-6 for float64, about 3e-3 for float32.
    """
    rng = np.random.default_rng(seed)
    findings: list[Finding] = []
    for node in graph(output):
        if node._parents:
            findings += _check_node(node, rng, rtol, max_elements)
    return findings


def _check_node(
    node: Tensor, rng: np.random.Generator, rtol: float | None, max_elements: int
) -> list[Finding]:
    def finding(i: int, problem: str, **values: Any) -> Finding:
        shape = node._parents[i].shape if i >= 0 else None
        return Finding(node._op, i, shape, node.shape, problem, node=node, **values)

    forward = node._forward
    if forward is None:
        return [finding(-1, "cannot check: no forward (give operation() a forward=)")]
    if any(p.dtype.kind == "c" for p in node._parents) or node.dtype.kind == "c":
        return [finding(-1, "cannot check: complex values")]
    inputs = [p.data.astype(np.float64) if p.dtype.kind == "f" else p.data for p in node._parents]
    try:
        raw = np.asarray(forward(*inputs))
    except Exception as error:  # a forward that fails cannot be differenced
        return [finding(-1, f"cannot check: the forward raised {error!r}")]
    if raw.shape != node.shape:
        return [finding(-1, f"the forward gives shape {raw.shape}, the node has {node.shape}")]
    # the forward's own precision sets the step (a forward that casts to float32 needs a larger
    # one); the node's dtype sets the tolerance
    eps = _eps(raw.dtype)
    tol = rtol if rtol is not None else max(1e-6, 8 * math.sqrt(_eps(node.dtype)))
    u, v = _cotangent(node.shape, rng), _cotangent(node.shape, rng)
    results = []
    for i, parent in enumerate(node._parents):
        if not parent.requires_grad:
            continue
        try:
            rule = _rule(node, i, u)
            linear_gap = _rule(node, i, u + v) - rule - _rule(node, i, v)
        except Exception as error:  # the rule itself fails: that is the finding
            results.append(finding(i, f"the rule raised {error!r}"))
            continue
        slopes = _Slopes(forward, inputs, i, u, float(np.sum(u * raw)), eps)
        problem = _compare(slopes, rule, tol, rng, max_elements)
        if problem is None and not _linear(rule, linear_gap, tol):
            worst = np.unravel_index(int(np.argmax(np.abs(linear_gap))), linear_gap.shape)
            problem = {
                "problem": "the rule is not linear in the incoming gradient g: "
                "vjp(u + v) differs from vjp(u) + vjp(v)",
                "where": tuple(int(j) for j in worst),
            }
        if problem is not None:
            results.append(finding(i, **problem))
    return results


def _eps(dtype: np.dtype) -> float:
    return float(np.finfo(dtype).eps) if dtype.kind == "f" else float(np.finfo(np.float64).eps)


def _cotangent(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random values in ±[0.5, 1.5]: never 0, which would hide an error it multiplies."""
    r = rng.uniform(-1.0, 1.0, shape)
    return r + np.copysign(0.5, r)


def _rule(node: Tensor, i: int, u: np.ndarray) -> np.ndarray:
    """The node's VJP for input i applied to `u`, summed back to the input's shape, in float64."""
    parent = node._parents[i]
    with no_grad():
        g = node._vjps[i](Tensor(u.astype(node.dtype)), node)
        if g.shape != parent.shape:
            g = unbroadcast_vjp(g, parent.shape, node, i)
    return g.data.astype(np.float64)


def _linear(rule: np.ndarray, gap: np.ndarray, tol: float) -> bool:
    scale = float(np.max(np.abs(rule), initial=0.0))
    return bool(np.all(np.abs(gap) <= 10 * tol * scale + 1e-300))


class _Slopes:
    """Finite differences of Σ u·forward(inputs) with respect to input i."""

    def __init__(
        self,
        forward: Callable[..., Any],
        inputs: list[np.ndarray],
        i: int,
        u: np.ndarray,
        base: float,
        eps: float,
    ) -> None:
        self.forward, self.u, self.base, self.eps = forward, u, base, eps
        self.inputs = list(inputs)
        # perturbed in place, then restored; C-contiguous, so that a flat view reaches it
        self.x = np.array(inputs[i], dtype=np.float64, order="C")
        self.flat = self.x.reshape(-1)
        self.inputs[i] = self.x
        self.step = eps ** (1 / 3)  # balances truncation (step²) against rounding (eps/step)

    def loss(self) -> float:
        return float((self.u * np.asarray(self.forward(*self.inputs), dtype=np.float64)).sum())

    def at(self, index: int) -> tuple[float, float, float, float, float]:
        """At one element: the central slope with steps h and h/4, the one-sided slopes with
        step h/4 (right, left), and an allowance for the differences' own error."""
        x0 = float(self.flat[index])
        h = self.step * max(1.0, abs(x0))
        values = []
        for delta in (h, -h, h / 4, -h / 4):
            self.flat[index] = x0 + delta
            values.append(self.loss())
        self.flat[index] = x0
        plus, minus, plus4, minus4 = values
        central, central4 = (plus - minus) / (2 * h), (plus4 - minus4) / (h / 2)
        right, left = (plus - self.base) / h, (self.base - minus) / h
        right4, left4 = (plus4 - self.base) / (h / 4), (self.base - minus4) / (h / 4)
        noise = 64 * self.eps * (abs(plus) + abs(minus) + abs(self.base)) / h
        # a kink: the one-sided slopes disagree however small the step (on a smooth curve their
        # gap shrinks with the step: to a quarter here)
        gap4 = abs(right4 - left4)
        kink = gap4 > 0.5 * abs(right - left) and gap4 > 1e3 * noise + 1e-8 * abs(central4)
        low, high = (min(right4, left4), max(right4, left4)) if kink else (central4, central4)
        return central4, low, high, abs(central - central4) + noise, kink

    def along(self, direction: np.ndarray) -> tuple[float, float, bool]:
        """The slope along `direction`, its error allowance, and whether a kink is on the way."""
        x0 = self.x.copy()
        h = self.step * max(1.0, float(np.max(np.abs(x0), initial=0.0)))
        values = []
        for delta in (h, -h, h / 4, -h / 4):
            self.x[...] = x0 + delta * direction
            values.append(self.loss())
        self.x[...] = x0
        plus, minus, plus4, minus4 = values
        central, central4 = (plus - minus) / (2 * h), (plus4 - minus4) / (h / 2)
        right, left = (plus - self.base) / h, (self.base - minus) / h
        right4, left4 = (plus4 - self.base) / (h / 4), (self.base - minus4) / (h / 4)
        noise = 64 * self.eps * (abs(plus) + abs(minus) + abs(self.base)) / h
        # a kink on the way: the one-sided slopes disagree beyond rounding, however small the
        # step (for a linear op their gap is rounding noise alone, and is no kink)
        gap4 = abs(right4 - left4)
        kink = gap4 > 0.5 * abs(right - left) and gap4 > 1e3 * noise + 1e-8 * abs(central4)
        return central4, abs(central - central4) + noise, kink


def _compare(
    slopes: _Slopes, rule: np.ndarray, tol: float, rng: np.random.Generator, max_elements: int
) -> dict[str, Any] | None:
    """The problem with `rule` (as Finding fields), or None when it agrees with the slopes."""
    size = rule.size
    elements: list[int]
    if size <= max_elements:
        elements = list(range(size))
    else:
        elements = sorted(rng.choice(size, max_elements, replace=False).tolist())
    flat_rule = rule.reshape(-1)
    measured = [(index, *slopes.at(index)) for index in elements]
    scale = max((abs(m[1]) for m in measured if math.isfinite(m[1])), default=0.0)
    if scale == 0:  # every slope is 0: an error is measured against the rule's own size
        finite = np.abs(flat_rule[np.isfinite(flat_rule)])
        scale = float(finite.max(initial=0.0)) or 1.0
    floor = 0.01 * scale  # errors are judged against 1% of the largest slope
    worst, worst_excess = None, 0.0
    for index, numeric, low, high, allowance, kink in measured:
        value = float(flat_rule[index])
        if not math.isfinite(numeric):
            continue  # the forward is not finite nearby (the edge of its domain): no verdict
        if not math.isfinite(value):
            excess = math.inf  # inf or nan where the forward has a finite slope
        else:
            allowed = tol * (abs(numeric) + floor) + 4 * allowance
            excess = max(low - value, value - high) - allowed
        if excess > worst_excess:
            worst, worst_excess = (index, numeric, value, kink), excess
    if worst is not None:
        index, numeric, value, kink = worst
        return {
            "problem": "at a kink, the rule is outside the one-sided slopes"
            if kink
            else "the rule disagrees with finite differences of the forward",
            "error": abs(value - numeric) / max(abs(numeric), floor),
            "where": tuple(int(j) for j in np.unravel_index(index, rule.shape)),
            "rule": value,
            "numeric": numeric,
        }
    kinked = [index for index, *_, kink in measured if kink]
    if len(kinked) > 1:  # tied elements together: smooth along the direction that moves them all
        direction = np.zeros(rule.shape)
        direction.reshape(-1)[kinked] = 1.0
        found = _along(slopes, rule, direction, tol)
        if found is not None:
            found["problem"] = (
                "at a kink, the rule's total over the tied elements disagrees with finite "
                "differences moving them together"
            )
            return found
    if size > max_elements:  # the elements not sampled: the slope along random ±1 directions
        for _ in range(2):
            found = _along(slopes, rule, rng.choice([-1.0, 1.0], size=rule.shape), tol)
            if found is not None:
                return found
    return None


def _along(
    slopes: _Slopes, rule: np.ndarray, direction: np.ndarray, tol: float
) -> dict[str, Any] | None:
    """The problem with `rule` along `direction`, or None (also where a kink is on the way)."""
    slope, allowance, kink = slopes.along(direction)
    expected = float(np.sum(rule * direction))
    if kink or not math.isfinite(slope) or not math.isfinite(expected):
        return None
    total = float(np.sum(np.abs(rule * direction)))
    allowed = tol * (abs(slope) + 1e-3 * total)
    if abs(expected - slope) <= allowed + 4 * allowance:
        return None
    return {
        "problem": "the rule disagrees with finite differences along a random direction "
        "(over the elements not checked one by one)",
        "error": abs(expected - slope) / max(abs(slope), 0.01 * total, 1e-300),
        "rule": expected,
        "numeric": slope,
    }
