"""`jax`: ``jax.grad`` with 64-bit floats switched on only inside this engine's calls.

The descent is one jitted ``lax.scan``: compiled once per data shape and iteration count, then
run without returning to Python between steps. Inside, the data is taken CHUNK_ROWS rows at a
time (a ``fori_loop`` over fixed-size slices, then the remainder) and the chunks' losses and
gradients are added up, so XLA's temporary arrays stay the size of a chunk.
"""

from __future__ import annotations

import contextlib
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

from verifiers.data import Dataset
from verifiers.engines import base
from verifiers.engines.base import Engine, Evaluation, Progress, Trajectory, finish_trajectory


def x64(enabled: bool = True) -> contextlib.AbstractContextManager:
    """Scope jax's 64-bit mode to a ``with`` block, so it never leaks into other code."""
    if not enabled:
        return contextlib.nullcontext()
    enable_x64 = getattr(jax, "enable_x64", None)
    if enable_x64 is None:  # jax before 0.6 kept it under experimental
        from jax.experimental import enable_x64
    return enable_x64(True)


def _chunk_loss(theta: jax.Array, X: jax.Array, y: jax.Array, n: int) -> jax.Array:
    """A chunk's share of the MSE, ``((y - (X·w + b))²).sum() / N``, with ``θ = (b, w)``."""
    return jnp.sum((y - (X @ theta[1:] + theta[0])) ** 2) / n


def _over_chunks(per_chunk, theta: jax.Array, X: jax.Array, y: jax.Array):
    """The sum of ``per_chunk(θ, X_c, y_c, N)`` over the chunks of rows (traced, not run)."""
    n = y.shape[0]
    size = min(base.CHUNK_ROWS, n)
    full = n // size

    def add(total, start):
        part = per_chunk(
            theta,
            jax.lax.dynamic_slice_in_dim(X, start, size),
            jax.lax.dynamic_slice_in_dim(y, start, size),
            n,
        )
        return jax.tree_util.tree_map(jnp.add, total, part)

    total = per_chunk(theta, X[:size], y[:size], n)
    total = jax.lax.fori_loop(1, full, lambda i, total: add(total, i * size), total)
    if full * size < n:  # the remainder, a chunk of another (static) size
        part = per_chunk(theta, X[full * size :], y[full * size :], n)
        total = jax.tree_util.tree_map(jnp.add, total, part)
    return total


def _loss(theta: jax.Array, X: jax.Array, y: jax.Array) -> jax.Array:
    """``((y - (X·w + b))²).mean()``, summed chunk by chunk."""
    return _over_chunks(_chunk_loss, theta, X, y)


def _loss_and_gradient(theta: jax.Array, X: jax.Array, y: jax.Array):
    """The loss and ``jax.grad`` of it, each chunk differentiated on its own and added up."""
    return _over_chunks(jax.value_and_grad(_chunk_loss), theta, X, y)


def _loss_hessian(theta: jax.Array, X: jax.Array, y: jax.Array) -> jax.Array:
    """``jax.hessian`` of the loss, chunk by chunk."""
    return _over_chunks(jax.hessian(_chunk_loss), theta, X, y)


# XLA's optimiser costs more time than it saves on programs that run a few times on small data:
# those are compiled with it turned down. (Older jax has no compiler_options: plain jit there.)
_QUICK_COMPILE = {"xla_backend_optimization_level": 0}
# A descent doing less work than this (rows × iterations) is compiled quickly, not optimised.
QUICK_COMPILE_WORK = 10_000_000


def _jit(function, quick: bool, **options):
    if quick:
        try:
            return jax.jit(function, compiler_options=_QUICK_COMPILE, **options)
        except TypeError:
            pass
    return jax.jit(function, **options)


def _descent_steps(theta: jax.Array, lr: jax.Array, X: jax.Array, y: jax.Array, iterations: int):
    """θ_k and L(θ_k) for k = 0 .. iterations, in one compiled loop."""

    def step(theta: jax.Array, _: None) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        loss, gradient = _loss_and_gradient(theta, X, y)
        return theta - lr * gradient, (theta, loss)

    final, (thetas, losses) = jax.lax.scan(step, theta, None, length=iterations)
    thetas = jnp.concatenate([thetas, final[None]])
    return thetas, jnp.concatenate([losses, _loss(final, X, y)[None]])


_value_and_grad = _jit(_loss_and_gradient, quick=True)
_hessian = _jit(_loss_hessian, quick=True)
_descent = {
    quick: _jit(_descent_steps, quick=quick, static_argnames="iterations")
    for quick in (True, False)
}


class JaxEngine(Engine):
    name = "jax"
    summary = "jax.grad with x64 switched on for its own calls; the descent as one jitted loop"

    def __init__(self, data: Dataset, device: str = "auto") -> None:
        super().__init__(data, device)
        self._wide = self.dtype == np.float64
        with x64(self._wide):
            # jax runs on its default device unless the CPU is asked for (--device is for torch)
            self._device = jax.devices("cpu")[0] if device == "cpu" else jax.devices()[0]
            self.X = jax.device_put(data.X, self._device)
            self.y = jax.device_put(data.y, self._device)
        kind = self._device.device_kind
        self.device = self._device.platform + (f" ({kind})" if kind != "cpu" else "")
        self._compiled: dict[str, object] = {}
        self._compiling: threading.Thread | None = None

    def prepare(self, iterations: int) -> bool:
        """Compile the three programs in a background thread while other engines work.

        XLA compiles without holding Python's lock, so on a machine with two or more cores the
        compile time mostly disappears behind the other engines' Python loops. Calls made before
        it finishes wait for it; if it fails, they compile as usual.
        """

        def compile_all() -> None:
            with x64(self._wide):
                theta = self._theta(np.zeros(self.data.features + 1))
                lr = jnp.asarray(0, dtype=self.dtype)
                descent = _descent[self.data.rows * iterations < QUICK_COMPILE_WORK]
                self._compiled = {
                    "evaluate": _value_and_grad.lower(theta, self.X, self.y).compile(),
                    "hessian": _hessian.lower(theta, self.X, self.y).compile(),
                    ("descent", iterations): descent.lower(
                        theta, lr, self.X, self.y, iterations=iterations
                    ).compile(),
                }

        self._compiling = threading.Thread(target=compile_all, name="jax-compile", daemon=True)
        self._compiling.start()
        return True

    def _program(self, key: object, fallback):
        """The program compiled by :meth:`prepare` for `key`, else the jitted `fallback`."""
        if self._compiling is not None:
            self._compiling.join()
            self._compiling = None
        return self._compiled.get(key, fallback)

    def _theta(self, theta: np.ndarray) -> jax.Array:
        return jax.device_put(np.asarray(theta, dtype=self.dtype), self._device)

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        with x64(self._wide):
            program = self._program("evaluate", _value_and_grad)
            loss, gradient = program(self._theta(theta), self.X, self.y)
            return Evaluation(float(loss), np.asarray(gradient, dtype=np.float64))

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        with x64(self._wide):
            program = self._program("hessian", _hessian)
            return np.asarray(program(self._theta(theta), self.X, self.y), dtype=np.float64)

    def descend(
        self, theta: np.ndarray, lr: float, iterations: int, progress: Progress | None = None
    ) -> Trajectory:
        with x64(self._wide):
            started = time.perf_counter()
            lr_array = jnp.asarray(lr, dtype=self.dtype)
            jitted = _descent[self.data.rows * iterations < QUICK_COMPILE_WORK]
            compiled = self._program(("descent", iterations), None)
            arguments = (self._theta(theta), lr_array, self.X, self.y)
            if compiled is not None:
                thetas, losses = compiled(*arguments)
            else:
                thetas, losses = jitted(*arguments, iterations)
            thetas, losses = np.asarray(thetas), np.asarray(losses)
            seconds = time.perf_counter() - started
        trajectory = finish_trajectory(thetas[-1], losses, seconds)
        if trajectory.diverged_at is not None:  # stop where the step-by-step engines stop
            k = trajectory.diverged_at
            trajectory.theta = thetas[k].astype(np.float64)
            trajectory.losses = trajectory.losses[: k + 1]
        return trajectory
