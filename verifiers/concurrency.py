"""Engines side by side: each engine's work is a task, and tasks run on the free cores.

The engines are independent. Each reads the shared data and never writes it, fills in only its
own :class:`~verifiers.results.EngineReport`, and computes with the same operations in the same
order wherever it runs: numpy's BLAS is on one thread while any task runs (one task or several,
see :data:`~verifiers.engines.base.one_blas_thread`), torch on one thread per call, jax's 64-bit
mode and minigrad's grad mode are per thread, numpy's error state per context. So the results
are the same bit for bit whether the tasks run one after another or side by side; a test
compares the two.

A task may ask for the calling (main) thread: the user's ``--manual`` formula runs there, as it
would without threads. The first failure (in task order) is raised once every task that had
started has ended; tasks not yet started are not started, and descents still running stop at
their next progress report (:func:`stoppable`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from verifiers.engines.base import one_blas_thread

__all__ = ["WORKERS_VARIABLE", "Stopped", "Task", "available_workers", "run_tasks", "stoppable"]

# Set to 1 to run the engines one after another (or to N for at most N at a time).
WORKERS_VARIABLE = "VERIFIERS_WORKERS"


class Stopped(Exception):
    """Raised inside a task whose run was stopped because another task failed."""


@dataclass
class Task:
    """One engine's work: `run(stop)` is called once; `stop` is set when the run is stopped."""

    name: str
    run: Callable[[threading.Event], None]
    main_thread: bool = False


def available_workers() -> int:
    """Threads to run tasks on: the cores this process may use, or ``$VERIFIERS_WORKERS``."""
    value = os.environ.get(WORKERS_VARIABLE, "").strip()
    if value:
        return max(int(value), 1)
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def stoppable(callback: Callable[[int], None] | None, stop: threading.Event):
    """A progress callback that also ends the descent (raises Stopped) once `stop` is set."""

    def report(done: int) -> None:
        if stop.is_set():
            raise Stopped("stopped: another engine failed")
        if callback is not None:
            callback(done)

    return report


def run_tasks(tasks: list[Task], workers: int | None = None) -> None:
    """Run every task, on up to `workers` threads (default :func:`available_workers`).

    The calling thread takes the tasks that need it first, then any others; the other threads
    take the rest in order. Returns when every task has ended.
    """
    workers = available_workers() if workers is None else workers
    workers = min(workers, len(tasks))
    stop = threading.Event()
    with one_blas_thread:
        if workers <= 1:
            for task in tasks:
                task.run(stop)
            return
        _run_side_by_side(tasks, workers, stop)


def _run_side_by_side(tasks: list[Task], workers: int, stop: threading.Event) -> None:
    pending = list(enumerate(tasks))
    failures: dict[int, BaseException] = {}
    lock = threading.Lock()

    def take(main: bool) -> tuple[int, Task] | None:
        with lock:
            if stop.is_set():
                return None
            eligible = [item for item in pending if main or not item[1].main_thread]
            if main:  # the tasks that need this thread first
                eligible.sort(key=lambda item: not item[1].main_thread)
            if not eligible:
                return None
            pending.remove(eligible[0])
            return eligible[0]

    def work(main: bool) -> None:
        while (item := take(main)) is not None:
            index, task = item
            try:
                task.run(stop)
            except BaseException as error:  # re-raised in the calling thread
                with lock:
                    failures[index] = error
                stop.set()

    threads = [
        threading.Thread(target=work, args=(False,), name=f"engine-{k}", daemon=True)
        for k in range(workers - 1)
    ]
    for thread in threads:
        thread.start()
    try:
        work(True)
        for thread in threads:
            while thread.is_alive():
                thread.join(0.1)
    except BaseException:  # Ctrl-C while waiting: stop the others and wait for them
        stop.set()
        for thread in threads:
            thread.join()
        raise
    if failures:
        interrupts = [i for i, e in failures.items() if not isinstance(e, Exception)]
        raise failures[min(interrupts or failures)]
