"""Bad input through the command line: exit status 2 and one line on stderr, never a traceback.

Each rejected file of the corpus in tests/data/ runs through ``python -m verifiers.run`` once;
everything else about the loader is tested on `load_csv` directly (tests/verifiers/test_data.py),
which is much cheaper than a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "tests" / "data"

# file in tests/data ("." is the directory itself) → (dtype, exit status, line or None, the
# expected end of the message: the file's name, the line where there is one, and the reason).
REJECTED = {
    "empty.csv": ("float64", 2, None, "empty.csv: is empty: no data rows"),
    "blank_lines_only.csv": ("float64", 2, None, "blank_lines_only.csv: is empty: no data rows"),
    "header_only.csv": ("float64", 2, 1, "header_only.csv:1: has a header but no data rows"),
    "one_column.csv": (
        "float64",
        2,
        1,
        "one_column.csv:1: needs at least two columns (features, then the target), found one",
    ),
    "ragged_too_few.csv": ("float64", 2, 3, "ragged_too_few.csv:3: expected 2 cells, found 1"),
    "ragged_too_many.csv": ("float64", 2, 4, "ragged_too_many.csv:4: expected 2 cells, found 3"),
    "empty_cell.csv": ("float64", 2, 2, "empty_cell.csv:2: cell 2 is empty"),
    "non_numeric.csv": ("float64", 2, 4, "non_numeric.csv:4: cell 2 is not a number: 'abc'"),
    "nan.csv": ("float64", 2, 2, "nan.csv:2: cell 1 is not a number: 'nan'"),
    "inf.csv": ("float64", 2, 3, "inf.csv:3: cell 2 is not a number: 'inf'"),
    "overflow.csv": ("float64", 2, 2, "overflow.csv:2: cell 1 overflows float64: '1e999'"),
    "float32_overflow.csv": (
        "float32",
        2,
        3,
        "float32_overflow.csv:3: cell 2 overflows float32: '1e39'",
    ),
    "header_width_mismatch.csv": (
        "float64",
        2,
        1,
        "header_width_mismatch.csv:1: the header has 3 cells but the first data row (line 2) has 2",
    ),
    "binary.png": ("float64", 2, 3, "binary.png:3: is not a text file (it contains NUL bytes)"),
    "not_utf8.csv": ("float64", 2, 3, "not_utf8.csv:3: is not UTF-8 text (binary data?)"),
    ".": ("float64", 2, None, "data: is a directory, not a CSV file"),
    "missing.csv": ("float64", 2, None, "missing.csv: no such file"),
}


def corpus_path(name: str) -> Path:
    return DATA_DIR if name == "." else DATA_DIR / name


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verifiers.run", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_corpus_files_exist_as_described():
    """The table is about real files: every rejected name but the missing one is on disk."""
    for name in REJECTED:
        path = corpus_path(name)
        assert path.exists() == (name != "missing.csv"), path
    assert DATA_DIR.is_dir()
    assert (DATA_DIR / "empty.csv").stat().st_size == 0
    assert b"\x00" in (DATA_DIR / "binary.png").read_bytes()


@pytest.mark.parametrize(("name", "expected"), REJECTED.items(), ids=list(REJECTED))
def test_rejected_input_exits_2_with_one_line(name, expected):
    dtype, status, line, message = expected
    path = corpus_path(name)
    result = run_cli(
        str(path), "--engines", "manual,numeric", "--iterations", "5", "--quiet", "--dtype", dtype
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == status, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    # "error: " + the path exactly as given + ":LINE" where there is one + ": reason".
    assert lines[0].startswith(f"error: {path}"), lines[0]
    assert lines[0].endswith(message), lines[0]
    if line is not None:
        assert f"{path}:{line}: " in lines[0]
    else:
        assert lines[0].startswith(f"error: {path}: "), lines[0]


def test_all_x_equal_is_verified_with_a_note():
    """A singular Hessian is no reason to refuse: every engine's gradient is still checked."""
    path = DATA_DIR / "all_x_equal.csv"
    result = run_cli(str(path), "--engines", "manual,minigrad,numeric", "--iterations", "10")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, (result.stdout, result.stderr)
    text = " ".join(result.stdout.split())  # the note is wrapped to the width
    assert "every x is the same: the Hessian is singular" in text
    assert "least-squares optimum is not unique" in text


def test_error_message_is_printed_verbatim(tmp_path):
    """The cell shown in the message is the cell in the file, even where it looks like markup.

    rich turns ``:smile:`` into an emoji unless told not to; the user must see what is in the
    file to find it.
    """
    path = tmp_path / "emoji_code.csv"
    path.write_text("x,y\n1,2\n3,:smile:\n")
    result = run_cli(str(path), "--engines", "manual,numeric", "--iterations", "5", "--quiet")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"error: {path}:3: cell 2 is not a number: ':smile:'"]
