"""The model catalogue: one module per model, each a loss, its parameters and its hand formulas.

Adding a model touches its own module and one row of :data:`MODELS`.
"""

from __future__ import annotations

from verifiers.models.base import Model, ModelOptions, Optimum, Parameter, Scales, Slip
from verifiers.models.mse import MSEModel

__all__ = [
    "MODELS",
    "Model",
    "ModelOptions",
    "Optimum",
    "Parameter",
    "Scales",
    "Slip",
]

# name: the model's class, and its default learning rate
MODELS: dict[str, tuple[type[Model], float]] = {
    "mse": (MSEModel, 1e-4),
}
