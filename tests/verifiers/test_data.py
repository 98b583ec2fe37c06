"""The CSV loader on the corpus in tests/data/ and on small files written here.

Accepted variants must give arrays identical to tests/data/clean.csv; rejected files must give the
exact message and line. The bulk parsers (pyarrow, and numpy when pyarrow is missing) must agree
with the line parser on every file, good or bad.
"""

from __future__ import annotations

import codecs
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import verifiers.data as data_module
from tests.verifiers.helpers import comparable, load_result
from tests.verifiers.test_cli_input_errors import REJECTED, corpus_path
from verifiers.data import DataError, Dataset, load_csv

DATA_DIR = Path(__file__).resolve().parents[1] / "data"

# tests/data/clean.csv, written out: two features and the target.
CLEAN_X = np.array(
    [[1.5, -2.25], [0.1, 1e-3], [-4.0, 250.0], [12.0, 0.5], [2.718281828459045, 0.0]]
)
CLEAN_Y = np.array([3.125, -7.0, 0.3333333333333333, 8.75, 1e-7])

# Files with the same numbers as clean.csv → (header, delimiter).
ACCEPTED = {
    "clean.csv": (None, ","),
    "bom.csv": (None, ","),
    "crlf.csv": (None, ","),
    "cr_only.csv": (None, ","),
    "trailing_blank_lines.csv": (None, ","),
    "blank_lines_inside.csv": (None, ","),
    "header.csv": (["x1", "x2", "y"], ","),
    "bom_crlf_header.csv": (["x1", "x2", "y"], ","),
    "whitespace_around_cells.csv": (None, ","),
    "quoted_cells.csv": (["x1", "x2", "y"], ","),
    "semicolon.csv": (None, ";"),
    "tab.csv": (["x1", "x2", "y"], "\t"),
    "no_final_newline.csv": (None, ","),
}
# The accepted files that the bulk parsers read by themselves; for the others (whitespace-only
# lines, quotes) they give up and the line parser reads the file.
BULK_READS_ALONE = {
    "clean.csv",
    "bom.csv",
    "crlf.csv",
    "cr_only.csv",
    "header.csv",
    "bom_crlf_header.csv",
    "whitespace_around_cells.csv",
    "semicolon.csv",
    "tab.csv",
    "no_final_newline.csv",
}


# --- the accepted corpus ---------------------------------------------------------------------


def test_clean_file_has_the_expected_numbers():
    dataset = load_csv(DATA_DIR / "clean.csv")
    assert isinstance(dataset, Dataset)
    assert (dataset.X.dtype, dataset.y.dtype) == (np.float64, np.float64)
    assert (dataset.X.shape, dataset.y.shape) == ((5, 2), (5,))
    assert (dataset.rows, dataset.features) == (5, 2)
    assert_array_equal(dataset.X, CLEAN_X)
    assert_array_equal(dataset.y, CLEAN_Y)
    assert dataset.header is None
    assert dataset.degenerate is None
    assert dataset.path == str(DATA_DIR / "clean.csv")


def test_corpus_variants_really_differ_from_the_clean_file():
    """Guard against an editor or git normalising the files into copies of clean.csv."""
    raw = {name: (DATA_DIR / name).read_bytes() for name in ACCEPTED}
    assert b"\r" not in raw["clean.csv"]
    assert raw["clean.csv"].endswith(b"\n")
    assert raw["bom.csv"].startswith(codecs.BOM_UTF8)
    assert raw["crlf.csv"].count(b"\r\n") == 5
    assert b"\n" not in raw["cr_only.csv"]
    assert raw["cr_only.csv"].count(b"\r") == 5
    assert raw["trailing_blank_lines.csv"].endswith(b"\n\n  \n\n")
    assert b"\n\n" in raw["blank_lines_inside.csv"]
    assert b"\n \t \n" in raw["blank_lines_inside.csv"]
    assert raw["bom_crlf_header.csv"].startswith(codecs.BOM_UTF8 + b"x1,x2,y\r\n")
    assert raw["whitespace_around_cells.csv"].startswith(b" 1.5 ,\t-2.25 ,")
    assert raw["quoted_cells.csv"].startswith(b'"x1","x2","y"\n"1.5",-2.25,"3.125"\n')
    assert b";" in raw["semicolon.csv"]
    assert b"\t" in raw["tab.csv"]
    assert not raw["no_final_newline.csv"].endswith(b"\n")
    assert len(set(raw.values())) == len(raw)


@pytest.mark.parametrize(("name", "layout"), ACCEPTED.items(), ids=list(ACCEPTED))
def test_accepted_variant_gives_the_clean_arrays(name, layout):
    header, delimiter = layout
    dataset = load_csv(DATA_DIR / name)
    assert_array_equal(dataset.X, CLEAN_X)
    assert_array_equal(dataset.y, CLEAN_Y)
    assert dataset.X.dtype == np.float64
    assert dataset.header == header
    assert dataset.delimiter == delimiter
    assert dataset.degenerate is None


def test_float32_is_the_float64_value_rounded_once():
    dataset = load_csv(DATA_DIR / "bom_crlf_header.csv", "float32")
    assert (dataset.X.dtype, dataset.y.dtype) == (np.float32, np.float32)
    assert_array_equal(dataset.X, CLEAN_X.astype(np.float32))
    assert_array_equal(dataset.y, CLEAN_Y.astype(np.float32))


def test_float32_overflow_file_is_fine_in_float64():
    dataset = load_csv(DATA_DIR / "float32_overflow.csv")
    assert_array_equal(dataset.X, [[1.0], [3.0], [5.0]])
    assert_array_equal(dataset.y, [2.0, 4.0, 1e39])


def test_bad_dtype_is_a_programming_error():
    with pytest.raises(ValueError, match="dtype must be float64 or float32, not int64"):
        load_csv(DATA_DIR / "clean.csv", "int64")


# --- a singular design, named (each model says what it means for it) --------------------------


def test_all_x_equal_is_accepted_with_a_note():
    dataset = load_csv(DATA_DIR / "all_x_equal.csv")
    assert_array_equal(dataset.X, [[2.0], [2.0], [2.0], [2.0]])
    assert_array_equal(dataset.y, [1.0, 3.0, 4.0, 8.0])
    assert dataset.degenerate == "every x is the same"


def test_single_row_is_accepted_with_a_note():
    dataset = load_csv(DATA_DIR / "single_row.csv")
    assert_array_equal(dataset.X, [[1.5]])
    assert_array_equal(dataset.y, [2.5])
    assert dataset.degenerate == "only 1 row(s) for 2 parameters"


@pytest.mark.parametrize(
    ("content", "note"),
    [
        ("1,2,3\n2,4,5\n3,6,9\n4,8,1\n", "the features are linearly dependent (or constant)"),
        ("1,7,3\n2,7,5\n3,7,9\n4,7,1\n", "the features are linearly dependent (or constant)"),
        ("1,2,3\n2,3,5\n", "only 2 row(s) for 3 parameters"),
        # Very different scales are not dependence: x and the intercept are independent here.
        ("1,2\n1e-300,5\n-1e300,3\n", None),
        ("1e200,1\n-1e200,2\n1e-200,3\n", None),
        ("0.1,1\n0.1,2\n0.1,3\n", "every x is the same"),
        ("1,7,3\n2,10,5\n5,19,9\n4,16,1\n", "the features are linearly dependent (or constant)"),
        # Squares overflow: the check must neither fail (LinAlgError) nor see dependence.
        ("1e200,1e200,1\n-1e200,3e200,2\n5e199,1,3\n4,-1e200,4\n", None),
        ("1.3407807929942597e154,0,0\n", "only 1 row(s) for 3 parameters"),
    ],
)
def test_notes_about_a_singular_hessian(tmp_path, content, note):
    path = tmp_path / "notes.csv"
    path.write_text(content)
    assert load_csv(path).degenerate == note


# --- rejections ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), REJECTED.items(), ids=list(REJECTED))
def test_rejected_corpus_file_names_file_and_line(name, expected):
    dtype, _status, line, message = expected
    path = corpus_path(name)
    with pytest.raises(DataError) as caught:
        load_csv(path, dtype)
    error = caught.value
    assert error.path == str(path)
    assert error.line == line
    where = f"{path}:{line}" if line is not None else str(path)
    assert str(error) == f"{where}: {error.reason}"
    assert str(error).endswith(message)
    assert "\n" not in str(error)


# Small files written here → (line, reason): the odd cases around the corpus.
ODD_REJECTIONS = {
    # A header with fewer or more cells than the data rows, or another delimiter.
    b"x\n1,2\n": (1, "the header has 1 cell but the first data row (line 2) has 2"),
    b"x,y\n1;2\n": (1, "the header has 1 cell but the first data row (line 2) has 2"),
    b"\n\nx,y\n\n1,2,3\n": (3, "the header has 2 cells but the first data row (line 5) has 3"),
    b"x,y\n1\n": (1, "the header has 2 cells but the first data row (line 2) has 1"),
    b"x\n1\n2\n": (2, "needs at least two columns (features, then the target), found one"),
    # Line numbers count LF, CRLF and CR; form feeds and U+2028 are not line breaks.
    b"1,2\r3,4\r5,x\r": (3, "cell 2 is not a number: 'x'"),
    b"1,2\r\n3,4\n5,6\r7,x\n": (4, "cell 2 is not a number: 'x'"),
    b"1,2\n3,4\x0c\n5,x\n": (3, "cell 2 is not a number: 'x'"),
    "1,2\n3,4\u2028\n5,x\n".encode(): (3, "cell 2 is not a number: 'x'"),
    b"1,2\n3,4\x0c5,6\n": (2, "expected 2 cells, found 3"),
    b"1,2\n3,4\x0c5\n": (2, "cell 2 is not a number: '4\\x0c5'"),
    b"\n\n\n1,2\n\n3,\n": (6, "cell 2 is empty"),
    # Bytes that are not UTF-8 text, on the right line even with a BOM and CR endings.
    codecs.BOM_UTF8 + b"x,y\r1,2\r3,\xff\r": (3, "is not UTF-8 text (binary data?)"),
    b"1,2\n3,4\n5,\x006\n": (3, "is not a text file (it contains NUL bytes)"),
    "1,2\n".encode("utf-16"): (1, "is not a text file (it contains NUL bytes)"),
    # Numbers the way Python's float() reads them, but not decimal numbers in a CSV.
    "1,2\n3,\u0664\n".encode(): (2, "cell 2 is not a number: '\u0664'"),
    b"1,2\n0x10,4\n": (2, "cell 1 is not a number: '0x10'"),
    b"1,2\n1_000,4\n": (2, "cell 1 is not a number: '1_000'"),
    b"1,2\n-Infinity,4\n": (2, "cell 1 is not a number: '-Infinity'"),
    b"1,2\n3,4 5\n": (2, "cell 2 is not a number: '4 5'"),
    b"1,2\n3,1,5\n": (2, "expected 2 cells, found 3"),
    b"1,2\n3;4\n": (2, "expected 2 cells, found 1"),
    b"1,2,\n3,4,\n": (1, "cell 3 is empty"),
    b"1,2\n3,1e309\n": (2, "cell 2 overflows float64: '1e309'"),
    b"1,2\n3,-" + b"9" * 400 + b"\n": (2, "cell 2 overflows float64: '-9999999999999999...'"),
    b"1,2\n3,12345678901234567890xyz\n": (2, "cell 2 is not a number: '12345678901234567...'"),
    # Quotes: one pair around a number is fine, but they do not protect a delimiter.
    b'1,2\n"3,5",4\n': (2, "expected 2 cells, found 3"),
    b'"1,5",2\n3,4\n': (1, "cell 1 is not a number: '\"1'"),
    b'1,2\n"",4\n': (2, "cell 1 is empty"),
    b'1,2\n"abc",4\n': (2, "cell 1 is not a number: 'abc'"),
    b"1,2\n'3',4\n": (2, "cell 1 is not a number: \"'3'\""),
    # Whitespace-only content is empty.
    b" \t \r\n\r\n   ": (None, "is empty: no data rows"),
}


@pytest.mark.parametrize(
    ("content", "expected"), ODD_REJECTIONS.items(), ids=[repr(c) for c in ODD_REJECTIONS]
)
def test_odd_rejection(tmp_path, content, expected):
    line, reason = expected
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        load_csv(path)
    assert (caught.value.line, caught.value.reason) == (line, reason)
    where = f"{path}:{line}" if line is not None else str(path)
    assert str(caught.value) == f"{where}: {reason}"


# Small files written here → the X and y they hold.
ODD_ACCEPTANCES = {
    b'" 1.5 ",2\n3,"4"\n': ([[1.5], [3.0]], [2.0, 4.0]),
    b'"a" , "b"\n1,2\n': ([[1.0]], [2.0]),
    b"+1,.5\n5.,-.25\n1E+3,1e-3\n": ([[1.0], [5.0], [1000.0]], [0.5, -0.25, 0.001]),
    b"007,-0\n1,0.10000000000000000555\n": ([[7.0], [1.0]], [-0.0, 0.1]),
    b"1,1e-400\n2,2.2250738585072014e-308\n": ([[1.0], [2.0]], [0.0, 2.2250738585072014e-308]),
    b"1,1.7976931348623157e308\n2,3\n": ([[1.0], [2.0]], [1.7976931348623157e308, 3.0]),
    "1,\u00a02\u00a0\n3,4\n".encode(): ([[1.0], [3.0]], [2.0, 4.0]),  # any Unicode space
    b"1;2;3\n4;5;6\n": ([[1.0, 2.0], [4.0, 5.0]], [3.0, 6.0]),
    b"  \n\t\n1,2\n \n3,4\n\n": ([[1.0], [3.0]], [2.0, 4.0]),
    b"1,2\r\n\r\n3,4\r\n": ([[1.0], [3.0]], [2.0, 4.0]),
    b"1,2\r\r\r3,4": ([[1.0], [3.0]], [2.0, 4.0]),
}


@pytest.mark.parametrize(
    ("content", "expected"), ODD_ACCEPTANCES.items(), ids=[repr(c) for c in ODD_ACCEPTANCES]
)
def test_odd_acceptance(tmp_path, content, expected):
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    dataset = load_csv(path)
    assert_array_equal(dataset.X, np.array(expected[0]))
    assert_array_equal(dataset.y, np.array(expected[1]))
    assert np.signbit(dataset.y).tolist() == np.signbit(expected[1]).tolist()


def test_quoted_header_cells_lose_their_quotes():
    assert load_csv(DATA_DIR / "quoted_cells.csv").header == ["x1", "x2", "y"]


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("3.4028235e38", True),  # float32's largest value, as numpy prints it
        ("-3.4028235677973362e38", True),  # just below the value that rounds to infinity
        ("3.4028235677973366e38", False),  # max + half an ulp: rounds to infinity
        ("3.5e38", False),
        ("-1e39", False),
    ],
)
def test_float32_limit_is_exact_and_silent(tmp_path, value, accepted):
    path = tmp_path / "f32.csv"
    path.write_text(f"1,2\n3,{value}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "overflow encountered in cast"
        if accepted:
            dataset = load_csv(path, "float32")
            assert np.isfinite(dataset.y).all()
            assert dataset.y[1] == np.float32(float(value))
        else:
            with pytest.raises(DataError) as caught:
                load_csv(path, "float32")
            shown = value if len(value) <= 20 else value[:17] + "..."  # long cells are cut
            assert str(caught.value) == f"{path}:2: cell 2 overflows float32: {shown!r}"
    assert load_csv(path, "float64").y[1] == float(value)


def test_data_error_keeps_its_parts():
    error = DataError("some/file.csv", "cell 2 is empty", 7)
    assert (error.path, error.line, error.reason) == ("some/file.csv", 7, "cell 2 is empty")
    assert str(error) == "some/file.csv:7: cell 2 is empty"
    assert isinstance(error, ValueError)
    unplaced = DataError(Path("f.csv"), "no such file")
    assert (unplaced.path, unplaced.line, str(unplaced)) == ("f.csv", None, "f.csv: no such file")


# --- the bulk parsers ------------------------------------------------------------------------


def outcome(path: Path, dtype: str = "float64") -> tuple:
    """What load_csv makes of `path`: the arrays and facts, or the error, comparable with ==."""
    return comparable(load_result(path, dtype))


@pytest.fixture(params=["pyarrow", "numpy"])
def bulk(request, monkeypatch):
    """Every file is bulk-parsed, by pyarrow or by numpy (pyarrow made unimportable).

    Yields the list of calls of the bulk parser and of the fall-back line parser.
    """
    if request.param == "pyarrow":
        pytest.importorskip("pyarrow.csv")
    else:
        monkeypatch.setitem(sys.modules, "pyarrow", None)
        monkeypatch.setitem(sys.modules, "pyarrow.csv", None)
    monkeypatch.setattr(data_module, "BULK_THRESHOLD_BYTES", 1)
    calls = []
    bulk_columns, parse_whole, loadtxt = (
        data_module._bulk_columns,
        data_module._parse_whole,
        np.loadtxt,
    )

    def spy_bulk(*args, **kwargs):
        calls.append("bulk")
        return bulk_columns(*args, **kwargs)

    def spy_whole(*args, **kwargs):
        calls.append("line parser")
        return parse_whole(*args, **kwargs)

    def spy_loadtxt(*args, **kwargs):
        calls.append("numpy.loadtxt")
        return loadtxt(*args, **kwargs)

    monkeypatch.setattr(data_module, "_bulk_columns", spy_bulk)
    monkeypatch.setattr(data_module, "_parse_whole", spy_whole)
    monkeypatch.setattr(np, "loadtxt", spy_loadtxt)
    return request.param, calls


def line_parser_outcome(monkeypatch, path: Path, dtype: str = "float64") -> tuple:
    with monkeypatch.context() as patch:
        patch.setattr(data_module, "BULK_THRESHOLD_BYTES", 1 << 62)
        return outcome(path, dtype)


@pytest.mark.parametrize("name", ACCEPTED)
def test_bulk_parser_gives_the_line_parser_arrays(bulk, monkeypatch, name):
    parser, calls = bulk
    path = DATA_DIR / name
    expected = line_parser_outcome(monkeypatch, path)
    assert expected[0] == "ok"
    calls.clear()
    got = outcome(path)
    assert got == expected
    dataset = load_csv(path)
    assert_array_equal(dataset.X, CLEAN_X)
    assert_array_equal(dataset.y, CLEAN_Y)
    assert dataset.X.flags.c_contiguous
    assert dataset.y.flags.c_contiguous
    if name in BULK_READS_ALONE:
        # The bulk parser really read these files, without help from the line parser.
        assert "line parser" not in calls
        assert calls.count("bulk") == 2
        assert ("numpy.loadtxt" in calls) == (parser == "numpy")
    else:
        assert "line parser" in calls


@pytest.mark.parametrize("name", [n for n in REJECTED if n not in {".", "missing.csv"}])
def test_bulk_parser_gives_the_line_parser_error(bulk, monkeypatch, name):
    dtype, _status, line, message = REJECTED[name]
    path = corpus_path(name)
    expected = line_parser_outcome(monkeypatch, path, dtype)
    assert expected[:3:2] == ("error", line)
    assert expected[1].endswith(message)
    assert outcome(path, dtype) == expected


# Columns a bulk parser would happily read by its own rules: integers in hex, booleans, markers
# of missing values. The line parser's answer must win.
BULK_TRAPS = [
    b"1,0x2\n2,3\n",
    b"0x1,0x2\n0x3,0x4\n",
    b"1,true\n2,false\n",
    b"1,NA\n2,3\n",
    b"1,null\n2,3\n",
    b"1,2\n3,N/A\n",
    b"1,2\n3,-nan\n",
    b"1,2\n3,+Inf\n",
    b"1,1_0\n2,3\n",
    b"1,2020-01-01\n2,2020-01-02\n",
    b"1,\xd9\xa2\n2,3\n",
]


@pytest.mark.parametrize(
    "content",
    [*ODD_REJECTIONS, *ODD_ACCEPTANCES, *BULK_TRAPS],
    ids=[repr(c) for c in [*ODD_REJECTIONS, *ODD_ACCEPTANCES, *BULK_TRAPS]],
)
def test_bulk_parser_agrees_on_odd_files(bulk, monkeypatch, tmp_path, content):
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    expected = line_parser_outcome(monkeypatch, path)
    assert outcome(path) == expected
    if content in BULK_TRAPS:
        assert expected[0] == "error"


def big_file(rows: int, bad_row: int | None = None, bad: str = "") -> tuple[str, int | None]:
    """A header, a blank line, then `rows` rows of 3 cells; row `bad_row` (0-based) replaced."""
    rng = np.random.default_rng(7)
    values = rng.normal(scale=100.0, size=(rows, 3))
    lines = ["a,b,y", ""] + [",".join(repr(v) for v in row) for row in values.tolist()]
    bad_line = None
    if bad_row is not None:
        lines[2 + bad_row] = bad
        bad_line = 3 + bad_row
    return "\n".join(lines) + "\n", bad_line


@pytest.mark.parametrize(
    ("bad", "dtype", "reason"),
    [
        ("1,abc,3", "float64", "cell 2 is not a number: 'abc'"),
        ("1,2,nan", "float64", "cell 3 is not a number: 'nan'"),
        ("inf,2,3", "float64", "cell 1 is not a number: 'inf'"),
        ("1,-1e999,3", "float64", "cell 2 overflows float64: '-1e999'"),
        ("1,2,1e39", "float32", "cell 3 overflows float32: '1e39'"),
        ("1,,3", "float64", "cell 2 is empty"),
        ("1,2", "float64", "expected 3 cells, found 2"),
        ("1,2,3,4", "float64", "expected 3 cells, found 4"),
        ("0x1,2,3", "float64", "cell 1 is not a number: '0x1'"),
        ("1,true,3", "float64", "cell 2 is not a number: 'true'"),
        ("1,NA,3", "float64", "cell 2 is not a number: 'NA'"),
    ],
)
def test_bulk_parser_reports_the_bad_line(bulk, tmp_path, bad, dtype, reason):
    """A bad row far past the first 64 KiB is named with its line, whichever parser runs."""
    text, bad_line = big_file(3000, bad_row=2345, bad=bad)
    path = tmp_path / "big.csv"
    path.write_text(text)
    assert path.stat().st_size > 65536
    with pytest.raises(DataError) as caught:
        load_csv(path, dtype)
    assert caught.value.line == bad_line == 2348
    assert str(caught.value) == f"{path}:2348: {reason}"


def test_bulk_parser_reads_a_big_file_like_the_line_parser(bulk, monkeypatch, tmp_path):
    _parser, calls = bulk
    text, _ = big_file(3000)
    path = tmp_path / "big.csv"
    path.write_text(text.replace("\n", "\r\n"))
    expected = line_parser_outcome(monkeypatch, path)
    expected32 = line_parser_outcome(monkeypatch, path, "float32")
    calls.clear()
    assert outcome(path) == expected
    assert outcome(path, "float32") == expected32
    assert "line parser" not in calls
    dataset = load_csv(path)
    assert dataset.X.shape == (3000, 2)
    assert dataset.header == ["a", "b", "y"]


@pytest.mark.parametrize(
    "text",
    [
        # The first 64 KiB hold no data row: the head alone cannot give the layout.
        "\n" * 70_000 + "x,y\n1,2\n3,4\n",
        "x,y\n" + "\n" * 70_000 + "1,2\n3,4\n",
        # CR line endings and a header longer than the head: no line end in the first 64 KiB.
        "\u00e9" * 40_000 + ",y\r1,2\r3,4\r",
    ],
    ids=["blank lines first", "blank lines after the header", "long header, CR endings"],
)
def test_bulk_parser_with_a_head_that_holds_no_data_row(bulk, monkeypatch, tmp_path, text):
    path = tmp_path / "late.csv"
    path.write_bytes(text.encode())
    expected = line_parser_outcome(monkeypatch, path)
    assert expected[0] == "ok"
    assert outcome(path) == expected
    dataset = load_csv(path)
    assert_array_equal(dataset.X, [[1.0], [3.0]])
    assert_array_equal(dataset.y, [2.0, 4.0])


def test_threshold_decides_the_parser(monkeypatch, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("1,2\n3,4\n")
    size = path.stat().st_size
    calls = []
    bulk_columns = data_module._bulk_columns
    monkeypatch.setattr(
        data_module, "_bulk_columns", lambda *a: calls.append(a) or bulk_columns(*a)
    )
    monkeypatch.setattr(data_module, "BULK_THRESHOLD_BYTES", size + 1)
    load_csv(path)
    assert calls == []
    monkeypatch.setattr(data_module, "BULK_THRESHOLD_BYTES", size)
    load_csv(path)
    assert len(calls) == 1
