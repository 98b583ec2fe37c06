"""Load a user's hand-derived gradient from ``path/to/file.py:function``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from verifiers.engines.manual import GradientFormula

__all__ = ["FormulaLoadError", "load_formula"]


class FormulaLoadError(ValueError):
    """The file or function named by ``--manual`` cannot be used."""


def load_formula(spec: str) -> GradientFormula:
    """Import `function` from `file.py` given as ``"file.py:function"``.

    The function takes ``(b, w, X, y)``: b a float, w of shape (d,), X of shape (N, d), y of
    shape (N,), and returns ``(dL/db, dL/dw)``: a float and an array of shape (d,).
    """
    path_text, sep, name = spec.rpartition(":")
    if not sep or not path_text or not name:
        raise FormulaLoadError(f"--manual {spec}: expected FILE.py:FUNCTION")
    path = Path(path_text)
    if not path.is_file():
        raise FormulaLoadError(f"--manual {spec}: {path} does not exist or is not a file")
    module_name = f"_verifiers_user_formula_{abs(hash(path.resolve()))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise FormulaLoadError(f"--manual {spec}: {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[module_name]
        where = _line_of(error, path)
        raise FormulaLoadError(
            f"--manual {spec}: importing {path}{where} raised {type(error).__name__}: {error}"
        ) from None
    function = getattr(module, name, None)
    if not callable(function):
        raise FormulaLoadError(f"--manual {spec}: {path} has no function named {name!r}")
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
