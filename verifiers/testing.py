"""For a learner's own test suite: assert that a hand-derived gradient is right, and data to try;
and that any function's hand derivatives are right (:func:`assert_derivatives_correct`).

    from verifiers.testing import assert_gradient_correct, datasets
    from hypothesis import given

    def my_gradient(b, w, X, y):            # the formula under test
        ...

    @given(datasets("logistic"))
    def test_my_gradient(data):
        X, y = data
        assert_gradient_correct(my_gradient, X, y, model="logistic")

:func:`assert_gradient_correct` runs :func:`verifiers.verify` with the formula in the ``manual``
engine and raises ``AssertionError`` when any engine disagrees. Its message has the verdict, the
worst element (the formula's value and the trusted one) and the diagnosis: *how* the formula is
wrong, when the error has a recognisable shape. :func:`datasets` is a hypothesis strategy of
``(X, y)`` pairs that fit each model (hypothesis is only needed for it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from verifiers.api import verify
from verifiers.data import Dataset
from verifiers.results import Check, FailureKind, Report
from verifiers.settings import MODEL_NAMES, Settings, UsageError

__all__ = [
    "FAST_ENGINES",
    "FAST_FUNCTION_ENGINES",
    "assert_derivatives_correct",
    "assert_gradient_correct",
    "datasets",
]

# The engines used unless others are asked for: numpy only, so no compiling and no optional
# package; minigrad (reverse mode) and numeric (finite differences) are independent of each other.
FAST_ENGINES = ("manual", "minigrad", "numeric")
# How the api labels a formula passed as a function (its errors start with it).
_FORMULA_LABEL = "the given formula"


def assert_gradient_correct(
    gradient: Callable[..., Any],
    X: Any,
    y: Any,
    *,
    model: str = "mse",
    engines: Iterable[str] | None = FAST_ENGINES,
    points: int = Settings.points,
    seed: int = 0,
    dtype: str = "float64",
    iterations: int = 0,
    **options: Any,
) -> Report:
    """Raise AssertionError unless `gradient` agrees with every engine on ``(X, y)``.

    `gradient` has the signature ``--manual`` takes: ``(b, w, X, y) -> (dL/db, dL/dw)`` for the
    (b, w) models (mse, ridge, logistic), ``(params, X, y) -> dict`` for softmax and mlp.
    It is checked at the start, the optimum (where one is computed) and `points` random points
    (seeded by `seed`), in `dtype`, against `engines` (None: every engine installed). With
    `iterations` > 0 the descents are compared too. `options` are other :class:`Settings`
    fields (``l2`` for ridge, ``hidden`` for mlp, ``rtol``, ``atol``...).

    Returns the report when the formula is right. A formula that raises or returns the wrong
    shape fails the assertion too; bad settings raise :class:`~verifiers.UsageError`.
    """
    if model not in MODEL_NAMES:
        raise UsageError(f"unknown model {model!r}; choose from {', '.join(MODEL_NAMES)}")
    if engines is not None:
        engines = tuple(engines)
        engines = engines if "manual" in engines else ("manual", *engines)
    settings = Settings(
        model=model,
        engines=engines,
        points=points,
        seed=seed,
        dtype=dtype,
        iterations=iterations,
        **options,
    )
    data = Dataset.from_arrays(X, y, dtype)
    try:
        report = verify(data, settings, formula=gradient)
    except UsageError as error:
        if str(error).startswith(_FORMULA_LABEL):
            raise AssertionError(f"the gradient formula fails: {error}") from None
        raise
    if not report.ok:
        raise AssertionError(failure_message(report))
    return report


def failure_message(report: Report) -> str:
    """The verdict with the formula's worst element (both values), the diagnosis, and any
    other disagreement (an engine other than the formula, a descent)."""
    lines = []
    formula = [
        f for f in report.failures
        if f.kind is FailureKind.MISMATCH and f.engine == "manual" and f.check is Check.GRADIENT
    ]  # fmt: skip
    worst = formula[0].difference if formula else None
    if worst is not None:
        engines = "the engines agree on" if formula[0].against else "the check allows"
        lines.append(
            f"the gradient is wrong: {worst.where}: your formula gives {worst.actual!r}, "
            f"{engines} {worst.expected!r} (difference {worst.absolute:.3g}, allowed "
            f"{worst.allowed:.3g})"
        )
    if report.diagnosis is not None:
        pattern = f" [{report.diagnosis.pattern}]" if report.diagnosis.pattern else ""
        lines.append(f"diagnosis{pattern}: {report.diagnosis.summary}")
    others = [f.message for f in report.failures if f not in formula]
    if others and not lines:
        lines.append("the engines disagree")
    lines += others
    return "\n".join(lines)


# ---- hypothesis strategies ----------------------------------------------------------------------
def datasets(
    model: str = "mse",
    *,
    min_rows: int = 8,
    max_rows: int = 40,
    max_features: int = 3,
    classes: int = 3,
    scales: tuple[float, ...] = (0.1, 1.0, 10.0),
) -> Any:
    """A hypothesis strategy of ``(X, y)`` data sets that `model` accepts.

    - `min_rows`..`max_rows` rows (at least features + 2) and 1..`max_features` features, each
      feature drawn around a random centre with a spread from `scales`;
    - mse, ridge, mlp: ``y = X·w + b + noise`` (the mlp fits it as well as any curve);
    - logistic: labels 0/1 drawn with probability ``σ(X·w + b)``, both labels always present;
    - softmax: labels 0..`classes`-1 drawn from the softmax of random linear scores, every
      class present (so `min_rows` is raised to `classes` if needed).

    Each example is generated from a seed hypothesis draws, so failures shrink and replay.
    """
    from hypothesis import strategies as st

    if model not in MODEL_NAMES:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODEL_NAMES)}")
    if model == "softmax" and classes < 2:
        raise ValueError(f"softmax needs at least 2 classes, not {classes}")

    @st.composite
    def draw_data(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
        d = draw(st.integers(1, max_features))
        low = max(min_rows, d + 2, classes if model == "softmax" else 2)
        n = draw(st.integers(low, max(low, max_rows)))
        scale = draw(st.sampled_from(scales))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        X = (rng.normal(size=(n, d)) + rng.normal(size=d)) * scale
        z = (X / scale) @ rng.normal(size=d) + rng.normal()
        if model == "logistic":
            y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(np.float64)
            y[:2] = [0.0, 1.0]
        elif model == "softmax":
            scores = (X / scale) @ rng.normal(size=(d, classes)) + rng.normal(size=classes)
            y = np.argmax(scores + rng.gumbel(size=scores.shape), axis=1).astype(np.float64)
            y[:classes] = np.arange(classes)
        else:
            y = scale * (z + 0.3 * rng.normal(size=n))
        return X, y

    return draw_data()


# ---- any function's derivatives -----------------------------------------------------------------
# The engines assert_derivatives_correct uses unless others are asked for: numpy only, reverse
# mode and finite differences (the complex step where the function allows), independent of each
# other.
FAST_FUNCTION_ENGINES = ("minigrad", "numeric")


def assert_derivatives_correct(
    forward: Callable[..., Any],
    inputs: Any,
    *,
    vjp: Callable[..., Any] | None = None,
    jvp: Callable[..., Any] | None = None,
    gradient: Callable[..., Any] | None = None,
    hvp: Callable[..., Any] | None = None,
    constants: Iterable[str] = (),
    engines: Iterable[str] | None = FAST_FUNCTION_ENGINES,
    points: int = 4,
    seed: int = 0,
    dtype: str = "float64",
) -> Any:
    """Raise AssertionError unless every hand derivative given agrees with every engine.

    The arguments are :func:`verifiers.check_function`'s (`engines` None: every engine
    installed; by default the numpy ones, quick and always there). The message has, for each
    wrong derivative, the worst element (yours and the engine's), the diagnosis and the first
    wrong step of a backprop with taps. A hand derivative that raises or returns a wrong shape
    fails the assertion too; a problem that cannot be checked (no input shapes, a forward that
    raises) raises :class:`~verifiers.functions.CheckFileError`. Returns the
    :class:`~verifiers.functions.FunctionReport` when every derivative is right.
    """
    from verifiers.functions import HandDerivativeError, check_function

    try:
        report = check_function(
            forward, inputs, vjp=vjp, jvp=jvp, gradient=gradient, hvp=hvp,
            constants=constants, points=points, seed=seed, dtype=dtype, engines=engines,
        )  # fmt: skip
    except HandDerivativeError as error:
        raise AssertionError(f"a hand derivative fails: {error}") from None
    if not report.ok:
        raise AssertionError(derivatives_message(report))
    return report


def derivatives_message(report: Any) -> str:
    """What is wrong with each hand derivative: the worst element, the diagnosis, the step."""
    lines = []
    for entry in report.derivatives.values():
        if entry.ok:
            continue
        wrong = [a for a in entry.arrays.values() if not a.ok]
        first = entry.first_wrong_step
        wrong.sort(key=lambda a: a.name != first)
        if any(a.verdict is not None and a.verdict.disagreeing for a in entry.arrays.values()):
            lines.append(f"the exact engines disagree about the {entry.kind.value}")
        for array in wrong[:1]:
            what = "output" if array.role == "output" else f"d{array.name}"
            if array.misshapen is not None:
                lines.append(
                    f"the {entry.kind.value} is wrong: {what} has shape "
                    f"{array.misshapen.shape}, not {array.shape}"
                )
            elif array.worst is not None:
                worst = array.worst
                index = f"[{', '.join(map(str, worst.index))}]" if worst.index else ""
                lines.append(
                    f"the {entry.kind.value} is wrong: {what}{index} at point {worst.point}: "
                    f"yours gives {worst.yours!r}, {worst.engine} gives {worst.expected!r} "
                    f"(difference {worst.difference:.3g}, allowed {worst.allowed:.3g})"
                )
        if first is not None:
            lines.append(f"first wrong step: d{first}")
        if entry.diagnosis is not None:
            pattern = f" [{entry.diagnosis.pattern}]" if entry.diagnosis.pattern else ""
            lines.append(f"diagnosis{pattern}: {entry.diagnosis.summary}")
    return "\n".join(lines)
