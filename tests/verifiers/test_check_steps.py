"""Taps and the first wrong step of a hand backprop; the Taylor-remainder oracle; float32; scalar
and non-scalar outputs; detection power."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from verifiers.functions import CheckFileError, Derivative, HandDerivativeError, check_function
from verifiers.functions.api import check_problem
from verifiers.functions.problem import problem_from_file

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "docs" / "functions"
ENGINES = ("minigrad", "numeric")


def backprop(spec: str, **options):
    problem = problem_from_file(str(EXAMPLES / spec))
    return check_problem(problem, engines=ENGINES, points=2, **options)


# ---- taps and steps ------------------------------------------------------------------------------
def test_the_right_backprop_agrees_at_every_step():
    entry = backprop("backprop.py").derivatives[Derivative.GRADIENT]
    assert entry.ok
    assert [(s.name, s.role, s.ok) for s in entry.steps] == [
        ("Z2", "tap", True), ("A1", "tap", True), ("Z1", "tap", True),
        ("W1", "input", True), ("b1", "input", True), ("W2", "input", True), ("b2", "input", True),
    ]  # fmt: skip
    assert entry.first_wrong_step is None
    assert set(entry.arrays) == {"W1", "b1", "W2", "b2", "Z1", "A1", "Z2"}  # X and Y are data


def test_a_wrong_intermediate_is_the_first_wrong_step_and_the_earlier_steps_pass():
    entry = backprop("backprop.py:gradient_slip").derivatives[Derivative.GRADIENT]
    assert entry.first_wrong_step == "Z1"
    steps = {s.name: s for s in entry.steps}
    assert steps["Z2"].ok
    assert steps["A1"].ok  # before it, in backward order: right
    assert not steps["Z1"].ok
    assert not steps["Z1"].downstream
    assert not steps["W1"].ok
    assert steps["W1"].downstream  # computed from dZ1
    assert not steps["b1"].ok
    assert steps["b1"].downstream
    assert steps["W2"].ok
    assert steps["b2"].ok  # the output layer does not use dZ1
    assert entry.diagnosis.pattern == "input-for-output"
    assert entry.diagnosis.summary.startswith("the first wrong step is dZ1")
    assert "1 - Z1² where 1 - A1² belongs" in entry.diagnosis.summary


def test_a_step_wrong_earlier_is_found_earlier():
    def forward(x, W, *, xp, tap):
        h = tap("h", x @ W)
        a = tap("a", xp.exp(h))
        return xp.sum(a * a)

    def gradient(x, W):
        h = x @ W
        a = np.exp(h)
        da = 3 * a  # should be 2a
        dh = da * a
        return {"a": da, "h": dh, "x": dh @ W.T, "W": x.T @ dh}

    entry = check_function(
        forward, {"x": (3, 2), "W": (2, 2)}, gradient=gradient, engines=ENGINES
    ).derivatives[Derivative.GRADIENT]
    assert entry.first_wrong_step == "a"
    assert [s.name for s in entry.steps if s.downstream] == ["h", "x", "W"]
    assert entry.diagnosis.summary.startswith("the first wrong step is da: da is 1.5 times")


def test_a_hand_backprop_may_return_only_some_taps():
    def forward(x, *, xp, tap):
        h = tap("h", xp.tanh(x))
        return xp.sum(tap("s", h * h))

    report = check_function(
        forward, {"x": (4,)}, gradient=lambda x: {"x": 2 * np.tanh(x) * (1 - np.tanh(x) ** 2),
                                                  "h": 2 * np.tanh(x)},
        engines=ENGINES,
    )  # fmt: skip
    entry = report.derivatives[Derivative.GRADIENT]
    assert entry.ok
    assert [s.name for s in entry.steps] == ["h", "x"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("h = tap('h', x); return tap('h', h)", "tap('h', ...) is called twice"),
        ("return tap('x', x)", "has the name of an input"),
        ("return tap(3, x)", "tap's first argument must be a name"),
    ],
)
def test_a_misused_tap_is_a_bad_file(body, message):
    namespace: dict = {}
    exec(f"def forward(x, *, xp, tap):\n    {body.replace('; ', chr(10) + '    ')}", namespace)
    with pytest.raises(CheckFileError, match=re.escape(message)):
        check_function(namespace["forward"], {"x": (3,)}, vjp=lambda g, x: {"x": g})


def test_a_tap_the_forward_does_not_have_is_a_bad_result():
    def forward(x, *, xp, tap):
        return tap("h", x) * 2

    with pytest.raises(HandDerivativeError, match="returned 'y', which is not an input"):
        check_function(forward, {"x": (3,)}, vjp=lambda g, x: {"x": 2 * g, "y": g})


# ---- the Taylor remainder ------------------------------------------------------------------------
def sine(x, w, *, xp):
    return xp.sin(x) * w


def sine_vjp(g, x, w):
    return {"x": g * np.cos(x) * w, "w": g * np.sin(x)}


def sine_vjp_wrong(g, x, w):
    return {"x": g * np.cos(x), "w": g * np.sin(x)}  # the factor w forgotten


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_taylor_remainder_falls_like_h_squared_when_right_and_like_h_when_wrong(dtype):
    inputs = {"x": (3, 4), "w": (3, 4)}
    right = check_function(sine, inputs, vjp=sine_vjp, engines=ENGINES, dtype=dtype)
    wrong = check_function(sine, inputs, vjp=sine_vjp_wrong, engines=ENGINES, dtype=dtype)
    good, bad = right.derivatives[Derivative.VJP].taylor, wrong.derivatives[Derivative.VJP].taylor
    assert good.slope == pytest.approx(2.0, abs=0.2)
    assert good.right is True
    assert bad.slope == pytest.approx(1.0, abs=0.2)
    assert bad.right is False
    assert good.points == 3


def test_a_linear_function_leaves_no_remainder_to_measure():
    def linear(x, *, xp):
        return 3 * x

    taylor = (
        check_function(linear, {"x": (5,)}, vjp=lambda g, x: {"x": 3 * g}, engines=ENGINES)
        .derivatives[Derivative.VJP]
        .taylor
    )
    assert taylor.slope is None
    assert "linear" in taylor.why


# ---- float32, scalar and non-scalar outputs, detection power -------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_float32_and_float64_checks_catch_a_small_error(dtype):
    """A hand derivative off by 0.1% everywhere is caught in both precisions; the right one
    agrees in both, and the detection power is that of the dtype."""
    eps = float(np.finfo(dtype).eps)
    right = check_function(sine, {"x": (3, 4), "w": (3, 4)}, vjp=sine_vjp, engines=ENGINES,
                           dtype=dtype)  # fmt: skip
    assert right.ok
    assert right.points[0].inputs["x"].dtype == np.dtype(dtype)
    caught = right.derivatives[Derivative.VJP].detection
    assert 10 * eps < caught < 1e4 * eps

    def off(g, x, w):
        return {k: v * 1.001 for k, v in sine_vjp(g, x, w).items()}

    wrong = check_function(sine, {"x": (3, 4), "w": (3, 4)}, vjp=off, engines=ENGINES, dtype=dtype)
    entry = wrong.derivatives[Derivative.VJP]
    assert not entry.ok
    assert entry.arrays["x"].worst.relative == pytest.approx(1e-3, rel=1e-2)


def test_a_float32_hand_derivative_is_given_float32_inputs():
    seen = []

    def vjp(g, x, w):
        seen.append((g.dtype, x.dtype))
        return sine_vjp(g, x, w)

    check_function(sine, {"x": (2,), "w": (2,)}, vjp=vjp, engines=ENGINES, dtype="float32")
    assert set(seen) == {(np.dtype(np.float32), np.dtype(np.float32))}


def test_scalar_and_non_scalar_outputs():
    def total(x, *, xp):
        return xp.sum(x**3)

    scalar = check_function(total, {"x": (4,)}, gradient=lambda x: {"x": 3 * x**2},
                            vjp=lambda g, x: {"x": 3 * g * x**2}, engines=ENGINES)  # fmt: skip
    assert scalar.ok
    assert scalar.output_shape == ()
    assert set(scalar.derivatives) == {Derivative.GRADIENT, Derivative.VJP}
    with pytest.raises(CheckFileError, match=r"gradient is for a function with one number"):
        check_function(sine, {"x": (3,), "w": (3,)}, gradient=lambda x, w: {"x": x, "w": w})


def test_integer_inputs_are_data():
    def pick(x, labels, *, xp):
        return xp.sum(x * xp.astype(labels, x.dtype))

    def inputs(rng):
        return {"x": rng.standard_normal(4), "labels": rng.integers(0, 3, size=4)}

    report = check_function(pick, inputs, gradient=lambda x, labels: {"x": labels * 1.0},
                            engines=ENGINES)  # fmt: skip
    assert report.ok
    assert set(report.derivatives[Derivative.GRADIENT].arrays) == {"x"}
    with pytest.raises(HandDerivativeError, match="labels, which is data"):
        check_function(pick, inputs, gradient=lambda x, labels: {"x": labels * 1.0, "labels": x})


# ---- the verdict rule, the Python helper, odd functions ------------------------------------------
def test_exact_engines_that_disagree_are_an_outcome_of_their_own():
    """minigrad given an operation with a wrong rule: it and numeric (the complex step), both
    exact, disagree; the check says so and does not call the hand derivative wrong."""
    import minigrad
    from minigrad import Tensor, operation
    from verifiers.results import Outcome

    def bad_exp(x: Tensor) -> Tensor:
        out = np.exp(x.data)
        return operation("exp", out, (x,), lambda g, o: g * 2 * o, forward=np.exp)

    def forward(x, *, xp):
        return bad_exp(x) if xp is minigrad.numpy else xp.exp(x)

    report = check_function(forward, {"x": (4,)}, vjp=lambda g, x: {"x": g * np.exp(x)},
                            engines=ENGINES)  # fmt: skip
    entry = report.derivatives[Derivative.VJP]
    assert report.outcome is Outcome.ENGINES_DISAGREE
    assert entry.arrays["x"].verdict.disagreeing == [("minigrad", "numeric")]


def test_assert_derivatives_correct():
    from verifiers.testing import assert_derivatives_correct

    report = assert_derivatives_correct(sine, {"x": (3,), "w": (3,)}, vjp=sine_vjp)
    assert report.ok

    def flipped(g, x, w):
        return {k: -v for k, v in sine_vjp(g, x, w).items()}

    with pytest.raises(AssertionError) as caught:
        assert_derivatives_correct(sine, {"x": (3,), "w": (3,)}, vjp=flipped)
    first, second = str(caught.value).splitlines()
    assert first.startswith("the vjp is wrong: dx[")
    assert ", minigrad gives " in first or ", numeric gives " in first
    assert second == (
        "diagnosis [factor -1]: every derivative is the true value with the sign flipped"
    )
    with pytest.raises(AssertionError, match=r"a hand derivative fails: .*vjp raised"):
        assert_derivatives_correct(sine, {"x": (3,), "w": (3,)}, vjp=lambda g, x, w: 1 / 0)


def test_shapes_that_change_from_point_to_point_are_a_bad_problem():
    def inputs(rng):
        return {"x": rng.standard_normal(int(rng.integers(2, 9)))}

    with pytest.raises(CheckFileError, match="x has another shape at point"):
        check_function(lambda x, *, xp: x * 2, inputs, vjp=lambda g, x: {"x": 2 * g}, points=4)


def test_an_output_outside_the_domain_is_noted():
    def forward(x, *, xp):
        return xp.log(x)

    report = check_function(forward, {"x": (6,)}, vjp=lambda g, x: {"x": g / x}, engines=ENGINES)
    assert any("not finite" in note and "inputs(rng)" in note for note in report.notes)
