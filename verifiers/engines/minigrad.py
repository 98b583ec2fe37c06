"""`minigrad`: the model's loss run on this project's engine, its gradient by reverse mode.

The loss is the model's own, written once against the array API: here ``xp`` is minigrad's
namespace (:mod:`minigrad.numpy`). Each parameter is a leaf tensor. For losses that are a mean
over rows the data is taken CHUNK_ROWS rows at a time: the loss of each chunk is
``row_sum(chunk) / N``, and the loss and gradient are the sums over chunks (with one chunk,
N ≤ 65,536, that is the plain whole-array loss).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from minigrad import Tensor, grad
from minigrad import numpy as xp
from verifiers.engines.base import Derivatives, Engine, Evaluation, FunctionEngine
from verifiers.models.base import Model


class MinigradEngine(Engine):
    name = "minigrad"

    def __init__(self, model: Model, device: str = "auto") -> None:
        super().__init__(model, device)
        X, y = model.data.X, model.prepared_targets
        rows = model.chunks if model.additive else [slice(0, model.data.rows)]
        self.chunks = [(Tensor(X[r]), Tensor(y[r])) for r in rows]

    def _leaves(self, theta: np.ndarray) -> dict[str, Tensor]:
        params = self.model.unflatten(np.asarray(theta, dtype=self.dtype).copy())
        return {
            name: Tensor(value, requires_grad=True, name=name) for name, value in params.items()
        }

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        params = self._leaves(theta)
        leaves = list(params.values())
        total, gradient = 0.0, np.zeros(self.model.size)
        for piece in self.model.loss_pieces(params, self.chunks, xp):
            total += piece.item()
            gradient += _flat(grad(piece, leaves))
        return Evaluation(total, gradient)

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """Second derivatives by differentiating the gradient again (``create_graph=True``)."""
        params = self._leaves(theta)
        leaves = list(params.values())
        H = np.zeros((self.model.size, self.model.size))
        for piece in self.model.loss_pieces(params, self.chunks, xp):
            grads = grad(piece, leaves, create_graph=True)
            components = [g.reshape(-1)[k] for g in grads for k in range(g.size)]
            for i, component in enumerate(components):
                if component.requires_grad:  # a component that is constant has no second term
                    H[i] += _flat(grad(component, leaves))
        return H


def _flat(grads: tuple[Tensor, ...]) -> np.ndarray:
    return np.concatenate([np.asarray(g.data, dtype=np.float64).reshape(-1) for g in grads])


# ---- derivatives of any function (verifiers.check) ----------------------------------------------
class MinigradFunctions(FunctionEngine):
    """A check file's function on minigrad's namespace. The vjp is one reverse pass seeded with
    g; the jvp is reverse over reverse (the vjp is linear in g, so the gradient of ⟨vjp(u), t⟩
    with respect to u is J·t: minigrad has no forward mode, and needs none); the Hessian-vector
    product is the gradient of ⟨∇f, v⟩."""

    name = "minigrad"

    def _leaves(self, values: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """The differentiated inputs as leaf tensors; data (labels, masks, constants) stays
        numpy arrays (minigrad would make integers floats)."""
        wrt = set(self.wrt(values))
        return {
            n: Tensor(np.array(v, dtype=self.dtype), requires_grad=True, name=n)
            if n in wrt
            else np.asarray(v)
            for n, v in values.items()
        }

    def _output(self, leaves: dict[str, Any], shifts: dict[str, Tensor] | None = None) -> Tensor:
        out = self.function.evaluate(xp, leaves, shifts)
        if not isinstance(out, Tensor) or not out.requires_grad:
            # np.asarray(tensor) gives its data without a word: the graph is cut there
            raise ValueError(
                "forward's output does not depend on its inputs here: the function left "
                "minigrad's namespace (numpy called on a tensor?)"
            )
        return out

    def vjp(self, values, cotangent, taps) -> Derivatives:
        leaves = self._leaves(values)
        shifts = {
            t: Tensor(np.zeros(shape, self.dtype), requires_grad=True) for t, shape in taps.items()
        }
        out = self._output(leaves, shifts)
        wanted = {n: leaves[n] for n in self.wrt(values)} | shifts
        seed = np.asarray(cotangent, dtype=out.dtype).reshape(out.shape)
        grads = grad(out, list(wanted.values()), grad_output=seed)
        return Derivatives(
            {n: np.asarray(g.data, dtype=np.float64) for n, g in zip(wanted, grads, strict=True)}
        )

    def jvp(self, values, tangents) -> Derivatives:
        leaves = self._leaves(values)
        out = self._output(leaves)
        names = self.wrt(values)
        u = Tensor(np.zeros(out.shape, out.dtype), requires_grad=True)
        grads = grad(out, [leaves[n] for n in names], grad_output=u, create_graph=True)
        total = sum(
            (
                (g * Tensor(np.asarray(tangents[n], dtype=self.dtype))).sum()
                for n, g in zip(names, grads, strict=True)
            ),
            Tensor(np.zeros((), self.dtype)),
        )
        (Jt,) = grad(total, [u])
        return Derivatives({"output": np.asarray(Jt.data, dtype=np.float64)})

    def hvp(self, values, vector) -> Derivatives:
        leaves = self._leaves(values)
        out = self._output(leaves)
        names = self.wrt(values)
        wanted = [leaves[n] for n in names]
        grads = grad(out.reshape(()), wanted, create_graph=True)
        total = sum(
            (
                (g * Tensor(np.asarray(vector[n], dtype=self.dtype))).sum()
                for n, g in zip(names, grads, strict=True)
            ),
            Tensor(np.zeros((), self.dtype)),
        )
        hv = grad(total, wanted)
        return Derivatives(
            {n: np.asarray(h.data, dtype=np.float64) for n, h in zip(names, hv, strict=True)}
        )
