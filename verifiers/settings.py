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

from verifiers.models import MODEL_NAMES, MODELS, model_options

__all__ = [
    "LIMITS",
    "MODEL_NAMES",
    "Settings",
    "UsageError",
    "check_settings",
    "option",
]


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
    # Descents beyond the hand formulas' and the fastest exact engine's are cut to the first
    # iterations within this much work (rows × operations per row × iterations; a million rows
    # of one feature: 50 iterations). See plan._share_descents.
    companion_work: float = 2e8


LIMITS = Limits()


def option(help: str, flag: str | None = None, **argparse: Any) -> dict[str, Any]:
    """Metadata for a Settings field: its command-line help (and any argparse keywords)."""
    return {"help": help, "flag": flag, "argparse": argparse}


def _model_help() -> str:
    return "the model whose gradient is checked: " + ", ".join(
        f"{name} ({model.summary})" for name, model in MODELS.items()
    )


@dataclass(init=False)
class Settings:
    """Everything that decides the outcome of a run (written to the JSON report).

    Each field's metadata is its command-line option: ``python -m verifiers.run --help`` shows
    these help texts and defaults. The options one model alone takes (``l2`` for ridge,
    ``hidden`` for mlp) are declared by the model and given as keywords:
    ``Settings(model="ridge", l2=0.5)``; they are kept in :attr:`options`.
    """

    model: str = field(default="mse", metadata=option(_model_help(), choices=MODEL_NAMES))
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
    full_descents: bool = field(
        default=False,
        metadata=option(
            "every engine descends every iteration, however long that takes (by default, on "
            "large data, only the hand formulas and the exact engine with the cheapest step "
            "descend all the way; the others descend the first iterations, 50 at a million rows "
            "of one feature, and are compared over those)",
        ),
    )
    start: np.ndarray | None = field(
        default=None,
        metadata=option(
            "starting point b,w1,...,wd of the descent and first check point (the (b, w) "
            "models; default: zeros)",
            metavar="B,W1,...",
        ),
    )
    points: int = field(
        default=16,
        metadata=option(
            "random check points besides the start, the optimum and the model's extreme "
            "points; they come in pairs of opposite signs (so at least 2), every pair of "
            "parameters is seen with all four sign combinations, and each parameter's "
            "magnitudes spread over six decades around its scale",
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
            "classic 'mean of per-shard means' is checked too (models: "
            + ", ".join(name for name, model in MODELS.items() if model.shardable)
            + ")",
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
    options: dict[str, Any] = field(
        default_factory=dict, metadata={"cli": False}
    )  # the model's own options that were given (the model's defaults fill in the rest)

    def __init__(self, **values: Any) -> None:
        names = {f.name for f in dataclasses.fields(self)}
        options = dict(values.pop("options", None) or {})
        for f in dataclasses.fields(self):
            if f.name == "options":
                continue
            if f.name in values:
                value = values.pop(f.name)
            elif f.default_factory is not dataclasses.MISSING:
                value = f.default_factory()
            else:
                value = f.default
            setattr(self, f.name, value)
        known = model_options()
        for name, value in values.items():
            if name not in known:
                raise TypeError(
                    f"Settings has no field or model option {name!r} (fields: "
                    f"{', '.join(sorted(names))}; model options: {', '.join(known)})"
                )
            options[name] = value
        self.options = options

    def __getattr__(self, name: str) -> Any:
        """A model option by name (``settings.l2``): given, else the model's default."""
        if name.startswith("_") or name == "options":
            raise AttributeError(name)
        known = model_options()
        if name not in known:
            raise AttributeError(f"Settings has no attribute {name!r}")
        given = self.__dict__.get("options", {})
        return given[name] if name in given else known[name][1].default

    def to_json(self) -> dict[str, Any]:
        """The settings as plain JSON values, the model's options (given or default) included."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del values["options"]
        if self.start is not None:
            values["start"] = [float(v) for v in np.asarray(self.start).reshape(-1)]
        if self.engines is not None:
            values["engines"] = list(self.engines)
        model = MODELS.get(self.model)
        for declared in model.options if model is not None and self.loss is None else ():
            values[declared.name] = self.options.get(declared.name, declared.default)
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
    declared = model_options()
    for name, value in settings.options.items():
        owner, spec = declared[name]
        if settings.loss is not None or settings.model != owner:
            chosen = "--loss" if settings.loss is not None else f"--model {settings.model}"
            raise UsageError(
                f"--{name} sets {spec.sets} of --model {owner}; it has no effect with {chosen}"
            )
        problem = spec.problem(value)
        if problem is not None:
            raise UsageError(problem)
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
