"""How a wrong hand derivative of any function is wrong: each classic slip the diagnosis names
(on the numpy engines, which every install has)."""

from __future__ import annotations

import numpy as np
import pytest

from verifiers.functions import Derivative, check_function

ENGINES = ("minigrad", "numeric")


def check(forward, inputs, **hand):
    return check_function(forward, inputs, engines=ENGINES, points=3, **hand)


def diagnosis(report, kind=Derivative.VJP):
    entry = report.derivatives[kind]
    assert not entry.ok
    return entry.diagnosis


# ---- a broadcast input ---------------------------------------------------------------------------
def affine(x, gamma, beta, *, xp):
    return x * gamma + beta  # gamma and beta (6,) broadcast over the 4 rows of x


AFFINE = {"x": (4, 6), "gamma": (6,), "beta": (6,)}


def affine_vjp(g, x, gamma, beta):
    return {"x": g * gamma, "gamma": (g * x).sum(axis=0), "beta": g.sum(axis=0)}


def test_the_right_affine_vjp_agrees():
    assert check(affine, AFFINE, vjp=affine_vjp).ok


def test_a_broadcast_gradient_not_summed_back():
    def slip(g, x, gamma, beta):
        return {**affine_vjp(g, x, gamma, beta), "beta": g}  # (4, 6): the sum is missing

    report = check(affine, AFFINE, vjp=slip)
    found = diagnosis(report)
    assert found.pattern == "not-summed-back"
    assert "axis 0" in found.summary
    assert "summed over it, it is right" in found.summary
    array = report.derivatives[Derivative.VJP].arrays["beta"]
    assert array.misshapen.shape == (4, 6)
    assert array.misshapen.axes == (0,)
    assert report.derivatives[Derivative.VJP].arrays["gamma"].ok


def test_a_broadcast_gradient_summed_over_the_wrong_axis():
    def square(x, b, *, xp):
        return x * b  # b (5,) runs along axis 1 of x (5, 5)

    def slip(g, x, b):
        return {"x": g * b, "b": (g * x).sum(axis=1)}  # should be axis 0

    found = diagnosis(check(square, {"x": (5, 5), "b": (5,)}, vjp=slip))
    assert found.pattern == "wrong-axis"
    assert found.arrays["b"] == "db is summed over axis 1 where b is broadcast along axis 0"


# ---- g not multiplied in, transposed, swapped ----------------------------------------------------
def layer(x, W, *, xp):
    return xp.tanh(x @ W)


def test_the_cotangent_not_multiplied_in():
    def slip(g, x, W):
        dz = 1 - np.tanh(x @ W) ** 2  # g forgotten: the Jacobian's rows summed
        return {"x": dz @ W.T, "W": x.T @ dz}

    found = diagnosis(check(layer, {"x": (3, 4), "W": (4, 2)}, vjp=slip))
    assert found.pattern == "cotangent-not-multiplied"
    assert set(found.arrays) == {"x", "W"}


def test_a_transposed_gradient_of_a_square_matrix():
    def slip(g, x, W):
        dz = g * (1 - np.tanh(x @ W) ** 2)
        return {"x": dz @ W.T, "W": (x.T @ dz).T}

    found = diagnosis(check(layer, {"x": (3, 3), "W": (3, 3)}, vjp=slip))
    assert found.pattern == "transposed"
    assert found.summary == "dW is transposed: its transpose is right"


def test_a_transposed_gradient_whose_shape_shows_it():
    def slip(g, x, W):
        dz = g * (1 - np.tanh(x @ W) ** 2)
        return {"x": dz @ W.T, "W": dz.T @ x}  # (2, 4) for W (4, 2)

    found = diagnosis(check(layer, {"x": (3, 4), "W": (4, 2)}, vjp=slip))
    assert found.pattern == "transposed"
    assert "(2, 4) where W's shape (4, 2) belongs" in found.summary
    assert found.summary.endswith("its transpose is right")


def test_two_inputs_gradients_swapped():
    def product(a, b, *, xp):
        return a * b * b

    def slip(g, a, b):
        return {"a": 2 * g * a * b, "b": g * b * b}  # each the other's

    found = diagnosis(check(product, {"a": (4,), "b": (4,)}, vjp=slip))
    assert found.pattern == "swapped"
    assert found.summary == "the gradients of a and b are swapped"


# ---- factors and signs ---------------------------------------------------------------------------
def mean_square(x, *, xp):
    return xp.mean(x**2)


@pytest.mark.parametrize(
    ("factor", "pattern", "words"),
    [
        (-1.0, "factor -1", "the true value with the sign flipped"),
        (2.0, "factor 2", "twice the true value"),
        (0.5, "factor 0.5", "half the true value"),
        (3.0, "factor 3", "3 times the true value"),
    ],
)
def test_a_constant_factor_or_a_flipped_sign(factor, pattern, words):
    report = check(mean_square, {"x": (7,)}, gradient=lambda x: {"x": factor * 2 * x / 7})
    found = diagnosis(report, Derivative.GRADIENT)
    assert found.pattern == pattern
    assert words in found.summary


def test_a_factor_that_is_an_axis_length_is_named_as_one():
    report = check(mean_square, {"x": (7,)}, gradient=lambda x: {"x": 2 * x})  # the 1/N missing
    found = diagnosis(report, Derivative.GRADIENT)
    assert found.pattern == "factor 7"
    assert "7 (the length of x's axis 0: a sum where a mean belongs?)" in found.summary


def test_every_derivative_with_the_sign_flipped():
    def slip(g, x, gamma, beta):
        return {k: -v for k, v in affine_vjp(g, x, gamma, beta).items()}

    found = diagnosis(check(affine, AFFINE, vjp=slip))
    assert found.summary == "every derivative is the true value with the sign flipped"


# ---- the derivative in terms of the input --------------------------------------------------------
def test_tanh_prime_written_with_the_input():
    def activation(x, *, xp):
        return xp.tanh(x)

    found = diagnosis(check(activation, {"x": (3, 4)}, vjp=lambda g, x: {"x": g * (1 - x**2)}))
    assert found.pattern == "input-for-output"
    assert "1 - x² where 1 - y² belongs (y = tanh(x))" in found.summary


def test_the_sigmoid_derivative_written_with_the_input():
    def sigmoid(x, *, xp):
        return 1 / (1 + xp.exp(-x))

    found = diagnosis(check(sigmoid, {"x": (6,)}, vjp=lambda g, x: {"x": g * x * (1 - x)}))
    assert found.pattern == "input-for-output"
    assert "x(1 - x) where y(1 - y) belongs" in found.summary


def test_a_jvp_with_the_derivative_written_with_the_input():
    def activation(x, *, xp):
        return xp.tanh(x)

    report = check(activation, {"x": (5,)}, jvp=lambda t, x: (1 - x**2) * t["x"])
    found = diagnosis(report, Derivative.JVP)
    assert found.pattern == "input-for-output"


# ---- forward mode --------------------------------------------------------------------------------
def normalise(x, *, xp):
    return x / xp.sum(x, axis=-1, keepdims=True)


def positive(rng):
    return {"x": rng.uniform(0.5, 2.0, size=(3, 5))}


def test_a_jvp_with_the_jacobian_transposed():
    def slip(t, x):
        s = x.sum(axis=-1, keepdims=True)
        return (t["x"] - (x / s * t["x"]).sum(axis=-1, keepdims=True)) / s

    found = diagnosis(check(normalise, positive, jvp=slip), Derivative.JVP)
    assert found.pattern == "transposed-jacobian"


def test_a_jvp_with_the_tangent_not_multiplied_in():
    def activation(x, w, *, xp):
        return xp.tanh(x * w)

    def slip(t, x, w):
        slope = 1 - np.tanh(x * w) ** 2
        return slope * (w + x)  # J·1: the tangents forgotten

    found = diagnosis(check(activation, {"x": (4,), "w": (4,)}, jvp=slip), Derivative.JVP)
    assert found.pattern == "tangent-not-multiplied"


def test_no_simple_pattern_is_said_as_much():
    found = diagnosis(check(layer, {"x": (3, 4), "W": (4, 2)}, vjp=lambda g, x, W: {
        "x": np.cos(x), "W": np.sin(W)
    }))  # fmt: skip
    assert found.pattern is None
    assert "no simple pattern" in found.summary
