"""The record of a mutant, the kinds it comes in, and how one is run through the verifier.

A mutant is a wrong hand formula with the ``--manual`` signature: ``gradient(b, w, X, y) ->
(dL/db, dL/dw)`` for mse, ridge, logistic and ``--loss``, ``gradient(params, X, y) -> dict`` for
softmax and mlp. Each lives as a module-level function of its model's module (the record's
`name` is the function's name), so the command line can load it as ``FILE.py:name``.

The model modules import this one by its absolute name (``tests.verifiers.mutants.base``): the
command line loads them from their path, without a package around them, and the repository root
is on ``sys.path`` there (``python -m`` from the root).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from verifiers import Settings, build_model, verify
from verifiers.compare import Tolerance
from verifiers.data import Dataset, load_csv
from verifiers.engines import EngineUnavailable, engine_class
from verifiers.models.user import UserLossError
from verifiers.results import Report

REPO_ROOT = Path(__file__).resolve().parents[3]

# The data sets, by the path the command line is given (relative to the repository root).
DATA_CSV = "data/data.csv"
BINARY_CSV = "data/binary.csv"
CLASSES_CSV = "data/classes.csv"
WAVE_CSV = "data/wave.csv"
SMALL_CSV = "tests/verifiers/mutants/data/small.csv"
ZEROS_CSV = "tests/verifiers/mutants/data/zeros.csv"
MULTI_CSV = "tests/verifiers/mutants/data/multi.csv"
CLASSES3_CSV = "tests/verifiers/mutants/data/classes3.csv"
WAVE3_CSV = "tests/verifiers/mutants/data/wave3.csv"

# The kinds, in the order the score lists them. The classic slips first, then tiny relative
# errors, then the region-limited mutants: right almost everywhere, wrong in one region of the
# parameters (or on some rows of the data) where a check that looks around finds them.
KINDS = {
    "factor": "a constant factor (2, 1/2, N, 1/N, λ...) on one derivative or all",
    "sign": "a sign flipped",
    "missing-term": "a term left out",
    "swap": "derivatives swapped, transposed or taken in the wrong order",
    "sum-mean": "a sum where a mean belongs, or the other way round",
    "slip": "a classic slip of the model's own derivation (its page's list)",
    "float32": "float32 arithmetic inside a float64 check",
    "tiny": "a tiny relative error (1e-6, 1e-8, 1e-10) on one component",
    "sign-pattern": "wrong only in one sign pattern of the parameters",
    "far-out": "wrong only far out (large parameters, still within the data's scale)",
    "thin-band": "wrong only in a thin band of one parameter",
    "near-zero": "wrong only where a parameter is near zero",
    "extreme-rows": "wrong only on extreme rows (a clipped logit, a saturated unit, an outlier)",
    "label-rows": "wrong only on rows of one target value (y == 0, the largest class)",
}
MODELS = ("mse", "ridge", "logistic", "softmax", "mlp", "loss")

Formula = Callable[..., Any]


@dataclass(frozen=True)
class Mutant:
    """One hand formula of the catalogue: a mutant (wrong), or a model's right formula.

    `data` is the CSV it is checked on; `options` are other Settings fields it needs (``l2``,
    ``hidden``). For ``--loss`` mutants `model` is ``"loss"`` and `loss` is the loss function,
    `loss_name` its name in the same module. `witness` is a point θ (flat, in the model's order)
    of the region where the mutant is wrong, by far more than rounding: the catalogue's own test
    checks it there, so every mutant is known to be wrong somewhere a check should look. A
    callable witness is given the model's default start.
    """

    model: str
    name: str
    kind: str
    description: str
    formula: Formula
    file: str
    data: str
    loss: Formula | None = None
    loss_name: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    witness: Any = None

    @property
    def id(self) -> str:
        """``model:name``, unique over the catalogue (a right formula's adds its loss and data
        set: ``loss:mse_gradient/mse_vecdot@small``)."""
        if not self.right:
            return f"{self.model}:{self.name}"
        loss = f"/{self.loss_name}" if self.loss_name else ""
        return f"{self.model}:{self.name}{loss}@{Path(self.data).stem}"

    @property
    def right(self) -> bool:
        return self.kind == "right"

    def settings(self, **overrides: Any) -> Settings:
        """The default settings, with the model and the options this formula needs."""
        values = {"model": "mse" if self.model == "loss" else self.model, **self.options}
        return Settings(**{**values, **overrides})

    def cli_args(self) -> list[str]:
        """The command line that checks it at the default settings (from the repository root)."""
        args = [self.data, "--manual", f"{self.file}:{self.name}"]
        if self.model == "loss":
            args += ["--loss", f"{self.file}:{self.loss_name}"]
        elif self.model != "mse":
            args += ["--model", self.model]
        for key, value in self.options.items():
            args += [f"--{key}", str(value)]
        return args

    def dataset(self) -> Dataset:
        return load(self.data)

    def verify(self, **overrides: Any) -> Report:
        """The verifier's report on this formula: default check settings, every engine installed,
        no descent (``iterations=0``) unless asked: the gradient check must catch it alone."""
        settings = self.settings(**{"iterations": 0, **overrides})
        return verify(self.dataset(), settings, formula=self.formula, loss=self.loss)

    def witness_point(self) -> np.ndarray:
        """The point θ where this formula is checked by :meth:`error_at_witness`."""
        start = build_model(self.settings(), self.dataset(), self.loss).start()
        if self.witness is None:
            return start
        if callable(self.witness):
            return np.asarray(self.witness(start), dtype=np.float64)
        return np.asarray(self.witness, dtype=np.float64)

    def error_at_witness(self) -> float:
        """The formula's largest difference from a reverse-mode engine's gradient at
        :meth:`witness_point`, as a multiple of what the default tolerance allows there (at most
        1 for a right formula; far above 1 for a mutant, or it would be wrong only by rounding).
        """
        data = self.dataset()
        model = build_model(self.settings(), data, self.loss)
        theta = self.witness_point()
        trusted = _reverse_mode_gradient(model, theta)
        manual = engine_class("manual")(model, formula=self.formula, formula_name=self.id)
        given = manual.evaluate(theta).gradient
        tolerance = Tolerance.for_dtype(data.dtype, data.rows)
        allowed = tolerance.atol * model.scales_at(theta).gradient + tolerance.rtol * np.abs(
            trusted
        )
        return float(np.max(np.abs(given - trusted) / allowed))


def _reverse_mode_gradient(model: Any, theta: np.ndarray) -> np.ndarray:
    """The gradient from minigrad, or torch or jax for a loss minigrad's namespace cannot run
    (``xp.linalg``)."""
    for name in ("minigrad", "torch", "jax"):
        try:
            return engine_class(name)(model).evaluate(theta).gradient
        except (EngineUnavailable, UserLossError):
            continue
    raise RuntimeError(f"no reverse-mode engine can differentiate {model.formula}")


@functools.cache
def load(path: str) -> Dataset:
    """A data set of the catalogue (read once; the verifier does not modify it)."""
    return load_csv(REPO_ROOT / path)


class Maker:
    """Builds the records of one module: ``Maker("mse", globals(), DATA_CSV)``.

    The formula is the module's function of the same name, so the record and the command line
    (``FILE.py:name``) always name the same function.
    """

    def __init__(
        self,
        model: str,
        namespace: dict[str, Any],
        data: str,
        loss: str | None = None,
        **options: Any,
    ) -> None:
        self.model, self.namespace, self.data = model, namespace, data
        self.loss, self.options = loss, options
        file = Path(namespace["__file__"]).resolve()
        self.file = file.relative_to(REPO_ROOT).as_posix()

    def __call__(
        self,
        name: str,
        kind: str,
        description: str,
        *,
        data: str | None = None,
        loss: str | None = None,
        witness: Any = None,
        **options: Any,
    ) -> Mutant:
        if kind != "right" and kind not in KINDS:
            raise ValueError(f"{name}: unknown kind {kind!r}")
        loss_name = loss or self.loss
        return Mutant(
            model=self.model,
            name=name,
            kind=kind,
            description=description,
            formula=self.namespace[name],
            file=self.file,
            data=data or self.data,
            loss=self.namespace[loss_name] if loss_name else None,
            loss_name=loss_name,
            options={**self.options, **options},
            witness=witness,
        )


# ---- building blocks of the mutants --------------------------------------------------------------
def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) without overflow on either side."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def one_hot(y: np.ndarray, k: int) -> np.ndarray:
    """The one-hot rows of integer labels y (given as floats)."""
    return np.eye(k)[y.astype(int)]


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, the row's largest score subtracted first."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)
