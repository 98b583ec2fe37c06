"""Print the mutation catalogue's score: caught / total per model and kind, and the escapes.

    python -m tests.verifiers.mutants.score [--model MODEL ...] [--kind KIND ...]

Each mutant is run through :func:`verifiers.verify` as ``test_mutants.py`` runs it: the default
check settings (points, seed, tolerances, every installed engine), no descent. A mutant is
caught when the verdict is not OK; an escape is a mutant the verifier said OK to. A run that
ends in an error instead of a verdict (a formula the verifier refuses) is listed apart: it is
neither a catch nor an escape. The right formulas are run too: each must be OK.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable

from tests.verifiers.mutants import KINDS, MODELS, MUTANTS, RIGHT, Mutant

LABELS = {"loss": "--loss"}


def outcome(mutant: Mutant) -> str:
    """``"caught"``, ``"escaped"`` (verdict OK), or ``"error: ..."`` when no verdict came."""
    try:
        report = mutant.verify()
    except Exception as error:  # a refusal is reported, not raised: the score goes on
        return f"error: {type(error).__name__}: {error}"
    if mutant.right:
        return "right" if report.ok else "wrongly rejected"
    return "escaped" if report.ok else "caught"


def score(mutants: Iterable[Mutant], out=sys.stdout) -> dict[str, str]:
    """Run every mutant, print the score, and return each mutant's outcome by id."""
    mutants = list(mutants)
    started = time.perf_counter()
    results = {m.id: outcome(m) for m in mutants}
    caught = sum(r == "caught" for r in results.values())
    print(
        f"mutation catalogue: {caught}/{len(mutants)} caught by verify() at the default check "
        f"settings (no descent), {time.perf_counter() - started:.0f} s",
        file=out,
    )
    for model in MODELS:
        mine = [m for m in mutants if m.model == model]
        if not mine:
            continue
        got = sum(results[m.id] == "caught" for m in mine)
        print(f"\n{LABELS.get(model, model)}: {got}/{len(mine)} caught", file=out)
        for kind in KINDS:
            of_kind = [m for m in mine if m.kind == kind]
            if not of_kind:
                continue
            line = f"  {kind:<14} {sum(results[m.id] == 'caught' for m in of_kind)}/{len(of_kind)}"
            missed = [m.name for m in of_kind if results[m.id] == "escaped"]
            failed = [m.name for m in of_kind if results[m.id].startswith("error")]
            if missed:
                line += f"   escapes: {', '.join(missed)}"
            if failed:
                line += f"   no verdict: {', '.join(failed)}"
            print(line, file=out)
    print("\nby kind, over every model:", file=out)
    for kind in KINDS:
        of_kind = [m for m in mutants if m.kind == kind]
        if of_kind:
            got = sum(results[m.id] == "caught" for m in of_kind)
            print(f"  {kind:<14} {got}/{len(of_kind)}", file=out)
    escapes = [m for m in mutants if results[m.id] == "escaped"]
    if escapes:
        print(f"\nescapes ({len(escapes)}):", file=out)
        for m in escapes:
            print(f"  {m.id} [{m.kind}]: {m.description}", file=out)
    errors = [m for m in mutants if results[m.id].startswith("error")]
    for m in errors:
        print(f"no verdict: {m.id}: {results[m.id]}", file=out)
    return results


def check_right(records: Iterable[Mutant], out=sys.stdout) -> list[str]:
    """Run the right formulas; print and return the ids of any that is not OK."""
    bad = [(m.id, result) for m in records if (result := outcome(m)) != "right"]
    for identifier, result in bad:
        print(f"RIGHT FORMULA NOT OK: {identifier}: {result}", file=out)
    return [identifier for identifier, _ in bad]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", choices=MODELS, help="only these models")
    parser.add_argument("--kind", action="append", choices=list(KINDS), help="only these kinds")
    parser.add_argument(
        "--skip-right", action="store_true", help="do not run the right formulas first"
    )
    args = parser.parse_args(argv)

    def chosen(m: Mutant) -> bool:
        return (not args.model or m.model in args.model) and (
            m.right or not args.kind or m.kind in args.kind
        )

    bad = [] if args.skip_right else check_right([m for m in RIGHT if chosen(m)])
    score([m for m in MUTANTS if chosen(m)])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
