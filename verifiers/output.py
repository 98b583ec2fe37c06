"""Write output files atomically: a complete file appears, or none (never half of one)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["OutputError", "atomic_path", "check_output_path", "write_atomically"]


class OutputError(ValueError):
    """An output path that cannot or must not be written."""


def check_output_path(path: Path, option: str, protected: list[Path]) -> None:
    """Refuse before any work is done: a missing folder, a folder as the path, an input file."""
    resolved = path.resolve()
    if any(resolved == p.resolve() for p in protected):
        raise OutputError(f"{option} {path}: refusing to overwrite the input data file")
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a directory")
    if not path.parent.is_dir():
        raise OutputError(f"{option} {path}: the folder {path.parent} does not exist")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, then move the finished file to `path`."""
    with atomic_path(path) as temporary:
        write(temporary)
