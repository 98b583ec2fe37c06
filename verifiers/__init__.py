"""verifiers: check hand-derived gradients against minigrad, torch, jax and finite differences.

    from verifiers import verify, Settings
    report = verify("data/data.csv", Settings(iterations=1000))
    report.ok, report.engines["torch"].evaluations[0].gradient

The command line ``python -m verifiers.run`` is a thin layer over :func:`verify`.
"""

from verifiers.api import build_model, verify
from verifiers.data import DataError, Dataset, load_csv
from verifiers.results import EngineReport, Report
from verifiers.settings import Settings, UsageError

__all__ = [
    "DataError",
    "Dataset",
    "EngineReport",
    "Report",
    "Settings",
    "UsageError",
    "build_model",
    "load_csv",
    "verify",
]
