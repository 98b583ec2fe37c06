"""verifiers: check hand-derived gradients against minigrad, torch, jax and finite differences.

    from verifiers import verify, Settings
    report = verify("data/data.csv", Settings(iterations=1000))
    report.ok, report.engines["torch"].evaluations[0].gradient

The command line ``python -m verifiers.run`` is a thin layer over :func:`verify`.

Any function's hand derivatives (a vjp, a jvp, a gradient, an hvp, the steps of a hand backprop)
are checked by :func:`check_function`, under the command line ``python -m verifiers.check``::

    from verifiers import check_function
    report = check_function(forward, {"x": (4, 6)}, vjp=my_vjp)
    report.ok, report.derivatives["vjp"].arrays["x"].worst
"""

from verifiers.api import build_model, verify
from verifiers.data import DataError, Dataset, load_csv
from verifiers.functions import CheckFileError, FunctionReport, check_function
from verifiers.results import EngineReport, Report
from verifiers.settings import Settings, UsageError

__all__ = [
    "CheckFileError",
    "DataError",
    "Dataset",
    "EngineReport",
    "FunctionReport",
    "Report",
    "Settings",
    "UsageError",
    "build_model",
    "check_function",
    "load_csv",
    "verify",
]
