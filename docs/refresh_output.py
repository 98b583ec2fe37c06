"""Paste the real output of ``python -m verifiers.run`` and ``python -m verifiers.check`` into
README.md and the docs.

    python docs/refresh_output.py              # update README.md, docs/*.md and docs/models/*.md
    python docs/refresh_output.py FILE...      # update these files instead (a scratch copy)
    python docs/refresh_output.py --check      # exit 1, saying which, if a sample is stale

Every sample is a fenced block between two markers that say which run it shows:

    <!-- run: data/binary.csv --model logistic -->
    ```
    $ python -m verifiers.run data/binary.csv --model logistic
    ...the output...
    ```
    <!-- end run -->

The marker's words are the arguments of ``python -m verifiers.run``, run from the repository
root. A sample of ``python -m verifiers.check`` (a function's hand derivatives) is marked the
same way with ``run-check``, and ends with ``<!-- end run-check -->``::

    <!-- run-check: docs/functions/backprop.py:gradient_slip --quiet -->
    ```
    $ python -m verifiers.check docs/functions/backprop.py:gradient_slip --quiet
    ...the output...
    ```
    <!-- end run-check -->

``<!-- run: ARGS | tail N -->`` keeps only the last N lines of the output, after a line
``...`` that says the rest is left out; ``<!-- run: ARGS | head N -->`` the first N lines,
before such a line. The run is laid out for 80 columns (``COLUMNS=80``), as a
reader's terminal and a piped run are. Its exit status may be 0 (it agrees) or 1 (a mismatch: a
sample of a wrong formula); any other (2: bad input or usage) means the sample itself is broken,
and the script stops with exit status 2, naming the file and the line. The report leaves out
wall times and shows engine-computed values only to the digits every CPU agrees on, so a fresh
run gives the same text on any machine with every engine installed. Each distinct run is made
once, however many samples show it.

A file shown whole (a worked example) is a block between ``<!-- file: PATH -->`` and
``<!-- end file -->``: a fenced ``python`` block with the file's text, refreshed and checked the
same way.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import NamedTuple, NoReturn

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 80
DEFAULT_ARGS = "data/data.csv"  # the reference run, shown in README.md and gradient-descent.md
BLOCK = re.compile(
    r"<!-- (?P<kind>run|run-check): (?P<args>[^|>]*?)"
    r"(?: \| (?P<cut>tail|head) (?P<count>\d+))? -->\n"
    r"(?P<text>.*?)<!-- end (?P=kind) -->",
    re.S,
)
OPENING = re.compile(r"<!-- run(?:-check)?:")
# The command each kind of sample shows.
PROGRAMS = {"run": "verifiers.run", "run-check": "verifiers.check"}
FILE_BLOCK = re.compile(r"<!-- file: (?P<path>[^>]*?) -->\n(?P<text>.*?)<!-- end file -->", re.S)
FILE_OPENING = re.compile(r"<!-- file:")


def _fail(message: str) -> NoReturn:
    """Stop with exit status 2: a sample is broken (1 is for stale samples, with --check)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def targets() -> list[Path]:
    """The files whose samples are refreshed by default."""
    return [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "docs" / "models").glob("*.md")),
    ]


class Block(NamedTuple):
    """One marked sample: its run's arguments, how many last lines it keeps (None: all), and
    the text between the markers (the fenced block, with its final newline). A file block
    has the file's path as its `args` and `file` set."""

    args: str
    tail: int | None
    text: str
    line: int  # of the opening marker, counting from 1
    span: tuple[int, int]  # of the text
    head: int | None = None  # how many first lines it keeps (None: all)
    file: bool = False
    kind: str = "run"  # "run" (python -m verifiers.run) or "run-check" (python -m verifiers.check)


def blocks(path: Path, files: bool = False) -> list[Block]:
    """Every marked sample in `path` (and, with `files`, every file block), in order; an
    opening marker without its end is an error."""
    text = path.read_text()
    found = []
    for match in BLOCK.finditer(text):
        cut, count = match.group("cut"), match.group("count")
        found.append(
            Block(
                match.group("args").strip(),
                int(count) if cut == "tail" else None,
                match.group("text"),
                text.count("\n", 0, match.start()) + 1,
                match.span("text"),
                head=int(count) if cut == "head" else None,
                kind=match.group("kind"),
            )
        )
    if len(OPENING.findall(text)) != len(found):
        _fail(
            f"{path}: a <!-- run: ARGS --> (or run-check) marker without its <!-- end run --> "
            "(<!-- end run-check -->), or garbled"
        )
    if not files:
        return found
    shown = list(FILE_BLOCK.finditer(text))
    if len(FILE_OPENING.findall(text)) != len(shown):
        _fail(f"{path}: a <!-- file: PATH --> marker without its <!-- end file --> (or garbled)")
    for match in shown:
        found.append(
            Block(
                match.group("path").strip(),
                None,
                match.group("text"),
                text.count("\n", 0, match.start()) + 1,
                match.span("text"),
                file=True,
            )
        )
    return sorted(found, key=lambda block: block.span)


@cache
def _output(args: str, kind: str = "run") -> tuple[int, str, str]:
    env = dict(os.environ, COLUMNS=str(WIDTH))
    result = subprocess.run(
        [sys.executable, "-m", PROGRAMS[kind], *shlex.split(args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


def sample(
    args: str = DEFAULT_ARGS,
    tail: int | None = None,
    where: str = "",
    head: int | None = None,
    kind: str = "run",
) -> str:
    """The fenced block for `args`: the command (``verifiers.run``, or ``verifiers.check`` for a
    ``run-check`` sample), then its output at WIDTH columns (the last `tail` lines only, or the
    first `head`, when given). Exits, naming `where`, when the run does not end with status 0 or
    1."""
    status, stdout, stderr = _output(args, kind)
    program = PROGRAMS[kind]
    # Status 1 is a mismatch, but also Python's status for an uncaught exception.
    if status not in (0, 1) or "Traceback (most recent call last)" in stderr or not stdout:
        _fail(
            f"{where or 'sample'}: python -m {program} {args} failed with exit status "
            f"{status}:\n{stderr.rstrip() or stdout.rstrip()}"
        )
    lines = stdout.rstrip().split("\n")
    if tail is not None and len(lines) > tail:
        lines = ["...", *lines[-tail:]]
    if head is not None and len(lines) > head:
        lines = [*lines[:head], "..."]
    body = "\n".join(lines)
    return f"```\n$ python -m {program} {args}\n{body}\n```"


def file_text(relative: str, where: str = "") -> str:
    """The fenced block showing the file at `relative` (from the repository root) whole."""
    path = ROOT / relative
    if not path.is_file():
        _fail(f"{where or 'file block'}: {relative} is not a file")
    return f"```python\n{path.read_text().rstrip()}\n```"


def current(path: Path) -> str:
    """The first sample now in `path`, without its markers."""
    found = blocks(path)
    if not found:
        _fail(f"{path}: no <!-- run: ARGS --> ... <!-- end run --> sample")
    return found[0].text.rstrip("\n")


def refresh(path: Path, check: bool) -> list[str]:
    """Bring every sample in `path` up to date (or only list the stale ones, with `check`);
    returns a description of each stale one."""
    text = path.read_text()
    stale = []
    pieces = []
    end = 0
    for block in blocks(path, files=True):
        where = f"{path}:{block.line}"
        if block.file:
            fresh = file_text(block.args, where) + "\n"
        else:
            fresh = sample(block.args, block.tail, where, block.head, block.kind) + "\n"
        if fresh != block.text:
            stale.append(f"line {block.line} ({block.args})")
        pieces += [text[end : block.span[0]], fresh]
        end = block.span[1]
    if stale and not check:
        path.write_text("".join([*pieces, text[end:]]))
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="files to update (default: all)")
    parser.add_argument("--check", action="store_true", help="only say whether they are stale")
    args = parser.parse_args(argv)
    any_stale = False
    for path in args.files or targets():
        path = path.resolve()
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        if not blocks(path, files=True):
            if args.files:
                _fail(f"{shown}: no <!-- run: ARGS --> ... <!-- end run --> sample")
            continue
        stale = refresh(path, args.check)
        if not stale:
            print(f"{shown}: up to date")
        elif args.check:
            any_stale = True
            print(f"{shown}: stale at {', '.join(stale)} (run python docs/refresh_output.py)")
        else:
            print(f"updated {shown}: {', '.join(stale)}")
    return 1 if any_stale else 0


if __name__ == "__main__":
    sys.exit(main())
