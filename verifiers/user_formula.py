"""Load a user's function (a hand-derived gradient, a loss) from ``path/to/file.py:function``."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from verifiers.isolation import UserCodeError, describe, user_call

__all__ = ["FormulaLoadError", "load_formula", "load_function"]


class FormulaLoadError(ValueError):
    """The file or function named by ``--manual`` cannot be used."""


def load_formula(spec: str) -> Callable:
    """The hand-derived gradient named by ``--manual file.py:function``."""
    return load_function(spec, "--manual")


def load_function(spec: str, option: str) -> Callable:
    """Import `function` from `file.py` given as ``"file.py:function"`` (for `option`).

    Importing the file runs it (as user code, see :mod:`verifiers.isolation`): anything it
    raises, a ``sys.exit()`` included, is a one-line FormulaLoadError naming the file and line,
    never a crash or an exit without a verdict.
    """
    path_text, sep, name = spec.rpartition(":")
    if not sep or not path_text or not name:
        raise FormulaLoadError(f"{option} {spec}: expected FILE.py:FUNCTION")
    path = Path(path_text)
    if not path.is_file():
        raise FormulaLoadError(f"{option} {spec}: {path} does not exist or is not a file")
    module_name = f"_verifiers_user_formula_{abs(hash(path.resolve()))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise FormulaLoadError(f"{option} {spec}: {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module

    def run_file() -> object:
        module_spec.loader.exec_module(module)
        return getattr(module, name, None)  # may run the module's own __getattr__

    try:
        function = user_call(f"importing {path} ({option} {spec})", run_file)
    except Exception as error:  # UserCodeError included: any other BaseException
        del sys.modules[module_name]
        cause = error.error if isinstance(error, UserCodeError) else error
        what = f"importing {path}{_line_of(cause, path)} {describe(cause)}"
        raise FormulaLoadError(f"{option} {spec}: {what}") from None
    if not callable(function):
        raise FormulaLoadError(f"{option} {spec}: {path} has no function named {name!r}")
    return function


def _line_of(error: BaseException, path: Path) -> str:
    """``:LINE`` of the deepest frame in `path`, when the traceback reaches it."""
    if isinstance(error, SyntaxError) and error.lineno:
        return f":{error.lineno}"
    line = None
    traceback = error.__traceback__
    while traceback is not None:
        if Path(traceback.tb_frame.f_code.co_filename) == path:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return f":{line}" if line else ""
