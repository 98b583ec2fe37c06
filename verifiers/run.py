"""Command line: ``python -m verifiers.run [CSV] [options]``.

Exit status: 0 when every engine agrees, 1 when any disagrees (or fails), 2 on bad input or
usage. Everything is done by :func:`verifiers.api.verify`; this module parses arguments,
shows progress and writes the outputs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from rich.console import Console

from verifiers.api import Settings, UsageError, check_settings, verify
from verifiers.data import DataError, load_csv
from verifiers.engines import ENGINE_NAMES
from verifiers.output import OutputError, check_output_path, write_atomically
from verifiers.user_formula import FormulaLoadError, load_formula

PROGRAM = "python -m verifiers.run"
DEFAULT_CSV = Path(__file__).resolve().parent.parent / "data" / "data.csv"
# Show a progress bar when a descent does at least this many point-steps (N × iterations).
PROGRESS_THRESHOLD = 5_000_000


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other bad input
        raise UsageError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    engines = ", ".join(ENGINE_NAMES)
    parser = _Parser(
        prog=PROGRAM,
        description=(
            "Check a hand-derived gradient of the mean-squared-error loss of y ≈ X·w + b against "
            "minigrad, torch.autograd, jax.grad and finite differences, then run gradient "
            "descent on every engine and compare the trajectories."
        ),
        epilog=(
            "Exit status: 0 all engines agree, 1 an engine disagrees or fails, 2 bad input or "
            "usage. The CSV's last column is the target y, the others are features; a header "
            "row, a UTF-8 byte-order mark, Windows line endings and comma, semicolon or tab "
            "separators are accepted."
        ),
    )
    parser.add_argument(
        "csv",
        nargs="?",
        type=Path,
        default=DEFAULT_CSV,
        help="data file (default: data/data.csv of this checkout, the 100 rows of the reference "
        "example)",
    )
    parser.add_argument(
        "--engines",
        type=_engine_list,
        default=None,
        metavar="LIST",
        help=f"comma-separated engines to run (default: all of {engines}); an engine named here "
        "must be able to run, while by default a missing package only skips its engine",
    )
    parser.add_argument(
        "--manual",
        metavar="FILE.py:FUNCTION",
        help="your own hand-derived gradient, a function (b, w, X, y) -> (dL/db, dL/dw) with b a "
        "float, w shape (d,), X shape (N, d), y shape (N,); it replaces the built-in formula "
        "in the 'manual' engine and becomes the thing under test",
    )
    parser.add_argument(
        "--lr", type=float, default=1e-4, help="learning rate of the descent (default: 0.0001)"
    )
    parser.add_argument(
        "--iterations", type=int, default=1000, help="descent steps (default: 1000)"
    )
    parser.add_argument(
        "--start",
        type=_float_list,
        default=None,
        metavar="B,W1,...",
        help="starting point b,w1,...,wd of the descent and first check point (default: zeros)",
    )
    parser.add_argument(
        "--points",
        type=int,
        default=3,
        metavar="K",
        help="random check points besides the start and the least-squares optimum (default: 3)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for the random check points (default: 0)"
    )
    parser.add_argument(
        "--rtol",
        type=float,
        default=None,
        help="relative tolerance (default: 64 × the dtype's machine epsilon)",
    )
    parser.add_argument(
        "--atol",
        type=float,
        default=None,
        help="absolute tolerance as a multiple of the size of the summed terms Σ|terms| of each "
        "value (default: 64 × √N × epsilon); descents widen both by √(iterations + 1)",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where torch runs: auto picks CUDA when torch.cuda.is_available() (default: auto); "
        "jax runs on its default device unless cpu is asked for",
    )
    parser.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="floating-point type of every engine (default: float64)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the full report as JSON")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="PATH.png",
        help="draw the losses against the iteration and the fitted lines (needs matplotlib)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="print only notes and the verdict, no tables"
    )
    return parser


def _engine_list(text: str) -> tuple[str, ...]:
    """The names in a comma-separated list (checked with the other settings)."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _float_list(text: str) -> np.ndarray:
    try:
        values = np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None
    if not np.isfinite(values).all():
        raise argparse.ArgumentTypeError(f"values must be finite, got {text!r}")
    return values


def _progress_factory(console: Console) -> tuple[Callable | None, Callable[[], None]]:
    """A per-engine progress bar maker for long descents on a terminal, and a closer."""
    from rich.progress import Progress

    progress = Progress(console=console, transient=True)
    progress.start()

    def factory(name: str, total: int) -> Callable[[int], None]:
        task = progress.add_task(f"descent on {name}", total=total)
        return lambda done: progress.update(task, completed=done)

    return factory, progress.stop


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        args = build_parser().parse_args(argv)
        formula = load_formula(args.manual) if args.manual else None
        for option, path in (("--json", args.json), ("--plot", args.plot)):
            if path is not None:
                check_output_path(path, option, [args.csv])
        settings = Settings(
            lr=args.lr,
            iterations=args.iterations,
            start=args.start,
            points=args.points,
            seed=args.seed,
            rtol=args.rtol,
            atol=args.atol,
            device=args.device,
            dtype=args.dtype,
            engines=args.engines,
            manual=args.manual,
        )
        check_settings(settings)  # before the data is loaded, which may take a while
        data = load_csv(args.csv, args.dtype)
        show_progress = (
            sys.stderr.isatty()
            and not args.quiet
            and data.rows * args.iterations >= PROGRESS_THRESHOLD
        )
        factory, stop = _progress_factory(err) if show_progress else (None, lambda: None)
        try:
            report = verify(
                data,
                settings,
                formula=formula,
                progress=factory,
                warn=lambda message: print(message, file=sys.stderr),
            )
        finally:
            stop()
        from verifiers.report import print_report, to_json

        print_report(report, out, quiet=args.quiet)
        if args.json is not None:
            document = json.dumps(to_json(report), indent=2, allow_nan=False) + "\n"
            write_atomically(args.json, lambda path: path.write_text(document))
        if args.plot is not None:
            from verifiers.plot import PlotUnavailable, save_plot

            try:
                save_plot(report, args.plot)
            except PlotUnavailable as error:
                raise UsageError(f"--plot {args.plot}: {error}") from None
    except (DataError, UsageError, FormulaLoadError, OutputError) as error:
        print(f"error: {error}", file=sys.stderr)  # verbatim: no markup or emoji codes
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
