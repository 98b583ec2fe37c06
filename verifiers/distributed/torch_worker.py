"""One worker of a data-parallel torch run: its shard's loss and gradient, all-reduced.

Every worker holds θ, reads its own contiguous shard of rows, and computes the *sums* over
those rows of the per-row loss and of its gradient (``torch.autograd`` on the shard's summed
loss). One ``all_reduce(SUM)`` adds the workers' sums; dividing by the global row count N gives
the loss and gradient of the whole data set, however unevenly the rows are split. The descent
does that once per step and every worker applies the same update, so the copies of θ stay equal.

Two ways to start it:

- locally, by :func:`verifiers.distributed.run_torch`, which hosts the rendezvous store on
  127.0.0.1 and passes its port (``--job DIR --rank R``; the data is in DIR as .npy files);
- on one or many machines, by torchrun, which sets RANK, WORLD_SIZE, MASTER_ADDR and
  MASTER_PORT; each worker then reads its rows from the CSV::

      torchrun --nnodes 2 --nproc-per-node 4 --node-rank 0 \\
          --master-addr HOST0 --master-port 29500 \\
          -m verifiers.distributed.torch_worker --csv data/data.csv --output result.json

The backend is NCCL when every worker on a machine can have a GPU of its own, else gloo (CPU).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from verifiers.distributed import processes
from verifiers.distributed.shards import shard_bounds, shard_rows
from verifiers.engines.base import diverged

# ---- the model: one function per model, the loss of every row ----


def mse_rows(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared error of each row, ``(y_i - (X_i·w + b))²``, with ``θ = (b, w)``."""
    return (y - (X @ theta[1:] + theta[0])) ** 2


def logistic_rows(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of each row from its logit ``z = X_i·w + b``: ``log(1+eᶻ) - y z``."""
    z = X @ theta[1:] + theta[0]
    return torch.logaddexp(torch.zeros_like(z), z) - y * z


ROW_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": mse_rows,
    "logistic": logistic_rows,
}


def shard_sums(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, model: str) -> torch.Tensor:
    """``(Σ ℓ_i, Σ ∂ℓ_i/∂θ)`` over the rows given, as one vector ``(loss, dL/db, dL/dw...)``.

    Sums, not means: sums from any number of shards of any sizes add up to the whole sum.
    """
    t = theta.detach().requires_grad_(True)
    total = ROW_LOSSES[model](t, X, y).sum()
    (gradient,) = torch.autograd.grad(total, t)
    return torch.cat([total.detach().reshape(1), gradient])


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
    model: str
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

    `X` and `y` are this rank's shard of rows.
    """
    dtype = getattr(torch, job.dtype)
    cuda = job.device == "cuda"
    where = torch.device("cuda", _local_rank(rank)) if cuda else torch.device("cpu")
    X_shard = torch.as_tensor(np.ascontiguousarray(X), dtype=dtype, device=where)
    y_shard = torch.as_tensor(np.ascontiguousarray(y), dtype=dtype, device=where)
    theta = torch.tensor(job.theta0, dtype=dtype, device=where)
    n = job.rows

    # At θ0: every shard's own sums (for the diagnosis of combinations), then the true total.
    local = shard_sums(theta, X_shard, y_shard, job.model)
    parts = collectives.all_gather(local, job.workers)
    at_start = collectives.all_reduce(local.clone()) / n

    started = time.perf_counter()
    losses: list[float] = []
    for k in range(job.iterations + 1):
        total = collectives.all_reduce(shard_sums(theta, X_shard, y_shard, job.model)) / n
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
    rows = shard_bounds(data.rows, workers)[rank]
    theta0 = _parse_start(args.start, data.features)
    job = Job(
        rows=data.rows,
        workers=workers,
        dtype=args.dtype,
        lr=args.lr,
        iterations=args.iterations,
        theta0=theta0,
        model=args.model,
        backend=backend,
        device=device,
        timeout=args.timeout,
    )
    result = work(job, rank, data.X[rows], data.y[rows], Collectives(rank, None))
    dist.destroy_process_group()
    if result is None:
        return
    summary = {
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


def _parse_start(text: str | None, features: int) -> list[float]:
    if text is None:
        return [0.0] * (features + 1)
    values = [float(v) for v in text.split(",")]
    if len(values) != features + 1:
        raise SystemExit(f"--start needs {features + 1} values (b and one w per feature)")
    return values


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
    parser.add_argument("--start", help="θ0 as b,w1,...; zeros by default")
    parser.add_argument("--model", default="mse", choices=sorted(ROW_LOSSES))
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for peers")
    parser.add_argument("--output", help="also write rank 0's full result to this JSON file")
    args = parser.parse_args(argv)
    if args.job is not None:
        run_local(Path(args.job), args.rank)
    elif args.csv is not None and "RANK" in os.environ:
        run_torchrun(args)
    else:
        parser.error("run me with torchrun and --csv FILE (RANK and WORLD_SIZE are not set)")


if __name__ == "__main__":
    sys.exit(main())
