"""Say *how* a hand-derived gradient is wrong, when the error has a recognisable shape.

The formula under test and a trusted gradient are evaluated at several points. Each derivative
(dL/db, dL/dw_j) that disagrees is matched against a catalogue of classic mistakes: a constant
factor (2, 1/2, N, 1/N, -1 and their products with -1), a term left out of the residual, the
factor x left out (or put in), and two derivatives swapped. A mistake is recognised
only when it explains the wrong values at every point; otherwise the answer is "no simple pattern".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from verifiers import formulas
from verifiers.compare import Tolerance
from verifiers.data import Dataset

__all__ = ["Diagnosis", "diagnose"]

# How much looser than the gradient check a catalogue match may be: a wrong formula written
# differently from ours rounds differently, and factors like N magnify the rounding.
_SLACK = 1e3


@dataclass
class Diagnosis:
    """`summary` is one sentence; `pattern` a short key (None: no simple pattern)."""

    summary: str
    pattern: str | None
    parameters: dict[str, str] = field(default_factory=dict)


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


def _residual_variants(data: Dataset) -> list[tuple[str, str, Callable[[np.ndarray], np.ndarray]]]:
    """Gradients computed as if the residual had lost a term: (key, explanation, θ -> gradient)."""
    X = data.X.astype(np.float64, copy=False)
    y = data.y.astype(np.float64, copy=False)

    def with_residual(residual: Callable[[np.ndarray], np.ndarray]) -> Callable:
        def gradient(theta: np.ndarray) -> np.ndarray:
            grad_b, grad_w = formulas.gradient_of_residual(residual(theta), X)
            return np.concatenate([[grad_b], grad_w])

        return gradient

    return [
        ("missing-b", "b is left out of the residual (r = y - X·w)",
         with_residual(lambda t: y - X @ t[1:])),
        ("missing-w", "X·w is left out of the residual (r = y - b)",
         with_residual(lambda t: y - t[0])),
        ("missing-y", "y is left out of the residual (r = -(X·w + b))",
         with_residual(lambda t: -(X @ t[1:] + t[0]))),
    ]  # fmt: skip


def _in_place_of(names: list[str], i: int, j: int) -> tuple[str, str]:
    """(key, explanation) for finding the derivative of parameter i where j's belongs."""
    if j == 0:
        return "extra-x", f"it has a factor x too many: it equals dL/d{names[i]}"
    if i == 0:
        return "missing-x", "the factor x is missing: it equals dL/db"
    return "swapped", f"it equals dL/d{names[i]}: two derivatives are swapped"


def diagnose(
    under_test: Callable[[np.ndarray], np.ndarray],
    trusted: Callable[[np.ndarray], np.ndarray],
    thetas: np.ndarray,
    data: Dataset,
    tolerance: Tolerance,
) -> Diagnosis:
    """Explain the difference between `under_test(θ)` and `trusted(θ)` over the points `thetas`."""
    names = formulas.parameter_names(data.features)
    got = np.array([under_test(t) for t in thetas], dtype=np.float64)
    want = np.array([trusted(t) for t in thetas], dtype=np.float64)
    scales = np.array([formulas.gradient_scales(t[0], t[1:], data.X, data.y) for t in thetas])
    n = data.rows

    def matches(values: np.ndarray, candidate: np.ndarray, scale: np.ndarray) -> bool:
        allowed = _SLACK * (tolerance.atol * scale + tolerance.rtol * np.abs(candidate))
        return bool(np.all(np.abs(values - candidate) <= allowed))

    # Each candidate: (key, explanation, values at the points, scale of those values).
    variants = [
        (k, text, np.array([g(t) for t in thetas])) for k, text, g in _residual_variants(data)
    ]
    findings: dict[str, tuple[str, str]] = {}
    for j, name in enumerate(names):
        if matches(got[:, j], want[:, j], scales[:, j]):
            continue
        candidates = [
            (*_in_place_of(names, i, j), want[:, i], scales[:, i])
            for i in range(len(names))
            if i != j
        ]
        candidates += [
            (f"factor {key}", text, value * want[:, j], abs(value) * scales[:, j])
            for value, key, text in _factors(n)
        ]
        candidates += [(key, text, values[:, j], scales[:, j]) for key, text, values in variants]
        found = next(((k, t) for k, t, v, s in candidates if matches(got[:, j], v, s)), None)
        findings[name] = found or ("none", "no simple pattern")

    if not findings:
        return Diagnosis("the formula agrees with the trusted gradient at these points", None)
    parameters = {name: f"dL/d{name}: {text}" for name, (_, text) in findings.items()}
    keys = {key for key, _ in findings.values()}
    if "none" in keys:
        explained = [parameters[p] for p, (key, _) in findings.items() if key != "none"]
        wrong = " and ".join(f"dL/d{p}" for p, (key, _) in findings.items() if key == "none")
        summary = f"no simple pattern in {wrong}" + (
            f"; {'; '.join(explained)}" if explained else ""
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
    return Diagnosis("; ".join(parameters.values()), "+".join(sorted(keys)), parameters)
