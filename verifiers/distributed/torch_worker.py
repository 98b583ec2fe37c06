"""One worker of a data-parallel torch run: its shard's loss and gradient, all-reduced.

Every worker holds θ, reads its own contiguous shard of rows, builds the run's model from the
registry on those rows (:mod:`verifiers.distributed.model`), and computes the *sums* over its
rows of the model's own per-row loss (:meth:`~verifiers.models.base.Model.row_losses`, run on
torch through the torch engine's array namespace) and of its gradient (``torch.autograd``). One
``all_reduce(SUM)`` adds the workers' sums; dividing by the global row count N gives the mean
over the whole data set, however unevenly the rows are split, and the model's penalty, which is
no row's, is added once. The descent does that once per step and every worker applies the same
update, so the copies of θ stay equal.

Two ways to start it:

- locally, by :func:`verifiers.distributed.run_torch`, which hosts the rendezvous store on
  127.0.0.1 and passes its port (``--job DIR --rank R``; the data is in DIR as .npy files);
- on one or many machines, by torchrun, which sets RANK, WORLD_SIZE, MASTER_ADDR and
  MASTER_PORT; each worker then reads its rows from the CSV::

      torchrun --nnodes 2 --nproc-per-node 4 --node-rank 0 \\
          --master-addr HOST0 --master-port 29500 \\
          -m verifiers.distributed.torch_worker --csv data/data.csv --output result.json

  (``--model ridge --l2 0.5``, ``--model huber --delta 2``...: any model of the registry that
  declares itself shardable, with its own options.)

The backend is NCCL when every worker on a machine can have a GPU of its own, else gloo (CPU).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from verifiers.chunks import row_chunks
from verifiers.distributed import processes
from verifiers.distributed.model import (
    build_model,
    parameter_shapes,
    shardable_models,
    worker_model,
)
from verifiers.distributed.shards import shard_bounds, shard_rows
from verifiers.engines.base import diverged
from verifiers.engines.torch import xp  # the torch engine's namespace: the same loss code runs
from verifiers.models import Model, ModelOption, model_options

# ---- the model's loss: the sums of its own per-row losses, and its penalty ----


def shard_sums(model: Model, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(Σ ℓ_i, Σ ∂ℓ_i/∂θ)`` over the rows given, as one vector ``(loss, θ's entries...)``.

    ℓ_i is the model's :meth:`~verifiers.models.base.Model.row_losses`. Sums, not means: sums
    from any number of shards of any sizes add up to the whole sum. The rows are taken a chunk
    at a time, as the single-process engine takes them, so no running total is longer than
    there (the sharded run's rounding has the same bound) and one chunk's graph is alive at once.
    """
    t = theta.detach().requires_grad_(True)
    total = torch.zeros((), dtype=t.dtype, device=t.device)
    gradient = torch.zeros_like(t)
    for rows in row_chunks(len(y)):
        piece = model.row_sum(model.unflatten(t), X[rows], y[rows], xp)
        (part,) = torch.autograd.grad(piece, t)
        total += piece.detach()
        gradient += part
    return torch.cat([total.reshape(1), gradient])


def penalty_terms(model: Model, theta: torch.Tensor) -> torch.Tensor | None:
    """``(P, ∂P/∂θ)`` for the model's penalty, the part of the loss that is no row's (ridge's
    ``λ‖w‖²``), as one vector like :func:`shard_sums`; None when the model has none.

    Every worker computes it from its own copy of θ, which is the same on all of them, and adds
    it once after the all-reduce: summed over the workers, it would count K times.
    """
    t = theta.detach().requires_grad_(True)
    value = model.penalty(model.unflatten(t), xp)
    if value is None:
        return None
    value = torch.as_tensor(value, dtype=t.dtype, device=t.device)
    if not value.requires_grad:  # it does not depend on θ: its gradient is 0
        return torch.cat([value.reshape(1), torch.zeros_like(t)])
    (gradient,) = torch.autograd.grad(value, t)
    return torch.cat([value.detach().reshape(1), gradient])


# ---- talking to the other workers ----


class CommunicationError(RuntimeError):
    """A collective operation failed: usually another worker's failure, seen from here."""


class Collectives:
    """The few collective operations a worker uses, counted (to find a hang) and labelled."""

    def __init__(self, rank: int, progress: processes.Progress | None) -> None:
        self.rank = rank
        self.progress = progress

    def _enter(self) -> None:
        if self.progress is not None:
            self.progress.entered(self.rank)

    def all_reduce(self, tensor: torch.Tensor, op: str = "SUM") -> torch.Tensor:
        """The element-wise SUM (or MIN, MAX) over all workers (in place, and returned)."""
        self._enter()
        try:
            dist.all_reduce(tensor, op=getattr(dist.ReduceOp, op))
        except Exception as error:
            raise CommunicationError(f"all_reduce failed: {error}") from error
        return tensor

    def all_gather(self, tensor: torch.Tensor, workers: int) -> torch.Tensor:
        """Every worker's `tensor`, stacked in rank order."""
        self._enter()
        parts = [torch.empty_like(tensor) for _ in range(workers)]
        try:
            dist.all_gather(parts, tensor)
        except Exception as error:
            raise CommunicationError(f"all_gather failed: {error}") from error
        return torch.stack(parts)


def choose_backend(device: str, workers_here: int) -> tuple[str, str]:
    """(backend, device type): NCCL on CUDA when each local worker gets its own GPU, else gloo.

    ``device`` is ``auto``, ``cpu`` or ``cuda``; ``cuda`` without enough GPUs is an error.
    """
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "cuda" and gpus < workers_here:
        raise RuntimeError(
            f"device cuda needs one GPU per worker: {workers_here} workers here, {gpus} GPU(s)"
        )
    if device in ("auto", "cuda") and gpus >= workers_here and dist.is_nccl_available():
        return "nccl", "cuda"
    return "gloo", "cpu"


# ---- the run ----


@dataclass
class Job:
    """What every worker is told: the same for all of them."""

    rows: int  # N, all shards together
    workers: int
    dtype: str
    lr: float
    iterations: int
    theta0: list[float]
    model: str  # a name of the model registry (verifiers.models.MODELS)
    options: dict[str, Any]  # the model's options (given or default)
    shapes: list[list[Any]]  # the parameters the launcher's model has, [[name, shape], ...]
    backend: str
    device: str
    timeout: float
    store_port: int | None = None  # the launcher's rendezvous store on 127.0.0.1 (local runs)
    parent_pid: int | None = None  # the launcher: a worker exits when it is gone (local runs)
    fail_rank: int | None = None  # tests only: this rank fails, as `fail_mode` says
    fail_mode: str = "raise"


def work(
    job: Job, rank: int, X: np.ndarray, y: np.ndarray, collectives: Collectives
) -> dict | None:
    """Loss and gradient at θ0, per-shard sums and the descent; rank 0 returns them.

    `X` and `y` are this rank's shard of rows (the labels as the data holds them).
    """
    dtype = getattr(torch, job.dtype)
    cuda = job.device == "cuda"
    where = torch.device("cuda", _local_rank(rank)) if cuda else torch.device("cpu")
    model = worker_model(job.model, job.options, X, y, job.shapes, f"rank {rank}")
    X_shard = torch.as_tensor(np.ascontiguousarray(X), dtype=dtype, device=where)
    targets = np.ascontiguousarray(model.prepared_targets)  # as the loss takes them
    y_shard = torch.as_tensor(targets, dtype=dtype, device=where)
    theta = torch.tensor(job.theta0, dtype=dtype, device=where)
    n = job.rows

    def whole(sums: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """The whole data set's (loss, gradient) from this rank's sums: all-reduced, over N,
        and the penalty added once."""
        total = collectives.all_reduce(sums) / n
        extra = penalty_terms(model, theta)
        return total if extra is None else total + extra

    # At θ0: every shard's own sums (for the diagnosis of combinations), then the true total.
    local = shard_sums(model, theta, X_shard, y_shard)
    parts = collectives.all_gather(local, job.workers)
    at_start = whole(local.clone(), theta)

    started = time.perf_counter()
    losses: list[float] = []
    for k in range(job.iterations + 1):
        total = whole(shard_sums(model, theta, X_shard, y_shard), theta)
        losses.append(total[0].item())  # the same on every rank, so all stop together
        if k == job.iterations or diverged(losses[k], losses[0]):
            break
        theta = theta - job.lr * total[1:]
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started

    # Data parallelism is only right if every copy of θ took exactly the same steps.
    highest = collectives.all_reduce(theta.clone(), "MAX")
    lowest = collectives.all_reduce(theta.clone(), "MIN")
    if bool(torch.isfinite(theta).all()) and not torch.equal(highest, lowest):
        raise RuntimeError("the workers' copies of θ drifted apart during the descent")
    if rank != 0:
        return None
    return {
        "loss": at_start[0].item(),
        "gradient": at_start[1:].cpu().double().tolist(),
        "parts": parts.cpu().double().tolist(),
        "theta": theta.cpu().double().tolist(),
        "losses": losses,
        "seconds": seconds,
    }


def _local_rank(rank: int) -> int:
    return int(os.environ.get("LOCAL_RANK", rank))


def _inject_failure(job: Job, rank: int) -> None:
    """The tests' hook: make rank `fail_rank` fail after joining, while the others wait."""
    if job.fail_rank != rank:
        return
    if job.fail_mode == "raise":
        raise ValueError(f"injected failure in rank {rank} (test hook)")
    if job.fail_mode == "exit":
        os._exit(3)  # dies without a word, as a crash in native code would
    if job.fail_mode == "hang":
        time.sleep(24 * 3600)
    raise ValueError(f"unknown fail_mode {job.fail_mode!r}")


def _join(backend: str, rank: int, workers: int, timeout: float, store_port: int | None) -> None:
    """Join the process group: at the launcher's store locally, else as torchrun says (env://)."""
    limit = datetime.timedelta(seconds=timeout)
    try:
        if store_port is not None:
            store = dist.TCPStore("127.0.0.1", store_port, workers, False, timeout=limit)
            dist.init_process_group(
                backend, store=store, rank=rank, world_size=workers, timeout=limit
            )
        else:
            dist.init_process_group(backend, init_method="env://", timeout=limit)
    except Exception as error:
        raise CommunicationError(f"joining the process group failed: {error}") from error


def run_local(workdir: Path, rank: int) -> None:
    """A worker started by run_torch: job and data from `workdir`, results written there."""
    job = Job(**json.loads((workdir / "job.json").read_text()))
    if job.parent_pid is not None:
        processes.exit_with_parent(job.parent_pid)
    try:
        if job.device == "cuda":
            torch.cuda.set_device(_local_rank(rank))
        _join(job.backend, rank, job.workers, job.timeout, job.store_port)
        _inject_failure(job, rank)
        rows = shard_bounds(job.rows, job.workers)[rank]
        # Only this shard's rows are read from the memory-mapped files.
        X = np.load(workdir / "X.npy", mmap_mode="r")[rows]
        y = np.load(workdir / "y.npy", mmap_mode="r")[rows]
        progress = processes.Progress(workdir / "progress.npy")
        result = work(job, rank, X, y, Collectives(rank, progress))
        if result is not None:
            processes.write_json(workdir / "result.json", result)
        dist.destroy_process_group()
    except BaseException as error:
        communicating = isinstance(error, CommunicationError)
        processes.report_failure(workdir, rank, error, communicating)
        raise


def run_torchrun(args: argparse.Namespace) -> None:
    """A worker started by torchrun: its rows from the CSV, rank 0 prints the result."""
    from verifiers.data import load_csv

    rank, workers = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    workers_here = int(os.environ.get("LOCAL_WORLD_SIZE", workers))
    backend, device = choose_backend(args.device, workers_here)
    if device == "cuda":
        torch.cuda.set_device(_local_rank(rank))
    _join(backend, rank, workers, args.timeout, None)
    data = load_csv(args.csv, args.dtype)
    # Every process reads the whole file: the model built on all of it checks the labels and
    # gives the parameters' shapes and the default start, the same on every rank.
    model = build_model(args.model, args.options, data.X, data.y, path=args.csv)
    rows = shard_bounds(data.rows, workers)[rank]
    theta0 = _parse_theta0(args.theta0, model)
    job = Job(
        rows=data.rows,
        workers=workers,
        dtype=args.dtype,
        lr=args.lr,
        iterations=args.iterations,
        theta0=theta0,
        model=args.model,
        options=model.settings,
        shapes=parameter_shapes(model),
        backend=backend,
        device=device,
        timeout=args.timeout,
    )
    result = work(job, rank, data.X[rows], data.y[rows], Collectives(rank, None))
    dist.destroy_process_group()
    if result is None:
        return
    summary = {
        "model": args.model,
        "options": model.settings,
        "workers": workers,
        "backend": backend,
        "shard_rows": shard_rows(data.rows, workers),
        "loss": result["loss"],
        "gradient": result["gradient"],
        "final_theta": result["theta"],
        "final_loss": result["losses"][-1],
        "steps": len(result["losses"]) - 1,
    }
    print(json.dumps(summary))
    if args.output:
        processes.write_json(Path(args.output), {**result, **summary})


def _parse_theta0(text: str | None, model: Model) -> list[float]:
    """θ0 from ``--theta0``, in θ's order; the model's own start (zeros for b, w) without it."""
    if text is None:
        return model.start().tolist()
    values = [float(v) for v in text.split(",")]
    if len(values) != model.size:
        what = "b and one w per feature" if model.linear else "θ's entries in order"
        raise SystemExit(f"--theta0 needs {model.size} values ({what})")
    return values


def _model_arguments(parser: argparse.ArgumentParser) -> dict[str, tuple[str, ModelOption]]:
    """``--model`` and the options of the shardable models (``--l2``, ``--delta``...), from the
    registry; returns each option with the model it belongs to."""
    names = shardable_models()
    parser.add_argument(
        "--model", default="mse", choices=names, help=f"the model (default mse): {', '.join(names)}"
    )
    owners = {}
    for option_name, (owner, option) in model_options().items():
        if owner in names:
            kind = int if option.integer else float
            parser.add_argument(f"--{option_name}", type=kind, default=None, help=option.help)
            owners[option_name] = (owner, option)
    return owners


def _chosen_options(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    owners: dict[str, tuple[str, ModelOption]],
) -> dict[str, Any]:
    """The options given, each the chosen model's (as on the main command) and allowed by it;
    checked here, before any process waits for the others."""
    given = {name: getattr(args, name) for name in owners if getattr(args, name) is not None}
    for name, value in given.items():
        owner, option = owners[name]
        if owner != args.model:
            parser.error(f"--{name} is an option of --model {owner}, not {args.model}")
        problem = option.problem(value)
        if problem is not None:
            parser.error(problem)
    return given


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m verifiers.distributed.torch_worker",
        description="One worker of a data-parallel loss, gradient and descent (torchrun).",
    )
    parser.add_argument("--job", help=argparse.SUPPRESS)  # run_torch's local launch
    parser.add_argument("--rank", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--csv", help="the data: features, then the target, one row per line")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--lr", type=float, default=1e-4, help="learning rate (default 1e-4)")
    parser.add_argument("--iterations", type=int, default=1000, help="descent steps")
    # Not --start (the main command's name): torchrun's own parser reads any prefix of its
    # options, and takes --start for its --start-method before the worker sees it.
    parser.add_argument(
        "--theta0", help="θ0 as b,w1,... (θ's entries in order); the model's start by default"
    )
    owners = _model_arguments(parser)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for peers")
    parser.add_argument("--output", help="also write rank 0's full result to this JSON file")
    args = parser.parse_args(argv)
    args.options = _chosen_options(parser, args, owners)
    if args.job is not None:
        run_local(Path(args.job), args.rank)
    elif args.csv is not None and "RANK" in os.environ:
        run_torchrun(args)
    else:
        parser.error("run me with torchrun and --csv FILE (RANK and WORLD_SIZE are not set)")


if __name__ == "__main__":
    sys.exit(main())
