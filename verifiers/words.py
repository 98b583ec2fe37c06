"""Numbers of things and lists of names, as the reports and notes write them."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["listing"]


def listing(names: Iterable[str]) -> str:
    """``a``, ``a and b``, ``a, b and c`` (nothing for no names)."""
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
