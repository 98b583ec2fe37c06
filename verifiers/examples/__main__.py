"""``python -m verifiers.examples DIR``: write the worked examples and their data under DIR."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from verifiers.crash import internal_error
from verifiers.examples import ExamplesError, write_examples


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m verifiers.examples",
        description=(
            "Write the README's worked examples (docs/models/examples/*.py: a right formula and "
            "a classic slip per model, and a --loss example) and their data sets (data/*.csv) "
            "under DIR, so that the README's commands run there as written."
        ),
    )
    parser.add_argument("folder", metavar="DIR", help="where to write them (made if missing)")
    args = parser.parse_args(argv)
    try:
        written = write_examples(args.folder)
    except ExamplesError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a bug (a file missing from the package): not a traceback
        return internal_error(error, "verifiers.examples")
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"the examples are already in {args.folder}")
    print(
        f"then, in {args.folder}: python -m verifiers.run data/data.csv "
        "--manual docs/models/examples/mse.py:slip"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
