"""Fuzzing the CSV loader: whatever the bytes, a Dataset or a DataError, and the same answer from
the line parser, the pyarrow bulk parser and the numpy bulk parser."""

from __future__ import annotations

import math
import re
import sys
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

import verifiers.data as data_module
from tests.verifiers.helpers import comparable, load_result
from verifiers.data import DataError, Dataset

try:
    import pyarrow.csv  # noqa: F401

    PARSERS = ("line", "pyarrow", "numpy")
except ImportError:
    PARSERS = ("line", "numpy")

LINE_BREAKS = re.compile(rb"\r\n|\r|\n")


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def load_with(parser: str, path: Path, dtype: str = "float64") -> Dataset | DataError:
    """load_csv by the line parser, or with every file sent to pyarrow or to numpy."""
    with ExitStack() as stack:
        if parser != "line":
            stack.enter_context(mock.patch.object(data_module, "BULK_THRESHOLD_BYTES", 0))
        if parser == "numpy":
            stack.enter_context(
                mock.patch.dict(sys.modules, {"pyarrow": None, "pyarrow.csv": None})
            )
        return load_result(path, dtype)


def check_contract(path: Path, raw: bytes, result: Dataset | DataError) -> None:
    """A Dataset of finite numbers, or a DataError that names the file and a real line."""
    if isinstance(result, DataError):
        text = str(result)
        assert "\n" not in text
        assert "\r" not in text
        assert text.startswith(str(path))
        assert result.path == str(path)
        if result.line is not None:
            assert text.startswith(f"{path}:{result.line}: ")
            assert 1 <= result.line <= len(LINE_BREAKS.split(raw))
        else:
            assert text.startswith(f"{path}: ")
        assert text.endswith(result.reason)
        return
    assert isinstance(result, Dataset)
    assert result.X.ndim == 2
    assert result.X.shape[1] >= 1
    assert result.y.shape == (result.X.shape[0],)
    assert result.X.shape[0] >= 1
    assert np.isfinite(result.X).all()
    assert np.isfinite(result.y).all()


def load_every_way(path: Path, raw: bytes, dtype: str = "float64") -> Dataset | DataError:
    """The line parser's answer, after checking the contract and the bulk parsers' agreement."""
    path.write_bytes(raw)
    results = {parser: load_with(parser, path, dtype) for parser in PARSERS}
    for result in results.values():
        check_contract(path, raw, result)
    reference = comparable(results["line"])
    for parser in PARSERS[1:]:
        assert comparable(results[parser]) == reference, parser
    return results["line"]


# Bytes that make CSV structure, so that random files get past the first checks now and then.
CSV_BYTES = st.sampled_from(
    [b"0", b"1", b"7", b"-", b"+", b".", b"e", b"E", b",", b";", b"\t", b" ", b"\n", b"\r\n",
     b"\r", b'"', b"x", b"nan", b"inf", b"0x", b"\xef\xbb\xbf", b"\x00", b"\xff", b"\xc3\xa9",
     b"\x0c", b"1e999", b"1e39"]
)  # fmt: skip


@settings(max_examples=200)
@given(raw=st.one_of(st.binary(max_size=300), st.lists(CSV_BYTES, max_size=60).map(b"".join)))
def test_random_bytes_give_a_dataset_or_a_data_error(work_dir, raw):
    load_every_way(work_dir / "random.csv", raw)


@settings(max_examples=100)
@given(raw=st.lists(CSV_BYTES, max_size=60).map(b"".join))
def test_random_bytes_in_float32(work_dir, raw):
    load_every_way(work_dir / "random32.csv", raw, "float32")


FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def near_valid_csv(draw):
    """A valid CSV (random layout) with one cell, header cell or whole row replaced by text."""
    rows = draw(st.integers(1, 6))
    columns = draw(st.integers(2, 4))
    values = draw(st.lists(st.lists(FINITE, min_size=columns, max_size=columns), min_size=rows,
                           max_size=rows))  # fmt: skip
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    header = draw(st.booleans())
    bom = draw(st.booleans())
    cells = [[repr(v) for v in row] for row in values]
    if header:
        cells.insert(0, [f"c{j}" for j in range(columns)])
    row = draw(st.integers(0, len(cells) - 1))
    column = draw(st.integers(0, columns - 1))
    broken = draw(
        st.one_of(
            st.text(max_size=12),
            st.sampled_from(["", " ", "nan", "inf", "-inf", "1e999", "0x1", "1_0", '"1"', "1,2",
                             "x", "\u0661", "1e39", "--1", "1e", ".", "\ufeff1"]),
        )
    )  # fmt: skip
    cells[row][column] = broken
    text = eol.join(delimiter.join(r) for r in cells) + eol
    return ("\ufeff" if bom else "") + text, values, header, row, column, broken, delimiter, bom


# The documented rule for a cell, written independently of the loader: whitespace and one pair
# of double quotes around it are dropped; then it is a decimal number in ASCII digits, or bad.
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def effective(cell: str) -> str:
    cell = cell.strip()
    if len(cell) >= 2 and cell[0] == cell[-1] == '"':
        cell = cell[1:-1].strip()
    return cell


@settings(max_examples=200)
@given(case=near_valid_csv())
def test_one_broken_cell(work_dir, case):
    text, values, header, row, column, broken, delimiter, bom = case
    result = load_every_way(work_dir / "broken.csv", text.encode("utf-8"))
    if re.search(r"[\r\n,;\t\x00]", broken):
        # The text broke the structure around it (or made the file binary): the contract and the
        # parsers' agreement are all there is to check.
        return
    if row == column == 0 and not bom and broken.startswith("\ufeff"):
        broken = broken[1:]  # the first cell starts the file: its byte-order mark is dropped
    cell = effective(broken)
    number = float(cell) if DECIMAL.fullmatch(cell) else None
    if header and row == 0:
        # A header cell: a header it stays while it is not empty and not a number.
        if cell and number is None:
            assert isinstance(result, Dataset), result
            assert result.header == [
                cell if j == column else f"c{j}" for j in range(len(values[0]))
            ]
            assert_array_equal(result.X, np.array(values)[:, :-1])
            assert_array_equal(result.y, np.array(values)[:, -1])
        else:
            assert isinstance(result, DataError), result
            assert result.line == 1
        return
    line = row + 1
    if number is None:
        assert isinstance(result, DataError), result
        assert str(result).startswith(f"{result.path}:{line}: cell {column + 1} is ")
        assert result.reason.endswith(" is empty" if not cell else "is not a number: " + repr(
            cell if len(cell) <= 20 else cell[:17] + "..."))  # fmt: skip
    elif not math.isfinite(number):
        assert isinstance(result, DataError), result
        assert result.line == line
        assert result.reason.startswith(f"cell {column + 1} overflows float64: ")
    else:
        assert isinstance(result, Dataset), result
        expected = np.array(values, dtype=np.float64)
        expected[row - 1 if header else row, column] = number
        assert_array_equal(result.X, expected[:, :-1])
        assert_array_equal(result.y, expected[:, -1])
        assert result.delimiter == delimiter
        assert result.header == ([f"c{j}" for j in range(len(values[0]))] if header else None)


# Ways to write the same number: the parsers must round every one of them identically.
FORMATS = st.sampled_from(["{!r}", "{:.17g}", "{:.3e}", "{:.20f}", "{:.0f}", "{:+.5E}", "{:g}"])


@settings(max_examples=100)
@given(
    values=st.lists(st.lists(FINITE, min_size=3, max_size=3), min_size=1, max_size=20),
    form=FORMATS,
    dtype=st.sampled_from(["float64", "float32"]),
)
def test_bulk_parsers_read_numbers_exactly_as_the_line_parser(work_dir, values, form, dtype):
    text = "".join(",".join(form.format(v) for v in row) + "\n" for row in values)
    result = load_every_way(work_dir / "numbers.csv", text.encode(), dtype)
    expected = np.array([[float(form.format(v)) for v in row] for row in values])
    fits = np.isfinite(expected).all() and (
        dtype == "float64" or (np.abs(expected) < 2.0**128 - 2.0**103).all()
    )
    if not fits:
        # Rounded for printing, a value may overflow (1.7975e308 → "1.798e+308").
        assert isinstance(result, DataError), result
        assert f"overflows {dtype}" in result.reason or "overflows float64" in result.reason
        return
    assert isinstance(result, Dataset), result
    assert_array_equal(result.X, expected[:, :2].astype(dtype))
    assert_array_equal(result.y, expected[:, 2].astype(dtype))
