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
    "follows_device",
    "install_hint",
]

# name: (module, class, the package it needs, how to install that package, whether --device
# cuda is meant for it). The package is known here, before the module (which imports it) loads.
_REGISTRY = {
    "loop": ("loop", "LoopEngine", None, None, False),
    "manual": ("manual", "ManualEngine", None, None, False),
    "minigrad": ("minigrad", "MinigradEngine", None, None, False),
    "torch": ("torch", "TorchEngine", "torch", 'pip install "torch==2.13.0"', True),
    "jax": ("jax", "JaxEngine", "jax", "pip install jax jaxlib", False),
    "numeric": ("numeric", "NumericEngine", None, None, False),
}
ENGINE_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def engine_class(name: str) -> type[Engine]:
    """The Engine subclass for `name`, importing its module (and its package) now."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown engine {name!r}; choose from {', '.join(ENGINE_NAMES)}")
    module, cls, package, install, _ = _REGISTRY[name]
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


def follows_device(name: str) -> bool:
    """Whether ``--device cuda`` is a request for this engine (a GPU it must then find)."""
    return _REGISTRY[name][4]
