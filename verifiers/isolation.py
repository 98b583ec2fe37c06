"""The user's code (``--manual``, ``--loss``, ``--combine`` and the import of their files) cannot
end, hang or silently pass a run.

Every call into user code goes through :func:`user_call`. Inside the process that makes it, a
``BaseException`` that is not an ``Exception`` (``SystemExit``, ``GeneratorExit``, a class of
the user's own) becomes :class:`UserCodeError`, a usage error: one line, exit status 2. An
``Exception`` is left to the caller, which has its own message for it.

What no ``except`` clause can catch (``os._exit``, a crash of the interpreter, being killed, a
call that never returns) is handled one level up. On the command line, a run given user code
(:func:`run_isolated`) runs whole (loading the files, the check, the report and the outputs) in
a child: a fresh interpreter (never a fork of this one, whose torch and jax threads a fork would
copy half-way) in a session of its own, so that stopping it stops everything it started. The
child's last act is to send its exit status down a pipe; the parent trusts only that message.
A child that ends without it is one line naming the user code that was running, exit status 2.
Meanwhile :func:`user_call` writes which user code is running, and since when, in memory
shared with the parent (:class:`Board`, one slot per call in progress, so calls on several
engine threads are all seen), and the parent stops the child, and everything in its session,
once one call has run longer than the time limit (``--time-limit``).

"Everything in its session": its process group at once, then, from /proc where there is one, any
process of the session that moved to a group of its own. A process that starts a session of its
own is out of reach (the distributed workers do so, and exit when their parent, the child, is
gone); and the child stops its own process group when the parent is killed without a word.

Ctrl-C reaches only the parent (the child is not in the terminal's session): the parent stops
the child and exits with 130. So inside the child a ``KeyboardInterrupt`` can only be the user
code's own, and is a usage error like any other; in-process (the Python API, no child) it is
the user's Ctrl-C and goes through.

The Python API (:func:`verifiers.verify`) starts no child: there, only the conversion of
``BaseException`` applies, with no time limit. And the child guards against accidents, not
against malice: code running inside it could still write a status down the pipe on purpose.

The time limit's default and the option are in :class:`verifiers.settings.Settings`.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from verifiers.settings import UsageError

__all__ = [
    "Board",
    "UserCodeError",
    "can_isolate",
    "describe",
    "in_isolated_child",
    "run_isolated",
    "user_call",
]

T = TypeVar("T")

# How often the parent looks at its child (seconds): cheap, and a hang is noticed quickly.
_POLL_SECONDS = 0.05
# How long the parent waits for the child to exit once it has sent its status, and for the
# processes it stopped to be gone, before it goes on (seconds).
_GRACE_SECONDS = 5.0
# How often the child checks that its parent is still there (seconds).
_PARENT_CHECK_SECONDS = 0.5

# The shared board: one slot per call in progress. A slot is a sequence number (odd while its
# owner writes it), the call's start on the monotonic clock (0: free), the label's length in
# bytes, then the label (UTF-8, cut to fit).
_SLOTS = 64
_SLOT_BYTES = 256
_LABEL_OFFSET = 24
_LABEL_BYTES = _SLOT_BYTES - _LABEL_OFFSET
_SEQUENCE = struct.Struct("<Q")
_STATE = struct.Struct("<dH")  # at offset 8
_BOARD_BYTES = _SLOTS * _SLOT_BYTES

# The child's program: the parent's import path first (so it imports this very package), then
# this module's child_main. Nothing of the parent's __main__ is imported.
_CHILD_PROGRAM = (
    "import json, sys; payload = json.loads(sys.argv[1]); sys.path[:] = payload['path']; "
    "from verifiers.isolation import child_main; child_main(payload)"
)


class UserCodeError(UsageError):
    """User code raised a ``BaseException`` that is not an ``Exception``, or ended or hung the
    process that ran it (the command line exits with 2).

    `label` names the code (``--manual f.py:gradient``); `error` is what it raised, if anything.
    """

    def __init__(self, message: str, label: str, error: BaseException | None = None) -> None:
        super().__init__(message)
        self.label = label
        self.error = error


def describe(error: BaseException) -> str:
    """What user code did, for a message: ``raised Boom: why`` or ``called sys.exit(0)``."""
    if isinstance(error, SystemExit):
        return f"called sys.exit({error.code!r})"
    lines = str(error).strip().splitlines()
    return f"raised {type(error).__name__}" + (f": {lines[0]}" if lines else "")


class Board:
    """Which user code is running, and since when: one slot per call in progress, in memory
    that the supervising parent reads (see the module's docstring).

    A slot has one writer (the thread that took it), so a seqlock is enough: the writer makes
    the slot's sequence number odd, writes, and makes it even again; a reader keeps what it
    read only when the number was even and unchanged.
    """

    def __init__(self, memory: mmap.mmap) -> None:
        self._memory = memory
        self._lock = threading.Lock()
        self._free = list(range(_SLOTS - 1, -1, -1))
        self._sequence = [0] * _SLOTS

    @classmethod
    def attach(cls, descriptor: int) -> Board:
        """The board in the shared file open at `descriptor` (which is then closed)."""
        try:
            return cls(mmap.mmap(descriptor, _BOARD_BYTES))
        finally:
            os.close(descriptor)

    def enter(self, label: str) -> int | None:
        """Note that `label` starts running now; its slot (None when every slot is taken)."""
        with self._lock:
            if not self._free:
                return None
            slot = self._free.pop()
        encoded = label.encode("utf-8", "replace")[:_LABEL_BYTES]
        self._write(slot, time.monotonic(), encoded)
        return slot

    def leave(self, slot: int) -> None:
        """Note that the call in `slot` has ended."""
        self._write(slot, 0.0, b"")
        with self._lock:
            self._free.append(slot)

    def close(self) -> None:
        """Unmap the shared memory."""
        self._memory.close()

    def running(self) -> list[tuple[str, float]]:
        """Each call in progress: its label and its start on the monotonic clock."""
        memory, found = self._memory, []
        for slot in range(_SLOTS):
            offset = slot * _SLOT_BYTES
            (before,) = _SEQUENCE.unpack_from(memory, offset)
            if before % 2:
                continue  # being written: seen at the next look
            since, length = _STATE.unpack_from(memory, offset + 8)
            start = offset + _LABEL_OFFSET
            label = bytes(memory[start : start + min(length, _LABEL_BYTES)])
            (after,) = _SEQUENCE.unpack_from(memory, offset)
            if before == after and since > 0:
                found.append((label.decode("utf-8", "replace"), since))
        return found

    def _write(self, slot: int, since: float, label: bytes) -> None:
        memory, offset = self._memory, slot * _SLOT_BYTES
        sequence = self._sequence[slot] + 1
        _SEQUENCE.pack_into(memory, offset, sequence)
        start = offset + _LABEL_OFFSET
        memory[start : start + len(label)] = label
        _STATE.pack_into(memory, offset + 8, since, len(label))
        _SEQUENCE.pack_into(memory, offset, sequence + 1)
        self._sequence[slot] = sequence + 1


# Set in the isolated child only: the board its parent reads.
_board: Board | None = None


def in_isolated_child() -> bool:
    """Whether this process is the isolated child of a command-line run."""
    return _board is not None


def can_isolate() -> bool:
    """Whether a run can be moved into a supervised child here (POSIX, and not already one)."""
    return os.name == "posix" and hasattr(os, "killpg") and not in_isolated_child()


def user_call(label: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)``, a call into user code named `label` in messages.

    An ``Exception`` goes through unchanged. Any other ``BaseException`` becomes
    :class:`UserCodeError` (``KeyboardInterrupt`` too, except in-process, where it is Ctrl-C).
    In the isolated child the call is on the board, where the parent enforces the time limit.
    """
    board = _board
    slot = board.enter(label) if board is not None else None
    try:
        return function(*args, **kwargs)
    except Exception:
        raise
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt) and board is None:
            raise
        raise UserCodeError(f"{label}: {describe(error)}", label, error) from None
    finally:
        if slot is not None:
            board.leave(slot)


# ---- parent side ----------------------------------------------------------------------------
def run_isolated(
    argv: Sequence[str], given: Sequence[str], time_limit: float, program: str = "verifiers.run"
) -> int:
    """Run ``python -m PROGRAM ARGV`` in a supervised child; its exit status.

    `program` is the command line's module (its ``main(argv)`` runs in the child):
    ``verifiers.run`` for the models, ``verifiers.check`` for check files.

    `given` names the user code on the command line (``--manual f.py:gradient``), for the
    message when the child ends without a word. Raises :class:`UserCodeError` when the child
    ends without sending its status, or when a call of user code runs past `time_limit`
    seconds; ``KeyboardInterrupt`` on Ctrl-C. In every case the child and everything in its
    session have been stopped.
    """
    status_read, status_write = os.pipe()
    board_descriptor = _shared_file(_BOARD_BYTES)
    for descriptor in (status_write, board_descriptor):
        os.set_inheritable(descriptor, True)
    board = Board(mmap.mmap(board_descriptor, _BOARD_BYTES))
    payload = {
        "argv": list(argv),
        "program": list(sys.argv),
        "path": list(sys.path),
        "status": status_write,
        "board": board_descriptor,
        "parent": os.getpid(),
        "given": list(given),
        "main": program,
    }
    for stream in (sys.stdout, sys.stderr):  # what this process printed comes first
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    try:
        child = subprocess.Popen(
            [
                sys.executable,
                *(f"-W{option}" for option in sys.warnoptions),
                "-c",
                _CHILD_PROGRAM,
                json.dumps(payload),
            ],
            stdin=subprocess.DEVNULL,
            # Every descriptor this process inherited goes to the child too (an output given
            # as /dev/fd/N must name the same file there); its own two are made inheritable.
            close_fds=False,
            start_new_session=True,  # out of reach of the terminal's Ctrl-C; stopped as a whole
        )
    finally:
        os.close(status_write)
        os.close(board_descriptor)
    try:
        status, died = _supervise(child, status_read, board, time_limit)
    finally:
        _stop(child)
        os.close(status_read)
        board.close()
    if status is not None:
        return status
    running = sorted({label for label, _ in died})
    how = _ending(child.returncode)
    if running:
        label = " or ".join(running)
        raise UserCodeError(f"{label} ended the process ({how}) before the check finished", label)
    label = ", ".join(given)
    raise UserCodeError(
        f"the run ended ({how}) before the check finished, while no call of the user code "
        f"({label}) was running",
        label,
    )


def _supervise(
    child: subprocess.Popen, status_read: int, board: Board, time_limit: float
) -> tuple[int | None, list[tuple[str, float]]]:
    """Watch the child until it exits: its status (None when it sent none) and, when it sent
    none, the calls of user code that were running. Raises UserCodeError past the time limit."""
    os.set_blocking(status_read, False)
    message, open_pipe = b"", True
    sent_at = None
    poll = min(_POLL_SECONDS, max(time_limit / 10, 0.005))
    while True:
        running = board.running()
        if _exited(child):
            message += _drain(status_read)
            status = _status(message, child.pid)
            return status, [] if status is not None else running
        if open_pipe:
            ready, _, _ = select.select([status_read], [], [], poll)
            if ready:
                chunk = _drain(status_read)
                open_pipe = bool(chunk)  # an empty read: every writer has closed it
                message += chunk
        else:
            time.sleep(poll)
        if _status(message, child.pid) is not None:
            # Sent: the child exits next. One that lingers (stuck in its own shutdown) is
            # stopped after a grace period; its status stands.
            sent_at = sent_at or time.monotonic()
            if time.monotonic() - sent_at > _GRACE_SECONDS:
                return _status(message, child.pid), []
            continue
        now = time.monotonic()
        for label, since in running:
            if now - since > time_limit:
                raise UserCodeError(
                    f"{label} was still running after {time_limit:g} s, the time limit for "
                    "one call of user code (--time-limit SECONDS); the run was stopped",
                    label,
                )


def _drain(descriptor: int) -> bytes:
    """What can be read from the (non-blocking) pipe now."""
    chunks = []
    while True:
        try:
            chunk = os.read(descriptor, 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _status(message: bytes, pid: int) -> int | None:
    """The exit status in the child's message ``exit STATUS PID``; None when there is none.

    The process id tells the child's own message from one sent by a copy of it (a fork made by
    user code, which inherits the pipe and may run on to the end of the check).
    """
    for line in message.decode("ascii", "replace").splitlines(keepends=True):
        words = line.split()
        if (
            line.endswith("\n")
            and len(words) == 3
            and words[0] == "exit"
            and words[1].isdigit()
            and int(words[1]) < 256
            and words[2] == str(pid)
        ):
            return int(words[1])
    return None


def _exited(child: subprocess.Popen) -> bool:
    """Whether the child has ended, leaving it unreaped (``WNOWAIT``): until it is reaped its
    id, which is also its session's and process group's, cannot be given to another process,
    so :func:`_stop` cannot signal a stranger."""
    if child.returncode is not None:
        return True
    if not hasattr(os, "waitid"):  # pragma: no cover - not Linux or macOS
        return child.poll() is not None
    try:
        return os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # already reaped
        return True


def _stop(child: subprocess.Popen) -> None:
    """Kill the child, its process group and every process of its session; reap the child."""
    session = child.pid  # it leads its own session and process group
    deadline = time.monotonic() + _GRACE_SECONDS
    while True:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(session, signal.SIGKILL)
        members = _session_members(session)
        for pid in members:  # those that moved to a process group of their own
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        alive = [pid for pid in members if pid != child.pid]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.01)  # killed, not yet gone: they are looked for again
    child.wait()


def _session_members(session: int) -> list[int]:
    """The processes of `session` that have not ended (from /proc; none where it is missing)."""
    members = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat:
                    fields = stat.read().rpartition(b")")[2].split()
            except OSError:
                continue
            # After the command's name: state, ppid, pgrp, session, ...
            if len(fields) > 3 and int(fields[3]) == session and fields[0] not in (b"Z", b"X"):
                members.append(int(entry.name))
    return members


def _ending(code: int | None) -> str:
    """How a process ended, in words: ``exit status 0`` or ``killed by SIGSEGV``."""
    if code is None or code >= 0:
        return f"exit status {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def _shared_file(size: int) -> int:
    """A descriptor of a new anonymous file of `size` zero bytes, to share by ``mmap``."""
    if hasattr(os, "memfd_create"):
        descriptor = os.memfd_create("verifiers-board", 0)  # not inheritable by default
    else:  # pragma: no cover - not Linux
        handle, name = tempfile.mkstemp(prefix="verifiers-board-")
        os.unlink(name)
        descriptor = handle
    os.ftruncate(descriptor, size)
    return descriptor


# ---- child side -----------------------------------------------------------------------------
def child_main(payload: dict[str, Any]) -> None:
    """The isolated child: run the command line, send the exit status to the parent, exit.

    Not for direct use: :func:`run_isolated` starts it.
    """
    global _board
    status_write = payload["status"]
    _board = Board.attach(payload["board"])
    sys.argv = payload["program"]  # for the program name in messages
    _exit_with_parent(payload["parent"])
    try:
        import importlib

        main = importlib.import_module(payload.get("main", "verifiers.run")).main
        status = main(payload["argv"])
    except Exception as error:  # a bug: said as it would be without the child
        from verifiers.crash import internal_error

        status = internal_error(error, payload.get("main", "verifiers.run"))
    except BaseException as error:  # the user code's, raised where no call of it was guarded
        given = ", ".join(payload["given"])
        print(f"error: the user code ({given}) {describe(error)}", file=sys.stderr)
        status = 2
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(OSError):
        os.write(status_write, f"exit {status} {os.getpid()}\n".encode("ascii"))
    # At once: no atexit handler or thread of the user code can change the outcome now.
    os._exit(status)


def _exit_with_parent(parent: int) -> None:
    """Stop this process group as soon as the parent is gone (killed without cleaning up)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_CHECK_SECONDS)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
