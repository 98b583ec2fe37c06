"""Starting, watching and stopping the worker processes of one data-parallel run.

Parent side (:class:`WorkerGroup`): every worker is a fresh Python interpreter (never a fork of
this one, whose torch and jax threads a fork would copy half-way) in a session of its own, so
that stopping it stops anything it started. The group is watched as a whole: the first worker
that fails stops all the others, and a run that outlives its timeout is stopped too. Whatever
happens, :meth:`WorkerGroup.close` leaves no process behind and the run's private temporary
directory is removed.

Worker side (:func:`report_failure`, :func:`exit_with_parent`, :class:`Progress`): a worker that
fails writes one line about the error to the run's directory before it exits, so the parent can
say which rank failed and why; a worker whose parent is gone exits; every worker counts the
collective operations it has entered, so a hang can be pinned on the rank that stopped first.

Only the standard library and numpy here: workers import this before torch or jax.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

import numpy as np

from verifiers.distributed.shards import ShardedError

__all__ = [
    "Progress",
    "WorkerGroup",
    "exit_with_parent",
    "make_workdir",
    "report_failure",
    "write_json",
]

# How often the parent looks at its workers (seconds): cheap, and a failure is noticed quickly.
_POLL_SECONDS = 0.02
# A worker killed by the parent gets this long to go after SIGTERM before SIGKILL.
_GRACE_SECONDS = 1.0
# The root of the repository: workers must import this package whatever the caller's directory.
_PACKAGE_ROOT = str(Path(os.path.abspath(__file__)).parents[2])
# The last line of a Python traceback: "ValueError: message" or "pkg.module.Error: message".
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b.*")


def make_workdir(parent: str | Path | None = None) -> Path:
    """A private directory for one run (``mkdtemp``: unique name, readable by this user only)."""
    return Path(tempfile.mkdtemp(prefix="verifiers-sharded-", dir=parent))


def write_json(path: Path, value: object) -> None:
    """Write JSON atomically: a reader sees the whole file or none of it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value))
    os.replace(partial, path)


def worker_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment, with the package importable and `extra` added."""
    env = dict(os.environ)
    paths = [_PACKAGE_ROOT, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update(extra or {})
    return env


class WorkerGroup:
    """The worker processes of one run, launched, watched and stopped together.

    Use as a context manager: leaving the ``with`` block, normally or by an exception (Ctrl-C
    included), kills any worker still running, waits for it and removes the work directory.
    """

    def __init__(self, backend: str, workdir: Path, ranked: bool = True) -> None:
        self.backend = backend  # names the run in messages: "torch.distributed"
        self.workdir = workdir
        self.ranked = ranked  # whether messages name ranks (one jax process has none)
        self.processes: dict[int, subprocess.Popen] = {}
        self._logs: list[IO[bytes]] = []

    def __enter__(self) -> WorkerGroup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self, rank: int, argv: list[str], env: dict[str, str]) -> None:
        """Start ``python argv...`` as worker `rank`; its output goes to a log in the workdir."""
        log = open(self.workdir / f"rank-{rank}.log", "wb")  # noqa: SIM115 (closed in close())
        self._logs.append(log)
        self.processes[rank] = subprocess.Popen(
            [sys.executable, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,
            start_new_session=True,  # its own process group: stopped with everything it started
        )

    def wait(self, timeout: float, progress: Progress | None = None) -> None:
        """Return when every worker has exited cleanly; else stop them all and raise.

        ShardedError names the failed rank and its error, or the ranks that had not finished
        after `timeout` seconds (with `progress`, the one(s) that stopped first).
        """
        deadline = time.monotonic() + timeout
        while True:
            codes = {rank: _exit_status(p) for rank, p in self.processes.items()}
            failed = [rank for rank, code in codes.items() if code not in (None, 0)]
            if failed:
                self.stop()
                rank, reason = self._culprit(failed, codes)
                raise ShardedError(self.backend, reason, rank if self.ranked else None)
            running = [rank for rank, code in codes.items() if code is None]
            if not running:
                self.stop()  # reaps them, and stops anything they left running
                return
            if time.monotonic() > deadline:
                counts = progress.read() if progress is not None else None
                self.stop()
                rank, reason = self._hang(running, timeout, counts)
                raise ShardedError(self.backend, reason, rank)
            time.sleep(_POLL_SECONDS)

    def stop(self) -> None:
        """Stop every worker and anything it started (SIGTERM, then SIGKILL); reap them all.

        Workers are reaped only here, after their process groups were signalled: until then a
        worker that has exited is a zombie, so its id (its group's id) cannot have been given to
        another process, and signalling the group cannot reach a stranger.
        """
        unreaped = [p for p in self.processes.values() if p.returncode is None]
        running = [p for p in unreaped if _exit_status(p) is None]
        for process in running:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + _GRACE_SECONDS
        while time.monotonic() < deadline and any(_exit_status(p) is None for p in running):
            time.sleep(_POLL_SECONDS)
        for process in unreaped:
            _signal_group(process, signal.SIGKILL)
        for process in unreaped:
            process.wait()
        _wait_until_gone([p.pid for p in unreaped])

    def close(self) -> None:
        """Stop the workers, close their logs and remove the work directory."""
        try:
            self.stop()
        finally:
            for log in self._logs:
                log.close()
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _culprit(self, failed: list[int], codes: dict[int, int | None]) -> tuple[int, str]:
        """The rank to blame and why, when some have failed.

        A worker's own error comes first (the earliest, if several); then a worker that died
        without a word (killed, or exited hard); last an error met while communicating, which is
        usually another rank's failure seen from the outside.
        """
        reports = {rank: _read_report(self.workdir / f"error-{rank}.json") for rank in failed}
        own = [r for r in failed if reports[r] and not reports[r]["communicating"]]
        silent = [r for r in failed if not reports[r]]
        seen = [r for r in failed if reports[r] and reports[r]["communicating"]]
        if own or seen:
            first = min(own or seen, key=lambda r: reports[r]["time"])
            if own or not silent:
                return first, f"failed: {reports[first]['error']}"
        rank = min(silent)
        return rank, self._death(rank, codes[rank])

    def _death(self, rank: int, code: int | None) -> str:
        """Why a worker that wrote no report ended: a signal, or the last line of its output."""
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"died: killed by {name}"
        last = _last_exception_line(self.workdir / f"rank-{rank}.log")
        if last:
            return f"failed: {last}"
        return f"died: exited with status {code} without reporting an error"

    def _hang(
        self, running: list[int], timeout: float, counts: np.ndarray | None
    ) -> tuple[int | None, str]:
        """Who did not finish in time; with progress counts, who stopped first."""
        limit = f"within {timeout:g} s"
        if not self.ranked:
            return None, f"did not finish {limit} and was stopped"
        stuck, waiting = running, []
        if counts is not None:
            lowest = min(int(counts[r]) for r in running)
            stuck = [r for r in running if counts[r] == lowest]
            waiting = [r for r in running if r not in stuck]
        # One rank to blame goes to ShardedError (which names it); several are named here.
        rank = stuck[0] if len(stuck) == 1 else None
        subject = "" if rank is not None else f"{_ranks(stuck)} "
        if waiting:
            return rank, (
                f"{subject}did not finish {limit}: stuck before collective operation "
                f"{lowest + 1}, where {_ranks(waiting)} "
                f"{'was' if len(waiting) == 1 else 'were'} waiting; all workers were stopped"
            )
        return rank, f"{subject}did not finish {limit}; all workers were stopped"


def _ranks(ranks: list[int]) -> str:
    """``rank 2`` or ``ranks 0, 1``."""
    if len(ranks) == 1:
        return f"rank {ranks[0]}"
    return "ranks " + ", ".join(map(str, ranks))


def _wait_until_gone(groups: list[int]) -> None:
    """Wait, briefly, until these process groups are empty.

    A process killed with SIGKILL takes a moment to die, and a worker's own children are not
    ours to reap; without this wait they could still be seen running when the run returns.
    """
    if not hasattr(os, "killpg"):  # pragma: no cover - not POSIX
        return
    deadline = time.monotonic() + _GRACE_SECONDS
    for group in groups:
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)  # signal 0: only asks whether anyone is left
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(_POLL_SECONDS)


def _exit_status(process: subprocess.Popen) -> int | None:
    """The worker's return code (negative: the signal that killed it), None while it runs.

    Unlike ``Popen.poll`` it leaves an exited worker unreaped (``WNOWAIT``): see
    :meth:`WorkerGroup.stop`.
    """
    if process.returncode is not None:
        return process.returncode
    if not hasattr(os, "waitid"):  # pragma: no cover - not Linux or macOS
        return process.poll()
    try:
        info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # already reaped elsewhere
        return process.poll()
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    """Send `sig` to the worker's process group (the worker and anything it started).

    Only for a worker not yet reaped, whose id cannot have been given to another process.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(process.pid, sig)
        else:  # pragma: no cover - not POSIX
            process.send_signal(sig)


def _read_report(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _last_exception_line(log: Path) -> str | None:
    """The last ``SomeError: message`` line of a worker's output (a traceback's last line)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines[-200:]):
        if _EXCEPTION_LINE.match(line.strip()):
            return line.strip()
    return None


# ---- worker side ----


def report_failure(workdir: Path, rank: int, error: BaseException, communicating: bool) -> None:
    """Write what went wrong in worker `rank`, in one line, for the parent to read."""
    message = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {message[0]}" if message else type(error).__name__
    write_json(
        workdir / f"error-{rank}.json",
        {"error": text, "communicating": communicating, "time": time.time_ns()},
    )


def exit_with_parent(parent_pid: int, every: float = 0.5) -> None:
    """Exit this process as soon as its parent is gone (a watcher thread; no leftovers)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(every)
        os._exit(70)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class Progress:
    """A shared counter per rank: how many collective operations each worker has entered.

    A memory-mapped file in the run's directory: a worker updates its entry with a plain memory
    write (no system call), and the parent reads all of them when a run hangs.
    """

    def __init__(self, path: Path, workers: int | None = None) -> None:
        if workers is not None:  # the parent creates it, and keeps the mapping it made
            # (np.load parses the header with ast, which Python 3.11 does not allow in two
            # threads at once: runs launched side by side failed with a SystemError)
            self._counts = np.lib.format.open_memmap(
                path, mode="w+", dtype=np.int64, shape=(workers,)
            )
            self._counts.flush()
        else:  # a worker: one thread
            self._counts = np.load(path, mmap_mode="r+")

    def entered(self, rank: int) -> None:
        self._counts[rank] += 1

    def read(self) -> np.ndarray:
        return np.array(self._counts)
