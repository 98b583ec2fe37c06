"""Plain-text layout for the report: paragraphs and tables that fit a given width.

Every line this module returns is at most `width` cells wide and has no trailing spaces. Text is
wrapped at spaces, never cut: a word (a number) is broken only when it is wider than the whole
line, which at the widths the report allows (40 and up) never happens to a number. A table that
is too wide first wraps its cells' words, then splits into several tables, each repeating the
first column, so that no value is lost.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO

from rich.cells import cell_len

__all__ = ["DEFAULT_WIDTH", "MIN_WIDTH", "glue", "output_width", "table", "wrap"]

DEFAULT_WIDTH = 80  # piped output, or a terminal whose size is unknown
MIN_WIDTH = 40  # narrower than this, the tables would be mostly wrapping
GAP = "  "  # between the columns of a table
GLUE = "\u00a0"  # a space that wrap() does not break at (see glue())


def output_width(stream: TextIO | None = None) -> int:
    """The width to lay the report out for.

    ``COLUMNS`` when set to a whole number (at least MIN_WIDTH), else the terminal's width when
    `stream` (standard output by default) is a terminal, else DEFAULT_WIDTH: output that goes to
    a file or a pipe is laid out for 80 columns.
    """
    stream = sys.stdout if stream is None else stream
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit():
        return max(int(columns), MIN_WIDTH)
    try:
        if stream.isatty():
            return max(os.get_terminal_size(stream.fileno()).columns, MIN_WIDTH)
    except (AttributeError, OSError, ValueError):
        pass
    return DEFAULT_WIDTH


def _pieces(word: str, width: int) -> list[str]:
    """`word` in pieces of at most `width` cells (only a word wider than the line is broken)."""
    if cell_len(word) <= width:
        return [word]
    pieces, current = [], ""
    for char in word:
        if cell_len(current + char) > width and current:
            pieces.append(current)
            current = ""
        current += char
    return [*pieces, current]


def wrap(text: str, width: int, first: str = "", rest: str = "") -> list[str]:
    """`text` wrapped at spaces into lines of at most `width` cells.

    `first` starts the first line and `rest` the others (a hanging indent); both count towards
    the width. Runs of spaces collapse to one; an empty text gives one line, `first` alone.
    """
    room = max(width - max(cell_len(first), cell_len(rest)), 1)
    lines: list[str] = []
    line, bare = first, True  # bare: nothing after the prefix yet
    for word in _words(text):
        for piece in _pieces(word, room):
            if bare:
                line, bare = line + piece, False
            elif cell_len(line) + 1 + cell_len(piece) <= width:
                line += " " + piece
            else:
                lines.append(line)
                line = rest + piece
    lines.append(line)
    return [line.replace(GLUE, " ").rstrip() for line in lines]


def glue(text: str) -> str:
    """`text` with its spaces made unbreakable: ``glue("b = 0")`` stays on one line."""
    return text.replace(" ", GLUE)


def _words(text: str) -> list[str]:
    """The words of `text`, split at plain spaces and line breaks only (not at GLUE)."""
    return [word for word in text.replace("\n", " ").split(" ") if word]


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in _words(text)), default=0)


def _fit_widths(
    natural: list[int],
    smallest: list[int],
    room: int,
    cells: Sequence[Sequence[str]] = (),
) -> list[int] | None:
    """Column widths that add up to at most `room`, each at least its longest word. None when
    even that does not fit.

    Columns give way one character at a time: the one whose narrowing adds the fewest lines to
    the table (given its `cells`, column by column), and among those the one with the most room
    to give; on a tie the later one (the first holds the rows' names). So a descriptive column
    wraps before a number with its place is split over two lines.
    """
    if sum(smallest) > room:
        return None
    widths = list(natural)
    height = _height(cells, widths)
    while sum(widths) > room:
        best = None
        for i in reversed(range(len(widths))):
            if widths[i] <= smallest[i]:
                continue
            narrower = [*widths[:i], widths[i] - 1, *widths[i + 1 :]]
            key = (_height(cells, narrower) - height, -(widths[i] - smallest[i]))
            if best is None or key < best[0]:
                best = (key, i)
        widths[best[1]] -= 1
        height += best[0][0]
    return widths


def _height(cells: Sequence[Sequence[str]], widths: list[int]) -> int:
    """How many lines the rows of `cells` (given column by column) take at these widths."""
    if not cells:
        return 0
    return sum(
        max(len(wrap(column[r], width)) for column, width in zip(cells, widths, strict=True))
        for r in range(len(cells[0]))
    )


def _render(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    widths: list[int],
    right: set[int],
    indent: str,
) -> list[str]:
    def line_of(cells: Sequence[str]) -> list[str]:
        wrapped = [wrap(cell, width) for cell, width in zip(cells, widths, strict=True)]
        height = max(len(parts) for parts in wrapped)
        out = []
        for k in range(height):
            parts = []
            for i, cell_lines in enumerate(wrapped):
                text = cell_lines[k] if k < len(cell_lines) else ""
                pad = " " * (widths[i] - cell_len(text))
                parts.append(pad + text if i in right else text + pad)
            out.append((indent + GAP.join(parts)).rstrip())
        return out

    lines = line_of(headers)
    lines.append((indent + GAP.join("─" * width for width in widths)).rstrip())
    for row in rows:
        lines.extend(line_of(row))
    return lines


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    *,
    indent: int = 2,
    right: Sequence[int] = (),
) -> list[str]:
    """The lines of a table with a header row and a rule, at most `width` cells wide.

    Columns are separated by two spaces; those listed in `right` are right-aligned. When the
    table is too wide its cells' words wrap; when even single words do not fit, the columns are
    split over several tables (a blank line apart), each starting with the first column.
    """
    prefix = " " * indent
    columns = range(len(headers))
    cells = [[headers[i], *(row[i] for row in rows)] for i in columns]
    natural = [max(cell_len(cell) for cell in column) for column in cells]
    smallest = [max(_longest_word(cell) for cell in column) for column in cells]
    aligned = set(right)

    def room(count: int) -> int:
        return width - indent - len(GAP) * (count - 1)

    widths = _fit_widths(natural, smallest, room(len(headers)), cells)
    if widths is not None:
        return _render(headers, rows, widths, aligned, prefix)
    # Too wide even wrapped: the first column, then as many of the others as fit, per table.
    groups: list[list[int]] = []
    for i in columns[1:]:
        candidate = [*groups[-1], i] if groups else [0, i]
        if groups and _fit_widths(
            [natural[j] for j in candidate], [smallest[j] for j in candidate], room(len(candidate))
        ):
            groups[-1] = candidate
        else:
            groups.append([0, i])
    lines: list[str] = []
    for group in groups:
        fitted = _fit_widths(
            [natural[j] for j in group], [smallest[j] for j in group], room(len(group))
        ) or _squeeze([natural[j] for j in group], room(len(group)))
        if lines:
            lines.append("")
        lines += _render(
            [headers[j] for j in group],
            [[row[j] for j in group] for row in rows],
            fitted,
            {k for k, j in enumerate(group) if j in aligned},
            prefix,
        )
    return lines


def _squeeze(natural: list[int], room: int) -> list[int]:
    """Widths for columns whose words alone are too wide: the first keeps up to half the room,
    the rest share the remainder (their words are then broken)."""
    first = min(natural[0], max(room // 2, 1))
    others = len(natural) - 1
    share = max((room - first) // max(others, 1), 1)
    return [first] + [min(n, share) for n in natural[1:]]
