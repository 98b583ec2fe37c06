"""Everything that decides the outcome of a run, defined once.

:class:`Settings` is the one definition: the Python API takes it, the JSON report records it,
and the command line builds its options from its fields (the option name, help text and
default all come from here). :func:`check_settings` refuses settings that are wrong whatever the
data, before anything slow happens.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "LIMITS",
    "MODEL_NAMES",
    "Settings",
    "UsageError",
    "check_settings",
    "option",
]

MODEL_NAMES = ("mse", "ridge", "logistic", "softmax", "mlp")


class UsageError(ValueError):
    """Bad arguments, or an engine that was asked for and cannot run (the CLI exits with 2)."""


@dataclass(frozen=True)
class Limits:
    """Bounds on the work a run may ask for: beyond them it is refused before it starts."""

    iterations: int = 10_000_000  # descent steps
    points: int = 1000  # random check points
    point_steps: float = 2e10  # rows × iterations of one descent
    point_checks: float = 1e9  # rows × check points
    hessian_parameters: int = 2000  # Hessians (and their eigenvalues) up to this many parameters
    seconds: float = 20.0  # an engine expected to take longer for a task is capped or skipped


LIMITS = Limits()


def option(
    help: str,
    flag: str | None = None,
    only: tuple[str, str] | None = None,
    **argparse: Any,
) -> dict[str, Any]:
    """Metadata for a Settings field: its command-line help (and any argparse keywords).

    `only` is ``(model, what it sets)`` for an option that one model alone reads: given with
    another model, the command line refuses it instead of ignoring it.
    """
    return {"help": help, "flag": flag, "only": only, "argparse": argparse}


@dataclass
class Settings:
    """Everything that decides the outcome of a run (written to the JSON report).

    Each field's metadata is its command-line option: ``python -m verifiers.run --help`` shows
    these help texts and defaults.
    """

    model: str = field(
        default="mse",
        metadata=option(
            "the model whose gradient is checked: "
            "mse (y ≈ X·w + b, mean squared error, the reference example), "
            "ridge (mse + l2·|w|²), logistic (binary cross-entropy, labels 0/1), "
            "softmax (cross-entropy, integer labels 0..k-1), "
            "mlp (one tanh hidden layer, mean squared error)",
            choices=MODEL_NAMES,
        ),
    )
    loss: str | None = field(
        default=None,
        metadata=option(
            "your own loss of the linear model, written once for every engine: a function "
            "(b, w, X, y, xp) -> scalar using the array namespace xp (numpy, torch, jax.numpy "
            "or minigrad's); replaces --model",
            metavar="FILE.py:FUNCTION",
        ),
    )
    manual: str | None = field(
        default=None,
        metadata=option(
            "your hand-derived gradient, the thing under test: for the (b, w) models a "
            "function (b, w, X, y) -> (dL/db, dL/dw) with b a float, w shape (d,), X shape "
            "(N, d), y shape (N,); for softmax and mlp a function (params, X, y) -> dict of "
            "gradients by parameter name; numpy, torch or jax arrays may be returned",
            metavar="FILE.py:FUNCTION",
        ),
    )
    engines: tuple[str, ...] | None = field(
        default=None,
        metadata=option(
            "comma-separated engines to run (default: every engine; a missing package only "
            "skips its engine, while an engine named here must run)",
            metavar="LIST",
        ),
    )
    lr: float | None = field(
        default=None,
        metadata=option(
            "learning rate of the descent (default: 0.0001 for mse, ridge and --loss, as in "
            "the reference example; 0.1 for logistic, softmax and mlp)",
        ),
    )
    iterations: int = field(default=1000, metadata=option("descent steps"))
    start: np.ndarray | None = field(
        default=None,
        metadata=option(
            "starting point b,w1,...,wd of the descent and first check point (the (b, w) "
            "models; default: zeros)",
            metavar="B,W1,...",
        ),
    )
    points: int = field(
        default=3,
        metadata=option(
            "random check points besides the start and the optimum; they come in pairs of "
            "opposite signs, so at least 2, and every parameter is checked at both signs",
            metavar="K",
        ),
    )
    seed: int = field(
        default=0, metadata=option("seed for the random check points (and mlp's initial weights)")
    )
    rtol: float | None = field(
        default=None,
        metadata=option("relative tolerance (default: 64 × the dtype's machine epsilon ε)"),
    )
    atol: float | None = field(
        default=None,
        metadata=option(
            "absolute tolerance, as a multiple of the size of the summed terms Σ|terms| of each "
            "value (default: 8·ε·(√min(N, 65536) + √⌈N/65536⌉), from the rounding of the sums; "
            "descents widen both by √(iterations + 1))",
        ),
    )
    device: str = field(
        default="auto",
        metadata=option(
            "where torch runs: auto picks CUDA when torch.cuda.is_available(); jax runs on its "
            "default device unless cpu is asked for",
            choices=("auto", "cpu", "cuda"),
        ),
    )
    dtype: str = field(
        default="float64",
        metadata=option(
            "floating-point type of every engine, end to end", choices=("float64", "float32")
        ),
    )
    shards: int | None = field(
        default=None,
        metadata=option(
            "also compute the loss, gradient and descent data-parallel over K workers "
            "(torch.distributed with gloo, or NCCL on GPUs; jax sharding over K devices), with "
            "contiguous shards of rows, and compare them with the single-process results; the "
            "classic 'mean of per-shard means' is checked too (mse and logistic)",
            metavar="K",
        ),
    )
    combine: str | None = field(
        default=None,
        metadata=option(
            "with --shards: your own combination of the shards' results, a function "
            "(shards) -> (dL/db, dL/dw) receiving one dict per shard (rows, loss_sum, "
            "grad_b_sum, grad_w_sum, loss_mean, grad_b_mean, grad_w_mean), checked against the "
            "true gradient",
            metavar="FILE.py:FUNCTION",
        ),
    )
    time_limit: float = field(
        default=60.0,
        metadata=option(
            "the longest one call of your code (--manual, --loss, --combine, and the import of "
            "their files) may run, in seconds: past it the run is stopped with one line naming "
            "the code, exit status 2 (the command line runs your code in a child process that it "
            "supervises)",
            metavar="SECONDS",
        ),
    )
    l2: float = field(
        default=0.1,
        metadata=option(
            "the weight λ of ridge's penalty λ·|w|² (--model ridge only)",
            only=("ridge", "the weight of the penalty λ·|w|²"),
        ),
    )
    hidden: int = field(
        default=8,
        metadata=option(
            "the number of hidden units (--model mlp only)", only=("mlp", "the hidden units")
        ),
    )

    def to_json(self) -> dict[str, Any]:
        """The settings as plain JSON values."""
        values = dataclasses.asdict(self)
        if self.start is not None:
            values["start"] = [float(v) for v in np.asarray(self.start).reshape(-1)]
        if self.engines is not None:
            values["engines"] = list(self.engines)
        return values


def check_settings(settings: Settings, engine_names: tuple[str, ...]) -> None:
    """Raise UsageError for settings that are wrong whatever the data (run before loading it)."""
    if settings.lr is not None and not (math.isfinite(settings.lr) and settings.lr > 0):
        raise UsageError(f"--lr must be a positive finite number, not {settings.lr!r}")
    if not 0 <= settings.iterations <= LIMITS.iterations:
        raise UsageError(
            f"--iterations must be between 0 and {LIMITS.iterations:,}, not {settings.iterations:,}"
        )
    if not 2 <= settings.points <= LIMITS.points:
        raise UsageError(
            f"--points must be between 2 and {LIMITS.points:,} (the random points come in pairs "
            f"of opposite signs), not {settings.points:,}"
        )
    if settings.seed < 0:
        raise UsageError(f"--seed must be 0 or more, not {settings.seed}")
    for name in settings.engines or ():
        if name not in engine_names:
            raise UsageError(f"unknown engine {name!r}; choose from {', '.join(engine_names)}")
    if settings.engines is not None and not settings.engines:
        raise UsageError("no engines to run: --engines needs at least one name")
    for option_name in ("rtol", "atol"):
        value = getattr(settings, option_name)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise UsageError(f"--{option_name} must be a finite number >= 0, not {value!r}")
    if not (math.isfinite(settings.time_limit) and settings.time_limit > 0):
        raise UsageError(
            f"--time-limit must be a positive finite number of seconds, not {settings.time_limit!r}"
        )
    if settings.model not in MODEL_NAMES:
        raise UsageError(f"unknown model {settings.model!r}; choose from {', '.join(MODEL_NAMES)}")
    if not (math.isfinite(settings.l2) and settings.l2 >= 0):
        raise UsageError(f"--l2 must be a finite number >= 0, not {settings.l2!r}")
    if not 1 <= settings.hidden <= 10_000:
        raise UsageError(f"--hidden must be between 1 and 10,000, not {settings.hidden}")
    if settings.start is not None and not np.isfinite(np.asarray(settings.start)).all():
        raise UsageError("--start values must be finite")
    if settings.shards is not None and not 2 <= settings.shards <= 64:
        raise UsageError(f"--shards must be between 2 and 64 workers, not {settings.shards}")
    if settings.combine is not None and settings.shards is None:
        raise UsageError("--combine checks a combination of shards: give --shards K too")
    if (
        settings.manual is not None
        and settings.engines is not None
        and ("manual" not in settings.engines)
    ):
        raise UsageError(
            f"--manual {settings.manual} is run by the manual engine, which --engines "
            "leaves out: add manual to --engines"
        )
