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

from minigrad.grad_mode import no_grad
from minigrad.tensor import Tensor, _topological_order, _unbroadcast_vjp

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
    the derivative along one random direction over all of them. `rtol` defaults by dtype:
    1e-6 for float64, about 3e-3 for float32.
    """
    rng = np.random.default_rng(seed)
    findings: list[Finding] = []
    for node in _topological_order(output):
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
    eps = np.finfo(raw.dtype if raw.dtype.kind == "f" else np.float64).eps
    tol = rtol if rtol is not None else max(1e-6, 8 * math.sqrt(np.finfo(node.dtype).eps))
    u = _cotangent(node.shape, rng)
    v = _cotangent(node.shape, rng)
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
        differences = _Differences(forward, inputs, i, u, eps)
        problem = _compare(differences, rule, tol, rng, max_elements)
        if problem is not None:
            results.append(finding(i, **problem))
            continue
        scale = np.max(np.abs(rule), initial=0.0)
        if np.max(np.abs(linear_gap), initial=0.0) > tol * (scale + 1e-300) * 10:
            worst = np.unravel_index(np.argmax(np.abs(linear_gap)), linear_gap.shape)
            results.append(
                finding(i, "the rule is not linear in the incoming gradient g: "
                        "vjp(u + v) differs from vjp(u) + vjp(v)", where=tuple(map(int, worst)))
            )  # fmt: skip
    return results


def _cotangent(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random values in ±[0.5, 1.5]: never 0, which would hide an error it multiplies."""
    return rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


def _rule(node: Tensor, i: int, u: np.ndarray) -> np.ndarray:
    """The node's VJP for input i applied to `u`, summed back to the input's shape, in float64."""
    parent = node._parents[i]
    with no_grad():
        g = node._vjps[i](Tensor(u.astype(node.dtype)), node)
        if not isinstance(g, Tensor):
            g = Tensor(g)
        if g.shape != parent.shape:
            g = _unbroadcast_vjp(g, parent.shape, node, i)
    return g.data.astype(np.float64)


class _Differences:
    """Finite differences of Σ u·forward(inputs) with respect to input i."""

    def __init__(
        self, forward: Callable, inputs: list[np.ndarray], i: int, u: np.ndarray, eps: float
    ) -> None:
        self.forward, self.i, self.u = forward, i, u
        self.inputs = list(inputs)
        self.x = np.array(inputs[i], dtype=np.float64)  # perturbed in place, then restored
        self.inputs[i] = self.x
        self.step = eps ** (1 / 3)
        self.eps = eps
        self.base = self.loss()

    def loss(self) -> float:
        value = np.asarray(self.forward(*self.inputs), dtype=np.float64)
        return float(np.sum(self.u * value))

    def size_of_terms(self) -> float:
        value = np.asarray(self.forward(*self.inputs), dtype=np.float64)
        return float(np.sum(np.abs(self.u * value)))

    def at(self, index: int) -> dict[str, float]:
        """Slopes at one element: central (steps h and h/4) and one-sided (steps h and h/4)."""
        x = self.x.reshape(-1)  # a view: x is contiguous
        x0 = x[index]
        h = self.step * max(1.0, abs(float(x0)))
        values = {}
        for name, delta in (("p", h), ("m", -h), ("p4", h / 4), ("m4", -h / 4)):
            x[index] = x0 + delta
            values[name] = self.loss()
        x[index] = x0
        f0 = self.base
        return {
            "central": (values["p"] - values["m"]) / (2 * h),
            "central4": (values["p4"] - values["m4"]) / (h / 2),
            "right": (values["p"] - f0) / h,
            "left": (f0 - values["m"]) / h,
            "right4": (values["p4"] - f0) / (h / 4),
            "left4": (f0 - values["m4"]) / (h / 4),
            "noise": 64 * self.eps * (abs(values["p"]) + abs(values["m"]) + abs(f0)) / h,
        }

    def along(self, direction: np.ndarray) -> tuple[float, float, bool]:
        """The derivative along `direction` (central, h/4), its error estimate, and whether the
        one-sided slopes along it disagree (a kink on the way)."""
        x0 = self.x.copy()
        h = self.step * max(1.0, float(np.max(np.abs(x0), initial=0.0)))
        values = {}
        for name, delta in (("p", h), ("m", -h), ("p4", h / 4), ("m4", -h / 4)):
            self.x[...] = x0 + delta * direction
            values[name] = self.loss()
        self.x[...] = x0
        central = (values["p4"] - values["m4"]) / (h / 2)
        coarse = (values["p"] - values["m"]) / (2 * h)
        right4, left4 = (values["p4"] - self.base) / (h / 4), (self.base - values["m4"]) / (h / 4)
        right, left = (values["p"] - self.base) / h, (self.base - values["m"]) / h
        kink = abs(right4 - left4) > 0.5 * abs(right - left) + 1e-12 * abs(central)
        noise = 64 * self.eps * (abs(values["p"]) + abs(values["m"]) + abs(self.base)) / h
        return central, abs(central - coarse) + noise, kink


def _compare(
    differences: _Differences,
    rule: np.ndarray,
    tol: float,
    rng: np.random.Generator,
    max_elements: int,
) -> dict[str, Any] | None:
    """The problem with `rule` (as Finding fields), or None when it agrees with the slopes."""
    size = rule.size
    if size <= max_elements:
        elements = np.arange(size)
    else:
        elements = np.sort(rng.choice(size, max_elements, replace=False))
    flat_rule = rule.reshape(-1)
    numeric, low, high, allowance = [], [], [], []
    for index in elements:
        s = differences.at(int(index))
        smooth_gap = abs(s["right"] - s["left"])
        gap = abs(s["right4"] - s["left4"])
        kink = gap > 0.5 * smooth_gap and gap > 1e3 * s["noise"] + tol * abs(s["central4"])
        if kink:  # a value between the one-sided slopes is a valid convention
            low.append(min(s["right4"], s["left4"]))
            high.append(max(s["right4"], s["left4"]))
        else:
            low.append(s["central4"])
            high.append(s["central4"])
        numeric.append(s["central4"])
        allowance.append(abs(s["central"] - s["central4"]) + s["noise"])
    numeric_a, low_a, high_a = np.array(numeric), np.array(low), np.array(high)
    values = flat_rule[elements]
    finite = np.isfinite(numeric_a)
    scale = float(np.max(np.abs(numeric_a[finite]), initial=0.0))
    floor = max(0.01 * scale, 1e-300)
    with np.errstate(invalid="ignore"):
        outside = np.maximum(low_a - values, values - high_a)  # ≤ 0 inside [low, high]
        allowed = tol * (np.abs(numeric_a) + floor) + 4 * np.array(allowance)
        excess = np.where(finite, outside - allowed, -np.inf)
        # a rule that is inf or nan where the forward has a finite slope is wrong
        excess = np.where(finite & ~np.isfinite(values), np.inf, excess)
    if excess.size and np.max(excess) > 0:
        k = int(np.argmax(excess))
        where = tuple(int(j) for j in np.unravel_index(int(elements[k]), rule.shape))
        error = abs(values[k] - numeric_a[k]) / max(abs(numeric_a[k]), floor)
        kinked = low_a[k] != high_a[k]
        problem = (
            "at a kink, the rule is outside the one-sided slopes"
            if kinked
            else "the rule disagrees with finite differences of the forward"
        )
        return {
            "problem": problem,
            "error": float(error),
            "where": where,
            "rule": float(values[k]),
            "numeric": float(numeric_a[k]),
        }
    if size > max_elements:  # the elements not sampled: one derivative along a random direction
        direction = rng.standard_normal(rule.shape)
        slope, error_estimate, kink = differences.along(direction)
        expected = float(np.sum(rule * direction))
        allowed = tol * (abs(slope) + float(np.sum(np.abs(rule * direction))) * 1e-3)
        if not kink and np.isfinite(slope) and abs(expected - slope) > allowed + 4 * error_estimate:
            return {
                "problem": "the rule disagrees with finite differences along a random direction "
                "(on elements not sampled one by one)",
                "error": abs(expected - slope) / max(abs(slope), 1e-300),
                "rule": expected,
                "numeric": slope,
            }
    return None
