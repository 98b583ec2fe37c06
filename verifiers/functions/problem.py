"""What is checked: a function of named inputs, how to draw them, and the hand derivatives given.

A check file is plain Python::

    inputs = {"x": (4, 6), "gamma": (6,), "beta": (6,)}     # shapes: standard normal values
    # or: def inputs(rng): return {"x": ..., ...}           # a constrained domain, labels

    def forward(x, gamma, beta, *, xp):                     # the array API: xp is numpy,
        ...                                                 # minigrad, torch or jax's namespace
        return y

    def vjp(g, x, gamma, beta):                             # any of vjp, jvp, gradient, hvp
        return {"x": ..., "gamma": ..., "beta": ...}

The hand derivatives and what they return:

- ``vjp(g, *inputs)``: a dict of gradients by input name, for a cotangent g shaped like the output
  (reverse mode: ``gᵀJ``);
- ``jvp(t, *inputs)``: an array shaped like the output, for tangents t, a dict by input name
  (forward mode: ``J·t``);
- ``gradient(*inputs)`` (a scalar output): a dict by input name;
- ``hvp(v, *inputs)`` (a scalar output): a dict by input name, the Hessian times v.

``forward`` may also take ``tap``: ``h = tap("h", h)`` names an intermediate, and a ``vjp`` or a
``gradient`` may then return the gradient with respect to it too (``{"h": ..., ...}``), to find
the first wrong step of a hand backprop. Integer and boolean inputs (labels, masks) are data: no
derivative is taken or expected for them.

Every call into user code goes through :func:`verifiers.isolation.user_call` (on the command
line the whole check runs in a supervised child with a time limit). A problem that cannot be
checked (no ``forward``, inputs that are not shapes or a function, a hand derivative that raises
or returns a wrong shape or leaves out an input) is a :class:`CheckFileError`: one line naming
the file and line where there is one, exit status 2. A result whose shape is what a classic slip
gives (a broadcast input's gradient not summed back, a transposed matrix) is not an error but a
wrong derivative, kept as :class:`Misshapen` and diagnosed.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import numbers
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from verifiers.isolation import UserCodeError, describe, user_call
from verifiers.settings import UsageError

__all__ = [
    "CheckFileError",
    "Derivative",
    "HandDerivativeError",
    "Misshapen",
    "Problem",
    "Shape",
    "problem_from_file",
    "problem_from_functions",
]

Shape = tuple[int, ...]
# The largest input a shape in a check file may ask for (elements): the engines' finite
# differences take one forward evaluation per element.
MAX_ELEMENTS = 1_000_000


class Derivative(StrEnum):
    """The hand derivatives a check file may give (the value is the function's name)."""

    VJP = "vjp"
    JVP = "jvp"
    GRADIENT = "gradient"
    HVP = "hvp"

    @property
    def signature(self) -> str:
        return {
            Derivative.VJP: "vjp(g, *inputs) -> dict of gradients by input name",
            Derivative.JVP: "jvp(t, *inputs) -> array shaped like the output",
            Derivative.GRADIENT: "gradient(*inputs) -> dict of gradients by input name",
            Derivative.HVP: "hvp(v, *inputs) -> dict by input name",
        }[self]

    @property
    def seeded(self) -> bool:
        """Whether the hand derivative takes a first argument (g, t or v) before the inputs."""
        return self is not Derivative.GRADIENT

    @property
    def per_input(self) -> bool:
        """Whether it returns a dict by input name (all but the jvp, which returns an array)."""
        return self is not Derivative.JVP

    @property
    def tapped(self) -> bool:
        """Whether it may return gradients with respect to tapped intermediates too."""
        return self in (Derivative.VJP, Derivative.GRADIENT)

    @property
    def scalar_only(self) -> bool:
        return self in (Derivative.GRADIENT, Derivative.HVP)


class CheckFileError(UsageError):
    """The problem cannot be checked as given (the command line: one line, exit status 2)."""


class HandDerivativeError(CheckFileError):
    """A hand derivative raised, or returned something that is not that derivative."""


@dataclass(frozen=True)
class Misshapen:
    """A hand result whose shape is that of a classic slip, kept to be judged wrong and
    diagnosed: ``broadcast`` (an input's gradient left at the shape it was broadcast to: the
    axes `axes` are not summed back) or ``transposed`` (a matrix's gradient transposed)."""

    values: np.ndarray
    kind: str
    axes: tuple[int, ...] = ()

    @property
    def shape(self) -> Shape:
        return tuple(self.values.shape)


HandResult = dict[str, "np.ndarray | Misshapen"]


@dataclass
class Problem:
    """A function of named inputs and the hand derivatives to check (see the module docstring).

    `names` are forward's inputs in its order; `inputs` their shapes or a function of a numpy
    random generator that returns their values; `hand` the hand derivatives given; `label` how
    messages name the code (the file as given on the command line); `path` the file, to find
    the line of an error in it.
    """

    forward: Callable[..., Any]
    names: tuple[str, ...]
    inputs: Mapping[str, Shape] | Callable[[np.random.Generator], Mapping[str, Any]]
    hand: dict[Derivative, Callable[..., Any]]
    label: str
    takes_tap: bool = False
    path: Path | None = None
    data: frozenset[str] = frozenset()  # floating-point inputs declared data: not differentiated
    constants: frozenset[str] = field(default_factory=frozenset)  # data, learned when drawn

    # ---- the inputs ---------------------------------------------------------------------------
    def draw(
        self, rng: np.random.Generator, dtype: np.dtype, pattern: int = 0
    ) -> dict[str, np.ndarray]:
        """One check point's inputs: floats in `dtype`; integers and booleans as they are.

        Inputs given as shapes follow `pattern` (see :data:`PATTERNS`), so that a few points
        reach every sign of every input and magnitudes over several decades; inputs drawn by
        the file's own inputs(rng) are its to choose (a constrained domain)."""
        if callable(self.inputs):
            drawn = self._call(
                f"inputs in {self.label}", self.inputs, rng, where=self.inputs, what="inputs(rng)"
            )
            values = self._drawn(drawn)
        else:
            values = {
                name: _patterned(rng, self.inputs[name], pattern, k)
                for k, name in enumerate(self.names)
            }
        values = {name: v.astype(dtype) if v.dtype.kind == "f" else v for name, v in values.items()}
        self.constants = frozenset(
            n for n, v in values.items() if v.dtype.kind != "f" or n in self.data
        )
        return values

    def _drawn(self, drawn: Any) -> dict[str, np.ndarray]:
        where = self.where(self.inputs)
        if not isinstance(drawn, Mapping):
            raise CheckFileError(
                f"{where}: inputs(rng) must return a dict of arrays by input name, not "
                f"{type(drawn).__name__}"
            )
        if set(drawn) != set(self.names):
            raise CheckFileError(f"{where}: inputs(rng) {_name_difference(drawn, self.names)}")
        values = {}
        for name in self.names:
            array = _as_numbers(drawn[name])
            if array is None or array.dtype.kind not in "fiub":
                raise CheckFileError(
                    f"{where}: inputs(rng) returned {_what(drawn[name])} for {name}, not an "
                    "array of real numbers"
                )
            values[name] = array.astype(np.float64) if array.dtype.kind == "f" else array
        return values

    def differentiable(self, values: Mapping[str, Any]) -> list[str]:
        """The inputs derivatives are taken with respect to: the floating-point ones, but for
        those declared data (``constants`` in a check file)."""
        return [
            n for n in self.names if n not in self.data and np.asarray(values[n]).dtype.kind == "f"
        ]

    # ---- forward ------------------------------------------------------------------------------
    def evaluate(
        self,
        xp: Any,
        values: Mapping[str, Any],
        shifts: Mapping[str, Any] | None = None,
        record: dict[str, Any] | None = None,
    ) -> Any:
        """``forward(*values, xp=xp)``; each ``tap(name, h)`` returns ``h + shifts[name]``
        (an engine's handle on the intermediate) and, with `record`, stores h there."""
        kwargs: dict[str, Any] = {"xp": xp}
        if self.takes_tap:
            kwargs["tap"] = _Tap(self, shifts, record)
        arguments = [values[name] for name in self.names]
        return user_call(f"forward in {self.label}", self.forward, *arguments, **kwargs)

    def reference(
        self, xp: Any, values: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The output and the tapped intermediates on plain numpy: a forward that fails here
        is the file's fault (one line, exit 2), not an engine's."""
        record: dict[str, Any] = {}
        try:
            with np.errstate(all="ignore"):
                output = self.evaluate(xp, values, None, record)
        except CheckFileError:
            raise
        except UserCodeError as error:  # sys.exit() and the like: said the same way
            cause = error.error if error.error is not None else error
            raise CheckFileError(
                f"{self.where(self.forward, cause)}: forward {describe(cause)}"
            ) from None
        except Exception as error:
            raise CheckFileError(
                f"{self.where(self.forward, error)}: forward {describe(error)}"
            ) from None
        array = _as_numbers(output)
        if array is None or array.dtype.kind not in "fiub":
            raise CheckFileError(
                f"{self.where(self.forward)}: forward must return an array of real numbers, "
                f"not {_what(output)}"
            )
        taps = {}
        for name, value in record.items():
            tapped = _as_numbers(value)
            if tapped is None or tapped.dtype.kind != "f":
                raise CheckFileError(
                    f"{self.where(self.forward)}: tap({name!r}, ...) was given {_what(value)}, "
                    "not an array of floating-point numbers"
                )
            taps[name] = tapped
        return array, taps

    # ---- the hand derivatives -----------------------------------------------------------------
    def call_hand(
        self,
        kind: Derivative,
        seed: Any,
        values: Mapping[str, np.ndarray],
        output_shape: Shape,
        taps: Mapping[str, np.ndarray],
    ) -> HandResult:
        """The hand derivative `kind` at `values` (with its g, t or v first), checked and read
        into float64 arrays: a dict by input name (and tap name), or ``{"output": array}`` for
        a jvp. Raises :class:`HandDerivativeError` when it raises or returns something unusable.
        """
        function = self.hand[kind]
        arguments = [_read_only(values[n]) for n in self.names]
        if kind.seeded:
            first = (
                {n: _read_only(v) for n, v in seed.items()}
                if isinstance(seed, Mapping)
                else _read_only(seed)
            )
            arguments.insert(0, first)
        with np.errstate(all="ignore"):
            try:
                result = self._call(
                    f"{kind.value} in {self.label}", function, *arguments, where=function, what=kind
                )
                if kind is Derivative.JVP:
                    return {"output": self._jvp_result(result, output_shape)}
                return self._per_input(kind, result, values, taps)
            except UserCodeError:
                raise
            except HandDerivativeError:
                raise
            except Exception as error:  # reading the result ran user code (__array__, ...)
                raise HandDerivativeError(
                    f"{self.where(function, error)}: reading what {kind.value} returned "
                    f"{describe(error)}"
                ) from None

    def _jvp_result(self, result: Any, output_shape: Shape) -> np.ndarray:
        where = self.where(self.hand[Derivative.JVP])
        array = _real(result, where, "jvp's result")
        if array.shape != output_shape and not (array.size == 1 and math.prod(output_shape) == 1):
            raise HandDerivativeError(
                f"{where}: jvp returned shape {array.shape}, but forward's output has shape "
                f"{output_shape}"
            )
        return array.reshape(output_shape)

    def _per_input(
        self,
        kind: Derivative,
        result: Any,
        values: Mapping[str, np.ndarray],
        taps: Mapping[str, np.ndarray],
    ) -> HandResult:
        where = self.where(self.hand[kind])
        wanted = self.differentiable(values)
        if not isinstance(result, Mapping):
            raise HandDerivativeError(
                f"{where}: {kind.value} must return a dict by input name ({', '.join(wanted)}), "
                f"not {_what(result)}"
            )
        allowed_taps = list(taps) if kind.tapped else []
        read: HandResult = {}
        for key, value in result.items():
            if key in self.constants or (key in self.names and key not in wanted):
                if value is None:
                    continue
                raise HandDerivativeError(
                    f"{where}: {kind.value} returned a gradient for {key}, which is data (an "
                    "integer or boolean input, or one listed in constants): it has no "
                    "derivative (leave it out)"
                )
            if key not in wanted and key not in allowed_taps:
                known = f"inputs: {', '.join(wanted)}"
                if taps:
                    known += f"; taps: {', '.join(taps)}" if kind.tapped else (
                        f"; a {kind.value} returns no taps"
                    )  # fmt: skip
                raise HandDerivativeError(
                    f"{where}: {kind.value} returned {key!r}, which is not an input of forward "
                    f"({known})"
                )
            shape = tuple(np.shape(values[key] if key in values else taps[key]))
            read[key] = self._shaped(
                kind, key, _real(value, where, f"the gradient of {key}"), shape
            )
        missing = [n for n in wanted if n not in read]
        if missing:
            raise HandDerivativeError(
                f"{where}: {kind.value} returned no gradient for {', '.join(missing)} (it "
                f"returned {', '.join(map(str, result)) or 'an empty dict'})"
            )
        return read

    def _shaped(
        self, kind: Derivative, key: str, array: np.ndarray, shape: Shape
    ) -> np.ndarray | Misshapen:
        if array.shape == shape:
            return array
        if array.size == 1 and math.prod(shape) == 1:
            return array.reshape(shape)
        axes = unbroadcast_axes(shape, array.shape)
        if axes is not None:
            return Misshapen(array, "broadcast", axes)
        if len(shape) >= 2 and array.shape == shape[::-1]:
            return Misshapen(array, "transposed")
        raise HandDerivativeError(
            f"{self.where(self.hand[kind])}: {kind.value} returned a gradient of shape "
            f"{array.shape} for {key}, whose shape is {shape}"
        )

    # ---- calling user code, and where it is -----------------------------------------------------
    def _call(self, label: str, function: Callable, *args: Any, where: Callable, what: Any) -> Any:
        name = what.value if isinstance(what, Derivative) else what
        try:
            return user_call(label, function, *args)
        except UserCodeError as error:  # sys.exit() and the like: said the same way
            cause = error.error if error.error is not None else error
            raise HandDerivativeError(
                f"{self.where(where, cause)}: {name} {describe(cause)}"
            ) from None
        except Exception as error:
            raise HandDerivativeError(
                f"{self.where(where, error)}: {name} {describe(error)}"
            ) from None

    def where(self, function: Any, error: BaseException | None = None) -> str:
        """``FILE:LINE`` for messages: the deepest line of `error`'s traceback in the check
        file (or in `function`'s file), else the line where `function` is defined."""
        path = self.path or _source_file(function)
        shown = self.label if self.path is not None else (_shown(path) if path else self.label)
        if path is not None and error is not None:
            line = _deepest_line(error, path)
            if line is not None:
                return f"{shown}:{line}"
        code = getattr(function, "__code__", None)
        if code is not None and path is not None and Path(code.co_filename) == path:
            return f"{shown}:{code.co_firstlineno}"
        return shown


class _Tap:
    """The ``tap`` forward is given: records an intermediate, and returns it plus an engine's
    shift (a zero that the engine differentiates with respect to)."""

    def __init__(
        self,
        problem: Problem,
        shifts: Mapping[str, Any] | None,
        record: dict[str, Any] | None,
    ) -> None:
        self.problem = problem
        self.shifts = shifts or {}
        self.record = record
        self.seen: set[str] = set()

    def __call__(self, name: str, value: Any) -> Any:
        where = self.problem.where(self.problem.forward)
        if not isinstance(name, str) or not name.isidentifier():
            raise CheckFileError(f"{where}: tap's first argument must be a name, not {name!r}")
        if name in self.problem.names:
            raise CheckFileError(f"{where}: tap({name!r}, ...) has the name of an input")
        if name in self.seen:
            raise CheckFileError(
                f"{where}: tap({name!r}, ...) is called twice in one call of forward: each "
                "intermediate needs a name of its own"
            )
        self.seen.add(name)
        if self.record is not None:
            self.record[name] = value
        shift = self.shifts.get(name)
        return value if shift is None else value + shift


# ---- building a problem -------------------------------------------------------------------------
def problem_from_functions(
    forward: Callable[..., Any],
    inputs: Any,
    hand: Mapping[Derivative | str, Callable[..., Any] | None],
    label: str | None = None,
    path: Path | None = None,
    constants: Any = (),
) -> Problem:
    """A :class:`Problem` from Python callables (the API), checked as a file's would be.
    `constants` names floating-point inputs that are data (not differentiated)."""
    shown = label or getattr(forward, "__qualname__", None) or "forward"
    if not callable(forward):
        raise CheckFileError(f"{shown}: forward must be a function, not {_what(forward)}")
    names, takes_tap = _forward_signature(forward, shown)
    spec = _input_spec(inputs, names, shown)
    if isinstance(constants, str) or not all(isinstance(n, str) for n in constants):
        raise CheckFileError(
            f"{shown}: constants must be a collection of input names, not {constants!r}"
        )
    unknown = [n for n in constants if n not in names]
    if unknown:
        raise CheckFileError(
            f"{shown}: constants names {', '.join(unknown)}, which forward does not take "
            f"(its inputs: {', '.join(names)})"
        )
    given = {Derivative(k): f for k, f in hand.items() if f is not None}
    for kind, function in given.items():
        if not callable(function):
            raise CheckFileError(f"{shown}: {kind.value} must be a function, not {_what(function)}")
        _check_signature(kind, function, names, shown)
    if not given:
        raise CheckFileError(
            f"{shown}: no hand derivative to check: give at least one of vjp, jvp, gradient, hvp"
        )
    return Problem(forward, names, spec, given, shown, takes_tap, path, frozenset(constants))


def problem_from_file(spec: str) -> Problem:
    """The problem a check file defines (see the module docstring). ``FILE.py:NAME,...``
    checks the functions named instead of vjp, jvp, gradient and hvp (a name starts with the
    derivative it is: ``vjp_slip``). Importing the file runs it as user code: anything it raises
    is a one-line :class:`CheckFileError` naming the line."""
    path_text, chosen = spec, []
    if not spec.endswith(".py") and ".py:" in spec:
        path_text, _, names = spec.rpartition(":")
        chosen = [n.strip() for n in names.split(",") if n.strip()]
    path = Path(path_text)
    if not path.is_file():
        raise CheckFileError(f"{path_text}: no such file")
    if path.suffix != ".py":
        raise CheckFileError(f"{path_text}: a check file is a Python file (FILE.py)")
    resolved = path.resolve()
    module_name = f"_verifiers_check_file_{abs(hash(resolved))}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise CheckFileError(f"{path_text}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    loader = spec.loader
    try:
        user_call(f"importing {path_text}", loader.exec_module, module)
    except Exception as error:  # UserCodeError included: sys.exit() while importing
        del sys.modules[module_name]
        cause = error.error if isinstance(error, UserCodeError) and error.error else error
        line = _deepest_line(cause, resolved)
        if isinstance(cause, SyntaxError) and cause.lineno:
            line = cause.lineno
        where = f"{path_text}:{line}" if line else path_text
        raise CheckFileError(f"{where}: importing the file {describe(cause)}") from None
    forward = getattr(module, "forward", None)
    if forward is None:
        raise CheckFileError(
            f"{path_text}: no function forward(...): a check file defines forward(*inputs, xp), "
            "the function whose derivatives are checked"
        )
    if not hasattr(module, "inputs"):
        raise CheckFileError(
            f"{path_text}: no inputs: a check file defines inputs = {{name: shape, ...}} or a "
            "function inputs(rng) returning {name: array, ...}"
        )
    hand = _chosen(module, path_text, chosen)
    constants = getattr(module, "constants", ())
    try:
        constants = tuple(constants)
    except TypeError:
        raise CheckFileError(
            f"{path_text}: constants must be a collection of input names, not {constants!r}"
        ) from None
    return problem_from_functions(forward, module.inputs, hand, path_text, resolved, constants)


def _chosen(module: Any, path_text: str, chosen: Sequence[str]) -> dict[Derivative, Any]:
    """The hand derivatives to check: the functions named vjp, jvp, gradient and hvp, or those
    named in `chosen`, each a derivative by the start of its name (``vjp_slip`` is a vjp)."""
    if not chosen:
        return {kind: getattr(module, kind.value, None) for kind in Derivative}
    hand: dict[Derivative, Any] = {}
    for name in chosen:
        kind = next(
            (k for k in Derivative if name == k.value or name.startswith(k.value + "_")), None
        )
        if kind is None:
            raise CheckFileError(
                f"{path_text}:{name}: a hand derivative's name starts with what it is: vjp, "
                "jvp, gradient or hvp (vjp_slip is a vjp)"
            )
        if kind in hand:
            raise CheckFileError(f"{path_text}: two {kind.value}s chosen: check one at a time")
        function = getattr(module, name, None)
        if function is None:
            raise CheckFileError(f"{path_text}: no function named {name!r}")
        hand[kind] = function
    return hand


def _forward_signature(forward: Callable, shown: str) -> tuple[tuple[str, ...], bool]:
    """forward's input names (its positional parameters) and whether it takes ``tap``."""
    where = _line_of_definition(forward, shown)
    try:
        signature = inspect.signature(forward)
    except (TypeError, ValueError):
        raise CheckFileError(f"{where}: forward's parameters cannot be read") from None
    parameters = signature.parameters
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = tuple(
        n for n, p in parameters.items() if p.kind in positional and n not in ("xp", "tap")
    )
    keywords = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    if "xp" not in parameters and not keywords:
        raise CheckFileError(
            f"{where}: forward must take the array namespace as the keyword xp: "
            f"def forward({', '.join(names) or 'x'}, *, xp)"
        )
    if not names:
        raise CheckFileError(f"{where}: forward takes no inputs: def forward(x, ..., *, xp)")
    return names, "tap" in parameters or keywords


def _input_spec(inputs: Any, names: tuple[str, ...], shown: str) -> Any:
    """The shapes (checked and made tuples) or the function that draws the inputs."""
    if callable(inputs):
        return inputs
    if not isinstance(inputs, Mapping):
        raise CheckFileError(
            f"{shown}: inputs must be a dict of shapes by input name ({{'x': (4, 6)}}) or a "
            f"function inputs(rng) returning a dict of arrays, not {_what(inputs)}"
        )
    if set(inputs) != set(names):
        raise CheckFileError(f"{shown}: inputs {_name_difference(inputs, names)}")
    shapes = {}
    for name in names:
        shape = _shape(inputs[name])
        if shape is None:
            raise CheckFileError(
                f"{shown}: inputs[{name!r}] is {inputs[name]!r}, not a shape (a tuple of whole "
                "numbers such as (4, 6), or () for a number)"
            )
        if math.prod(shape) > MAX_ELEMENTS:
            raise CheckFileError(
                f"{shown}: inputs[{name!r}] has {math.prod(shape):,} elements; at most "
                f"{MAX_ELEMENTS:,} (a check point is small: rounding, not size, is what is tested)"
            )
        shapes[name] = shape
    return shapes


def _shape(value: Any) -> Shape | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        value = (value,)
    if not isinstance(value, (tuple, list)):
        return None
    if not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in value):
        return None
    if any(n < 0 for n in value):
        return None
    return tuple(int(n) for n in value)


def _check_signature(
    kind: Derivative, function: Callable, names: tuple[str, ...], shown: str
) -> None:
    """A hand derivative must take (seed, *inputs) or (*inputs): said in a sentence, not as
    Python's "missing 1 required positional argument" later."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # a builtin: the call will tell
    count = len(names) + (1 if kind.seeded else 0)
    try:
        signature.bind(*([None] * count))
    except TypeError:
        first = {Derivative.VJP: "g, ", Derivative.JVP: "t, ", Derivative.HVP: "v, "}.get(kind, "")
        raise CheckFileError(
            f"{_line_of_definition(function, shown)}: {kind.value} must take "
            f"({first}{', '.join(names)}), forward's inputs in its order; this one takes "
            f"{signature}"
        ) from None


def unbroadcast_axes(shape: Shape, broadcast: Shape) -> tuple[int, ...] | None:
    """The axes of `broadcast` that summing away (with numpy's broadcasting rules) gives `shape`,
    when an array of `shape` broadcasts to `broadcast` and the two differ; else None."""
    if broadcast == shape or len(broadcast) < len(shape):
        return None
    lead = len(broadcast) - len(shape)
    axes = list(range(lead))
    for i, n in enumerate(shape):
        m = broadcast[lead + i]
        if n == m:
            continue
        if n != 1:
            return None
        axes.append(lead + i)
    return tuple(axes)


# ---- helpers ------------------------------------------------------------------------------------
def _as_numbers(value: Any) -> np.ndarray | None:
    """`value` as a numpy array (numpy, torch, jax, a number, a list), or None."""
    from verifiers.engines.manual import to_numpy

    try:
        array = to_numpy(value)
    except Exception:
        return None
    return None if array.dtype == object else array


def _real(value: Any, where: str, what: str) -> np.ndarray:
    array = _as_numbers(value)
    if array is None or array.dtype.kind not in "fiubc":
        raise HandDerivativeError(f"{where}: {what} is {_what(value)}, not an array of numbers")
    if array.dtype.kind == "c":
        raise HandDerivativeError(
            f"{where}: {what} has complex numbers; the derivative of a real function is real"
        )
    return array.astype(np.float64)


def _read_only(array: Any) -> np.ndarray:
    """A read-only private copy: a hand derivative cannot change what the engines see."""
    copy = np.array(array, copy=True)
    copy.flags.writeable = False
    return copy


def _what(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{type(value).__name__} of shape {tuple(shape)}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _name_difference(given: Mapping[str, Any], names: tuple[str, ...]) -> str:
    extra = [n for n in given if n not in names]
    missing = [n for n in names if n not in given]
    parts = []
    if missing:
        parts.append(f"lack {', '.join(missing)}")
    if extra:
        parts.append(f"have {', '.join(map(repr, extra))}, which forward does not take")
    return " and ".join(parts) + f" (forward's inputs: {', '.join(names)})"


def _source_file(function: Any) -> Path | None:
    code = getattr(function, "__code__", None)
    return Path(code.co_filename) if code is not None else None


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _line_of_definition(function: Any, shown: str) -> str:
    code = getattr(function, "__code__", None)
    if code is None:
        return shown
    path = Path(code.co_filename)
    if shown.endswith(".py"):
        return f"{shown}:{code.co_firstlineno}"
    return f"{_shown(path)}:{code.co_firstlineno}"


def _deepest_line(error: BaseException, path: Path) -> int | None:
    """The line of the deepest frame of `error`'s traceback that runs in `path`."""
    line = None
    traceback = error.__traceback__
    while traceback is not None:
        if Path(traceback.tb_frame.f_code.co_filename) == path:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


# The check points' patterns for inputs given as shapes, point k taking PATTERNS[k % 8]: plain
# normal draws; every input positive; every input negative; small (×0.01) and large (×3)
# magnitudes; magnitudes spread log-uniformly over three and a half decades with random signs;
# and the first input positive with the others negative, and the reverse. A hand derivative
# wrong only where some input is positive, or only for large values, is met at these points.
# (Larger values would saturate functions like tanh, where a derivative of 1e-14 is all
# rounding and no engine's last digits can be compared.)
PATTERNS = (
    "normal",
    "positive",
    "negative",
    "small",
    "large",
    "spread",
    "first positive",
    "first negative",
)


def _patterned(rng: np.random.Generator, shape: Any, pattern: int, position: int) -> np.ndarray:
    """One input's values for check point pattern `pattern` (it is input number `position`)."""
    base = rng.standard_normal(shape)
    kind = PATTERNS[pattern % len(PATTERNS)]
    if kind == "positive":
        return np.abs(base)
    if kind == "negative":
        return -np.abs(base)
    if kind == "small":
        return base * 1e-2
    if kind == "large":
        return base * 3.0
    if kind == "spread":
        return np.sign(base) * 10.0 ** rng.uniform(-3.0, 0.5, np.shape(base))
    if kind == "first positive":
        return np.abs(base) if position == 0 else -np.abs(base)
    if kind == "first negative":
        return -np.abs(base) if position == 0 else np.abs(base)
    return base
