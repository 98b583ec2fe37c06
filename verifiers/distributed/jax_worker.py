"""The data-parallel jax run, in a process of its own: ``python -m ... WORKDIR``.

A fresh process because jax fixes its devices when it starts: :func:`run_jax` starts this with
``XLA_FLAGS=--xla_force_host_platform_device_count=K``, so the CPU appears as K devices. The rows
are laid out over a one-axis ``jax.sharding.Mesh`` (``NamedSharding(mesh, P("rows"))``) and
``jax.grad`` differentiates the *globally* normalised loss ``Σ ℓ_i / N + P``; XLA splits the sum
by device and inserts the all-reduce itself. ℓ_i is the model's own
:meth:`~verifiers.models.base.Model.row_losses` on ``jax.numpy``, the model built from the
registry (:mod:`verifiers.distributed.model`), and P its penalty (ridge's), which is no row's.

jax needs equal blocks per device, while the shards are 34/33/33 for 100 rows over 3: each
device gets a block of ``max(shard)`` rows, its shard first, then zero rows of weight 0, so that
device k holds exactly shard k and the padding adds nothing. The normalisation is by the true N.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from verifiers.distributed import processes
from verifiers.distributed.model import worker_model
from verifiers.distributed.shards import shard_bounds, shard_rows
from verifiers.engines.base import first_divergence
from verifiers.models import Model

# ---- the model's loss: its own per-row losses, weighted, and its penalty ----


def block_sum(model: Model, theta: jax.Array, X: jax.Array, y: jax.Array, weight: jax.Array):
    """``Σ weight_i·ℓ_i`` over the rows given: the model's row losses, the padding's weighed 0."""
    return jnp.sum(weight * model.row_losses(model.unflatten(theta), X, y, jnp))


def global_loss(
    model: Model, rows: int, theta: jax.Array, X: jax.Array, y: jax.Array, weight: jax.Array
) -> jax.Array:
    """The loss of the whole data set: every real row's loss over the true N (`rows`), plus the
    model's penalty, once."""
    total = block_sum(model, theta, X, y, weight) / rows
    extra = model.penalty(model.unflatten(theta), jnp)
    return total if extra is None else total + extra


def devices_for(workers: int, device: str) -> list:
    """`workers` devices: the default backend's (a GPU) when it has enough, else the CPU's."""
    if device != "cpu":
        default = jax.devices()
        if default[0].platform != "cpu" and len(default) >= workers:
            return default[:workers]
    cpu = jax.devices("cpu")
    if len(cpu) < workers:
        raise RuntimeError(
            f"jax sees {len(cpu)} CPU device(s), not {workers}: "
            "--xla_force_host_platform_device_count did not reach it"
        )
    return cpu[:workers]


def padded_blocks(
    X: np.ndarray, y: np.ndarray, workers: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X, y and a 0/1 row weight laid out as `workers` equal blocks, block k = shard k + padding."""
    rows, features = X.shape
    block = max(shard_rows(rows, workers))
    Xp = np.zeros((workers * block, features), dtype=X.dtype)
    yp = np.zeros((workers * block, *y.shape[1:]), dtype=y.dtype)  # targets may be rows too
    weight = np.zeros(workers * block, dtype=X.dtype)
    for k, shard in enumerate(shard_bounds(rows, workers)):
        start = k * block
        size = shard.stop - shard.start
        Xp[start : start + size] = X[shard]
        yp[start : start + size] = y[shard]
        weight[start : start + size] = 1
    return Xp, yp, weight


def run(job: dict, X: np.ndarray, y: np.ndarray) -> dict:
    """Loss and gradient at θ0, per-shard sums and the descent, sharded over the devices."""
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    workers, rows = job["workers"], len(y)
    # This one process holds every row; the model is built on them all, with the parameters
    # the launcher found (checked), and gives the targets as its loss takes them.
    model = worker_model(job["model"], job["options"], X, y, job["shapes"], "the jax process")
    y = np.asarray(model.prepared_targets)
    devices = devices_for(workers, job["device"])
    mesh = Mesh(np.array(devices), ("rows",))
    by_rows = NamedSharding(mesh, P("rows"))
    Xp, yp, weight = (jax.device_put(a, by_rows) for a in padded_blocks(X, y, workers))
    theta0 = jnp.asarray(np.asarray(job["theta0"], dtype=X.dtype))
    lr = jnp.asarray(job["lr"], dtype=X.dtype)

    def loss(theta: jax.Array, X: jax.Array, y: jax.Array, weight: jax.Array) -> jax.Array:
        return global_loss(model, rows, theta, X, y, weight)

    loss_and_gradient = jax.value_and_grad(loss)

    def descent(theta, lr, X, y, weight):
        def step(theta, _):
            value, gradient = loss_and_gradient(theta, X, y, weight)
            return theta - lr * gradient, (theta, value)

        final, (thetas, losses) = jax.lax.scan(step, theta, None, length=job["iterations"])
        last = loss(final, X, y, weight)
        return jnp.concatenate([thetas, final[None]]), jnp.concatenate([losses, last[None]])

    def block_sums(theta, X, y, weight):
        """On each device alone: its block's ``(Σ ℓ_i, Σ ∂ℓ_i/∂θ)``, one row per device (the
        penalty is no shard's)."""
        value, gradient = jax.value_and_grad(lambda t: block_sum(model, t, X, y, weight))(theta[0])
        return jnp.concatenate([value[None], gradient])[None]

    # θ goes in as one copy per device: the gradient with respect to a replicated input would
    # come back already summed over the devices, and the shards' own sums would be lost.
    per_device = _shard_map()(block_sums, mesh=mesh, in_specs=P("rows"), out_specs=P("rows"))
    copies = jax.device_put(jnp.broadcast_to(theta0, (workers, theta0.size)), by_rows)
    arguments = (theta0, Xp, yp, weight)
    evaluate = jax.jit(loss_and_gradient).lower(*arguments).compile()
    if not any(op in evaluate.as_text() for op in ("all-reduce", "reduce-scatter")):
        raise RuntimeError("the compiled gradient combines no devices: the rows were not sharded")
    value, gradient = evaluate(*arguments)
    parts = jax.jit(per_device)(copies, Xp, yp, weight)
    program = jax.jit(descent).lower(theta0, lr, Xp, yp, weight).compile()
    started = time.perf_counter()
    thetas, losses = program(theta0, lr, Xp, yp, weight)
    thetas, losses = np.asarray(thetas), np.asarray(losses, dtype=np.float64)
    seconds = time.perf_counter() - started
    stop = first_divergence(losses)  # where the step-by-step engines stop
    last = len(losses) - 1 if stop is None else stop
    platform = devices[0].platform
    return {
        "backend": f"jax.sharding ({workers} {platform} devices)",
        "device": platform,
        "loss": float(value),
        "gradient": np.asarray(gradient, dtype=np.float64).tolist(),
        "parts": np.asarray(parts, dtype=np.float64).tolist(),
        "theta": thetas[last].astype(np.float64).tolist(),
        "losses": losses[: last + 1].tolist(),
        "seconds": seconds,
    }


def _shard_map():
    """``jax.shard_map`` (jax 0.6 and later), else the experimental one it came from."""
    if hasattr(jax, "shard_map"):
        return jax.shard_map
    from jax.experimental.shard_map import shard_map

    return shard_map


def _inject_failure(mode: str | None) -> None:
    """The tests' hook: fail as `mode` says (raise, exit, hang)."""
    if mode == "raise":
        raise ValueError("injected failure in the jax process (test hook)")
    if mode == "exit":
        os._exit(3)
    if mode == "hang":
        time.sleep(24 * 3600)


def main(argv: list[str]) -> None:
    workdir = Path(argv[0])
    job = json.loads((workdir / "job.json").read_text())
    processes.exit_with_parent(job["parent_pid"])
    try:
        if job["dtype"] == "float64":
            jax.config.update("jax_enable_x64", True)
        _inject_failure(job["fail_mode"])
        X = np.load(workdir / "X.npy")
        y = np.load(workdir / "y.npy")
        processes.write_json(workdir / "result.json", run(job, X, y))
    except BaseException as error:
        processes.report_failure(workdir, 0, error, communicating=False)
        raise


if __name__ == "__main__":
    main(sys.argv[1:])
