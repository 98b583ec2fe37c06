"""Command line: ``python -m verifiers.run [CSV] [options]`` (also ``verify-gradients``).

Exit status: 0 when every engine agrees, 1 when any disagrees (or fails), 2 on bad input or
usage. Everything is done by :func:`verifiers.api.verify`; this module parses arguments (their
names, help and defaults come from :class:`verifiers.settings.Settings`), checks the outputs
before any work, shows progress and writes the outputs. Given the user's code (``--manual``,
``--loss``, ``--combine``), it does all that in a supervised child process
(:mod:`verifiers.isolation`).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.resources
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from rich.console import Console

from verifiers.api import verify
from verifiers.crash import internal_error
from verifiers.data import DataError, load_csv
from verifiers.distributed.shards import ShardedError
from verifiers.engines import ENGINE_NAMES
from verifiers.engines.manual import FormulaError
from verifiers.isolation import can_isolate, in_isolated_child, run_isolated
from verifiers.models import model_options
from verifiers.output import OutputError, check_outputs, write_output
from verifiers.report.layout import output_width
from verifiers.settings import Settings, UsageError, check_settings
from verifiers.user_formula import FormulaLoadError, load_function

# Show a progress bar when a descent does at least this many row-steps (N × iterations).
PROGRESS_THRESHOLD = 5_000_000
REFERENCE_DATA = "the reference example's 100 rows (data.csv, shipped with the package)"


def reference_csv() -> Path:
    """The reference data set, shipped inside the package (works from any install)."""
    return Path(str(importlib.resources.files("verifiers") / "reference" / "data.csv"))


def program_name() -> str:
    """``verify-gradients`` when run as that console script, else ``python -m verifiers.run``."""
    invoked = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return (
        "verify-gradients"
        if invoked.startswith("verify-gradients")
        else ("python -m verifiers.run")
    )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other bad input
        raise UsageError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    """The options: one per Settings field (help and defaults from there), then the outputs."""
    parser = _Parser(
        prog=program_name(),
        description=(
            "Check a hand-derived gradient against minigrad, torch.autograd, jax.grad and "
            "finite differences, at several points and for every engine at once; compare "
            "Hessians; run gradient descent on every engine and compare the trajectories. "
            "When a formula is wrong, say how."
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
        default=None,
        help=f"data file (default: {REFERENCE_DATA}, at {reference_csv()})",
    )
    defaults = Settings()
    for field in dataclasses.fields(Settings):
        meta = field.metadata
        if meta.get("cli") is False:
            continue
        flag = meta.get("flag") or f"--{field.name.replace('_', '-')}"
        kwargs = dict(meta.get("argparse", {}))
        default = getattr(defaults, field.name)
        if isinstance(default, bool):  # a switch: given or not
            kwargs.setdefault("action", "store_true")
        else:
            kwargs.setdefault(
                "type", _PARSERS.get(field.name, type(default) if default is not None else str)
            )
        shown = "" if default is None or isinstance(default, bool) else f" (default: {default})"
        parser.add_argument(
            flag, dest=field.name, default=default, help=meta["help"] + shown, **kwargs
        )
    # The options one model alone takes, declared by the model (verifiers.models). Parsed with
    # no default, so that one given with another model is refused instead of ignored.
    for name, (_, spec) in model_options().items():
        parser.add_argument(
            f"--{name}",
            dest=f"option_{name}",
            type=int if spec.integer else float,
            default=None,
            help=f"{spec.help} (default: {spec.default})",
        )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="write the full report as JSON (- for standard output, which then carries the JSON "
        "alone: the text report goes to standard error); an existing file is replaced whole, "
        "keeping its permissions; a device or pipe is written through",
    )
    parser.add_argument(
        "--plot",
        metavar="PATH.png",
        help="draw the fit, the losses and each engine's difference from the consensus "
        "(needs matplotlib)",
    )
    parser.add_argument(
        "--animate",
        metavar="PATH.gif",
        help="animate the descent: the fit moving over the data, with the iteration "
        "and the loss in the corner (an animated GIF; needs matplotlib)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="print only the notes and the answer (the verdict, the diagnosis and each "
        "disagreement), no tables: for scripts; where --json, --plot and --animate were written "
        "is still said, on standard error",
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


_PARSERS: dict[str, Callable] = {
    "engines": _engine_list,
    "start": _float_list,
    "lr": float,
    "shards": int,
    "rtol": float,
    "atol": float,
}


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the parsed options; the model options given, by name."""
    values = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(Settings)
        if field.metadata.get("cli") is not False
    }
    for name in model_options():
        value = getattr(args, f"option_{name}")
        if value is not None:
            values[name] = value
    return Settings(**values)


def _join_negative_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``--atol -1e-3`` as ``--atol=-1e-3``: argparse takes a value starting with "-" for an
    option unless it looks like a plain negative number, and ``-1e-3`` or ``-1,2`` do not."""
    takes_value = {
        flag
        for action in parser._actions
        if action.option_strings and action.nargs is None and action.type is not None
        for flag in action.option_strings
    }
    joined, i = [], 0
    while i < len(argv):
        token = argv[i]
        following = argv[i + 1] if i + 1 < len(argv) else None
        if (
            token in takes_value
            and following is not None
            and following.startswith("-")
            and following not in parser._option_string_actions
            and len(following) > 1
            and (following[1].isdigit() or following[1] in ".,")
        ):
            joined.append(f"{token}={following}")
            i += 2
            continue
        joined.append(token)
        i += 1
    return joined


def wants_progress(quiet: bool, row_steps: int) -> bool:
    """A live progress bar (on stderr) for a long descent, only when both outputs are a
    terminal: output redirected or piped (``> report.txt``, ``| less``) gets none."""
    return (
        not quiet
        and row_steps >= PROGRESS_THRESHOLD
        and sys.stderr.isatty()
        and sys.stdout.isatty()
    )


def _progress_factory(console: Console) -> tuple[Callable | None, Callable[[], None]]:
    """A per-engine progress bar maker for long descents on a terminal, and a closer."""
    from rich.progress import Progress

    progress = Progress(console=console, transient=True)
    progress.start()

    def factory(name: str, total: int) -> Callable[[int], None]:
        task = progress.add_task(f"descent on {name}", total=total)
        return lambda done: progress.update(task, completed=done)

    return factory, progress.stop


def _source(spec: str | None) -> Path | None:
    """The file of a ``FILE.py:FUNCTION`` option, to protect it from being overwritten."""
    if not spec:
        return None
    path_text, sep, _ = spec.rpartition(":")
    return Path(path_text) if sep and path_text else None


def _check_outputs(args: argparse.Namespace, csv: Path) -> None:
    """Refuse bad output paths, and pictures without matplotlib, before any work is done."""
    check_outputs(
        {"--json": args.json, "--plot": args.plot, "--animate": args.animate},
        {
            "the input data file": csv,
            "the --manual source": _source(args.manual),
            "the --loss source": _source(args.loss),
            "the --combine source": _source(args.combine),
        },
    )
    for option, path in (("--plot", args.plot), ("--animate", args.animate)):
        if path is None:
            continue
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError(
                f"{option} {path}: plotting needs matplotlib: pip install "
                '"minigrad-verifiers[plot]"'
            ) from None


def _wrote(what: str, path: str | Path) -> None:
    """Say where an output went, on standard error (with --quiet too): standard output keeps
    the report, whose last line is the verdict."""
    shown = str(path)
    if not shown.isprintable():  # a newline or a control character: one line, quoted
        shown = repr(shown)
    print(f"wrote {what} to {shown}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    if not sys.warnoptions:
        # Libraries' warnings (and those of a user's code probed with complex numbers, or traced
        # by jax) are noise around a verdict; `python -W default -m verifiers.run` shows them.
        warnings.simplefilter("ignore")
    # Laid out for COLUMNS, else the terminal's width, else (a file, a pipe) 80 columns.
    out = Console(highlight=False, width=output_width(sys.stdout))
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        parser = build_parser()
        raw = list(sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(_join_negative_values(parser, raw))
        settings = _settings(args)
        check_settings(settings, ENGINE_NAMES)  # before the data is loaded, which may take a while
        csv = args.csv if args.csv is not None else reference_csv()
        _check_outputs(args, csv)
        given = [
            f"{flag} {spec}"
            for flag, spec in (("--manual", args.manual), ("--loss", args.loss),
                               ("--combine", args.combine))
            if spec
        ]  # fmt: skip
        if given and can_isolate():  # the user's code runs in a supervised child process
            return run_isolated(raw, given, settings.time_limit)
        formula = load_function(args.manual, "--manual") if args.manual else None
        loss = load_function(args.loss, "--loss") if args.loss else None
        combination = load_function(args.combine, "--combine") if args.combine else None
        data = load_csv(csv, args.dtype)
        show_progress = wants_progress(args.quiet, data.rows * args.iterations)
        factory, stop = _progress_factory(err) if show_progress else (None, lambda: None)
        try:
            report = verify(
                data,
                settings,
                formula=formula,
                loss=loss,
                combination=combination,
                progress=factory,
                warn=lambda message: print(message, file=sys.stderr),
                processes=True,
            )
        finally:
            stop()
        from verifiers.report import print_report, to_json

        if args.json == "-":  # standard output carries the JSON alone
            out = Console(stderr=True, highlight=False, width=output_width(sys.stderr))
        print_report(report, out, quiet=args.quiet)
        if args.json is not None:
            document = json.dumps(to_json(report), indent=2, allow_nan=False) + "\n"
            write_output(args.json, document, option="--json")
            if args.json != "-":
                _wrote("the JSON report", args.json)
        if args.plot is not None:
            from verifiers.report.plot import save_plot

            save_plot(report, args.plot)
            _wrote("the plot", args.plot)
        if args.animate is not None:
            from verifiers.report.animate import save_animation

            frames = save_animation(report, args.animate)
            _wrote(f"the animation ({frames} frames)", args.animate)
    except (
        DataError, UsageError, FormulaLoadError, FormulaError, OutputError, ShardedError
    ) as error:  # fmt: skip
        print(f"error: {error}", file=sys.stderr)  # verbatim: no markup or emoji codes
        return 2
    except KeyboardInterrupt:
        if in_isolated_child():  # Ctrl-C reaches only the parent: this came from user code
            raise
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: never to be read as a verdict (exit status 1)
        return internal_error(error, "verifiers.run")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
