"""`jax`: ``jax.grad`` with 64-bit floats switched on only inside this engine's calls.

The loss is the model's own, run on ``jax.numpy``. The descent is one jitted ``lax.scan``:
compiled once per data shape and iteration count, then run without returning to Python between
steps. For losses that are a mean over rows the data is taken CHUNK_ROWS rows at a time inside
the compiled programs (a ``fori_loop`` over fixed-size slices, then the remainder), so XLA's
temporary arrays stay the size of a chunk.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from verifiers import chunks
from verifiers.engines.base import (
    DIVERGENCE_FACTOR,
    Derivatives,
    Engine,
    Evaluation,
    FunctionEngine,
    Progress,
    Trajectory,
    finish_trajectory,
)
from verifiers.models.base import Model
from verifiers.settings import UsageError


def x64(enabled: bool = True) -> contextlib.AbstractContextManager:
    """Scope jax's 64-bit mode to a ``with`` block, so it never leaks into other code."""
    if not enabled:
        return contextlib.nullcontext()
    enable_x64 = getattr(jax, "enable_x64", None)
    if enable_x64 is None:  # jax before 0.6 kept it under experimental
        from jax.experimental import enable_x64
    return enable_x64(True)


def _over_chunks(per_chunk, theta: jax.Array, X: jax.Array, y: jax.Array):
    """The sum of ``per_chunk(θ, X_c, y_c)`` over the chunks of rows (traced, not run)."""
    n = y.shape[0]
    size = min(chunks.CHUNK_ROWS, n)
    full = n // size

    def add(total, start):
        part = per_chunk(
            theta,
            jax.lax.dynamic_slice_in_dim(X, start, size),
            jax.lax.dynamic_slice_in_dim(y, start, size),
        )
        return jax.tree_util.tree_map(jnp.add, total, part)

    total = per_chunk(theta, X[:size], y[:size])
    total = jax.lax.fori_loop(1, full, lambda i, total: add(total, i * size), total)
    if full * size < n:  # the remainder, a chunk of another (static) size
        part = per_chunk(theta, X[full * size :], y[full * size :])
        total = jax.tree_util.tree_map(jnp.add, total, part)
    return total


# XLA's optimiser costs more time than it saves on programs that run a few times on small data:
# those are compiled with it turned down. (Older jax has no compiler_options: plain jit there.)
# Not to 0: at level 0 the CPU backend gets the gradient of a max over an axis wrong (inf and
# nan where the row's max is not found equal to itself; seen with jax 0.10.2 on the softmax's
# max-shifted log-sum-exp), while level 1 agrees with the default.
_QUICK_COMPILE = {"xla_backend_optimization_level": 1}
# A descent doing less work than this (rows × iterations) is compiled quickly, not optimised.
QUICK_COMPILE_WORK = 10_000_000


def _jit(function, quick: bool, **options):
    if quick:
        try:
            return jax.jit(function, compiler_options=_QUICK_COMPILE, **options)
        except TypeError:
            pass
    return jax.jit(function, **options)


class _Programs:
    """The model's loss, gradient, Hessian and descent as jax functions of a flat θ."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def _chunk_loss(self, theta: jax.Array, X: jax.Array, y: jax.Array) -> jax.Array:
        return self.model.row_sum(self.model.unflatten(theta), X, y, jnp) / self.model.data.rows

    def _penalty(self, theta: jax.Array) -> jax.Array:
        extra = self.model.penalty(self.model.unflatten(theta), jnp)
        return jnp.zeros((), theta.dtype) if extra is None else extra

    def _whole_loss(self, theta: jax.Array, X: jax.Array, y: jax.Array) -> jax.Array:
        return self.model.loss(self.model.unflatten(theta), X, y, jnp)

    def loss(self, theta, X, y):
        if not self.model.additive:
            return self._whole_loss(theta, X, y)
        return _over_chunks(self._chunk_loss, theta, X, y) + self._penalty(theta)

    def loss_and_gradient(self, theta, X, y):
        """The loss and ``jax.grad`` of it, each chunk differentiated on its own and added up."""
        if not self.model.additive:
            return jax.value_and_grad(self._whole_loss)(theta, X, y)
        value, gradient = _over_chunks(jax.value_and_grad(self._chunk_loss), theta, X, y)
        extra, extra_gradient = jax.value_and_grad(self._penalty)(theta)
        return value + extra, gradient + extra_gradient

    def hessian(self, theta, X, y):
        """``jax.hessian`` of the loss, chunk by chunk."""
        if not self.model.additive:
            return jax.hessian(self._whole_loss)(theta, X, y)
        return _over_chunks(jax.hessian(self._chunk_loss), theta, X, y) + jax.hessian(
            self._penalty
        )(theta)

    def descent(self, theta, lr, X, y, iterations: int):
        """L(θ_k) for k = 0 .. iterations, and θ at the end or where the descent diverged.

        After the first divergent loss θ stops moving, so the θ returned is the one at that
        iteration, as in the step-by-step engines; the history stays a float array.
        """
        first = self.loss(theta, X, y)
        limit = DIVERGENCE_FACTOR * jnp.abs(first)

        def step(carry, _):
            theta, stopped = carry
            loss, gradient = self.loss_and_gradient(theta, X, y)
            stopped = stopped | ~jnp.isfinite(loss) | (loss > limit)
            theta = jnp.where(stopped, theta, theta - lr * gradient)
            return (theta, stopped), loss

        (final, stopped), losses = jax.lax.scan(
            step, (theta, jnp.zeros((), bool)), None, length=iterations
        )
        last = jnp.where(stopped, jnp.nan, self.loss(final, X, y))
        return final, jnp.concatenate([losses, last[None]]) if iterations else first[None]


class JaxEngine(Engine):
    name = "jax"

    def __init__(self, model: Model, device: str = "auto") -> None:
        super().__init__(model, device)
        self._wide = self.dtype == np.float64
        with x64(self._wide):
            # jax runs on its default device unless the CPU is asked for (--device is for torch)
            self._device = jax.devices("cpu")[0] if device == "cpu" else jax.devices()[0]
            self.X = jax.device_put(model.data.X, self._device)
            self.y = jax.device_put(model.prepared_targets, self._device)
        kind = self._device.device_kind
        self.device = self._device.platform + (f" ({kind})" if kind != "cpu" else "")
        programs = _Programs(model)
        self._evaluate = _jit(programs.loss_and_gradient, quick=True)
        self._hessian = _jit(programs.hessian, quick=True)
        self._descent = {
            quick: _jit(programs.descent, quick=quick, static_argnames="iterations")
            for quick in (True, False)
        }
        self._compiled: dict[Any, Any] = {}
        self._compiling: threading.Thread | None = None

    def prepare(self, iterations: int) -> bool:
        """Compile the three programs in a background thread while other engines work.

        XLA compiles without holding Python's lock, so on a machine with two or more cores the
        compile time mostly disappears behind the other engines' Python loops. Calls made before
        it finishes wait for it; if it fails, they compile as usual. :meth:`close` waits for it
        too: a process must not exit while XLA is compiling in another thread.
        """

        def compile_all() -> None:
            with x64(self._wide):
                theta = self._theta(np.zeros(self.model.size))
                lr = jnp.asarray(0, dtype=self.dtype)
                descent = self._descent[self._quick(iterations)]
                compiled = {
                    "evaluate": self._evaluate.lower(theta, self.X, self.y).compile(),
                    ("descent", iterations): descent.lower(
                        theta, lr, self.X, self.y, iterations=iterations
                    ).compile(),
                }
                with contextlib.suppress(Exception):  # a Hessian too large to compile is fine
                    compiled["hessian"] = self._hessian.lower(theta, self.X, self.y).compile()
                self._compiled = compiled

        def guarded() -> None:
            with contextlib.suppress(Exception):  # the calls compile as usual instead
                compile_all()

        self._compiling = threading.Thread(target=guarded, name="jax-compile", daemon=True)
        self._compiling.start()
        return True

    def close(self) -> None:
        self._wait()

    def _wait(self) -> None:
        if self._compiling is not None:
            self._compiling.join()
            self._compiling = None

    def _quick(self, iterations: int) -> bool:
        return self.data.rows * iterations < QUICK_COMPILE_WORK

    def _program(self, key: object, fallback):
        """The program compiled by :meth:`prepare` for `key`, else the jitted `fallback`."""
        self._wait()
        return self._compiled.get(key, fallback)

    def _theta(self, theta: np.ndarray) -> jax.Array:
        return jax.device_put(np.asarray(theta, dtype=self.dtype), self._device)

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        with x64(self._wide):
            program = self._program("evaluate", self._evaluate)
            loss, gradient = program(self._theta(theta), self.X, self.y)
            return Evaluation(float(loss), np.asarray(gradient, dtype=np.float64))

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        with x64(self._wide):
            program = self._program("hessian", self._hessian)
            return np.asarray(program(self._theta(theta), self.X, self.y), dtype=np.float64)

    def run_sharded(self, theta: np.ndarray, lr: float, iterations: int, workers: int):
        """The rows sharded over K jax devices (in a fresh process: jax fixes its device count
        when it starts)."""
        from verifiers.distributed import run_jax

        device = "cpu" if self._device.platform == "cpu" else "auto"
        return run_jax(
            self.data.X, self.data.y, np.asarray(theta), workers=workers, lr=lr,
            iterations=iterations, dtype=self.dtype, device=device, model=self.model.name,
            options=self.model.settings,
        )  # fmt: skip

    def descend(
        self, theta: np.ndarray, lr: float, iterations: int, progress: Progress | None = None
    ) -> Trajectory:
        with x64(self._wide):
            started = time.perf_counter()
            lr_array = jnp.asarray(lr, dtype=self.dtype)
            arguments = (self._theta(theta), lr_array, self.X, self.y)
            compiled = self._program(("descent", iterations), None)
            if compiled is not None:
                final, losses = compiled(*arguments)
            else:
                jitted = self._descent[self._quick(iterations)]
                final, losses = jitted(*arguments, iterations=iterations)
            final, losses = np.asarray(final), np.asarray(losses, dtype=np.float64)
            seconds = time.perf_counter() - started
        trajectory = finish_trajectory(final, losses, seconds)
        if trajectory.diverged_at is not None:  # stop where the step-by-step engines stop
            trajectory.losses = trajectory.losses[: trajectory.diverged_at + 1]
        return trajectory


# ---- derivatives of any function (verifiers.check) ----------------------------------------------
class JaxFunctions(FunctionEngine):
    """A check file's function on ``jax.numpy`` (64-bit floats switched on inside its calls for
    a float64 check), on the CPU: ``jax.vjp`` (the tapped intermediates' shifts are arguments
    like the inputs), ``jax.jvp`` (forward mode), and the Hessian-vector product as forward over
    reverse, ``jvp(grad f)``.

    Each is one jitted program, compiled once per shape with XLA's optimiser turned down (run
    op by op, every primitive would be compiled on its own: ten times slower for a few points).
    A function that cannot be traced (a label read as a Python number) runs op by op instead.
    """

    name = "jax"

    def __init__(self, function, dtype) -> None:
        super().__init__(function, dtype)
        self._wide = self.dtype == np.float64
        self._device = jax.devices("cpu")[0]
        self._programs = {
            "vjp": _jit(self._vjp, quick=True),
            "jvp": _jit(self._jvp, quick=True),
            "hvp": _jit(self._hvp, quick=True),
        }

    def _evaluate(self, floats: dict, constants: dict, shifts: dict | None = None) -> Any:
        return jnp.asarray(self.function.evaluate(jnp, {**constants, **floats}, shifts))

    def _vjp(self, floats, constants, shifts, seed):
        out, pullback = jax.vjp(lambda fl, sh: self._evaluate(fl, constants, sh), floats, shifts)
        grads, tapped = pullback(seed.astype(out.dtype).reshape(out.shape))
        return {**grads, **tapped}

    def _jvp(self, floats, constants, tangents):
        return jax.jvp(lambda fl: self._evaluate(fl, constants), (floats,), (tangents,))[1]

    def _hvp(self, floats, constants, vector):
        gradient = jax.grad(lambda fl: jnp.reshape(self._evaluate(fl, constants), ()))
        return jax.jvp(gradient, (floats,), (vector,))[1]

    def _call(self, kind: str, *arguments: Any) -> Any:
        """The jitted program, or, for a function jax cannot trace, the same op by op."""
        program = self._programs[kind]
        try:
            return program(*arguments)
        except UsageError:  # the user's code ended or hung the call (verifiers.isolation)
            raise
        except Exception:  # untraceable: op by op (whatever fails then is the reason)
            return getattr(self, f"_{kind}")(*arguments)

    def _arrays(self, values: Mapping[str, np.ndarray], names: list[str]) -> dict[str, Any]:
        return {n: jnp.asarray(np.asarray(values[n], dtype=self.dtype)) for n in names}

    def _split(self, values: Mapping[str, np.ndarray]) -> tuple[list[str], dict, dict]:
        names = self.wrt(values)
        floats = self._arrays(values, names)
        constants = {n: jnp.asarray(np.asarray(v)) for n, v in values.items() if n not in names}
        return names, floats, constants

    def vjp(self, values, cotangent, taps) -> Derivatives:
        with x64(self._wide), jax.default_device(self._device):
            _, floats, constants = self._split(values)
            shifts = {t: jnp.zeros(shape, self.dtype) for t, shape in taps.items()}
            seed = jnp.asarray(np.asarray(cotangent))
            grads = self._call("vjp", floats, constants, shifts, seed)
            return Derivatives({n: np.asarray(g, dtype=np.float64) for n, g in grads.items()})

    def jvp(self, values, tangents) -> Derivatives:
        with x64(self._wide), jax.default_device(self._device):
            names, floats, constants = self._split(values)
            Jt = self._call("jvp", floats, constants, self._arrays(tangents, names))
            return Derivatives({"output": np.asarray(Jt, dtype=np.float64)})

    def hvp(self, values, vector) -> Derivatives:
        with x64(self._wide), jax.default_device(self._device):
            names, floats, constants = self._split(values)
            hv = self._call("hvp", floats, constants, self._arrays(vector, names))
            return Derivatives({n: np.asarray(h, dtype=np.float64) for n, h in hv.items()})
