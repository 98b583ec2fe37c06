"""Load a data set from CSV: every column but the last is a feature, the last is the target.

What is accepted (the README repeats this list):
- comma-, semicolon- or tab-separated cells (detected from the first data row, then the same
  delimiter everywhere);
- an optional header row (a first row whose cells are all non-numeric) with as many cells as the
  data rows, a UTF-8 byte-order mark, Unix (LF), Windows (CRLF) or old Mac (CR) line endings,
  blank or whitespace-only lines anywhere (skipped), whitespace around cells;
- a cell wrapped in one pair of double quotes, ``"1.5"``, is read as the number inside; quotes
  do not protect a delimiter (``"1,5"`` is two cells, so it is rejected);
- at least two columns and at least one data row (one row is accepted, with a note that the
  optimum is not unique); every cell a finite decimal number written with ASCII digits
  (``12``, ``-3.5``, ``.5``, ``1e-3``; no ``nan``, ``inf``, hex or ``1_000``); with dtype
  float32, every value must also fit float32 (``1e39`` is rejected).

Anything else is a :class:`DataError` whose message names the file and, where there is one, the
line. Lines are counted as an editor counts them: only LF, CRLF and CR end a line.
Small files are parsed line by line in Python; large ones by a bulk parser (pyarrow when
installed, else numpy). The line parser is the reference: whenever the bulk parser cannot read a
file, or reads something the line parser would not accept, the line parser reads the whole file
and its result (a data set, or the error that names the bad line) is the answer.
"""

from __future__ import annotations

import codecs
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DataError", "Dataset", "load_csv"]

# A decimal number as people write them: 12, -3.5, .5, 1e-3. ASCII digits only (Python's float()
# would also take "٢" or "1_0"); no nan/inf, hex or underscores.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
# Only these end a line (str.splitlines would also split at \f, \v, \x1c-\x1e, \x85, U+2028 and
# U+2029, and the line numbers would no longer match an editor or the bulk parser).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")
# The smallest float64 that rounds to infinity in float32: float32's max plus half an ulp.
_FLOAT32_OVERFLOW = 2.0**128 - 2.0**103
# Files at least this large go to the bulk parser; below it the line parser is fast enough.
BULK_THRESHOLD_BYTES = 4 * 1024 * 1024
# How much of a large file is read to find its delimiter, header and first data row.
_HEAD_BYTES = 65536
# Rows at a time when looking for dependent features (the memory is this many rows × d).
_NOTE_CHUNK_ROWS = 65536


class DataError(ValueError):
    """A data file that cannot be used; ``str()`` is one line naming the file and the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


@dataclass
class Dataset:
    """Features `X` (N, d), target `y` (N,), both of `dtype`, and facts about the file."""

    path: str
    X: np.ndarray
    y: np.ndarray
    header: list[str] | None = None
    delimiter: str = ","
    # Why the MSE's Hessian is singular on this data (too few rows, a constant or dependent
    # feature), in words; None when it is not. The model says what that means for it.
    degenerate: str | None = None

    @property
    def rows(self) -> int:
        return self.X.shape[0]

    @property
    def features(self) -> int:
        return self.X.shape[1]

    @property
    def dtype(self) -> np.dtype:
        return self.X.dtype

    @classmethod
    def from_arrays(
        cls, X: np.ndarray, y: np.ndarray, dtype: str | np.dtype = "float64", path: str = "<arrays>"
    ) -> Dataset:
        """A data set from arrays (X may be 1-D for one feature), with the loader's checks."""
        X = np.asarray(X, dtype=dtype)
        X = X.reshape(-1, 1) if X.ndim == 1 else X
        y = np.asarray(y, dtype=dtype).reshape(-1)
        if X.ndim != 2 or X.shape[0] != y.shape[0] or X.shape[0] == 0 or X.shape[1] == 0:
            raise DataError(path, f"X of shape {X.shape} and y of shape {y.shape} do not match")
        dataset = cls(path=path, X=X, y=y)
        dataset.degenerate = _degenerate(dataset)
        return dataset

    def line_of(self, row: int) -> int | None:
        """The line of the file that holds data row `row` (0-based), as the loader counts lines.

        For error messages about a value found after loading (a label a model cannot use):
        the file is read again, so loading keeps no line numbers. None when the data did not
        come from a readable file (``from_arrays``), or the file no longer has that row.
        """
        path = Path(self.path)
        try:
            lines = _data_lines(_decode(path, _read_bytes(path)))
            start = _layout(path, lines)[2]
        except DataError:
            return None
        index = start + int(row)
        return lines[index][0] if row >= 0 and index < len(lines) else None


def load_csv(path: str | Path, dtype: str | np.dtype = "float64") -> Dataset:
    """Read `path` into a :class:`Dataset` of `dtype` (float64 or float32), or raise DataError."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise ValueError(f"dtype must be float64 or float32, not {dtype}")
    path = Path(path)
    if path.is_file() and path.stat().st_size >= BULK_THRESHOLD_BYTES:
        dataset = _parse_bulk(path, dtype)
    else:
        dataset = _parse_whole(path, dtype)
    dataset.degenerate = _degenerate(dataset)
    return dataset


def _parse_whole(path: Path, dtype: np.dtype) -> Dataset:
    return _parse_lines(path, _decode(path, _read_bytes(path)), dtype)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "no such file") from None
    except IsADirectoryError:
        raise DataError(path, "is a directory, not a CSV file") from None
    except PermissionError:
        raise DataError(path, "permission denied") from None
    except OSError as error:
        raise DataError(path, f"cannot be read: {error.strerror or error}") from None


def _line_of(raw: bytes, offset: int) -> int:
    """The line number of byte `offset` of `raw`."""
    return len(_LINE_BREAK_BYTES.findall(raw, 0, offset)) + 1


def _decode(path: Path, raw: bytes) -> str:
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]  # a byte-order mark is dropped
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(path, "is not a text file (it contains NUL bytes)", _line_of(raw, nul))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = _line_of(raw, error.start)
        raise DataError(path, "is not UTF-8 text (binary data?)", line) from None


def _cell(text: str) -> str:
    """A cell without surrounding whitespace and without one pair of surrounding double quotes."""
    cell = text.strip()
    if len(cell) >= 2 and cell[0] == cell[-1] == '"':
        cell = cell[1:-1].strip()
    return cell


def _split(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return [_cell(line)]
    return [_cell(cell) for cell in line.split(delimiter)]


def _parse_number(path: Path, cell: str, line: int, column: int, dtype: np.dtype) -> float:
    if not cell:
        raise DataError(path, f"cell {column} is empty", line)
    if not _NUMBER.fullmatch(cell):
        shown = cell if len(cell) <= 20 else cell[:17] + "..."
        raise DataError(path, f"cell {column} is not a number: {shown!r}", line)
    value = float(cell)
    shown = cell if len(cell) <= 20 else cell[:17] + "..."
    if not math.isfinite(value):
        raise DataError(path, f"cell {column} overflows float64: {shown!r}", line)
    if dtype == np.float32 and abs(value) >= _FLOAT32_OVERFLOW:
        raise DataError(path, f"cell {column} overflows float32: {shown!r}", line)
    return value


def _data_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of every line that is not blank; LF, CRLF and CR end a line."""
    return [(n, line) for n, line in enumerate(_LINE_BREAK.split(text), start=1) if line.strip()]


def _cells(count: int) -> str:
    return f"{count} cell" if count == 1 else f"{count} cells"


def _delimiter_in(line: str) -> str | None:
    return next((d for d in _DELIMITERS if d in line), None)


def _layout(path: Path, lines: list[tuple[int, str]]) -> tuple[str, list[str] | None, int, int]:
    """Delimiter, header cells (or None), index in `lines` of the first data row, and width."""
    if not lines:
        raise DataError(path, "is empty: no data rows")
    first_number, first = lines[0]
    delimiter = _delimiter_in(first)
    cells = _split(first, delimiter)
    header, start = None, 0
    if all(cell and not _NUMBER.fullmatch(cell) for cell in cells):
        if len(lines) == 1:
            raise DataError(path, "has a header but no data rows", first_number)
        # The data row decides the delimiter when the header has none of them.
        delimiter = _delimiter_in(lines[1][1]) or delimiter
        header, start = _split(first, delimiter), 1
    data_number, data = lines[start]
    if delimiter is None:
        raise DataError(
            path, "needs at least two columns (features, then the target), found one", data_number
        )
    width = len(_split(data, delimiter))
    if header is not None and len(header) != width:
        raise DataError(
            path,
            f"the header has {_cells(len(header))} but the first data row "
            f"(line {data_number}) has {width}",
            first_number,
        )
    return delimiter, header, start, width


def _parse_lines(path: Path, text: str, dtype: np.dtype) -> Dataset:
    """The reference parser: line by line, with an exact message for the first bad line."""
    lines = _data_lines(text)
    delimiter, header, start, width = _layout(path, lines)
    rows = []
    for number, line in lines[start:]:
        cells = _split(line, delimiter)
        if len(cells) != width:
            raise DataError(path, f"expected {_cells(width)}, found {len(cells)}", number)
        rows.append([_parse_number(path, c, number, i, dtype) for i, c in enumerate(cells, 1)])
    table = np.array(rows, dtype=np.float64).astype(dtype)
    # Contiguous copies, as the bulk parser gives, rather than strided views of the table.
    X, y = np.ascontiguousarray(table[:, :-1]), np.ascontiguousarray(table[:, -1])
    return Dataset(str(path), X, y, header, delimiter)


def _parse_bulk(path: Path, dtype: np.dtype) -> Dataset:
    """Large files: a C parser streams the file; on any doubt the line parser reads it instead.

    The file is never held in memory as text (unless the line parser has to read it), so the
    peak is about the size of the numbers.
    """
    with path.open("rb") as file:
        head = file.read(_HEAD_BYTES)
    # Only whole lines: a cut in the middle of a UTF-8 character would not decode.
    cut = max(head.rfind(b"\n"), head.rfind(b"\r")) + 1
    try:
        lines = _data_lines(_decode(path, head[:cut]))
        delimiter, header, start, width = _layout(path, lines)
    except DataError:
        # The head alone cannot tell (no data row in it yet, or it is bad): read everything.
        return _parse_whole(path, dtype)
    skip = lines[start][0] - 1  # physical lines before the first data row
    try:
        columns = _bulk_columns(path, delimiter, skip, width)
    except Exception:  # any failure of the bulk parser: the reference parser decides
        columns = None
    if (
        columns is None
        or len(columns) != width
        or columns[0].size == 0
        or not all(np.isfinite(column).all() for column in columns)
        or (dtype == np.float32 and max(np.abs(c).max() for c in columns) >= _FLOAT32_OVERFLOW)
    ):
        # Rare and slow: the line parser reads the whole file, and names the bad line if any.
        return _parse_whole(path, dtype)
    rows = columns[0].size
    X = _aligned_empty((rows, width - 1), dtype)
    y = _aligned_empty((rows,), dtype)
    for j in range(width):
        (X[:, j] if j < width - 1 else y)[:] = columns[j]
        columns[j] = None  # each parsed column freed as soon as it is copied
    return Dataset(str(path), X, y, header, delimiter)


# jax works on a numpy array in place, without a copy, only when its memory starts on a 64-byte
# boundary (numpy promises 16): large data sets are loaded into such buffers.
_ALIGNMENT = 64


def _aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised array whose data starts on an _ALIGNMENT-byte boundary."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(size + _ALIGNMENT, dtype=np.uint8)
    offset = -raw.ctypes.data % _ALIGNMENT
    return raw[offset : offset + size].view(dtype).reshape(shape)


def _bulk_columns(path: Path, delimiter: str, skip: int, width: int) -> list[np.ndarray]:
    """The file's columns as float64 arrays, by pyarrow when installed, else numpy.

    Both are told to read every cell as a float64, with no quoting and no null markers, so that
    they accept no more than the line parser does (pyarrow would otherwise read "0x10" as 16,
    "true" as a bool and "NA" as a missing value); the finiteness checks are the caller's.
    """
    try:
        import pyarrow as pa
        from pyarrow import csv
    except ImportError:
        table = np.loadtxt(
            path, delimiter=delimiter, skiprows=skip, dtype=np.float64, ndmin=2,
            comments=None, quotechar=None, encoding="utf-8-sig",
        )  # fmt: skip
        return [np.ascontiguousarray(table[:, j]) for j in range(table.shape[1])]
    table = csv.read_csv(
        path,
        read_options=csv.ReadOptions(skip_rows=skip, autogenerate_column_names=True),
        parse_options=csv.ParseOptions(delimiter=delimiter, quote_char=False),
        convert_options=csv.ConvertOptions(
            column_types={f"f{j}": pa.float64() for j in range(width)},
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    if any(c.null_count or not pa.types.is_float64(c.type) for c in table.columns):
        raise ValueError("a column is not float64 or has empty cells")
    # Copies into numpy's memory, one column at a time, each freed from the table once copied.
    columns = []
    while table.num_columns:
        columns.append(np.array(table.column(0).to_numpy(), dtype=np.float64))
        table = table.remove_column(0)
    del table
    # pyarrow's allocator keeps freed memory for reuse; numpy cannot use it, so hand it back.
    pa.default_memory_pool().release_unused()
    return columns


def _degenerate(dataset: Dataset) -> str | None:
    """Why the design [1, X] lacks full column rank, in words (None when it does not)."""
    rows, features = dataset.rows, dataset.features
    parameters = features + 1
    if rows < parameters:
        return f"only {rows} row(s) for {parameters} parameters"
    if _dependent(dataset.X):
        return (
            "every x is the same"
            if features == 1
            else "the features are linearly dependent (or constant)"
        )
    return None


def _dependent(X: np.ndarray) -> bool:
    """Whether the design [1, X] lacks full column rank (the Hessian of the MSE is singular).

    It does when a feature is constant (a multiple of the intercept's column of ones), or when the
    centred features are linearly dependent. The test does not depend on units: each column is
    scaled to [-1, 1] and centred before its correlation matrix is examined, so x of 1e-300 and
    1e300 are not mistaken for a constant, and nothing overflows. It works through X in chunks of
    rows, so the extra memory is one chunk and a d×d matrix, never another N×d array.
    """
    rows, features = X.shape
    high = X.max(axis=0).astype(np.float64)
    low = X.min(axis=0).astype(np.float64)
    if np.any(high == low):
        return True
    if features == 1:
        return False
    scale = np.maximum(high, -low)  # > 0: the column is not constant
    chunks = [slice(start, start + _NOTE_CHUNK_ROWS) for start in range(0, rows, _NOTE_CHUNK_ROWS)]
    mean = sum((X[c].astype(np.float64) / scale).sum(axis=0) for c in chunks) / rows
    gram = np.zeros((features, features))
    for chunk in chunks:
        centred = X[chunk].astype(np.float64) / scale - mean
        gram += centred.T @ centred
    norms = np.sqrt(np.diag(gram))
    if not np.all(norms > 0):
        return True
    correlation = gram / np.outer(norms, norms)  # entries in [-1, 1], eigenvalues sum to d
    return bool(np.linalg.eigvalsh(correlation)[0] <= 1e-13 * features)
