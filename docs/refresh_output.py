"""Paste the real output of ``python -m verifiers.run data/data.csv`` into README.md and the docs.

    python docs/refresh_output.py              # update README.md and docs/gradient-descent.md
    python docs/refresh_output.py FILE...      # update these files instead (a scratch copy)
    python docs/refresh_output.py --check      # exit 1, saying which, if a sample is stale

The run is laid out for 80 columns (``COLUMNS=80``), as a reader's terminal and a piped run are.
Each file's sample sits between ``<!-- NAME-start -->`` and ``<!-- NAME-end -->`` markers, where
NAME is ``run-output`` (README.md) or ``docs-run-output`` (the docs). The report leaves out wall
times and shows engine-computed values only to the digits every CPU agrees on, so a fresh run
gives the same text on any machine with every engine installed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = [ROOT / "README.md", ROOT / "docs" / "gradient-descent.md"]
MARKERS = ("docs-run-output", "run-output")  # the longer first: it contains the shorter
COMMAND = ["-m", "verifiers.run", "data/data.csv"]
WIDTH = 80


def sample() -> str:
    """The fenced block: the command and its output at WIDTH columns."""
    env = dict(os.environ, COLUMNS=str(WIDTH))
    result = subprocess.run(
        [sys.executable, *COMMAND], cwd=ROOT, capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        sys.exit(f"the run failed with exit status {result.returncode}:\n{result.stderr}")
    return f"```\n$ python {' '.join(COMMAND)}\n{result.stdout.rstrip()}\n```"


def _pattern(text: str, path: Path) -> re.Pattern:
    for marker in MARKERS:
        pattern = re.compile(f"(<!-- {marker}-start -->\n).*?(<!-- {marker}-end -->)", re.S)
        if pattern.search(text):
            return pattern
    sys.exit(f"{path}: no <!-- run-output-start/end --> markers")


def current(path: Path) -> str:
    """The sample now in `path`, without its markers."""
    text = path.read_text()
    return _pattern(text, path).search(text).group(0).split("\n", 1)[1].rsplit("\n", 1)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="files to update (default: both)")
    parser.add_argument("--check", action="store_true", help="only say whether they are stale")
    args = parser.parse_args(argv)
    block = sample()
    stale = []
    for path in args.files or TARGETS:
        if current(path) == block:
            print(f"{path}: up to date")
            continue
        if args.check:
            stale.append(path)
            print(f"{path}: stale (run python docs/refresh_output.py)")
            continue
        text = path.read_text()
        new = _pattern(text, path).sub(lambda m: m.group(1) + block + "\n" + m.group(2), text)
        path.write_text(new)
        print(f"updated {path}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
