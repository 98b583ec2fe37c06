"""Whether operations are being recorded right now: on by default, off inside ``no_grad``.

The switch is per thread, as in torch: a ``no_grad`` block in one thread never stops another
thread from recording its graph.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["enable_grad", "is_grad_enabled", "no_grad"]


class _State(threading.local):
    enabled = True  # every thread starts with recording on


_state = _State()


def is_grad_enabled() -> bool:
    """Whether operations on tensors that require grad are being recorded in this thread."""
    return _state.enabled


class _GradMode:
    """Switch recording on or off inside a ``with`` block, and restore it afterwards.

    The setting it replaces is kept on the object, so one object serves one block at a time (as
    in torch); the decorator form makes a fresh one for every call.
    """

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled

    def __enter__(self) -> None:
        self._previous = _state.enabled
        _state.enabled = self._enabled

    def __exit__(self, *exc_info: object) -> None:
        _state.enabled = self._previous

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        # used as a decorator: @no_grad()
        enabled = self._enabled

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _GradMode(enabled):
                return function(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Context manager (or decorator, with or without parentheses) in which no graph is recorded.

    Results computed inside have ``requires_grad == False``; use it for parameter updates and
    evaluation, where a graph would only cost time and memory.
    """

    _enabled = False

    def __new__(cls, function: Callable[..., Any] | None = None) -> Any:
        if function is not None:  # used bare, as @no_grad
            return _GradMode(False)(function)
        return object.__new__(cls)

    __init__ = object.__init__  # nothing to set: the setting is the class's, off


class enable_grad(_GradMode):
    """Context manager (or decorator) that records operations again, e.g. inside ``no_grad``."""

    _enabled = True

    __init__ = object.__init__  # nothing to set: the setting is the class's, on
