"""Command line: ``python -m verifiers.check FILE.py [options]``: check a function's hand-written
derivatives (a vjp, a jvp, a gradient, an hvp, the steps of a hand backprop) against every engine.

Exit status: 0 when every hand derivative agrees, 1 when one does not (or the exact engines
disagree), 2 on a bad file or usage: one line ``error: FILE:LINE: ...``, never a traceback, and
no ``--json`` written. The file is user code: the whole check runs in a supervised child
process (:mod:`verifiers.isolation`), so that code which exits, crashes or hangs (past
``--time-limit``) ends the run with one line too. Everything else is
:func:`verifiers.functions.api.check_problem`; this module parses, prints and writes.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from verifiers.crash import internal_error
from verifiers.engines import FUNCTION_ENGINE_NAMES
from verifiers.functions import run
from verifiers.isolation import can_isolate, in_isolated_child, run_isolated
from verifiers.output import OutputError, check_outputs, write_output
from verifiers.report.layout import output_width
from verifiers.settings import Settings, UsageError

PROGRAM = "python -m verifiers.check"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other bad input
        raise UsageError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROGRAM,
        description=(
            "Check the hand-written derivatives in FILE.py (any of vjp, jvp, gradient, hvp, "
            "and the tapped steps of a hand backprop) against minigrad, torch, jax, autograd "
            "and finite differences, at random points; say which step is wrong first, and how."
        ),
        epilog=(
            "FILE.py defines inputs ({name: shape} or inputs(rng) -> {name: array}), "
            "forward(*inputs, xp) written against the array API (xp is each engine's namespace; "
            "it may also take tap, to name intermediates: h = tap('h', h)), and the hand "
            "derivatives: vjp(g, *inputs) -> dict, jvp(t, *inputs) -> array, and for a scalar "
            "output gradient(*inputs) -> dict and hvp(v, *inputs) -> dict. Exit status: 0 every "
            "hand derivative agrees, 1 one does not, 2 a bad file or usage."
        ),
    )
    parser.add_argument(
        "file",
        metavar="FILE.py[:NAME,...]",
        help="the check file; with :NAME,... only the functions named are checked, each a "
        "hand derivative by the start of its name (vjp_slip is a vjp)",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="write the full report as JSON (- for standard output, which then carries the "
        "JSON alone: the text report goes to standard error); written whole or not at all",
    )
    parser.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="floating-point type of the inputs and of every engine (default: float64)",
    )
    parser.add_argument(
        "--points",
        type=int,
        default=run.DEFAULT_POINTS,
        metavar="K",
        help=f"random check points (default: {run.DEFAULT_POINTS})",
    )
    parser.add_argument(
        "--engines",
        type=lambda text: tuple(n.strip() for n in text.split(",") if n.strip()),
        default=None,
        metavar="LIST",
        help="comma-separated engines (default: every one installed of "
        f"{', '.join(FUNCTION_ENGINE_NAMES)}; an engine named here must run)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random points (default: 0)"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the notes and the verdict")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=Settings.time_limit,
        metavar="SECONDS",
        help="the longest one call of the file's code (importing it, forward, a hand "
        f"derivative) may run (default: {Settings.time_limit:g}); past it the check stops "
        "with one line, exit status 2",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    if not sys.warnoptions:
        warnings.simplefilter("ignore")  # a library's warnings around a verdict are noise
    raw = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(raw)
        if not (args.time_limit > 0 and args.time_limit < float("inf")):
            raise UsageError(
                f"--time-limit must be a positive finite number of seconds, not {args.time_limit!r}"
            )
        source = args.file.rpartition(":")[0] if ".py:" in args.file else args.file
        check_outputs({"--json": args.json}, {"the check file": Path(source)})
        if can_isolate():  # the file is user code: run it in a supervised child
            return run_isolated(raw, [args.file], args.time_limit, program="verifiers.check")
        return _check(args)
    except (UsageError, OutputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if in_isolated_child():  # Ctrl-C reaches only the parent: this came from user code
            raise
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: never to be read as a verdict (exit status 1)
        return internal_error(error, "verifiers.check")


def _check(args: argparse.Namespace) -> int:
    from verifiers.functions.api import check_problem
    from verifiers.functions.problem import problem_from_file
    from verifiers.functions.report import text_lines, to_json

    problem = problem_from_file(args.file)
    report = check_problem(
        problem, points=args.points, seed=args.seed, dtype=args.dtype, engines=args.engines
    )
    stream = sys.stderr if args.json == "-" else sys.stdout
    document = None
    if args.json is not None:  # made in full before anything is printed or written
        document = json.dumps(to_json(report), indent=2, allow_nan=False) + "\n"
    for line in text_lines(report, output_width(stream), quiet=args.quiet):
        print(line, file=stream)
    if document is not None:
        write_output(args.json, document, option="--json")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
