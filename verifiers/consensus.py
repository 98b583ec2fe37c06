"""Which engines agree, and which one to name when they do not.

For one check (gradients, Hessians or descents) every pair of engines is compared once. The
engine that agrees with the most others is the pivot, ties broken by the engines' own trust
ranks (independent engines first, the formula under test last); every engine that does not
agree with the pivot is a mismatch, reported with its worst element against the pivot. So one
wrong engine is named, whichever it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from verifiers.compare import Difference

__all__ = ["Consensus", "find_consensus"]


class Consensus:
    """The pivot engine and each other engine's worst difference against it."""

    def __init__(
        self,
        pivot: str,
        differences: dict[str, Difference],
        pairs: dict[tuple[str, str], Difference],
    ) -> None:
        self.pivot = pivot
        self.differences = differences
        self.pairs = pairs  # (a, b): a's worst difference against b, for every pair

    @property
    def outliers(self) -> list[str]:
        return [name for name, difference in self.differences.items() if not difference.ok]


def find_consensus(
    names: list[str], compare: Callable[[str, str], Difference], rank: Mapping[str, int]
) -> Consensus:
    """Compare every pair of `names` once and find the pivot (see the module docstring).

    `compare(a, b)` is the worst difference of a against b; `rank[name]` orders ties (lower is
    trusted first; the names' order decides between equal ranks).
    """
    differences: dict[tuple[str, str], Difference] = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            differences[a, b] = compare(a, b)
            differences[b, a] = compare(b, a)
    agreements = {a: sum(differences[a, b].ok for b in names if b != a) for a in names}
    order = {name: i for i, name in enumerate(names)}
    pivot = min(names, key=lambda n: (-agreements[n], rank.get(n, 100), order[n]))
    return Consensus(pivot, {n: differences[n, pivot] for n in names if n != pivot}, differences)
