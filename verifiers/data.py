"""Load a data set from CSV: every column but the last is a feature, the last is the target.

What is accepted (the README repeats this list):
- comma-, semicolon- or tab-separated cells (detected from the first data row, then the same
  delimiter everywhere);
- an optional header row (a first row whose cells are all non-numeric), a UTF-8 byte-order mark,
  Windows or Unix line endings, blank lines (skipped), spaces around cells;
- at least two columns and at least one data row; every cell a finite decimal number.

Anything else is a :class:`DataError` whose message names the file and the line.
Small files are parsed line by line in Python; large ones by a bulk parser (pyarrow when
installed, else numpy). When a bulk parser rejects a file, the line parser runs to say where.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["DataError", "Dataset", "load_csv"]

# A decimal number as people write them: 12, -3.5, .5, 1e-3. No nan/inf, hex or underscores.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
# Files at least this large go to the bulk parser; below it the line parser is fast enough.
BULK_THRESHOLD_BYTES = 4 * 1024 * 1024


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
    notes: list[str] = field(default_factory=list)

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
        dataset.notes = _notes(dataset)
        return dataset


def load_csv(path: str | Path, dtype: str | np.dtype = "float64") -> Dataset:
    """Read `path` into a :class:`Dataset` of `dtype` (float64 or float32), or raise DataError."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise ValueError(f"dtype must be float64 or float32, not {dtype}")
    path = Path(path)
    if path.is_file() and path.stat().st_size >= BULK_THRESHOLD_BYTES:
        dataset = _parse_bulk(path, dtype)
    else:
        dataset = _parse_lines(path, _decode(path, _read_bytes(path)), dtype)
    dataset.notes = _notes(dataset)
    return dataset


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


def _decode(path: Path, raw: bytes) -> str:
    if b"\x00" in raw:
        raise DataError(path, "is not a text file (it contains NUL bytes)")
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark, if any, is dropped
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(path, "is not UTF-8 text (binary data?)", line) from None


def _split(line: str, delimiter: str) -> list[str]:
    return [cell.strip() for cell in line.split(delimiter)]


def _parse_number(path: Path, cell: str, line: int, column: int, dtype: np.dtype) -> float:
    if not cell:
        raise DataError(path, f"cell {column} is empty", line)
    if not _NUMBER.fullmatch(cell):
        shown = cell if len(cell) <= 20 else cell[:17] + "..."
        raise DataError(path, f"cell {column} is not a number: {shown!r}", line)
    value = float(cell)
    if not math.isfinite(value):
        raise DataError(path, f"cell {column} overflows float64: {cell!r}", line)
    if dtype == np.float32 and abs(value) > np.finfo(np.float32).max:
        raise DataError(path, f"cell {column} overflows float32: {cell!r}", line)
    return value


def _data_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of every non-blank line; `splitlines` handles \\n, \\r\\n and \\r."""
    return [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _layout(path: Path, lines: list[tuple[int, str]]) -> tuple[str, list[str] | None, int]:
    """Delimiter, header cells (or None) and the index in `lines` of the first data row."""
    if not lines:
        raise DataError(path, "is empty: no data rows")
    first_number, first = lines[0]
    delimiter = next((d for d in _DELIMITERS if d in first), None)
    if delimiter is None:
        raise DataError(
            path, "needs at least two columns (features, then the target), found one", first_number
        )
    cells = _split(first, delimiter)
    is_header = all(cell and not _NUMBER.fullmatch(cell) for cell in cells)
    if not is_header:
        return delimiter, None, 0
    if len(lines) == 1:
        raise DataError(path, "has a header but no data rows", first_number)
    _, second = lines[1]
    # The data row decides the delimiter when the header has none of them.
    delimiter = next((d for d in _DELIMITERS if d in second), delimiter)
    return delimiter, _split(first, delimiter), 1


def _parse_lines(path: Path, text: str, dtype: np.dtype) -> Dataset:
    """The reference parser: line by line, with an exact message for the first bad line."""
    lines = _data_lines(text)
    delimiter, header, start = _layout(path, lines)
    width = len(header) if header else len(_split(lines[start][1], delimiter))
    if width < 2:
        raise DataError(
            path, "needs at least two columns (features, then the target), found one", lines[0][0]
        )
    rows = []
    for number, line in lines[start:]:
        cells = _split(line, delimiter)
        if len(cells) != width:
            raise DataError(path, f"expected {width} cells, found {len(cells)}", number)
        rows.append([_parse_number(path, c, number, i, dtype) for i, c in enumerate(cells, 1)])
    table = np.array(rows, dtype=np.float64).astype(dtype)
    return Dataset(str(path), table[:, :-1], table[:, -1], header, delimiter)


def _parse_bulk(path: Path, dtype: np.dtype) -> Dataset:
    """Large files: a C parser streams the file; on any doubt the line parser says what is wrong.

    The file is never held in memory as text, so the peak is about the size of the numbers.
    """
    with path.open("rb") as file:
        head = file.read(65536)
    lines = _data_lines(_decode(path, head[: head.rfind(b"\n") + 1] or head))
    delimiter, header, start = _layout(path, lines)
    skip = lines[start][0] - 1  # physical lines before the first data row
    try:
        columns = _bulk_columns(path, delimiter, skip)
    except (ValueError, TypeError, OSError):
        columns = None
    if (
        columns is None
        or len(columns) < 2
        or not all(np.isfinite(column).all() for column in columns)
        or (dtype == np.float32 and max(np.abs(c).max() for c in columns) > np.finfo(dtype).max)
    ):
        # Rare and slow: the line parser reads the whole file to name the bad line.
        _parse_lines(path, _decode(path, _read_bytes(path)), dtype)
        raise DataError(path, "could not be parsed as a table of numbers")
    X = np.column_stack(columns[:-1]).astype(dtype, copy=False)
    y = np.ascontiguousarray(columns[-1], dtype=dtype)
    return Dataset(str(path), X, y, header, delimiter)


def _bulk_columns(path: Path, delimiter: str, skip: int) -> list[np.ndarray]:
    """The file's columns as float64 arrays, by pyarrow when installed, else numpy."""
    try:
        import pyarrow as pa
        from pyarrow import csv
    except ImportError:
        table = np.loadtxt(
            path, delimiter=delimiter, skiprows=skip, dtype=np.float64, ndmin=2,
            comments=None, encoding="utf-8-sig",
        )  # fmt: skip
        return [np.ascontiguousarray(table[:, j]) for j in range(table.shape[1])]
    table = csv.read_csv(
        path,
        read_options=csv.ReadOptions(skip_rows=skip, autogenerate_column_names=True),
        parse_options=csv.ParseOptions(delimiter=delimiter),
    )
    columns = []
    for column in table.columns:
        if column.null_count or not (
            pa.types.is_floating(column.type) or pa.types.is_integer(column.type)
        ):
            raise ValueError("a column is not numeric or has empty cells")
        columns.append(column.to_numpy().astype(np.float64, copy=False))
    return columns


def _notes(dataset: Dataset) -> list[str]:
    """Facts the user should know that do not stop the check."""
    notes = []
    design = np.column_stack([np.ones(dataset.rows), dataset.X.astype(np.float64)])
    if np.linalg.matrix_rank(design) < design.shape[1]:
        if dataset.rows < design.shape[1]:
            why = f"only {dataset.rows} row(s) for {design.shape[1]} parameters"
        elif dataset.features == 1:
            why = "every x is the same"
        else:
            why = "the features are linearly dependent (or constant)"
        notes.append(
            f"{why}: the Hessian is singular and the least-squares optimum is not unique "
            "(gradients are still verified)"
        )
    return notes
