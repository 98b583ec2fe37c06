"""Kept for older imports: the MSE's formulas now live in :mod:`verifiers.models.mse`."""

from verifiers.models.mse import *  # noqa: F403
from verifiers.models.mse import __all__  # noqa: F401
