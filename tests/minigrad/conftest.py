"""Reference engines for the minigrad tests: torch.autograd and jax, both in float64.

Each fixture skips (with the reason pytest.importorskip gives) when its library is missing, so the
numpy-only run keeps every other test. jax's 64-bit mode is switched on only inside each call
(`enable_x64` as a context manager), never in the global configuration.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from tests.minigrad.helpers import jax_ops, torch_ops


class TorchEngine:
    """torch.autograd on float64 tensors."""

    name = "torch"

    def __init__(self) -> None:
        self.torch = pytest.importorskip("torch")
        self.ops = torch_ops(self.torch)

    def _inputs(self, arrays: Sequence[np.ndarray]) -> list[Any]:
        return [
            self.torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays
        ]

    def vjp(
        self, fn: Callable[..., Any], arrays: Sequence[np.ndarray], cotangent: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        inputs = self._inputs(arrays)
        out = fn(self.ops, *inputs)
        assert out.dtype == self.torch.float64
        out.backward(self.torch.as_tensor(np.asarray(cotangent, dtype=np.float64)))
        grads = [np.zeros(t.shape) if t.grad is None else t.grad.detach().numpy() for t in inputs]
        return out.detach().numpy(), grads

    def hessian(self, f: Callable[..., Any], theta: np.ndarray) -> np.ndarray:
        x = self.torch.tensor(np.asarray(theta, dtype=np.float64))
        h = self.torch.autograd.functional.hessian(lambda t: f(self.ops, t), x)
        return h.detach().numpy()

    def hessians(self, f: Callable[..., Any], thetas: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self.hessian(f, theta) for theta in thetas]

    def hessian_of_inputs(
        self, f: Callable[..., Any], arrays: Sequence[np.ndarray]
    ) -> list[list[np.ndarray]]:
        """Blocks H[i][j] of the Hessian of f(ops, *inputs) (torch's nested-tuple form)."""
        inputs = tuple(self.torch.tensor(np.asarray(a, dtype=np.float64)) for a in arrays)
        h = self.torch.autograd.functional.hessian(lambda *ts: f(self.ops, *ts), inputs)
        return [[block.detach().numpy() for block in row] for row in h]

    def hvp(self, f: Callable[..., Any], theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        x = self.torch.tensor(np.asarray(theta, dtype=np.float64))
        tangent = self.torch.tensor(np.asarray(v, dtype=np.float64))
        _, product = self.torch.autograd.functional.hvp(lambda t: f(self.ops, t), x, tangent)
        return product.detach().numpy()


class JaxEngine:
    """jax.vjp / jax.hessian, 64-bit only inside each call."""

    name = "jax"

    def __init__(self) -> None:
        self.jax = pytest.importorskip("jax")
        self.ops = jax_ops(self.jax)
        enable_x64 = getattr(self.jax, "enable_x64", None)
        if enable_x64 is None:  # older jax spells it as an experimental context manager
            from jax.experimental import enable_x64
        self._enable_x64 = enable_x64

    def x64(self) -> contextlib.AbstractContextManager[Any]:
        return self._enable_x64(True)

    def vjp(
        self, fn: Callable[..., Any], arrays: Sequence[np.ndarray], cotangent: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        jnp = self.jax.numpy
        with self.x64():
            inputs = [jnp.asarray(np.asarray(a, dtype=np.float64)) for a in arrays]
            out, pullback = self.jax.vjp(lambda *xs: fn(self.ops, *xs), *inputs)
            assert out.dtype == jnp.float64
            grads = pullback(jnp.asarray(np.asarray(cotangent, dtype=np.float64)))
            return np.asarray(out), [np.asarray(g) for g in grads]

    def hessian(self, f: Callable[..., Any], theta: np.ndarray) -> np.ndarray:
        return self.hessians(f, [theta])[0]

    def hessians(self, f: Callable[..., Any], thetas: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The Hessian at each point. Compiled once per call: op by op, jax.hessian (forward over
        reverse, vmapped) takes seconds per function; compiled, a tenth of that."""
        with self.x64():
            hessian = self.jax.jit(self.jax.hessian(lambda t: f(self.ops, t)))
            return [
                np.asarray(hessian(self.jax.numpy.asarray(np.asarray(t, dtype=np.float64))))
                for t in thetas
            ]

    def hessian_of_inputs(
        self, f: Callable[..., Any], arrays: Sequence[np.ndarray]
    ) -> list[list[np.ndarray]]:
        with self.x64():
            inputs = [self.jax.numpy.asarray(np.asarray(a, dtype=np.float64)) for a in arrays]
            argnums = tuple(range(len(inputs)))
            hessian = self.jax.hessian(lambda *xs: f(self.ops, *xs), argnums=argnums)
            h = self.jax.jit(hessian)(*inputs)  # compiled once: see hessians()
            return [[np.asarray(block) for block in row] for row in h]

    def hvp(self, f: Callable[..., Any], theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Forward-over-reverse Hessian-vector product, independent of the full Hessian."""
        jnp = self.jax.numpy
        with self.x64():
            x = jnp.asarray(np.asarray(theta, dtype=np.float64))
            tangent = jnp.asarray(np.asarray(v, dtype=np.float64))
            gradient = self.jax.grad(lambda t: f(self.ops, t))
            product = self.jax.jit(lambda x, v: self.jax.jvp(gradient, (x,), (v,))[1])
            return np.asarray(product(x, tangent))


@pytest.fixture(scope="session")
def torch_engine() -> TorchEngine:
    return TorchEngine()


@pytest.fixture(scope="session")
def jax_engine() -> JaxEngine:
    return JaxEngine()


@pytest.fixture(scope="session", params=["torch", "jax"])
def engine(request: pytest.FixtureRequest) -> Any:
    """Each reference engine in turn (session-scoped: hypothesis reruns share it)."""
    return request.getfixturevalue(f"{request.param}_engine")
