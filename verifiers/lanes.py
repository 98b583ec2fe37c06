"""Engines in two processes: a lane each, so that no two engines contend for one interpreter.

Threads of one Python process share one lock (the GIL): engines that run side by side in
threads take turns at every Python-level step, and on a busy machine they wait for each other
far longer than two processes do. So the command line, when the work is large enough to pay
for starting a process, splits the engines into two *lanes*: the first runs in this process,
the second in a worker process started fresh (never forked); each lane runs its engines one
after another. The split balances the plan's own estimates of each engine's work (and keeps
torch and jax, the two heavy imports, in different processes, which also halves their import
time on two cores).

The worker holds its engines and answers calls on them over a pipe: :class:`RemoteEngine` is
the stand-in this process uses, with the interface of :class:`~verifiers.engines.base.Engine`.
An engine computes the same numbers in either process (the same code, one BLAS thread, torch
on one thread), so where an engine ran never changes a result. Only runs without user code use
a worker: a user's formula or loss stays in the process the command line supervises.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from verifiers.chunks import one_blas_thread
from verifiers.engines import engine_class, planning_facts, row
from verifiers.results import Check, Trust

__all__ = [
    "LaneError",
    "PendingWorker",
    "RemoteEngine",
    "assign",
    "start_worker",
    "worth_a_worker",
]

# A worker is started only when the engines' planned work is at least this many seconds: below,
# starting a process (an interpreter, numpy, the engine's package) costs more than it saves.
WORTH_SECONDS = 4.0


class LaneError(RuntimeError):
    """The worker process failed or ended (the engines it held report it as their error)."""


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to build the same model: the registry's name, the options and seed,
    and the data's arrays."""

    name: str
    options: dict[str, Any]
    seed: int
    path: str
    X: np.ndarray
    y: np.ndarray


def worth_a_worker(seconds: float) -> bool:
    """Whether a second process pays for itself: enough work to share."""
    return seconds >= WORTH_SECONDS


def assign(costs: dict[str, float]) -> tuple[list[str], list[str]]:
    """Split the engines into this process's lane and the worker's, balancing the estimated
    `costs` (seconds): the largest first, each to the lighter lane; torch and jax apart."""
    here: list[str] = []
    there: list[str] = []
    load = [0.0, 0.0]
    heavy = {"torch": 1, "jax": 0}  # one heavy import in each process
    for name in sorted(costs, key=lambda n: (-costs[n], n)):
        lane = heavy.get(name, 0 if load[0] <= load[1] else 1)
        (here if lane == 0 else there).append(name)
        load[lane] += costs[name]
    return here, there


# ---- the worker ---------------------------------------------------------------------------------
def _serve(connection: Any, spec: ModelSpec, names: list[str], device: str) -> None:
    """The worker's loop: build the model and the engines, then answer calls until told to stop.

    Each request is ``(engine, method, args, kwargs, progress)``; each answer ``("ok", value,
    state)`` or ``("error", exception, text)``, with ``("progress", done)`` messages before it
    when `progress` is asked for (a descent's progress bar)."""
    from verifiers.data import Dataset
    from verifiers.models import MODELS

    engines: dict[str, Any] = {}
    try:
        data = Dataset(path=spec.path, X=spec.X, y=spec.y)
        model = MODELS[spec.name](data, spec.options, spec.seed)
        for name in names:
            engines[name] = engine_class(name)(model, device)
        connection.send(("ok", {n: _state(e) for n, e in engines.items()}, None))
    except BaseException as error:  # reported to the parent, which decides
        connection.send(("error", _portable(error), traceback.format_exc()))
        return
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            break
        if request is None:
            break
        name, method, args, kwargs, progress = request
        engine = engines[name]
        if progress:
            kwargs = {**kwargs, "progress": lambda done: connection.send(("progress", done, None))}
        try:
            with one_blas_thread, np.errstate(all="ignore"):
                value = getattr(engine, method)(*args, **kwargs)
            connection.send(("ok", value, _state(engine)))
        except BaseException as error:  # reported to the parent, which decides
            connection.send(("error", _portable(error), traceback.format_exc()))
    for engine in engines.values():
        with contextlib.suppress(Exception):
            engine.close()


def _state(engine: Any) -> dict[str, Any]:
    """What the parent's stand-in mirrors after each call: facts an engine may change as it
    runs (numeric learns its method at the first point)."""
    return {
        "device": engine.device,
        "under_test": engine.under_test,
        "trust": {check: engine.trust(check) for check in Check},
    }


def _portable(error: BaseException) -> BaseException:
    """`error` itself when it survives pickling, else a LaneError with its text."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # any failure to round-trip
        return LaneError(f"{type(error).__name__}: {error}")
    return error


# The worker's command: the parent's module path, then the pipe's two descriptors.
_WORKER = (
    "import sys; sys.path[:] = sys.argv[3:]; "
    "from verifiers.lanes import _main; _main(int(sys.argv[1]), int(sys.argv[2]))"
)


def _main(reading: int, writing: int) -> None:
    """The worker process: the model and engines come down the pipe, then the calls."""
    import signal
    import warnings

    # Ctrl-C is the parent's to handle (it closes this worker); warnings are the command
    # line's to show (`python -W default` passes PYTHONWARNINGS on).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not os.environ.get("PYTHONWARNINGS"):
        warnings.simplefilter("ignore")
    incoming = Connection(reading, writable=False)
    outgoing = _Sender(Connection(writing, readable=False))
    try:
        spec, names, device = incoming.recv()
    except (EOFError, OSError):
        return
    from verifiers.distributed.processes import exit_with_parent

    exit_with_parent(os.getppid())  # nothing left running when the parent is killed
    _serve(_Duplex(incoming, outgoing), spec, names, device)


class _Sender:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def send(self, message: Any) -> None:
        self.connection.send(message)


class _Duplex:
    """Two one-way pipes as one connection."""

    def __init__(self, incoming: Connection, outgoing: _Sender) -> None:
        self.incoming, self.outgoing = incoming, outgoing

    def recv(self) -> Any:
        return self.incoming.recv()

    def send(self, message: Any) -> None:
        self.outgoing.send(message)


# ---- the parent's side --------------------------------------------------------------------------
class _Worker:
    """The worker process and the pipes to it; one call at a time.

    A plain child process (not multiprocessing's: that would start a resource-tracker process
    and re-import the parent's main module), given the parent's module path, with one pipe each
    way; it ends itself if its parent goes."""

    def __init__(self, spec: ModelSpec, names: list[str], device: str) -> None:
        down_read, down_write = os.pipe()
        up_read, up_write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WORKER, str(down_read), str(up_write), *sys.path],
                pass_fds=(down_read, up_write),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(down_read)
            os.close(up_write)
        self.sending = Connection(down_write, readable=False)
        self.receiving = Connection(up_read, writable=False)
        self.lock = threading.Lock()
        self.states: dict[str, dict[str, Any]] = {}
        self.failure: str | None = None
        self.sending.send((spec, names, device))

    def started(self) -> dict[str, dict[str, Any]]:
        """Wait for the engines to be built; their first states, or raise what failed."""
        kind, value, _ = self._receive()
        if kind == "error":
            raise value
        self.states = value
        return value

    def _receive(self) -> tuple[str, Any, Any]:
        try:
            return self.receiving.recv()
        except (EOFError, OSError):
            raise self._ended() from None

    def _ended(self) -> LaneError:
        """The worker is gone: say so, with its exit status, from now on."""
        try:
            code = self.process.wait(1)
        except subprocess.TimeoutExpired:
            code = None
        self.failure = f"the engines' worker process ended (exit status {code})"
        return LaneError(self.failure)

    def call(
        self,
        name: str,
        method: str,
        args: tuple,
        kwargs: dict[str, Any],
        progress: Callable[[int], None] | None = None,
    ) -> Any:
        with self.lock:
            if self.failure is not None:
                raise LaneError(self.failure)
            try:
                self.sending.send((name, method, args, kwargs, progress is not None))
            except (OSError, ValueError):
                raise self._ended() from None
            stopped: BaseException | None = None
            while True:  # read up to the answer, whatever a progress callback raises
                kind, value, extra = self._receive()
                if kind == "progress":
                    if progress is not None and stopped is None:
                        try:
                            progress(value)
                        except BaseException as error:  # re-raised below
                            stopped = error
                    continue
                if kind == "error":
                    raise value
                self.states[name] = extra
                if stopped is not None:
                    raise stopped
                return value

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sending.send(None)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.sending.close()
        self.receiving.close()


class RemoteEngine:
    """The stand-in for an engine that lives in the worker: the same methods, forwarded."""

    def __init__(self, worker: _Worker, name: str) -> None:
        self._worker = worker
        self.name = name
        self.background = False
        facts = planning_facts(name)  # without loading the engine's package here
        self.accepts_formula = facts.accepts_formula
        self.computes_hessian = facts.computes_hessian

    def _state(self) -> dict[str, Any]:
        return self._worker.states[self.name]

    @property
    def device(self) -> str:
        return self._state()["device"]

    @property
    def under_test(self) -> bool:
        return self._state()["under_test"]

    def trust(self, check: Check) -> Trust:
        return self._state()["trust"].get(check, row(self.name).trust)

    def prepare(self, iterations: int) -> bool:
        return bool(self._worker.call(self.name, "prepare", (iterations,), {}))

    def evaluate(self, theta: np.ndarray) -> Any:
        return self._worker.call(self.name, "evaluate", (np.asarray(theta),), {})

    def hessian(self, theta: np.ndarray) -> Any:
        return self._worker.call(self.name, "hessian", (np.asarray(theta),), {})

    def hessian_noise(self, theta: np.ndarray) -> Any:
        return self._worker.call(self.name, "hessian_noise", (np.asarray(theta),), {})

    def descend(
        self,
        theta: np.ndarray,
        lr: float,
        iterations: int,
        progress: Callable[[int], None] | None = None,
    ) -> Any:
        return self._worker.call(
            self.name, "descend", (np.asarray(theta), lr, iterations), {}, progress
        )

    def loss(self, theta: np.ndarray, xp: Any = None) -> Any:
        return self._worker.call(self.name, "loss", (np.asarray(theta),), {})

    def run_sharded(self, theta: np.ndarray, lr: float, iterations: int, workers: int) -> Any:
        return self._worker.call(self.name, "run_sharded", (theta, lr, iterations, workers), {})

    def close(self) -> None:
        """The worker closes its engines when it stops (see :func:`start_worker`)."""


class PendingWorker:
    """Start the worker with engines `names` on the same model, without waiting for it: its
    interpreter imports and builds its engines while this process builds its own (so the two
    heavy imports overlap); :meth:`ready` waits for it."""

    def __init__(self, model: Any, names: list[str], device: str) -> None:
        spec = ModelSpec(
            model.name, dict(model.settings), model.seed, model.data.path, model.data.X,
            model.data.y,
        )  # fmt: skip
        self.names = list(names)
        self.worker = _Worker(spec, self.names, device)

    def ready(self) -> tuple[dict[str, RemoteEngine], Callable[[], None]]:
        """The engines' stand-ins and a closer, once the worker has built them; raises what
        failed there (the worker is closed then)."""
        try:
            self.worker.started()
        except BaseException:
            self.worker.close()
            raise
        return {name: RemoteEngine(self.worker, name) for name in self.names}, self.worker.close

    def close(self) -> None:
        """Stop the worker without waiting for it to be ready."""
        self.worker.close()


def start_worker(
    model: Any, names: list[str], device: str
) -> tuple[dict[str, RemoteEngine], Callable[[], None]]:
    """Start the worker with engines `names` on the same model; their stand-ins and a closer."""
    return PendingWorker(model, names, device).ready()


def cores() -> int:
    """The cores this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)
