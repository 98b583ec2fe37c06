"""What the data-parallel workers compute: the run's model, from the registry, on their rows.

A worker has no loss of its own. The job tells it the model's name and options; it builds that
model from :data:`verifiers.models.MODELS` on its own shard of rows and adds up the model's
:meth:`~verifiers.models.base.Model.row_losses` in its engine's array namespace. The penalty
(ridge's ``λ‖w‖²``) belongs to no row: it is added once, after the shards' sums are combined.
So a loss is written once, in its model's module, and a new model is sharded as soon as it
declares ``shardable = True``.

Every worker must hold θ in the same layout, whatever rows it has. A model may declare itself
shardable only when its parameters' shapes follow from the number of features and its options
alone (softmax's classes, the largest label plus one, do not: a shard may lack the last class).
The launcher builds the model on the whole data first, which checks the name, the options and
the data, and sends the shapes it got; a worker whose model comes out otherwise stops and says
so, rather than add up gradients of different parameters.

numpy only: the launchers import it without torch or jax.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from verifiers.data import Dataset
from verifiers.models import MODELS, Model

__all__ = ["build_model", "parameter_shapes", "shardable_models", "worker_model"]


def shardable_models() -> list[str]:
    """The registry's models that the data-parallel workers compute (they declare it)."""
    return [name for name, model in MODELS.items() if model.shardable]


def build_model(
    name: str, options: Mapping[str, Any] | None, X: np.ndarray, y: np.ndarray, path: str = ""
) -> Model:
    """Model `name` of the registry with `options`, on the rows X, y (the data's labels are
    checked, as for any run). ValueError for a model that is unknown or not shardable, and for
    an option it does not take or a value it does not allow; DataError for rows it cannot use.
    """
    model_class = MODELS.get(name)
    if model_class is None:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(shardable_models())}")
    if not model_class.shardable:
        raise ValueError(
            f"the data-parallel workers do not compute {name} (it does not declare itself "
            f"shardable); they compute {_words(shardable_models())}"
        )
    declared = {option.name: option for option in model_class.options}
    options = dict(options or {})
    for option_name, value in options.items():
        option = declared.get(option_name)
        if option is None:
            takes = ", ".join(declared) or "none"
            raise ValueError(f"{name} takes no option {option_name!r} (its options: {takes})")
        problem = option.problem(value)
        if problem is not None:
            raise ValueError(problem)
    # Dataset's own constructor: the facts it adds from the file (a degenerate design) are
    # for the report, and would cost each worker a pass over its rows.
    return model_class(Dataset(path=path or f"<{len(y)} rows>", X=X, y=y), options)


def parameter_shapes(model: Model) -> list[list[Any]]:
    """``[[name, shape], ...]`` in θ's order, as JSON keeps it (shapes as lists)."""
    return [[p.name, list(p.shape)] for p in model.parameters]


def worker_model(
    name: str,
    options: Mapping[str, Any] | None,
    X: np.ndarray,
    y: np.ndarray,
    shapes: list[list[Any]],
    who: str,
) -> Model:
    """The run's model built on one worker's rows, with the parameters the launcher found on
    the whole data (`shapes`, from :func:`parameter_shapes`); RuntimeError naming `who` when
    they differ: the model's shapes depend on the rows, so it must not declare itself
    shardable."""
    model = build_model(name, options, X, y, path=who)
    found = parameter_shapes(model)
    if found != [[n, list(s)] for n, s in shapes]:
        raise RuntimeError(
            f"{who}: model {name} built on this shard's {len(y)} rows has the parameters "
            f"{_shapes(found)}, not the run's {_shapes(shapes)}: its shapes depend on the "
            "rows, so it cannot be sharded (it should not declare shardable = True)"
        )
    return model


def _shapes(shapes: list[list[Any]]) -> str:
    return ", ".join(f"{n} {tuple(s)}" for n, s in shapes)


def _words(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
