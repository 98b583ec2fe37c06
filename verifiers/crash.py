"""What the command lines do with an exception nobody expected: a bug of ours, or one of a
library's that slipped past the handling of user code.

Exit status 1 means "a derivative is wrong", and an uncaught exception also ends Python with
status 1: a script that runs the verifier would read a crash as a verdict. So a command line
ends such a run with one line naming the exception and where it was raised, and exit status 3;
``VERIFIERS_TRACEBACK=1`` prints the whole traceback as well, for a bug report.
"""

from __future__ import annotations

import os
import sys
import traceback

INTERNAL_ERROR = 3


def internal_error(error: BaseException, program: str) -> int:
    """Say on standard error that `program` stopped on `error` (a bug), and return exit status 3."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    message = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {message[0]}" if message else type(error).__name__
    print(
        f"internal error: python -m {program} stopped on {text}{where}; this is a bug, not a "
        "verdict (exit status 3). VERIFIERS_TRACEBACK=1 shows the traceback for a report.",
        file=sys.stderr,
    )
    if os.environ.get("VERIFIERS_TRACEBACK"):
        traceback.print_exception(error, file=sys.stderr)
    return INTERNAL_ERROR
