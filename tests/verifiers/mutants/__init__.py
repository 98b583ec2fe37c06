"""A catalogue of wrong hand formulas (mutants), per model and for ``--loss`` (issue 18).

Every mutant is a formula a user might hand the verifier with ``--manual``: the classic slips of
each derivation, tiny relative errors, and formulas that are right almost everywhere and wrong
in one region (one sign pattern of the parameters, far out, a thin band, near zero, extreme
rows, the rows of one label). ``test_mutants.py`` asserts that the verifier catches each one at
its default settings; ``python -m tests.verifiers.mutants.score`` prints the score.

- :mod:`.base`: the :class:`Mutant` record, the kinds, how a mutant is run;
- :mod:`.mse`, :mod:`.ridge`, :mod:`.logistic`, :mod:`.softmax`, :mod:`.mlp`, :mod:`.losses`:
  each model's right formula(s) and mutants, as module-level functions;
- :mod:`.make_data`: the small data sets some mutants need, kept in ``data/``.
"""

from __future__ import annotations

from tests.verifiers.mutants import logistic, losses, mlp, mse, ridge, softmax
from tests.verifiers.mutants.base import KINDS, MODELS, Mutant

__all__ = ["KINDS", "MODELS", "MUTANTS", "RIGHT", "Mutant", "by_id"]

_MODULES = (mse, ridge, logistic, softmax, mlp, losses)

RIGHT: list[Mutant] = [record for module in _MODULES for record in module.RIGHT]
MUTANTS: list[Mutant] = [record for module in _MODULES for record in module.MUTANTS]


def by_id(identifier: str) -> Mutant:
    """The record (mutant or right formula) with this id."""
    return next(m for m in RIGHT + MUTANTS if m.id == identifier)
