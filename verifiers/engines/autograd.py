"""`autograd`: HIPS autograd, the original reverse mode on numpy, the loss run on its namespace.

``autograd.numpy`` wraps numpy's functions so that each call is recorded; ``autograd.grad``
walks the record backwards. It has no array API namespace of its own, but numpy's names are
nearly the standard's, so the model's loss, written once against the standard, runs on it
unchanged; a loss that uses a function it lacks skips this engine, saying which. The data is
taken a chunk of rows at a time, as the other engines take it, and the Hessian is autograd's
own (the Jacobian of the gradient, reverse over reverse).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np

from verifiers.engines.base import Derivatives, Engine, Evaluation, FunctionEngine
from verifiers.models.base import Model


class _OneColumn(np.ndarray):
    """The data's X when it has one feature: ``X @ w`` is then one product per row, which
    autograd.numpy's matmul (numpy's, through BLAS's matrix-vector routine, an N×1 matrix a row
    at a time) computes about ten times slower than an elementwise product. The same numbers."""

    def __matmul__(self, other: Any) -> Any:
        plain = self.view(np.ndarray)
        if plain.ndim == 2 and plain.shape[1] == 1 and np.shape(other) == (1,):
            return anp.multiply(plain[:, 0], other[0])
        return anp.matmul(plain, other)


class AutogradEngine(Engine):
    name = "autograd"

    def __init__(self, model: Model, device: str = "auto") -> None:
        super().__init__(model, device)
        X, y = model.data.X, model.prepared_targets
        rows = model.chunks if model.additive else [slice(0, model.data.rows)]
        if X.shape[1] == 1:
            X = X.view(_OneColumn)
        self.chunks = [(X[r], y[r]) for r in rows]

    def _pieces(self) -> list[Any]:
        """The loss as functions of a traced θ, one per piece (a chunk of rows each, then any
        penalty): each is differentiated on its own, so that only one chunk's record of
        operations is alive at a time, and the sums are added in the other engines' order."""
        model = self.model
        rows = self.model.data.rows

        def chunk(X: Any, y: Any) -> Any:
            if not model.additive:
                return lambda t: model.loss(model.unflatten(t), X, y, anp)
            return lambda t: model.row_sum(model.unflatten(t), X, y, anp) / rows

        pieces = [chunk(X, y) for X, y in self.chunks]
        if model.additive and model.penalty(model.unflatten(np.zeros(model.size)), np) is not None:
            pieces.append(lambda t: model.penalty(model.unflatten(t), anp))
        return pieces

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        theta = np.asarray(theta, dtype=self.dtype).copy()
        total, gradient = 0.0, np.zeros(self.model.size)
        for piece in self._pieces():
            value, part = autograd.value_and_grad(piece)(theta)
            total += float(value)
            gradient += np.asarray(part, dtype=np.float64)
        return Evaluation(total, gradient)

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=self.dtype).copy()
        H = np.zeros((self.model.size, self.model.size))
        for piece in self._pieces():
            H += np.asarray(autograd.hessian(piece)(theta), dtype=np.float64)
        return H


# ---- derivatives of any function (verifiers.check) ----------------------------------------------
class AutogradFunctions(FunctionEngine):
    """A check file's function on ``autograd.numpy``, differentiated with respect to one flat
    vector holding every floating-point input (and each tapped intermediate's shift): the vjp by
    ``autograd.make_vjp``, the jvp by its forward mode (``autograd.make_jvp``), the
    Hessian-vector product by ``autograd.hessian_vector_product`` (reverse over reverse)."""

    name = "autograd"

    def _layout(
        self, values: Mapping[str, np.ndarray], taps: Mapping[str, tuple[int, ...]]
    ) -> tuple[list[tuple[str, tuple[int, ...], int, int]], np.ndarray]:
        """Where each differentiated array sits in the flat vector, and the vector itself."""
        layout, pieces, start = [], [], 0
        arrays = {n: np.asarray(values[n], dtype=self.dtype) for n in self.wrt(values)}
        arrays |= {t: np.zeros(shape, self.dtype) for t, shape in taps.items()}
        for name, array in arrays.items():
            layout.append((name, array.shape, start, start + array.size))
            pieces.append(array.reshape(-1))
            start += array.size
        flat = np.concatenate(pieces) if pieces else np.zeros(0, self.dtype)
        return layout, flat

    def _f(self, values: Mapping[str, np.ndarray], layout, taps: Mapping[str, Any]):
        constants = {n: np.asarray(v) for n, v in values.items() if n not in self.wrt(values)}

        def f(flat: Any) -> Any:
            pieces = {n: anp.reshape(flat[a:b], shape) for n, shape, a, b in layout}
            floats = {n: p for n, p in pieces.items() if n not in taps}
            shifts = {n: p for n, p in pieces.items() if n in taps}
            return self.function.evaluate(anp, {**constants, **floats}, shifts)

        return f

    @staticmethod
    def _unflat(vector: np.ndarray, layout) -> dict[str, np.ndarray]:
        return {
            n: np.asarray(vector[a:b], dtype=np.float64).reshape(shape) for n, shape, a, b in layout
        }

    def vjp(self, values, cotangent, taps) -> Derivatives:
        layout, flat = self._layout(values, taps)
        pullback, out = autograd.make_vjp(self._f(values, layout, taps))(flat)
        seed = np.asarray(cotangent, dtype=np.result_type(out)).reshape(np.shape(out))
        return Derivatives(self._unflat(np.asarray(pullback(seed)), layout))

    def jvp(self, values, tangents) -> Derivatives:
        layout, flat = self._layout(values, {})
        direction = np.concatenate(
            [np.asarray(tangents[n], dtype=self.dtype).reshape(-1) for n, *_ in layout]
            or [np.zeros(0, self.dtype)]
        )
        _, Jt = autograd.make_jvp(self._f(values, layout, {}))(flat)(direction)
        return Derivatives({"output": np.asarray(Jt, dtype=np.float64)})

    def hvp(self, values, vector) -> Derivatives:
        layout, flat = self._layout(values, {})
        direction = np.concatenate(
            [np.asarray(vector[n], dtype=self.dtype).reshape(-1) for n, *_ in layout]
            or [np.zeros(0, self.dtype)]
        )
        f = self._f(values, layout, {})
        hv = autograd.hessian_vector_product(lambda x: anp.reshape(f(x), ()))(flat, direction)
        return Derivatives(self._unflat(np.asarray(hv), layout))
