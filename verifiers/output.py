"""Write the output files (``--json``, ``--plot``) without harming anything on the way.

Two steps, so that a problem shows before the run and a write never leaves damage behind:

* :func:`check_outputs`, before any work: refuses, with one line naming the option and the
  path, an output that would overwrite an input, two outputs on one file, a folder, a missing
  or read-only folder, a file that may not be replaced, a device or FIFO that may not be
  written, a socket.
* :func:`write_output` (data or a function of a binary file) and :func:`atomic_path` (for
  writers that need a file name), at the end. A write failure raises :class:`OutputError`
  with one line and leaves no temporary file and the old file as it was.

What "writing to PATH" means depends on what PATH is:

* a regular file, or nothing yet: the output goes to a temporary file in the same folder,
  which ``os.replace`` then moves over PATH, so a reader sees the old file or the new one,
  never half of one. A new file gets the usual mode, 0666 & ~umask (the temporary is created
  with 0666 and the kernel applies the umask or the folder's default ACL); a replaced file
  keeps its mode, and its owner and group where we are allowed to set them (as root). Other
  hard links to a replaced file keep the old content: that is what replacing means.
* a symbolic link: followed, link by link; the file it finally names is replaced (or created,
  in the folder the link points into), and the link stays a link.
* a character or block device or a FIFO (``/dev/null``, a terminal, ``mkfifo``): opened and
  written through, never replaced. :func:`check_outputs` only asks ``os.access`` whether it
  may be written and never opens it: opening and closing a FIFO's writing end would give a
  reader that is already waiting an end-of-file, and a FIFO with no reader yet is normal (the
  reader may start after us). At write time a FIFO is opened as a shell redirection opens it,
  which waits for a reader.
* ``-`` (:data:`STDOUT`): standard output, always allowed. Text goes through ``sys.stdout``;
  bytes through ``sys.stdout.buffer``, after flushing the text already printed. Whether binary
  data (a PNG) on standard output is sensible is the caller's choice.
* one of our own file descriptors named as a path (``/dev/stdout``, ``/dev/stderr``,
  ``/dev/fd/N``, ``/proc/self/fd/N``, as the shell's ``>(command)`` gives): written to that
  descriptor, where it stands, without reopening. Reopening would truncate a file that
  standard output is redirected to (losing what was printed), replacing would swap that file
  out from under the shell, and a socket cannot be reopened at all. ``/dev/stdout`` is the
  same output as ``-``.
* a socket or anything else: refused.

Data written to a device, a FIFO or a descriptor is produced in full first (in memory, or in a
private temporary file for :func:`atomic_path`) and written only once it is complete, so a
writer that fails sends nothing.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "STDOUT",
    "OutputError",
    "atomic_path",
    "check_output_path",
    "check_outputs",
    "write_atomically",
    "write_output",
]

STDOUT = "-"  # the path that means standard output

# What write_output accepts: text (written as UTF-8), bytes, or a function that writes a
# binary file object (matplotlib's ``lambda f: figure.savefig(f, format="png")``).
Data = str | bytes | Callable[[BinaryIO], object]

_MAX_LINKS = 40  # as the kernel's limit on symbolic links in one lookup
# The folder of our own descriptors, as os.path.realpath spells /dev/fd and /proc/self/fd.
_DESCRIPTOR_FOLDER = re.compile(r"/proc/(\d+)(?:/task/\d+)?/fd")


class OutputError(ValueError):
    """An output that cannot or must not be written; the message is one line naming it."""


def check_outputs(
    outputs: Mapping[str, Path | str | None],
    protected: Mapping[str, Path | str | None] | None = None,
) -> None:
    """Refuse, before any work, outputs that cannot or must not be written.

    `outputs` maps an option to its path (``{"--json": ..., "--plot": ...}``; None means not
    asked for); `protected` maps a description to a file no output may overwrite
    (``{"the input data file": csv, "the --manual source": source}``). Raises
    :class:`OutputError` with one line naming the option and the path, for:

    * a protected file: the same path after resolving links, or the same file (inode) through
      a hard link or a symbolic link;
    * two outputs on one file (``-`` twice, or ``-`` and ``/dev/stdout``, included);
    * a folder, a missing folder, or a folder where no file can be created. That is tried for
      real, with a temporary file: ``os.access`` can say yes where creating fails, as in /sys,
      on NFS that squashes root, or under a security module;
    * an existing file we may not write, or may not replace (another user's, in a sticky
      folder such as /tmp);
    * a device or FIFO that ``os.access`` says we may not write; a socket; a closed or
      read-only descriptor. A FIFO is never opened here (see the module's docstring), so one
      with no reader yet is accepted.

    ``-`` is always accepted.
    """
    _check(
        [(option, path) for option, path in outputs.items() if path is not None],
        [(what, path) for what, path in (protected or {}).items() if path is not None],
    )


def check_output_path(path: Path, option: str, protected: list[Path]) -> None:
    """:func:`check_outputs` for one output; each of `protected` is "the input data file"."""
    _check([(option, path)], [("the input data file", p) for p in protected])


def write_output(path: Path | str, data: Data, *, option: str | None = None) -> None:
    """Write `data` to `path` as the module's docstring describes; `option` names it in errors.

    `data` is text (written as UTF-8; through ``sys.stdout`` for ``-``), bytes, or a function
    called with a binary file object open for writing.
    """
    target = _locate(path, option)
    try:
        if target.kind == "descriptor":
            _write_descriptor(target.descriptor, data)
        elif target.kind == "stream":
            payload = _render(data)  # complete before the device or FIFO is opened
            with open(target.path, "wb") as stream:
                stream.write(payload)
        else:
            with _replacing(target, target.path.suffix) as temporary, open(temporary, "wb") as f:
                if callable(data):
                    data(f)
                else:
                    f.write(_encode(data))
    except OSError as error:
        raise target.error(f"cannot write: {_reason(error)}") from error
    except UnicodeEncodeError as error:  # text on a standard output that is not UTF-8
        raise target.error(
            f"cannot write: {error.encoding} cannot encode {error.object[error.start]!r}"
        ) from error


@contextlib.contextmanager
def atomic_path(
    path: Path | str, *, option: str | None = None, suffix: str | None = None
) -> Iterator[Path]:
    """Yield the name of a new, empty regular file; what the block writes there goes to `path`.

    For writers that need a file name (matplotlib's ``animation.save``). The temporary ends
    in `suffix` (default: that of `path`), so writers that pick the format from the name pick
    the right one. When the block succeeds, the file is moved over `path`, or copied to a
    device, FIFO or descriptor; when it fails, it is removed and `path` is left as it was. An
    ``OSError`` from the block or from the move becomes :class:`OutputError`.
    """
    target = _locate(path, option)
    if suffix is None:
        suffix = target.path.suffix if target.path is not None else Path(os.fspath(path)).suffix
    try:
        if target.kind in ("file", "new"):
            with _replacing(target, suffix) as temporary:
                yield temporary
        else:
            with tempfile.TemporaryDirectory(prefix="verifiers-output-") as folder:
                temporary = Path(folder, f"output{suffix}")
                temporary.touch()
                yield temporary
                payload = temporary.read_bytes()
                if target.kind == "descriptor":
                    _write_descriptor(target.descriptor, payload)
                else:
                    with open(target.path, "wb") as stream:
                        stream.write(payload)
    except OSError as error:
        raise target.error(f"cannot write: {_reason(error)}") from error


def write_atomically(
    path: Path | str, write: Callable[[Path], object], *, option: str | None = None
) -> None:
    """Call ``write(temporary_path)``, then move the finished file to `path` (see atomic_path)."""
    with atomic_path(path, option=option) as temporary:
        write(temporary)


# --- Where an output goes ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """Where an output goes, after following symbolic links."""

    label: str  # the option and the path as given, for messages
    kind: str  # "file" (regular, exists), "new", "stream" (device, FIFO) or "descriptor"
    path: Path | None = None  # the final location; None for a descriptor
    descriptor: int | None = None

    def error(self, reason: str) -> OutputError:
        return OutputError(f"{self.label}: {reason}")

    def identities(self) -> set[tuple]:
        """Keys that two targets share exactly when they are the same output."""
        if self.descriptor is not None:
            return {("descriptor", self.descriptor)}
        found: set[tuple] = {("path", str(self.path))}
        with contextlib.suppress(OSError):
            status = os.stat(self.path)
            found.add(("inode", status.st_dev, status.st_ino))
        return found


def _locate(path: Path | str, option: str | None) -> _Target:
    """Classify `path`, refusing what can never be written (folders, sockets, ...)."""
    text = os.fspath(path)
    shown = _show(text)
    if text == STDOUT:
        return _Target(f"{option} - (standard output)" if option else "-", "descriptor", None, 1)
    label = f"{option} {shown}" if option else shown
    if not text:
        raise OutputError(f"{option or 'output'}: the path is empty")
    final, descriptor, followed = _follow(Path(text), label)
    if descriptor is not None:
        return _Target(label, "descriptor", None, _check_descriptor(descriptor, label))
    linked = " (where its symbolic link points)" if followed else ""
    try:
        mode = os.stat(final).st_mode
    except (FileNotFoundError, NotADirectoryError):
        folder = final.parent
        shown_folder = _show(folder if followed else Path(text).parent)
        if not folder.exists():
            raise OutputError(
                f"{label}: the folder {shown_folder}{linked} does not exist"
            ) from None
        if not folder.is_dir():
            raise OutputError(f"{label}: {shown_folder}{linked} is not a folder") from None
        return _Target(label, "new", final)
    except OSError as error:
        raise OutputError(f"{label}: {_reason(error)}") from error
    if stat.S_ISREG(mode):
        return _Target(label, "file", final)
    if stat.S_ISDIR(mode):
        raise OutputError(f"{label}: is a directory{linked}")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        return _Target(label, "stream", final)
    if stat.S_ISSOCK(mode):
        raise OutputError(f"{label}: is a socket{linked}, which cannot be written as a file")
    raise OutputError(f"{label}: is not a file, a device or a FIFO{linked}")


def _follow(path: Path, label: str) -> tuple[Path, int | None, bool]:
    """The path that `path`'s symbolic links lead to, or the descriptor it names, and whether
    a link was followed.

    Each step resolves the folder fully and looks at the last name only, so that a link into
    /proc/self/fd is recognised before it is followed (its "target" is not a real path).
    """
    current = Path(os.path.abspath(path))
    followed = False
    for _ in range(_MAX_LINKS):
        folder = os.path.realpath(current.parent)
        current = Path(folder, current.name)
        match = _DESCRIPTOR_FOLDER.fullmatch(folder)
        if match and current.name.isdigit():
            if int(match[1]) != os.getpid():
                raise OutputError(f"{label}: names a file descriptor of another process")
            return current, int(current.name), followed
        try:
            target = os.readlink(current)
        except OSError:  # not a link, missing, or unreadable: _locate tells which
            return current, None, followed
        current = Path(folder, target)  # an absolute target replaces the folder
        followed = True
    raise OutputError(f"{label}: too many levels of symbolic links")


def _check_descriptor(descriptor: int, label: str) -> int:
    import fcntl  # POSIX only, as are the descriptor paths that lead here

    try:
        flags = fcntl.fcntl(descriptor, fcntl.F_GETFL)
    except OSError:
        raise OutputError(f"{label}: file descriptor {descriptor} is not open") from None
    if flags & os.O_ACCMODE == os.O_RDONLY:
        raise OutputError(f"{label}: file descriptor {descriptor} is not open for writing")
    return descriptor


# --- The pre-flight check ---------------------------------------------------------------------


def _check(outputs: list[tuple[str, Path | str]], protected: list[tuple[str, Path | str]]) -> None:
    guarded = [(what, path, _identities_of(path)) for what, path in protected]
    seen: list[_Target] = []
    for option, path in outputs:
        target = _locate(path, option)
        keys = target.identities()
        for what, source, source_keys in guarded:
            if keys & source_keys:
                raise target.error(f"refusing to overwrite {what} {_show(os.fspath(source))}")
        for other in seen:
            if keys & other.identities():
                raise target.error(
                    f"the same output as {other.label}; give each output its own path"
                )
        _check_writable(target)
        seen.append(target)


def _identities_of(path: Path | str) -> set[tuple]:
    """Keys of a protected file: its resolved path, and its inode when it exists."""
    text = os.fspath(path)
    if text == STDOUT:  # standard input: nothing on disk to protect
        return set()
    found: set[tuple] = {("path", os.path.realpath(text))}
    with contextlib.suppress(OSError):
        status = os.stat(text)
        found.add(("inode", status.st_dev, status.st_ino))
    return found


def _check_writable(target: _Target) -> None:
    if target.kind == "descriptor":  # checked by _locate
        return
    if target.kind == "stream":
        if not os.access(target.path, os.W_OK):
            raise target.error("permission denied: this device or FIFO cannot be written")
        return
    folder = target.path.parent
    try:  # the only honest test: os.access can say yes where creating fails (/sys, NFS, LSMs)
        handle, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
    except OSError as error:
        raise target.error(
            f"cannot create files in the folder {_show(folder)}: {_reason(error)}"
        ) from error
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    if target.kind == "file":
        # Replacing needs only the folder, but a file we may not write says "keep me", as it
        # does to the shell's `>`. (Root may write it, as root's `>` may.)
        if not os.access(target.path, os.W_OK):
            raise target.error("the file is read-only (permission denied)")
        if _sticky_owned_by_another(target.path):
            raise target.error(
                "cannot replace a file of another user in a folder with the sticky bit (as /tmp)"
            )


def _sticky_owned_by_another(path: Path) -> bool:
    """Whether rename(2) over `path` will fail with EPERM: sticky folder, neither ours."""
    me = os.geteuid()
    folder = os.stat(path.parent)
    return (
        bool(folder.st_mode & stat.S_ISVTX)
        and me != 0
        and os.stat(path).st_uid != me
        and folder.st_uid != me
    )


# --- Writing ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _replacing(target: _Target, suffix: str) -> Iterator[Path]:
    """Yield a new temporary file beside the target; on success, give it the old file's mode
    (and owner) and move it into place; on failure, remove it."""
    temporary = _create_temporary(target.path, suffix)
    moved = False
    try:
        yield temporary
        _keep_metadata(target.path, temporary)
        handle = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(handle)  # the content is on disk before the name points at it
        finally:
            os.close(handle)
        os.replace(temporary, target.path)
        moved = True
    finally:
        if not moved:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _create_temporary(final: Path, suffix: str) -> Path:
    """A new empty file beside `final`, mode 0666 less the umask (as any new file gets)."""
    while True:
        name = f".{final.stem[:100]}.tmp-{secrets.token_hex(4)}{suffix[:50]}"
        temporary = final.with_name(name)
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return temporary


def _keep_metadata(final: Path, temporary: Path) -> None:
    """Give `temporary` the mode, owner and group of the regular file it will replace."""
    try:
        old = os.stat(final)
    except FileNotFoundError:
        return  # a new file: keep the mode the umask gave
    if not stat.S_ISREG(old.st_mode):
        return
    new = os.stat(temporary)
    if (new.st_uid, new.st_gid) != (old.st_uid, old.st_gid):
        # Only root may give a file away; a group we belong to is allowed too.
        with contextlib.suppress(OSError):
            os.chown(temporary, old.st_uid, old.st_gid)
    os.chmod(temporary, stat.S_IMODE(old.st_mode))  # after chown, which clears set-id bits


def _write_descriptor(descriptor: int, data: Data) -> None:
    """Write to one of our descriptors where it stands; 1 and 2 through sys.stdout/stderr."""
    stream = {1: sys.stdout, 2: sys.stderr}.get(descriptor)
    if stream is not None and isinstance(data, str):
        stream.write(data)
        stream.flush()
        return
    payload = _render(data)
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        stream.flush()  # what was printed before comes first
        buffer.write(payload)
        buffer.flush()
        return
    with open(descriptor, "wb", closefd=False) as raw:
        raw.write(payload)


def _render(data: Data) -> bytes:
    """All of `data` as bytes: a writer function runs to the end before anything is sent."""
    if callable(data):
        buffer = io.BytesIO()
        data(buffer)
        return buffer.getvalue()
    return _encode(data)


def _encode(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


# --- Messages ---------------------------------------------------------------------------------


def _show(path: Path | str) -> str:
    """A path on one printable line: quoted when it holds a newline or undecodable bytes."""
    text = os.fspath(path)
    return text if text.isprintable() else repr(text)


def _reason(error: OSError) -> str:
    return " ".join((error.strerror or str(error)).split())
