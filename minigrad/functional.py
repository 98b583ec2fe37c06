"""Functions built from the operations in ``tensor.py``, with no backward code of their own.

Their gradients come from the rules of the operations they are made of: reading them shows which
rules are primitive. One habit keeps them stable at any input scale: before an exponential, the
largest value is subtracted. It is taken as a constant (``ln Σ eˣ = m + ln Σ eˣ⁻ᵐ`` for any m,
so no gradient needs to flow through it), which also keeps max's kink out of the gradient: the
results are smooth to every order, as the functions are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.tensor import Tensor, axes

__all__ = ["log_softmax", "logsumexp", "softmax", "square", "std", "var"]


def _largest(x: Tensor, axis: Any) -> Tensor:
    """The largest value over `axis` (kept as size-1 axes), as a constant; 0 where it is not
    finite (all -inf, or an inf or nan), where subtracting it would only make nans."""
    peak = np.max(x.data, axis=axes(axis, x.ndim), keepdims=True)
    return Tensor(np.where(np.isfinite(peak), peak, 0).astype(x.dtype))


def _drop(t: Tensor, axis: Any) -> Tensor:
    """Remove the size-1 axes a keepdims reduction over `axis` left."""
    return t.reshape(()) if axis is None else t.squeeze(axis)


def logsumexp(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """ln Σ exp(x) over `axis` (all axes when None), without overflow at any scale."""
    shift = _largest(x, axis)
    total = (x - shift).exp().sum(axis=axis, keepdims=True).log() + shift
    return total if keepdims else _drop(total, axis)


def softmax(x: Tensor, axis: Any = -1) -> Tensor:
    """exp(x) / Σ exp(x) over `axis`: positive, summing to 1, without overflow at any scale."""
    e = (x - _largest(x, axis)).exp()
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: Tensor, axis: Any = -1) -> Tensor:
    """ln softmax(x) over `axis`: x - logsumexp(x), exact even where softmax underflows to 0."""
    shifted = x - _largest(x, axis)  # then the subtraction below never meets a huge number
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()


def square(x: Tensor) -> Tensor:
    """x², elementwise."""
    return x**2


def var(x: Tensor, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Tensor:
    """Variance over `axis`: the mean squared deviation, times n / (n - correction)."""
    n = int(np.prod([x.shape[i] for i in axes(axis, x.ndim)]))
    deviation = x - x.mean(axis=axis, keepdims=True)
    mean_square = (deviation**2).mean(axis=axis, keepdims=keepdims)
    if correction == 0:
        return mean_square
    # n / (n - correction), infinite when correction >= n (so the variance is inf or nan, as
    # numpy gives)
    with np.errstate(divide="ignore"):
        factor = np.divide(np.float64(n), max(n - correction, 0))
    return mean_square * float(factor)


def std(x: Tensor, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Tensor:
    """Standard deviation over `axis`: the square root of `var`."""
    return var(x, axis=axis, correction=correction, keepdims=keepdims).sqrt()
