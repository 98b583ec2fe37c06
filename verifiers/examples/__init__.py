"""The worked examples, shipped with the package: ``python -m verifiers.examples DIR``.

The README's examples run from the repository's root: one short file per model (and one for
``--loss``) under ``docs/models/examples/``, each with the right hand formula and a classic slip,
and the data sets under ``data/``. An installed package has no such folders, so it carries copies
of them (``models/`` and ``data/`` here; a test checks that they are the repository's files byte
for byte) and this command writes them out, in the same layout::

    python -m verifiers.examples my-examples
    cd my-examples
    python -m verifiers.run data/data.csv --manual docs/models/examples/mse.py:slip

so every command of the README works there as it is written.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

__all__ = ["EXAMPLE_FILES", "ExamplesError", "example_files", "write_examples"]

# Where each shipped file goes, relative to the folder it is written into (its path in the
# repository), and where the package keeps it (relative to the verifiers package).
EXAMPLE_FILES: dict[str, str] = {
    **{
        f"docs/models/examples/{name}.py": f"examples/models/{name}.py"
        for name in ("mse", "ridge", "logistic", "softmax", "mlp", "log_cosh")
    },
    "data/data.csv": "reference/data.csv",
    "data/data.csv.LICENSE": "reference/data.csv.LICENSE",
    "data/binary.csv": "examples/data/binary.csv",
    "data/classes.csv": "examples/data/classes.csv",
    "data/wave.csv": "examples/data/wave.csv",
}


class ExamplesError(Exception):
    """The examples cannot be written there (a file in the way, a folder that cannot be made)."""


def example_files() -> dict[str, bytes]:
    """Each shipped file's content, by the path it is written to."""
    package = importlib.resources.files("verifiers")
    found = {}
    for target, kept in EXAMPLE_FILES.items():
        resource = package
        for part in kept.split("/"):
            resource = resource / part
        found[target] = resource.read_bytes()
    return found


def write_examples(folder: Path | str) -> list[Path]:
    """Write the examples under `folder` (made if missing); returns the files written.

    A file already there with the same content is left as it is; one with other content is
    never overwritten: nothing is written then, and ExamplesError says which.
    """
    folder = Path(folder)
    files = example_files()
    clashes = [
        target
        for target, content in files.items()
        if (folder / target).exists()
        and (not (folder / target).is_file() or (folder / target).read_bytes() != content)
    ]
    if clashes:
        listed = ", ".join(str(folder / target) for target in clashes)
        raise ExamplesError(f"refusing to overwrite what is already there: {listed}")
    written = []
    try:
        for target, content in files.items():
            path = folder / target
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            written.append(path)
    except OSError as error:
        raise ExamplesError(f"cannot write the examples under {folder}: {error}") from None
    return written
