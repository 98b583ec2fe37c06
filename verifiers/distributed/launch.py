"""Run the data-parallel loss, gradient and descent on this machine: torch and jax.

Both launchers write the data once to a private temporary directory, start fresh worker
processes, wait for them under a timeout, read the result and always clean up (see
:mod:`verifiers.distributed.processes`).

- :func:`run_torch`: K processes joined by ``torch.distributed``. The launcher itself hosts the
  rendezvous store, a ``TCPStore`` bound to 127.0.0.1 on a port the system picks (port 0), and
  gives the workers the port it got: no port is guessed, so two runs at once cannot collide and
  nothing listens beyond this machine. Gloo's own connections are kept on the loopback
  interface too.
- :func:`run_jax`: one fresh process (jax fixes its device count when it starts) with
  ``--xla_force_host_platform_device_count=K``, which shards the rows over K devices.

The model is named, with its options, and every worker builds it from the registry
(:mod:`verifiers.distributed.model`): any model that declares ``shardable = True`` runs. The
launcher builds it first on the whole data, which refuses a bad name, option or label before
any process starts and gives the parameters' shapes that every worker must find too.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import math
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from verifiers.distributed import processes
from verifiers.distributed.model import build_model, parameter_shapes
from verifiers.distributed.shards import ShardedError, ShardedResult, ShardPart, shard_rows
from verifiers.engines.base import EngineUnavailable, finish_trajectory
from verifiers.models import Model

__all__ = ["DEFAULT_TIMEOUT", "run_jax", "run_torch"]

# Seconds a run may take, starting its processes included, before it counts as hung.
DEFAULT_TIMEOUT = 300.0
_TORCH_BACKEND = "torch.distributed"
_FAIL_MODES = ("raise", "exit", "hang")


def run_torch(
    X: np.ndarray,
    y: np.ndarray,
    theta0: np.ndarray,
    *,
    workers: int,
    lr: float,
    iterations: int,
    dtype: str | np.dtype | None = None,
    device: str = "auto",
    model: str = "mse",
    options: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    workdir: str | Path | None = None,
    fail_rank: int | None = None,
    fail_mode: str = "raise",
) -> ShardedResult:
    """Loss, gradient and descent over `workers` torch.distributed processes on this machine.

    Worker k gets the k-th contiguous shard of rows (:func:`shard_rows`). The backend is NCCL
    when `device` is ``auto`` or ``cuda`` and there is a GPU for every worker, else gloo on the
    CPU. `model` is a name of the model registry whose class declares itself shardable, and
    `options` its options (``{"l2": 0.5}`` for ridge; its defaults fill in the rest); θ0 is in
    that model's θ order. `dtype` defaults to X's. `workdir` is where the private temporary
    directory goes (default: the system's). `fail_rank` and `fail_mode` (``raise``, ``exit``,
    ``hang``) make one worker fail on purpose; they exist for the tests.

    Raises ShardedError when a worker fails, dies or the run takes longer than `timeout`
    seconds; EngineUnavailable when torch or torch.distributed is missing.
    """
    X, y, theta0, dtype, built = _check(
        X, y, theta0, workers, lr, iterations, dtype, model, options, device
    )
    _check_failure(fail_rank, fail_mode, workers)
    try:
        import torch.distributed as dist
    except ImportError:
        raise EngineUnavailable(
            "torch", "the torch package is not installed", 'pip install "torch==2.13.0"'
        ) from None
    if not dist.is_available():
        raise EngineUnavailable("torch", "this torch build has no torch.distributed")
    from verifiers.distributed.torch_worker import Job, choose_backend

    started = time.perf_counter()
    try:
        backend, where = choose_backend(device, workers)
    except RuntimeError as error:
        raise EngineUnavailable("torch", str(error)) from None
    store = _local_store(dist, workers, timeout)
    try:
        with processes.WorkerGroup(_TORCH_BACKEND, processes.make_workdir(workdir)) as group:
            progress = processes.Progress(group.workdir / "progress.npy", workers)
            job = Job(
                rows=len(y),
                workers=workers,
                dtype=dtype.name,
                lr=lr,
                iterations=iterations,
                theta0=theta0.tolist(),
                model=model,
                options=built.settings,
                shapes=parameter_shapes(built),
                backend=backend,
                device=where,
                timeout=timeout,
                store_port=store.port,
                parent_pid=os.getpid(),
                fail_rank=fail_rank,
                fail_mode=fail_mode,
            )
            _stage(group.workdir, X, y, job.__dict__)
            env = processes.worker_environment(_local_network(backend))
            # K processes share the cores: each gets its share of threads (unless told).
            env.setdefault("OMP_NUM_THREADS", str(max((os.cpu_count() or 1) // workers, 1)))
            module = "verifiers.distributed.torch_worker"
            for rank in range(workers):
                argv = ["-m", module, "--job", str(group.workdir), "--rank", str(rank)]
                group.start(rank, argv, env)
            group.wait(timeout, progress)
            result = _read_result(group.workdir, _TORCH_BACKEND)
    finally:
        del store  # stops serving the port
    sizes = shard_rows(len(y), workers)
    return _sharded_result("torch", backend, where, sizes, result, time.perf_counter() - started)


def run_jax(
    X: np.ndarray,
    y: np.ndarray,
    theta0: np.ndarray,
    *,
    workers: int,
    lr: float,
    iterations: int,
    dtype: str | np.dtype | None = None,
    device: str = "auto",
    model: str = "mse",
    options: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    workdir: str | Path | None = None,
    fail_rank: int | None = None,
    fail_mode: str = "raise",
) -> ShardedResult:
    """Loss, gradient and descent with the rows sharded over `workers` jax devices.

    Runs in a fresh process, whose CPU is split into `workers` devices
    (``--xla_force_host_platform_device_count``) unless `device` is ``auto`` and jax's default
    backend (a GPU) has that many devices. The same arguments as :func:`run_torch`; a failure
    hook makes the jax process fail (it has no ranks, so `fail_rank` only switches it on).
    """
    X, y, theta0, dtype, built = _check(
        X, y, theta0, workers, lr, iterations, dtype, model, options, device
    )
    _check_failure(fail_rank, fail_mode, workers)
    if importlib.util.find_spec("jax") is None:
        raise EngineUnavailable("jax", "the jax package is not installed", "pip install jax jaxlib")
    label = f"jax.sharding ({workers} devices)"
    started = time.perf_counter()
    with processes.WorkerGroup(label, processes.make_workdir(workdir), ranked=False) as group:
        job = {
            "workers": workers,
            "dtype": dtype.name,
            "lr": lr,
            "iterations": iterations,
            "theta0": theta0.tolist(),
            "model": model,
            "options": built.settings,
            "shapes": parameter_shapes(built),
            "device": device,
            "parent_pid": os.getpid(),
            "fail_mode": fail_mode if fail_rank is not None else None,
        }
        _stage(group.workdir, X, y, job)
        argv = ["-m", "verifiers.distributed.jax_worker", str(group.workdir)]
        group.start(0, argv, _jax_env(workers, device))
        group.wait(timeout)
        result = _read_result(group.workdir, label)
    sizes = shard_rows(len(y), workers)
    seconds = time.perf_counter() - started
    return _sharded_result("jax", result["backend"], result["device"], sizes, result, seconds)


def _check(
    X: np.ndarray,
    y: np.ndarray,
    theta0: np.ndarray,
    workers: int,
    lr: float,
    iterations: int,
    dtype: str | np.dtype | None,
    model: str,
    options: Mapping[str, Any] | None,
    device: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.dtype, Model]:
    """The arrays in the run's dtype and the model built on them, after checking every
    argument (ValueError if wrong; DataError for labels the model cannot use)."""
    dtype = np.dtype(dtype if dtype is not None else np.asarray(X).dtype)
    if dtype not in (np.float64, np.float32):
        raise ValueError(f"dtype must be float64 or float32, not {dtype}")
    X = np.asarray(X, dtype=dtype)
    X = X.reshape(-1, 1) if X.ndim == 1 else X
    y = np.asarray(y, dtype=dtype).reshape(-1)
    if X.ndim != 2 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise ValueError(f"X of shape {X.shape} and y of shape {y.shape} do not match")
    built = build_model(model, options, X, y)
    theta0 = np.asarray(theta0, dtype=dtype).reshape(-1)
    if theta0.size != built.size:
        what = "b and one w per feature" if built.linear else "θ's entries in order"
        raise ValueError(f"θ0 needs {built.size} values ({what})")
    if not 1 <= workers <= len(y):
        raise ValueError(f"workers must be between 1 and the {len(y)} rows, not {workers}")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, not {lr!r}")
    if iterations < 0:
        raise ValueError(f"iterations must be 0 or more, not {iterations}")
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    return X, y, theta0, dtype, built


def _check_failure(fail_rank: int | None, fail_mode: str, workers: int) -> None:
    if fail_rank is not None and not 0 <= fail_rank < workers:
        raise ValueError(f"fail_rank must be a rank, 0 to {workers - 1}, not {fail_rank}")
    if fail_mode not in _FAIL_MODES:
        raise ValueError(f"fail_mode must be one of {', '.join(_FAIL_MODES)}, not {fail_mode!r}")


def _local_store(dist, workers: int, timeout: float):
    """The rendezvous store, served by this process on 127.0.0.1 and a port the system picks.

    It lives here so that its port is known before any worker starts (no port is guessed, so
    runs at once cannot collide). TCPStore would listen on every interface; it is handed a
    socket already bound to 127.0.0.1, so that nothing beyond this machine can reach it.
    """
    limit = datetime.timedelta(seconds=timeout)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        port = listener.getsockname()[1]
        store = dist.TCPStore(
            "127.0.0.1", port, workers, True, timeout=limit, wait_for_workers=False,
            master_listen_fd=listener.fileno(), use_libuv=True,
        )  # fmt: skip
    except Exception:  # a torch without this option: listen on port 0 of every interface
        listener.close()
        return dist.TCPStore("127.0.0.1", 0, workers, True, timeout=limit, wait_for_workers=False)
    listener.detach()  # the store owns the socket now, and closes it
    return store


def _stage(workdir: Path, X: np.ndarray, y: np.ndarray, job: dict) -> None:
    """Write the data (read by the workers, each its own rows, through a memory map) and job."""
    np.save(workdir / "X.npy", X)
    np.save(workdir / "y.npy", y)
    processes.write_json(workdir / "job.json", job)


def _local_network(backend: str) -> dict[str, str]:
    """Keep the workers' own connections on the loopback interface (never another address)."""
    loopback = next((name for _, name in socket.if_nameindex() if name.startswith("lo")), None)
    if loopback is None:  # pragma: no cover - every Unix has one
        return {}
    variable = "NCCL_SOCKET_IFNAME" if backend == "nccl" else "GLOO_SOCKET_IFNAME"
    return {variable: loopback}


def _jax_env(workers: int, device: str) -> dict[str, str]:
    """jax's settings for the fresh process: K host devices; the CPU only when asked for."""
    flags = [
        flag
        for flag in os.environ.get("XLA_FLAGS", "").split()
        if not flag.startswith("--xla_force_host_platform_device_count")
    ]
    flags.append(f"--xla_force_host_platform_device_count={workers}")
    extra = {"XLA_FLAGS": " ".join(flags)}
    if device == "cpu":
        extra["JAX_PLATFORMS"] = "cpu"
    return processes.worker_environment(extra)


def _read_result(workdir: Path, backend: str) -> dict:
    try:
        return json.loads((workdir / "result.json").read_text())
    except (OSError, ValueError):
        raise ShardedError(backend, "finished without writing its result") from None


def _sharded_result(
    engine: str, backend: str, device: str, sizes: list[int], result: dict, seconds: float
) -> ShardedResult:
    """The result types from a worker's JSON (floats written by repr: exact round trips)."""
    parts = np.asarray(result["parts"], dtype=np.float64)
    trajectory = finish_trajectory(
        np.asarray(result["theta"]), np.asarray(result["losses"]), result["seconds"]
    )
    return ShardedResult(
        engine=engine,
        workers=len(sizes),
        backend=backend,
        device=device,
        shard_rows=list(sizes),
        loss=float(result["loss"]),
        gradient=np.asarray(result["gradient"], dtype=np.float64),
        per_shard=[
            ShardPart(rows=int(n), loss_sum=float(p[0]), gradient_sum=p[1:].copy())
            for n, p in zip(sizes, parts, strict=True)
        ],
        descent=trajectory,
        seconds=seconds,
    )
