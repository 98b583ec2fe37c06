"""Paste the real output of ``python -m verifiers.run data/data.csv`` into README.md and the docs.

    python docs/refresh_output.py

Replaces the text between the ``run-output`` markers of each file with a fresh run (the wall
times in it change from run to run; everything else is deterministic).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    ROOT / "README.md": "run-output",
    ROOT / "docs" / "gradient-descent.md": "docs-run-output",
}


def main() -> None:
    command = [sys.executable, "-m", "verifiers.run", "data/data.csv"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"the run failed with exit status {result.returncode}:\n{result.stderr}")
    block = "```\n$ python -m verifiers.run data/data.csv\n" + result.stdout.rstrip() + "\n```"
    for path, marker in TARGETS.items():
        text = path.read_text()
        pattern = re.compile(f"(<!-- {marker}-start -->\n).*?(<!-- {marker}-end -->)", re.S)
        if not pattern.search(text):
            sys.exit(f"{path}: markers <!-- {marker}-start/end --> not found")
        path.write_text(pattern.sub(lambda m: m.group(1) + block + "\n" + m.group(2), text))
        print(f"updated {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
