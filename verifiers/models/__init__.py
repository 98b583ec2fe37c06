"""The model catalogue: one module per model, each a loss, its parameters and its hand formulas.

Adding a model touches its own module and one row of :data:`MODELS`.
"""

from __future__ import annotations

from verifiers.models.base import Model, ModelOptions, Optimum, Parameter, Scales, Slip
from verifiers.models.logistic import LogisticModel
from verifiers.models.mlp import MLPModel
from verifiers.models.mse import MSEModel
from verifiers.models.ridge import RidgeModel
from verifiers.models.softmax import SoftmaxModel

__all__ = [
    "MODELS",
    "Model",
    "ModelOptions",
    "Optimum",
    "Parameter",
    "Scales",
    "Slip",
]

# name: the model's class, and its default learning rate. The (b, w) regressions keep the
# reference example's rate (its data's Hessian allows at most 4e-4); the others are for data
# of about unit scale, such as data/binary.csv, data/classes.csv and data/wave.csv.
MODELS: dict[str, tuple[type[Model], float]] = {
    "mse": (MSEModel, 1e-4),
    "ridge": (RidgeModel, 1e-4),
    "logistic": (LogisticModel, 0.1),
    "softmax": (SoftmaxModel, 0.1),
    "mlp": (MLPModel, 0.1),
}
