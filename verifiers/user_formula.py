"""Load a user's function (a hand-derived gradient, a loss) from ``path/to/file.py:function``."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["FormulaLoadError", "load_formula", "load_function"]


class FormulaLoadError(ValueError):
    """The file or function named by ``--manual`` cannot be used."""


def load_formula(spec: str) -> Callable:
    """The hand-derived gradient named by ``--manual file.py:function``."""
    return load_function(spec, "--manual")


def load_function(spec: str, option: str) -> Callable:
    """Import `function` from `file.py` given as ``"file.py:function"`` (for `option`).

    Importing the file runs it: anything it raises, and a ``sys.exit()``, is a one-line
    FormulaLoadError naming the file and line, never a crash or an exit without a verdict.
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
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:
        del sys.modules[module_name]
        where = _line_of(error, path)
        what = (
            f"called sys.exit({error.code!r})"
            if isinstance(error, SystemExit)
            else f"raised {type(error).__name__}: {error}"
        )
        raise FormulaLoadError(f"{option} {spec}: importing {path}{where} {what}") from None
    function = getattr(module, name, None)
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
