"""Compute: the check points, the hand derivatives and every engine's derivatives there, the
scale engine's twin in the other precision, the Taylor remainders, and (asked by the judge
when a hand derivative is wrong) the values a diagnosis needs. Nothing here is judged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from verifiers.compare import Tolerance
from verifiers.engines import (
    FUNCTION_ENGINE_NAMES,
    EngineUnavailable,
    function_engine_class,
    row,
)
from verifiers.engines.base import Derivatives, FunctionEngine
from verifiers.engines.numeric import real_numpy
from verifiers.functions.problem import (
    CheckFileError,
    Derivative,
    Misshapen,
    Problem,
    unbroadcast_axes,
)
from verifiers.functions.results import (
    DerivativeReport,
    EngineRun,
    FunctionReport,
    Point,
    Remainders,
)
from verifiers.isolation import UserCodeError
from verifiers.results import Check, Status, Trust
from verifiers.settings import UsageError

__all__ = ["DEFAULT_POINTS", "compute", "diagnostic_values", "make_points", "start_report"]

DEFAULT_POINTS = 8  # one of each pattern of problem.PATTERNS
MAX_POINTS = 100
# The Taylor test: steps h0·2^-k for k = 0..K (more in float64, whose rounding is lower), at
# the first few points.
TAYLOR_STEPS = {np.dtype(np.float64): 28, np.dtype(np.float32): 14}
TAYLOR_POINTS = 3


def start_report(
    problem: Problem,
    points: int = DEFAULT_POINTS,
    seed: int = 0,
    dtype: str = "float64",
    engines: Sequence[str] | None = None,
) -> FunctionReport:
    """The report before anything is differentiated: the settings checked, the points drawn
    and forward run on numpy there (which is where a bad file shows)."""
    if dtype not in ("float64", "float32"):
        raise UsageError(f"--dtype must be float64 or float32, not {dtype!r}")
    if not 1 <= points <= MAX_POINTS:
        raise UsageError(f"--points must be between 1 and {MAX_POINTS}, not {points}")
    if seed < 0:
        raise UsageError(f"--seed must be 0 or more, not {seed}")
    asked = list(engines) if engines is not None else list(FUNCTION_ENGINE_NAMES)
    if not asked:
        raise UsageError("no engines to run: --engines needs at least one name")
    for name in asked:
        if name not in FUNCTION_ENGINE_NAMES:
            raise UsageError(
                f"unknown engine {name!r} for a function; choose from "
                f"{', '.join(FUNCTION_ENGINE_NAMES)}"
            )
    unavailable = {}
    for name in asked:
        try:
            function_engine_class(name)
        except EngineUnavailable as error:
            if engines is not None:  # asked for by name: it must run
                raise UsageError(str(error)) from None
            unavailable[name] = error.reason + (f" ({error.install})" if error.install else "")
    drawn = make_points(problem, points, seed, np.dtype(dtype))
    sizes = [p.output.size for p in drawn] + [
        np.size(a) for p in drawn for a in (*p.inputs.values(), *p.taps.values())
    ]
    tolerance = Tolerance.for_dtype(dtype, max(sizes))
    report = FunctionReport(
        problem=problem,
        dtype=np.dtype(dtype),
        seed=seed,
        tolerance=tolerance,
        points=drawn,
        engines=asked,
        unavailable=unavailable,
    )
    outside = [p.index for p in drawn if not np.isfinite(p.output).all()]
    if outside:
        report.notes.append(
            f"forward's output is not finite (nan or inf) at point {outside[0]}: values there "
            "show nothing; draw inputs in the function's domain with inputs(rng)"
        )
    return report


def make_points(problem: Problem, count: int, seed: int, dtype: np.dtype) -> list[Point]:
    """`count` check points: inputs drawn (standard normal for shapes, else the file's
    inputs(rng)), forward run on numpy, and a cotangent, tangents, a vector and a direction
    drawn, all from one generator seeded with `seed`."""
    rng = np.random.default_rng(seed)
    xp = real_numpy()
    points = []
    for pattern in range(count):
        values = problem.draw(rng, dtype, pattern)
        try:
            output, taps = problem.reference(xp, values)
        except CheckFileError:
            if pattern == 0:
                raise  # a forward that fails at plain normal inputs is the file's fault
            continue  # outside the function's domain (large values overflow, say): left out
        if pattern and not all(np.isfinite(a).all() for a in (output, *taps.values())):
            continue
        index = len(points)
        floats = problem.differentiable(values)
        if not floats:
            raise CheckFileError(
                f"{problem.label}: no input holds floating-point numbers, so there is nothing "
                "to differentiate"
            )

        def normal(shape: Any) -> np.ndarray:
            return rng.standard_normal(shape).astype(dtype)

        points.append(
            Point(
                index=index,
                inputs=values,
                output=output,
                taps=taps,
                cotangent=normal(output.shape),
                tangents={n: normal(values[n].shape) for n in floats},
                vector={n: normal(values[n].shape) for n in floats},
                direction={n: normal(values[n].shape) for n in floats},
            )
        )
    first = points[0]
    for point in points[1:]:
        shapes = {n: v.shape for n, v in point.inputs.items()} | {"output": point.output.shape}
        wanted = {n: v.shape for n, v in first.inputs.items()} | {"output": first.output.shape}
        taps = {t: np.shape(v) for t, v in point.taps.items()}
        if shapes != wanted or taps != {t: np.shape(v) for t, v in first.taps.items()}:
            changed = next(
                (n for n in wanted if shapes.get(n) != wanted[n]), "the tapped intermediates"
            )
            raise CheckFileError(
                f"{problem.label}: {changed} has another shape at point {point.index} than at "
                "point 0: the points of a check must have the same shapes"
            )
    scalar = first.output.size == 1
    for kind in problem.hand:
        if kind.scalar_only and not scalar:
            raise CheckFileError(
                f"{problem.where(problem.hand[kind])}: {kind.value} is for a function with one "
                f"number as output; forward returns shape {points[0].output.shape}: write a vjp "
                "instead"
            )
    return points


# ---- the derivatives ----------------------------------------------------------------------------
def compute(report: FunctionReport) -> None:
    """Every hand derivative and every engine's at every point; then, per derivative, the twin
    of the scale engine and the Taylor remainders."""
    problem = report.problem
    engines = _engines(report)
    for kind in problem.hand:
        hand = {
            p.index: problem.call_hand(
                kind, _seed(kind, p), p.inputs, tuple(p.output.shape), p.taps
            )
            for p in report.points
        }
        entry = DerivativeReport(kind=kind, hand=hand, engines={})
        for name in report.engines:
            if name in report.unavailable:
                entry.engines[name] = EngineRun(
                    name, Status.SKIPPED, report.unavailable[name], Trust.EXACT
                )
                continue
            entry.engines[name] = _run(engines[name], kind, report.points)
        report.derivatives[kind] = entry
        _twin(report, entry)
        _remainders(report, entry)


def _engines(report: FunctionReport) -> dict[str, FunctionEngine]:
    return {
        name: function_engine_class(name)(report.problem, report.dtype)
        for name in report.engines
        if name not in report.unavailable
    }


def _seed(kind: Derivative, point: Point) -> Any:
    return {
        Derivative.VJP: point.cotangent,
        Derivative.JVP: point.tangents,
        Derivative.HVP: point.vector,
        Derivative.GRADIENT: None,
    }[kind]


def _one(engine: FunctionEngine, kind: Derivative, point: Point, inputs=None) -> Derivatives:
    """One engine's `kind` at `point` (at `inputs` instead of the point's, when given)."""
    values = point.inputs if inputs is None else inputs
    with np.errstate(all="ignore"):
        if kind is Derivative.JVP:
            return engine.jvp(values, point.tangents)
        if kind is Derivative.HVP:
            return engine.hvp(values, point.vector)
        cotangent = (
            point.cotangent if kind is Derivative.VJP else np.ones(point.output.shape, engine.dtype)
        )
        shapes = {t: tuple(np.shape(v)) for t, v in point.taps.items()}
        return engine.vjp(values, cotangent, shapes if inputs is None else {})


def _expected_shapes(kind: Derivative, point: Point) -> dict[str, tuple[int, ...]]:
    if kind is Derivative.JVP:
        return {"output": tuple(point.output.shape)}
    shapes = {n: tuple(point.inputs[n].shape) for n in point.tangents}
    if kind.tapped:
        shapes |= {t: tuple(np.shape(v)) for t, v in point.taps.items()}
    return shapes


def _run(engine: FunctionEngine, kind: Derivative, points: list[Point]) -> EngineRun:
    """`kind` on `engine` at every point; an engine that cannot is left out with the reason."""
    run = EngineRun(engine.name)
    try:
        for point in points:
            result = _one(engine, kind, point)
            wanted = _expected_shapes(kind, point)
            shapes = {n: tuple(np.shape(v)) for n, v in result.values.items()}
            if shapes != wanted:
                raise ValueError(f"it returned shapes {shapes}, not {wanted}")
            run.values[point.index] = result
    except (UserCodeError, CheckFileError):
        raise
    except Exception as error:
        run.status = Status.SKIPPED
        run.reason = f"cannot compute the {kind.value}: {_first_line(error)}"
        run.values = {}
    run.trust = engine.trust(kind.value)
    run.method = getattr(engine, "method", "") or ""
    return run


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _scale_order(entry: DerivativeReport) -> list[str]:
    """The exact engines that ran, reverse-mode engines first in the registry's order of
    preference, finite differences last (their twin in the other precision may have to fall
    back to central differences)."""
    exact = entry.exact
    return sorted(exact, key=lambda n: (n == "numeric", row(n).preference(Check.GRADIENT)))


def _twin(report: FunctionReport, entry: DerivativeReport) -> None:
    """The scale engine's values in the other precision, at every point: the difference from
    its own values measures this derivative's rounding (see verifiers.functions.judge)."""
    order = _scale_order(entry)
    if not order:
        return
    other = np.dtype(np.float32 if report.dtype == np.float64 else np.float64)
    for name in order:
        engine = function_engine_class(name)(report.problem, other)
        try:
            twin = {}
            for point in report.points:
                inputs = {
                    n: v.astype(other) if v.dtype.kind == "f" else v
                    for n, v in point.inputs.items()
                }
                moved = _with_inputs(point, inputs, other)
                twin[point.index] = _one(engine, entry.kind, moved)
        except (UserCodeError, CheckFileError):
            raise
        except Exception:
            continue
        entry.scale_engine, entry.twin = name, twin
        return
    entry.scale_engine = order[0]


def _with_inputs(point: Point, inputs: dict[str, np.ndarray], dtype: np.dtype) -> Point:
    def cast(d: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {n: v.astype(dtype) for n, v in d.items()}

    return Point(
        point.index,
        inputs,
        point.output,
        point.taps,
        point.cotangent.astype(dtype),
        cast(point.tangents),
        cast(point.vector),
        cast(point.direction),
    )


# ---- the Taylor remainders ----------------------------------------------------------------------
def _remainders(report: FunctionReport, entry: DerivativeReport) -> None:
    """For the first few points: ‖f(x + h·v) - f(x) - h·D_v‖ for h halving from h0, where D_v
    is the hand derivative along the direction v (for a vjp: of ⟨g, f⟩; for an hvp the same
    with f's gradient, from the scale engine). Computed on numpy in the check's dtype."""
    problem, kind = report.problem, entry.kind
    xp = real_numpy()
    dtype = report.dtype
    engine = None
    if kind is Derivative.HVP:
        if entry.scale_engine is None:
            return
        engine = function_engine_class(entry.scale_engine)(problem, dtype)
    for point in report.points[:TAYLOR_POINTS]:
        hand = entry.hand[point.index]
        if any(isinstance(v, Misshapen) for v in hand.values()):
            continue  # no directional derivative to test
        direction = point.tangents if kind is Derivative.JVP else point.direction
        if kind is Derivative.HVP:
            direction = point.vector
        size = max(float(np.max(np.abs(point.inputs[n]), initial=0.0)) for n in direction)
        longest = max(float(np.max(np.abs(d), initial=0.0)) for d in direction.values())
        if longest == 0:
            continue
        h0 = 0.1 * max(1.0, size) / longest

        def moved(h: float, direction=direction, point=point) -> dict[str, np.ndarray]:
            return {
                n: (v + dtype.type(h) * direction[n]).astype(dtype) if n in direction else v
                for n, v in point.inputs.items()
            }

        def value(inputs: dict[str, np.ndarray], point=point, direction=direction) -> np.ndarray:
            if kind is Derivative.HVP:
                result = _one(engine, Derivative.GRADIENT, point, inputs)
                return np.concatenate([result.values[n].reshape(-1) for n in direction])
            with np.errstate(all="ignore"):
                out = np.asarray(problem.evaluate(xp, inputs), dtype=np.float64)
            if kind is Derivative.VJP:
                return np.asarray([np.sum(point.cotangent.astype(np.float64) * out)])
            return out.reshape(-1)

        if kind is Derivative.JVP:
            slope = hand["output"].reshape(-1)
        elif kind is Derivative.HVP:
            slope = np.concatenate([hand[n].reshape(-1) for n in direction])
        else:
            slope = np.asarray(
                [sum(float(np.sum(hand[n] * direction[n].astype(np.float64))) for n in direction)]
            )
        try:
            base = value(point.inputs)
            steps = h0 / 2.0 ** np.arange(TAYLOR_STEPS[dtype] + 1)
            remainders = np.array(
                [float(np.max(np.abs(value(moved(h)) - base - h * slope))) for h in steps]
            )
        except (UserCodeError, CheckFileError):
            raise
        except Exception:
            continue
        terms = float(np.max(np.abs(base), initial=0.0))
        if kind is Derivative.VJP:
            with np.errstate(all="ignore"):
                out = np.asarray(problem.evaluate(xp, point.inputs), dtype=np.float64)
            terms = float(np.sum(np.abs(point.cotangent * out)))
        # Below the floor a remainder is rounding: at least a few ε of the terms, and ten times
        # what the smallest steps leave (where h·D_v and the h² term are long below rounding,
        # or, for a wrong derivative, where the remainder still falls like h).
        eps = float(np.finfo(dtype).eps)
        floor = max(4 * eps * terms, 10 * float(np.max(remainders[-3:])))
        entry.remainders[point.index] = Remainders(steps, remainders, floor)


# ---- values for the diagnosis -------------------------------------------------------------------
def diagnostic_values(report: FunctionReport, entry: DerivativeReport) -> dict[str, Any]:
    """What :mod:`verifiers.functions.diagnosis` compares a wrong hand derivative with, from the
    scale engine, at every point:

    - ``ones``: the derivative with a cotangent (vjp) or tangents (jvp) of ones: what a hand
      derivative that forgot to multiply g (t) in gives;
    - ``transposed``: for a jvp of a function from one input to an output of its shape, tᵀJ
      (the vjp with the tangent as cotangent): a jvp written with the Jacobian transposed;
    - ``expanded[name][shape]``: an input's gradient before it is summed back over its
      broadcast axes, the input given to forward already broadcast to `shape` (each shape it
      broadcasts to among the output, the other inputs and the taps).
    """
    found: dict[str, Any] = {"ones": {}, "expanded": {}}
    name = entry.scale_engine
    if name is None:
        return found
    engine = function_engine_class(name)(report.problem, report.dtype)
    for point in report.points:
        with np.errstate(all="ignore"):
            try:
                if entry.kind is Derivative.VJP:
                    ones = dataclasses.replace(point, cotangent=np.ones_like(point.cotangent))
                    found["ones"][point.index] = _one(engine, Derivative.VJP, ones).values
                elif entry.kind is Derivative.JVP:
                    tangents = {n: np.ones_like(t) for n, t in point.tangents.items()}
                    ones = dataclasses.replace(point, tangents=tangents)
                    found["ones"][point.index] = _one(engine, Derivative.JVP, ones).values
                    square = [n for n, t in point.tangents.items() if t.shape == point.output.shape]
                    if len(square) == 1 and len(point.tangents) == 1:  # f: Rⁿ -> Rⁿ
                        (source,) = square
                        as_cotangent = dataclasses.replace(point, cotangent=point.tangents[source])
                        transposed = _one(engine, Derivative.VJP, as_cotangent).values[source]
                        found.setdefault("transposed", {})[point.index] = transposed
            except (UserCodeError, CheckFileError):
                raise
            except Exception:
                pass
    if entry.kind.per_input:
        for input_name, shapes in _broadcast_shapes(report, entry).items():
            for shape in shapes:
                values = {}
                for point in report.points:
                    inputs = dict(point.inputs)
                    inputs[input_name] = np.array(np.broadcast_to(inputs[input_name], shape))
                    try:
                        result = _one(engine, entry.kind, point, inputs)
                    except (UserCodeError, CheckFileError):
                        raise
                    except Exception:
                        values = {}
                        break
                    values[point.index] = result.values[input_name]
                if values:
                    found["expanded"].setdefault(input_name, {})[shape] = values
    return found


def _broadcast_shapes(
    report: FunctionReport, entry: DerivativeReport
) -> dict[str, list[tuple[int, ...]]]:
    """For each input, the shapes it broadcasts to (and differs from) among forward's output,
    the other inputs, the taps and the shapes the hand derivative returned for it."""
    point = report.points[0]
    candidates = {tuple(point.output.shape)}
    candidates |= {tuple(v.shape) for v in point.inputs.values()}
    candidates |= {tuple(np.shape(v)) for v in point.taps.values()}
    found: dict[str, list[tuple[int, ...]]] = {}
    for name in point.tangents:
        shape = tuple(point.inputs[name].shape)
        mine = {v.shape for h in entry.hand.values() for k, v in h.items() if k == name}
        shapes = sorted(s for s in candidates | mine if unbroadcast_axes(shape, s) is not None)
        if shapes:
            found[name] = shapes
    return found
