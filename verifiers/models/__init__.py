"""The model catalogue: one module per model, each a loss, its parameters, its options and its
hand formulas, and one row in :data:`MODELS`.

Each model class declares what the rest of the tool reads: its name and help line, its options
(:class:`~verifiers.models.base.ModelOption`, which become command-line options), its default
learning rate, its example data, whether the data-parallel workers can compute it. The command
line, its help, the tests (parametrised over this table) and the sharded workers read them from
here: adding a model touches its own module and one row.
"""

from __future__ import annotations

from verifiers.models.base import Model, ModelOption, Optimum, Parameter, Scales, Slip
from verifiers.models.huber import HuberModel
from verifiers.models.logistic import LogisticModel
from verifiers.models.mlp import MLPModel
from verifiers.models.mse import MSEModel
from verifiers.models.ridge import RidgeModel
from verifiers.models.softmax import SoftmaxModel

__all__ = [
    "MODELS",
    "MODEL_NAMES",
    "Model",
    "ModelOption",
    "Optimum",
    "Parameter",
    "Scales",
    "Slip",
    "model_options",
]

MODELS: dict[str, type[Model]] = {
    model.name: model
    for model in (MSEModel, RidgeModel, LogisticModel, SoftmaxModel, MLPModel, HuberModel)
}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)


def model_options() -> dict[str, tuple[str, ModelOption]]:
    """Every model's options by name: option name -> (the model that takes it, the option)."""
    options: dict[str, tuple[str, ModelOption]] = {}
    for name, model in MODELS.items():
        for option in model.options:
            if option.name in options:
                raise RuntimeError(f"two models declare the option {option.name!r}")
            options[option.name] = (name, option)
    return options
