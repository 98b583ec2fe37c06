"""The array API's elementwise functions. Each records its VJP beside its forward.

Functions that are constant almost everywhere (floor, round, ...) record a zero gradient, as
torch does; tests and comparisons (``isnan``, ``less``, ``logical_and``, bitwise operations) give
constant tensors of booleans or integers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad.numpy._common import pair_of, tensor_of, unary, zero_rule
from minigrad.tensor import Tensor, apply, clip, constant, logaddexp, maximum, minimum

__all__ = [
    "abs", "acos", "acosh", "add", "asin", "asinh", "atan", "atan2", "atanh", "bitwise_and",
    "bitwise_invert", "bitwise_left_shift", "bitwise_or", "bitwise_right_shift", "bitwise_xor",
    "ceil", "clip", "conj", "copysign", "cos", "cosh", "divide", "equal", "exp", "expm1",
    "floor", "floor_divide", "greater", "greater_equal", "hypot", "imag", "isfinite", "isinf",
    "isnan", "less", "less_equal", "log", "log1p", "log2", "log10", "logaddexp", "logical_and",
    "logical_not", "logical_or", "logical_xor", "maximum", "minimum", "multiply", "negative",
    "nextafter", "not_equal", "positive", "pow", "real", "reciprocal", "remainder", "round",
    "sign", "signbit", "sin", "sinh", "sqrt", "square", "subtract", "tan", "tanh", "trunc",
]  # fmt: skip


# clip, logaddexp, maximum and minimum are the core's (tensor.py), exported here with the rest.


# ---- the arithmetic operators under their names ------------------------------------------------
def add(x1: Any, x2: Any, /) -> Tensor:
    a, b = pair_of(x1, x2)
    return a + b


def subtract(x1: Any, x2: Any, /) -> Tensor:
    a, b = pair_of(x1, x2)
    return a - b


def multiply(x1: Any, x2: Any, /) -> Tensor:
    a, b = pair_of(x1, x2)
    return a * b


def divide(x1: Any, x2: Any, /) -> Tensor:
    a, b = pair_of(x1, x2)
    return a / b


def pow(x1: Any, x2: Any, /) -> Tensor:
    if isinstance(x1, Tensor) and isinstance(x2, (int, float)):
        return x1**x2  # a Python exponent: the scalar rules (a², aᵖ)
    a, b = pair_of(x1, x2)
    return a**b


def negative(x: Any, /) -> Tensor:
    return -tensor_of(x)


def positive(x: Any, /) -> Tensor:
    return tensor_of(x)


def abs(x: Any, /) -> Tensor:
    return tensor_of(x).abs()


def square(x: Any, /) -> Tensor:
    return tensor_of(x) ** 2


def sqrt(x: Any, /) -> Tensor:
    return tensor_of(x).sqrt()


def reciprocal(x: Any, /) -> Tensor:
    # d(1/a)/da = -1/a² = -out²
    return unary("reciprocal", np.reciprocal, x, lambda g, out: -(g * out * out))


# ---- exponentials and logarithms ---------------------------------------------------------------
def exp(x: Any, /) -> Tensor:
    return tensor_of(x).exp()


def expm1(x: Any, /) -> Tensor:
    return tensor_of(x).expm1()


def log(x: Any, /) -> Tensor:
    return tensor_of(x).log()


def log1p(x: Any, /) -> Tensor:
    return tensor_of(x).log1p()


def log2(x: Any, /) -> Tensor:
    a = tensor_of(x)
    # d log₂(a)/da = 1/(a·ln 2)
    return unary("log2", np.log2, a, lambda g, out: g / (a * math.log(2)))


def log10(x: Any, /) -> Tensor:
    a = tensor_of(x)
    # d log₁₀(a)/da = 1/(a·ln 10)
    return unary("log10", np.log10, a, lambda g, out: g / (a * math.log(10)))


# ---- trigonometric and hyperbolic --------------------------------------------------------------
def sin(x: Any, /) -> Tensor:
    return tensor_of(x).sin()


def cos(x: Any, /) -> Tensor:
    return tensor_of(x).cos()


def tan(x: Any, /) -> Tensor:
    # d(tan a)/da = 1 + tan²a
    return unary("tan", np.tan, x, lambda g, out: g * (1 + out * out))


def asin(x: Any, /) -> Tensor:
    a = tensor_of(x)
    # d(asin a)/da = 1/√(1 - a²)
    return unary("asin", np.arcsin, a, lambda g, out: g / (1 - a * a).sqrt())


def acos(x: Any, /) -> Tensor:
    a = tensor_of(x)
    # d(acos a)/da = -1/√(1 - a²)
    return unary("acos", np.arccos, a, lambda g, out: -g / (1 - a * a).sqrt())


def atan(x: Any, /) -> Tensor:
    a = tensor_of(x)
    # d(atan a)/da = 1/(1 + a²)
    return unary("atan", np.arctan, a, lambda g, out: g / (1 + a * a))


def sinh(x: Any, /) -> Tensor:
    a = tensor_of(x)
    # d(sinh a)/da = cosh a
    return unary("sinh", np.sinh, a, lambda g, out: g * cosh(a))


def cosh(x: Any, /) -> Tensor:
    a = tensor_of(x)
    # d(cosh a)/da = sinh a
    return unary("cosh", np.cosh, a, lambda g, out: g * sinh(a))


def tanh(x: Any, /) -> Tensor:
    return tensor_of(x).tanh()


def asinh(x: Any, /) -> Tensor:
    a = tensor_of(x)
    # d(asinh a)/da = 1/√(a² + 1)
    return unary("asinh", np.arcsinh, a, lambda g, out: g / (a * a + 1).sqrt())


def acosh(x: Any, /) -> Tensor:
    a = tensor_of(x)
    # d(acosh a)/da = 1/√((a - 1)(a + 1)), written so that a near 1 loses no digits
    return unary("acosh", np.arccosh, a, lambda g, out: g / ((a - 1) * (a + 1)).sqrt())


def atanh(x: Any, /) -> Tensor:
    a = tensor_of(x)
    # d(atanh a)/da = 1/(1 - a²)
    return unary("atanh", np.arctanh, a, lambda g, out: g / (1 - a * a))


def atan2(x1: Any, x2: Any, /) -> Tensor:
    """The angle of the point (x2, x1): atan(x1/x2) in the right quadrant."""
    a, b = pair_of(x1, x2)
    return apply(
        "atan2", np.arctan2, (a, b),
        lambda g, out: g * b / (a * a + b * b),  # d atan2(a, b)/da = b/(a² + b²)
        lambda g, out: -g * a / (a * a + b * b),  # d atan2(a, b)/db = -a/(a² + b²)
    )  # fmt: skip


def hypot(x1: Any, x2: Any, /) -> Tensor:
    """√(x1² + x2²) without overflow."""
    a, b = pair_of(x1, x2)
    return apply(
        "hypot", np.hypot, (a, b),
        lambda g, out: g * a / out,  # d hypot(a, b)/da = a/hypot(a, b)
        lambda g, out: g * b / out,  # d hypot(a, b)/db = b/hypot(a, b)
    )  # fmt: skip


# ---- rounding, signs, remainders: constant almost everywhere -----------------------------------
def _piecewise(name: str, forward: Any, x: Any) -> Tensor:
    a = tensor_of(x)
    if a.dtype.kind not in "fc":  # an integer rounded is itself
        return constant(forward(a.data))
    # d floor(a)/da = 0 (and the same for ceil, round, trunc) wherever it exists
    return unary(name, forward, a, zero_rule)


def floor(x: Any, /) -> Tensor:
    return _piecewise("floor", np.floor, x)


def ceil(x: Any, /) -> Tensor:
    return _piecewise("ceil", np.ceil, x)


def round(x: Any, /) -> Tensor:
    return _piecewise("round", np.round, x)


def trunc(x: Any, /) -> Tensor:
    return _piecewise("trunc", np.trunc, x)


def sign(x: Any, /) -> Tensor:
    return tensor_of(x).sign()


def signbit(x: Any, /) -> Tensor:
    return constant(np.signbit(tensor_of(x).data))


def copysign(x1: Any, x2: Any, /) -> Tensor:
    """|x1| with the sign of x2."""
    a, b = pair_of(x1, x2)

    def vjp_a(g: Tensor, out: Tensor) -> Tensor:
        # d copysign(a, b)/da = sign(a)·(±1 by the sign of b) (0 at a = 0, as in torch)
        return g * constant(np.sign(a.data) * np.copysign(1, b.data).astype(a.dtype))

    # d copysign(a, b)/db = 0 (it takes only b's sign)
    return apply("copysign", np.copysign, (a, b), vjp_a, zero_rule)


def remainder(x1: Any, x2: Any, /) -> Tensor:
    """x1 - x2·floor(x1/x2): the remainder with the sign of x2."""
    a, b = pair_of(x1, x2)
    if a.dtype.kind not in "fc" and b.dtype.kind not in "fc":
        return constant(np.remainder(a.data, b.data))
    return apply(
        "remainder", np.remainder, (a, b),
        lambda g, out: g,  # d(a - b·⌊a/b⌋)/da = 1
        lambda g, out: -g * constant(np.floor_divide(a.data, b.data)),  # d/db = -⌊a/b⌋
    )  # fmt: skip


def floor_divide(x1: Any, x2: Any, /) -> Tensor:
    a, b = pair_of(x1, x2)
    if a.dtype.kind not in "fc" and b.dtype.kind not in "fc":
        return constant(np.floor_divide(a.data, b.data))
    # d⌊a/b⌋/da = d⌊a/b⌋/db = 0 wherever it exists
    return apply("floor_divide", np.floor_divide, (a, b), zero_rule, zero_rule)


def nextafter(x1: Any, x2: Any, /) -> Tensor:
    """The next floating-point number after x1 towards x2."""
    a, b = pair_of(x1, x2)
    return apply(
        "nextafter", np.nextafter, (a, b),
        lambda g, out: g,  # d nextafter(a, b)/da = 1: it moves a by one unit in the last place
        zero_rule,  # d nextafter(a, b)/db = 0: b gives only the direction
    )  # fmt: skip


# ---- complex parts: minigrad differentiates real data --------------------------------------------
def real(x: Any, /) -> Tensor:
    a = tensor_of(x)
    return a if a.dtype.kind != "c" else constant(np.real(a.data))


def conj(x: Any, /) -> Tensor:
    a = tensor_of(x)
    return a if a.dtype.kind != "c" else constant(np.conj(a.data))


def imag(x: Any, /) -> Tensor:
    return constant(np.imag(tensor_of(x).data))


# ---- comparisons, tests and logic: constants ----------------------------------------------------
def _constant(function: Any, *xs: Any) -> Tensor:
    if len(xs) == 2:
        a, b = pair_of(*xs)
        return constant(function(a.data, b.data))
    return constant(function(tensor_of(xs[0]).data))


def equal(x1: Any, x2: Any, /) -> Tensor:
    return _constant(np.equal, x1, x2)


def not_equal(x1: Any, x2: Any, /) -> Tensor:
    return _constant(np.not_equal, x1, x2)


def less(x1: Any, x2: Any, /) -> Tensor:
    return _constant(np.less, x1, x2)


def less_equal(x1: Any, x2: Any, /) -> Tensor:
    return _constant(np.less_equal, x1, x2)


def greater(x1: Any, x2: Any, /) -> Tensor:
    return _constant(np.greater, x1, x2)


def greater_equal(x1: Any, x2: Any, /) -> Tensor:
    return _constant(np.greater_equal, x1, x2)


def isnan(x: Any, /) -> Tensor:
    return _constant(np.isnan, x)


def isinf(x: Any, /) -> Tensor:
    return _constant(np.isinf, x)


def isfinite(x: Any, /) -> Tensor:
    return _constant(np.isfinite, x)


def logical_and(x1: Any, x2: Any, /) -> Tensor:
    return _constant(np.logical_and, x1, x2)


def logical_or(x1: Any, x2: Any, /) -> Tensor:
    return _constant(np.logical_or, x1, x2)


def logical_xor(x1: Any, x2: Any, /) -> Tensor:
    return _constant(np.logical_xor, x1, x2)


def logical_not(x: Any, /) -> Tensor:
    return _constant(np.logical_not, x)


def bitwise_and(x1: Any, x2: Any, /) -> Tensor:
    return _constant(np.bitwise_and, x1, x2)


def bitwise_or(x1: Any, x2: Any, /) -> Tensor:
    return _constant(np.bitwise_or, x1, x2)


def bitwise_xor(x1: Any, x2: Any, /) -> Tensor:
    return _constant(np.bitwise_xor, x1, x2)


def bitwise_invert(x: Any, /) -> Tensor:
    return _constant(np.invert, x)


def bitwise_left_shift(x1: Any, x2: Any, /) -> Tensor:
    return _constant(np.left_shift, x1, x2)


def bitwise_right_shift(x1: Any, x2: Any, /) -> Tensor:
    return _constant(np.right_shift, x1, x2)
