"""The function engines (python -m verifiers.check): each computes the vjp (with taps), the jvp
and the Hessian-vector product of a function written once against the array API, and each hand
derivative kind is judged right and wrong on every engine installed (the others skip with the
reason, so the numpy-only install runs the minigrad and numeric cases)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.verifiers.helpers import engine_param
from verifiers.engines import (
    ENGINES,
    FUNCTION_ENGINE_NAMES,
    function_engine_class,
)
from verifiers.functions import Derivative, check_function
from verifiers.functions.problem import problem_from_functions
from verifiers.results import Outcome, Trust
from verifiers.settings import UsageError

FUNCTION_ENGINES = [engine_param(name) for name in FUNCTION_ENGINE_NAMES]


# ---- the functions and their derivatives, by hand ------------------------------------------------
def layer(x, W, *, xp, tap):
    """A non-scalar output: tanh(x·W), with the pre-activation tapped."""
    return xp.tanh(tap("z", x @ W))


def layer_vjp(g, x, W):
    dz = g * (1 - np.tanh(x @ W) ** 2)
    return {"x": dz @ W.T, "W": x.T @ dz}


def layer_vjp_with_tap(g, x, W):
    return {**layer_vjp(g, x, W), "z": g * (1 - np.tanh(x @ W) ** 2)}


def layer_jvp(t, x, W):
    return (1 - np.tanh(x @ W) ** 2) * (t["x"] @ W + x @ t["W"])


def energy(x, w, *, xp):
    """A scalar output: Σ tanh(x)²·w."""
    return xp.sum(xp.tanh(x) ** 2 * w)


def _energy_parts(x):
    y = np.tanh(x)
    return y, 1 - y * y


def energy_gradient(x, w):
    y, slope = _energy_parts(x)
    return {"x": 2 * y * slope * w, "w": y * y}


def energy_hvp(v, x, w):
    y, slope = _energy_parts(x)
    second = 2 * slope * slope - 4 * y * y * slope  # d²(tanh²)/dx²
    return {"x": second * w * v["x"] + 2 * y * slope * v["w"], "w": 2 * y * slope * v["x"]}


def doubled(function):
    """A wrong version: every value twice the right one."""

    def wrong(*args):
        result = function(*args)
        if isinstance(result, dict):
            return {k: 2 * v for k, v in result.items()}
        return 2 * result

    return wrong


LAYER = {"x": (3, 4), "W": (4, 2)}
ENERGY = {"x": (5,), "w": (5,)}


# ---- the engines' own values ---------------------------------------------------------------------
def test_the_registry_names_a_function_engine_for_every_engine_that_differentiates():
    rows = {r.name: r for r in ENGINES}
    assert FUNCTION_ENGINE_NAMES == ("minigrad", "torch", "jax", "autograd", "numeric")
    for name in FUNCTION_ENGINE_NAMES:
        assert set(rows[name].derivatives) == {"vjp", "jvp", "hvp"}
        assert set(rows[name].derivatives) <= {k.value for k in Derivative}
    assert rows["loop"].functions is None
    assert rows["manual"].functions is None
    with pytest.raises(ValueError, match="models only"):
        function_engine_class("manual")


@pytest.mark.parametrize("engine", FUNCTION_ENGINES)
def test_each_engine_computes_the_closed_forms(engine):
    rng = np.random.default_rng(3)
    problem = problem_from_functions(layer, LAYER, {"vjp": layer_vjp})
    values = problem.draw(rng, np.dtype(np.float64))
    g = rng.standard_normal((3, 2))
    t = {"x": rng.standard_normal((3, 4)), "W": rng.standard_normal((4, 2))}
    computed = function_engine_class(engine)(problem, np.float64)
    vjp = computed.vjp(values, g, {"z": (3, 2)}).values
    want = layer_vjp_with_tap(g, values["x"], values["W"])
    assert set(vjp) == {"x", "W", "z"}
    for name in want:
        np.testing.assert_allclose(vjp[name], want[name], rtol=1e-12, atol=1e-12)
    jvp = computed.jvp(values, t).values["output"]
    np.testing.assert_allclose(jvp, layer_jvp(t, values["x"], values["W"]), rtol=1e-12, atol=1e-12)

    scalar = problem_from_functions(energy, ENERGY, {"gradient": energy_gradient})
    point = scalar.draw(rng, np.dtype(np.float64))
    v = {"x": rng.standard_normal(5), "w": rng.standard_normal(5)}
    hv = function_engine_class(engine)(scalar, np.float64).hvp(point, v).values
    want = energy_hvp(v, point["x"], point["w"])
    # finite differences of the gradient are approximate; the others exact to rounding
    tolerance = 1e-6 if engine == "numeric" else 1e-12
    for name in want:
        np.testing.assert_allclose(hv[name], want[name], rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("engine", FUNCTION_ENGINES)
@pytest.mark.parametrize("wrong", [False, True], ids=["right", "wrong"])
def test_vjp_and_jvp_right_and_wrong_on_each_engine(engine, wrong):
    vjp, jvp = (doubled(layer_vjp), doubled(layer_jvp)) if wrong else (layer_vjp, layer_jvp)
    report = check_function(layer, LAYER, vjp=vjp, jvp=jvp, points=2, engines=[engine])
    for kind in (Derivative.VJP, Derivative.JVP):
        entry = report.derivatives[kind]
        assert entry.engines[engine].ran
        assert entry.engines[engine].trust is Trust.EXACT
        assert entry.ok is not wrong
        for array in entry.arrays.values():
            assert array.ok is not wrong
            # a factor 2: the hand value is off by exactly its own size
            expected = 1.0 if wrong else 0.0
            assert array.worst.relative == pytest.approx(expected, abs=1e-9)
        if wrong:
            assert entry.diagnosis.pattern == "factor 2"
    assert report.outcome is (Outcome.FORMULA_WRONG if wrong else Outcome.AGREE)


@pytest.mark.parametrize("engine", [p for p in FUNCTION_ENGINES if p.values[0] != "numeric"])
@pytest.mark.parametrize("wrong", [False, True], ids=["right", "wrong"])
def test_gradient_and_hvp_right_and_wrong_on_each_engine(engine, wrong):
    gradient, hvp = energy_gradient, energy_hvp
    if wrong:
        gradient, hvp = doubled(gradient), doubled(hvp)
    report = check_function(energy, ENERGY, gradient=gradient, hvp=hvp, points=2, engines=[engine])
    for kind in (Derivative.GRADIENT, Derivative.HVP):
        entry = report.derivatives[kind]
        assert entry.ok is not wrong
        assert {a.ok for a in entry.arrays.values()} == {not wrong}
    assert report.ok is not wrong


def test_the_numeric_engine_judges_a_gradient_alone_but_not_an_hvp():
    """The complex step is exact: numeric alone decides a gradient. Its Hessian-vector product
    is a difference of gradients, approximate: alone it cannot decide, and says so."""
    report = check_function(energy, ENERGY, gradient=doubled(energy_gradient), engines=["numeric"])
    entry = report.derivatives[Derivative.GRADIENT]
    assert entry.engines["numeric"].method == "complex step"
    assert not entry.ok
    assert entry.diagnosis.pattern == "factor 2"
    with pytest.raises(UsageError, match="no exact engine could compute the hvp"):
        check_function(energy, ENERGY, hvp=energy_hvp, engines=["numeric"])


def test_the_numeric_hvp_confirms_beside_an_exact_engine():
    report = check_function(energy, ENERGY, hvp=energy_hvp, engines=["minigrad", "numeric"])
    entry = report.derivatives[Derivative.HVP]
    assert entry.ok
    assert entry.engines["numeric"].trust is Trust.APPROXIMATE
    verdict = entry.arrays["x"].verdict
    assert verdict.reference == "minigrad"
    assert verdict.unconfirmed == []


def test_central_differences_alone_do_not_decide():
    """A function that drops the imaginary part falls back to central differences (approximate),
    and minigrad, whose tensors it turns into numpy arrays, is left out: no exact engine is left,
    and the check says so instead of judging."""

    def through_numpy(x, *, xp):
        return xp.asarray(np.asarray(x, dtype=np.float64)) ** 3

    with pytest.raises(UsageError) as caught:
        check_function(
            through_numpy, {"x": (4,)}, vjp=lambda g, x: {"x": 3 * g * x**2},
            engines=["numeric", "minigrad"],
        )  # fmt: skip
    message = str(caught.value)
    assert message.startswith("no exact engine could compute the vjp")
    assert "numeric: central differences" in message
    assert "minigrad: cannot compute the vjp" in message
    assert "does not depend" in message


def test_an_engine_missing_a_name_is_left_out_with_the_reason():
    def uses_cumsum(x, *, xp):
        return xp.cumsum(x)  # numpy's name, not the standard's (cumulative_sum): minigrad lacks it

    report = check_function(
        uses_cumsum,
        {"x": (4,)},
        vjp=lambda g, x: {"x": np.cumsum(g[::-1])[::-1]},
        engines=["minigrad", "numeric"],
    )
    entry = report.derivatives[Derivative.VJP]
    assert entry.engines["minigrad"].status.value == "skipped"
    assert "cumsum" in entry.engines["minigrad"].reason
    assert entry.ok  # numeric's complex step decides alone
    assert any("minigrad left out of the vjp" in note for note in report.notes)


def test_an_engine_asked_for_by_name_must_exist():
    with pytest.raises(UsageError, match="unknown engine 'loop' for a function"):
        check_function(layer, LAYER, vjp=layer_vjp, engines=["loop"])
