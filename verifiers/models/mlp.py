"""A network with one hidden layer of tanh units and a linear output, fitted by MSE: backprop
written out by hand, the classic exercise.

Model, for the rows X (N, d) and H hidden units (``--hidden``):

    Z = X·W1 + b1          (N, H)   W1 (d, H), b1 (H,): each unit's weighted input
    A = tanh(Z)            (N, H)   the hidden activations
    ŷ = A·W2 + b2          (N,)     W2 (H,), b2 a scalar: the output
    L = (1/N) Σ_i (ŷ_i - y_i)²

Backpropagation is the chain rule applied from the loss back to each parameter, reusing what
the step before computed. Write ``δ = dL/dŷ`` for the gradient arriving at each quantity:

1. ``δŷ_i = (2/N)(ŷ_i - y_i)``                     (the derivative of the mean of squares)
2. ``dL/dW2 = Aᵀ·δŷ``, ``dL/db2 = Σ_i δŷ_i``        (ŷ is linear in W2 and b2, as in the MSE)
3. ``δA = δŷ ⊗ W2``, that is ``δA_ih = δŷ_i·W2_h``  (ŷ is linear in A, with weights W2)
4. ``δZ = δA ∘ (1 - A²)``                          (``tanh'(z) = 1 - tanh²(z)``, elementwise)
5. ``dL/dW1 = Xᵀ·δZ``, ``dL/db1 = Σ_i δZ_i``        (Z is linear in W1 and b1: sum over rows)

Each weight matrix's gradient has the shape of the matrix: Xᵀ (d, N) times δZ (N, H) is (d, H),
like W1. The initial weights are random (``--seed``), scaled by ``1/√fan_in`` so that every
unit's input starts with a spread of about one: with equal weights every unit would compute the
same thing and receive the same gradient forever.

The loss has many minima (swap two hidden units, or flip the signs of one unit's weights, and
the function is the same), so no optimum is computed, and its Hessian has no simple closed form:
the engines' Hessians are compared with one another.

The classic slips: the tanh' factor (1 - A²) left out; ``1 - Z²`` for ``1 - tanh²(Z)``; the
output weights W2 left out of step 3; W1's gradient transposed (noticed only when d = H, or the
shapes would not match); b1's gradient averaged over rows instead of summed (δŷ already holds
the 1/N: the diagnosis finds a factor 1/N in dL/db1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from verifiers.chunks import row_chunks
from verifiers.models.base import Model, ModelOption, Optimum, Parameter, Params, Scales, Slip

__all__ = ["MLPModel", "backprop"]

# The per-row arrays of the Hessian's term sizes hold rows × θ numbers: at most this many.
HESSIAN_BLOCK = 1 << 22


def backprop(
    params: Mapping[str, np.ndarray], X: np.ndarray, y: np.ndarray, slip: str | None = None
) -> dict[str, np.ndarray]:
    """The gradient by the five steps of the module docstring, a chunk of rows at a time.

    `slip` computes a classic wrong version instead: "missing-tanh-prime", "tanh-prime-of-z",
    "missing-W2" or "transposed-W1".
    """
    W1, b1, W2, b2 = (np.asarray(params[name]) for name in ("W1", "b1", "W2", "b2"))
    n = len(X)
    grads = {name: np.zeros(np.shape(value), dtype=W1.dtype) for name, value in params.items()}
    for rows in row_chunks(n):
        Z = X[rows] @ W1 + b1
        A = np.tanh(Z)
        delta_out = (2 / n) * (A @ W2 + b2 - y[rows])  # 1
        grads["W2"] += A.T @ delta_out  # 2
        grads["b2"] += delta_out.sum()
        delta_A = delta_out[:, None] * W2[None, :]  # 3
        if slip == "missing-W2":
            delta_A = np.broadcast_to(delta_out[:, None], A.shape)
        if slip == "missing-tanh-prime":
            delta_Z = delta_A
        elif slip == "tanh-prime-of-z":
            delta_Z = delta_A * (1 - Z * Z)
        else:
            delta_Z = delta_A * (1 - A * A)  # 4
        grads["W1"] += X[rows].T @ delta_Z  # 5
        grads["b1"] += delta_Z.sum(axis=0)
    if slip == "transposed-W1":
        grads["W1"] = grads["W1"].T.copy()
    return grads


class MLPModel(Model):
    """One tanh hidden layer, a linear output, MSE (see the module docstring)."""

    name = "mlp"
    summary = "one hidden layer of tanh units (--hidden), linear output, mean squared error"
    linear = False
    example = "data/wave.csv"
    options = (
        ModelOption(
            "hidden",
            8,
            "the number of hidden units (--model mlp only)",
            "the hidden units",
            minimum=1,
            maximum=10_000,
            integer=True,
        ),
    )

    # What a --manual backprop may return besides the gradients, to be located to the step when
    # it is wrong (docs/models/mlp.md): dL/dZ2 = dL/dŷ (N,), dL/dA1 and dL/dZ1 (N, H).
    intermediates = ("dZ2", "dA1", "dZ1")

    @property
    def hidden(self) -> int:
        return int(self.option("hidden"))

    def notes(self) -> list[str]:
        return []  # a network's Hessian is not that of the linear design

    def work(self) -> float:
        return float(self.data.rows) * (self.hidden * (self.data.features + 13) + 3)

    def extreme_points(self, directions: np.ndarray) -> tuple[list[np.ndarray], str]:
        """θ's whose largest hidden pre-activation |X·W1 + b1| is 6 and 20: the tanh units
        saturate (tanh' is 2e-5 and 2e-17 there), where a hand backprop's tanh' goes wrong."""
        X = self.data.X.astype(np.float64)
        first = self.unflatten(np.arange(self.size))
        layer = np.concatenate([first["W1"].reshape(-1), first["b1"].reshape(-1)]).astype(int)
        points = []
        for k, target in enumerate((6.0, 20.0)):
            for sign, direction in ((1.0, directions[2 * k]), (-1.0, directions[2 * k + 1])):
                params = self.unflatten(np.asarray(direction, dtype=np.float64))
                peak = float(np.max(np.abs(X @ params["W1"] + params["b1"]), initial=0.0))
                if not (np.isfinite(peak) and peak > 0):
                    continue
                theta = sign * np.asarray(direction, dtype=np.float64)
                theta[layer] *= target / peak  # the output layer keeps its size
                points.append(theta)
        return points, "hidden pre-activations |X·W1 + b1| up to 6 and 20 (tanh saturated)"

    @property
    def formula(self) -> str:  # an instance's own: it shows H
        return (
            f"model ŷ = tanh(X·W1 + b1)·W2 + b2 with {self.hidden} hidden units, "
            "loss L = mean((ŷ - y)²)"
        )

    def parameter_shapes(self) -> list[Parameter]:
        d, h = self.data.features, self.hidden
        return [
            Parameter("W1", (d, h)),
            Parameter("b1", (h,)),
            Parameter("W2", (h,)),
            Parameter("b2", ()),
        ]

    def start(self) -> np.ndarray:
        """Weights drawn from N(0, 1/fan_in) with ``--seed``; biases 0."""
        rng = np.random.default_rng(self.seed)
        d, h = self.data.features, self.hidden
        W1 = rng.normal(size=(d, h)) / math.sqrt(d)
        W2 = rng.normal(size=h) / math.sqrt(h)
        return self.flatten({"W1": W1, "b1": np.zeros(h), "W2": W2, "b2": np.zeros(())})

    def row_losses(self, params: Params, X: Any, y: Any, xp: Any) -> Any:
        A = xp.tanh(X @ params["W1"] + params["b1"])
        r = A @ params["W2"] + params["b2"] - y
        return r * r

    def hand_gradient(self, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return backprop(params, self.data.X, self.data.y)

    def predict(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """The network's output ``tanh(X·W1 + b1)·W2 + b2``."""
        params = self.unflatten(np.asarray(theta, dtype=np.float64))
        return np.tanh(X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]

    def optimum(self) -> Optimum:
        return Optimum(None, note="a network's loss has many minima; no optimum is computed")

    # ---- tolerance scales ---------------------------------------------------------------------
    def _sizes(self, theta: np.ndarray, rows: slice) -> dict[str, np.ndarray]:
        """Per row, in float64: |a| = [|X|, 1], A, the sizes s1 of Z's terms, of tanh' = 1 - A²
        (its terms 1 and A², and Z's rounding carried through tanh''), of tanh'' and of the
        residual (its terms |y|, |A_h W2_h|, |b2| and Z's rounding carried to ŷ)."""
        params = self.unflatten(np.asarray(theta, dtype=np.float64))
        X = self.data.X[rows].astype(np.float64, copy=False)
        y = self.data.y[rows].astype(np.float64, copy=False)
        absolute = np.column_stack([np.abs(X), np.ones(len(X))])
        Z = X @ params["W1"] + params["b1"]
        A = np.tanh(Z)
        s1 = absolute @ np.vstack([np.abs(params["W1"]), np.abs(params["b1"])])
        slope = 1 - A * A
        tanh_prime = 1 + A * A + 2 * np.abs(A) * slope * s1
        tanh_second = 2 * np.abs(A) * (1 + A * A) + 2 * s1
        W2 = np.abs(params["W2"])
        residual = np.abs(y) + np.abs(A) @ W2 + abs(float(params["b2"])) + (slope * s1) @ W2
        return {
            "a": absolute,
            "A": np.abs(A) + slope * s1,  # |A| and its rounding from Z
            "tp": tanh_prime,
            "t2": tanh_second,
            "r": residual,
            "W2": W2,
        }

    def _first_derivative_sizes(self, sizes: dict[str, np.ndarray]) -> np.ndarray:
        """Per row, the size of ∂ŷ/∂θ for every entry of θ, in θ's order."""
        first = sizes["a"][:, :, None] * (sizes["W2"] * sizes["tp"])[:, None, :]  # W1 and b1
        n = len(first)
        return np.concatenate([first.reshape(n, -1), sizes["A"], np.ones((n, 1))], axis=1)

    def scales(self, theta: np.ndarray) -> Scales:
        """``(2/N) Σ_i r_i·|∂ŷ_i/∂θ|`` per entry, r_i the residual's Σ|terms|; the loss's
        ``(1/N) Σ_i r_i²``, as for the MSE."""
        d, h = self.data.features, self.hidden
        loss, first, W2, b2 = 0.0, np.zeros((d + 1, h)), np.zeros(h), 0.0
        for rows in self.chunks:  # the sums of r_i·J_i, block by block (J_i is never stored)
            sizes = self._sizes(theta, rows)
            r = sizes["r"]
            loss += float(r @ r)
            first += sizes["a"].T @ (r[:, None] * sizes["W2"] * sizes["tp"])
            W2 += r @ sizes["A"]
            b2 += float(r.sum())
        n = self.data.rows
        return Scales(loss / n, (2 / n) * np.concatenate([first.reshape(-1), W2, [b2]]))

    def hessian_scales(self, theta: np.ndarray) -> np.ndarray:
        """``(2/N) Σ_i (J_i J_iᵀ + r_i B_i)``: J_i the sizes of ∂ŷ_i/∂θ, B_i those of ∂²ŷ_i/∂θ².

        ŷ's second derivatives pair W2_h with unit h's first-layer weights (``tanh'(Z_ih)·a_ij``)
        and unit h's first-layer weights with each other (``W2_h·tanh''(Z_ih)·a_ij·a_ij'``);
        every other pair is 0.
        """
        d, h = self.data.features, self.hidden
        first = (d + 1) * h  # W1 and b1 come first, as a (d + 1, H) block
        total = np.zeros((self.size, self.size))
        block = max(1, HESSIAN_BLOCK // self.size)
        for chunk in self.chunks:
            for rows in row_chunks(chunk.stop - chunk.start, block):
                rows = slice(chunk.start + rows.start, chunk.start + rows.stop)
                sizes = self._sizes(theta, rows)
                J = self._first_derivative_sizes(sizes)
                total += J.T @ J
                a, r = sizes["a"], sizes["r"]
                weights = r[:, None] * sizes["W2"] * sizes["t2"]  # (n, H)
                same_unit = np.zeros((d + 1, h, d + 1, h))
                units = np.arange(h)
                # [j, h, j', h] = Σ_i a_ij weights_ih a_ij' (advanced indices go first: [h, j, j'])
                weighted = a[:, :, None] * weights[:, None, :]  # (n, d + 1, H)
                pairs = np.tensordot(weighted, a, axes=([0], [0]))  # (d + 1, H, d + 1)
                same_unit[:, units, :, units] = pairs.transpose(1, 0, 2)
                total[:first, :first] += same_unit.reshape(first, first)
                with_W2 = a.T @ (r[:, None] * sizes["tp"])  # (d + 1, H)
                block_W2 = np.zeros((d + 1, h, h))
                block_W2[:, units, units] = with_W2
                total[:first, first : first + h] += block_W2.reshape(first, h)
                total[first : first + h, :first] += block_W2.reshape(first, h).T
        return (2 / self.data.rows) * total

    # ---- classic slips ------------------------------------------------------------------------
    def slips(self) -> list[Slip]:
        X, y = self.data.X, self.data.y

        def wrong(slip: str):
            def gradient_of(theta: np.ndarray) -> np.ndarray:
                params = self.unflatten(np.asarray(theta, dtype=np.float64))
                return self.flatten(backprop(params, X, y, slip))

            return gradient_of

        slips = [
            Slip(
                "missing-tanh-prime",
                "the tanh' factor (1 - A²) is missing from the hidden layer's backprop step",
                wrong("missing-tanh-prime"),
            ),
            Slip(
                "tanh-prime-of-z",
                "it uses 1 - Z² where tanh'(Z) = 1 - tanh²(Z) = 1 - A² belongs",
                wrong("tanh-prime-of-z"),
            ),
            Slip(
                "missing-W2",
                "the output weights W2 are missing from the gradient reaching the hidden layer "
                "(δA = δŷ·W2)",
                wrong("missing-W2"),
            ),
        ]
        if self.data.features == self.hidden:
            slips.append(
                Slip(
                    "transposed-W1",
                    "the gradient of W1 is transposed: δZᵀX where Xᵀ·δZ belongs (W1 has one "
                    "row per feature, one column per hidden unit)",
                    wrong("transposed-W1"),
                )
            )
        return slips

    def tapped_loss(self, params: Params, X: Any, y: Any, xp: Any, tap: Any) -> Any:
        """The loss with the backprop's intermediates tapped (Z1 = X·W1 + b1, A1 = tanh(Z1),
        Z2 = ŷ): the gradient with respect to each is what a --manual formula's dZ1, dA1 and
        dZ2 are checked against (:mod:`verifiers.functions.steps`)."""
        Z1 = tap("Z1", X @ params["W1"] + params["b1"])
        A1 = tap("A1", xp.tanh(Z1))
        Z2 = tap("Z2", A1 @ params["W2"] + params["b2"])
        r = Z2 - y
        return xp.sum(r * r) / X.shape[0]
