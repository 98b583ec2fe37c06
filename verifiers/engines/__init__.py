"""The engines, one module each, behind the interface in :mod:`verifiers.engines.base`.

Modules are imported only when their engine is used, so the package works without torch or jax;
an engine whose package is missing raises :class:`EngineUnavailable` with the install command.
"""

from __future__ import annotations

import importlib

from verifiers.engines.base import Engine, EngineUnavailable, Evaluation, Trajectory

__all__ = [
    "ENGINE_NAMES",
    "Engine",
    "EngineUnavailable",
    "Evaluation",
    "Trajectory",
    "engine_class",
]

# name: (module, class, the package it needs, how to install that package)
_REGISTRY = {
    "loop": ("loop", "LoopEngine", None, None),
    "manual": ("manual", "ManualEngine", None, None),
    "minigrad": ("minigrad", "MinigradEngine", None, None),
    "torch": ("torch", "TorchEngine", "torch", 'pip install "torch==2.13.0"'),
    "jax": ("jax", "JaxEngine", "jax", "pip install jax jaxlib"),
    "numeric": ("numeric", "NumericEngine", None, None),
}
ENGINE_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def engine_class(name: str) -> type[Engine]:
    """The Engine subclass for `name`, importing its module (and its package) now."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown engine {name!r}; choose from {', '.join(ENGINE_NAMES)}")
    module, cls, package, install = _REGISTRY[name]
    try:
        loaded = importlib.import_module(f"verifiers.engines.{module}")
    except ImportError as error:
        if package is None or (error.name or "").split(".")[0] != package:
            raise
        raise EngineUnavailable(name, f"the {package} package is not installed", install) from None
    return getattr(loaded, cls)


def install_hint(name: str) -> str | None:
    """The command that installs what engine `name` needs, if it needs anything."""
    return _REGISTRY[name][3]
