"""CSV rows in checked batches: column by column when a chunk is clean, row by row when not.

The csv module parses a chunk of ``BATCH_ROWS`` records at C speed. A clean chunk (every
record of the file's width, every value of its column's type, no missing required
value) is converted a column at a time (``map`` of the column's converter), which costs
a fraction of checking each value in a Python loop. When anything in a chunk is wrong,
the chunk is checked again row by row: the good rows are kept and each bad one goes to
the ``BadRows`` collector with its line, column and reason, and its raw text when the
task quarantines it. A clean file never takes the row-by-row path.

Line numbers are those an editor shows (the header is line 1). The csv module only
counts the lines it has read so far, so within a chunk each record's first line is
found from the line breaks inside its fields (``_breaks``); the raw text of a bad row is
read back from a second, forward-only handle on the file (``RawLines``).
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, TextIO

from qarion_etl.tasks.bad_rows import BadRow, BadRows

BATCH_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class ColumnCheck:
    """How one column of a file is checked and converted."""

    index: int
    name: str
    schema_type: str
    required: bool
    #: Text to value; ``None`` for ``string`` columns, which keep their text.
    convert: Callable[[str], Any] | None


@dataclass(frozen=True, slots=True)
class _Malformed:
    """A record the csv module refused (an unterminated quote, a field too large …)."""

    message: str
    line_num: int  # the reader's line count when it gave up


def csv_batches(
    reader: Any,
    columns: Sequence[ColumnCheck],
    nulls: frozenset[str],
    extra: tuple[Any, ...],
    bad: BadRows,
    raw: RawLines,
    with_line: bool = False,
) -> Iterator[list[tuple[Any, ...]]]:
    """Checked row tuples of ``reader`` (positioned after the header), in batches.

    ``extra`` values end every row (the batch id); ``with_line`` ends every row with its
    line (rows are then always checked one by one).
    """
    has_null = _null_test(nulls)
    while True:
        start = reader.line_num
        chunk, clean = _read_chunk(reader)
        if not chunk:
            return
        batch = None
        if clean and not with_line:
            batch = _fast(chunk, columns, nulls, has_null, extra)
        if batch is None:
            batch = _slow(chunk, start, columns, nulls, extra, bad, raw, with_line)
        if batch:
            yield batch


def _read_chunk(reader: Any) -> tuple[list[Any], bool]:
    """Up to ``BATCH_ROWS`` records; a record the csv module refuses becomes a ``_Malformed``."""
    chunk: list[Any] = []
    clean = True
    while len(chunk) < BATCH_ROWS:
        before = reader.line_num
        try:
            chunk.extend(islice(reader, BATCH_ROWS - len(chunk)))
            break
        except csv.Error as exc:  # the records read before it are in chunk already
            chunk.append(_Malformed(str(exc), reader.line_num))
            clean = False
            if reader.line_num == before:  # nothing more can be read
                break
    return chunk, clean


def _null_test(nulls: frozenset[str]) -> Callable[[list[str]], bool]:
    if nulls == frozenset({""}):
        return lambda col: "" in col
    return lambda col: not nulls.isdisjoint(col)


def _fast(
    chunk: list[list[str]],
    columns: Sequence[ColumnCheck],
    nulls: frozenset[str],
    has_null: Callable[[list[str]], bool],
    extra: tuple[Any, ...],
) -> list[tuple[Any, ...]] | None:
    """The chunk converted column by column, or ``None`` when some row of it is bad."""
    if len(set(map(len, chunk))) != 1 or len(chunk[0]) != len(columns):
        return None
    converted: list[list[Any]] = []
    try:
        for c in columns:
            values: list[Any] = list(map(itemgetter(c.index), chunk))
            if has_null(values):
                if c.required:
                    return None
                conv = c.convert
                values = [None if v in nulls else v if conv is None else conv(v) for v in values]
            elif c.convert is not None:
                values = list(map(c.convert, values))
            converted.append(values)
    except (ValueError, TypeError):
        return None
    return list(zip(*converted, *(repeat(x) for x in extra), strict=False))


def _slow(
    chunk: list[Any],
    start: int,
    columns: Sequence[ColumnCheck],
    nulls: frozenset[str],
    extra: tuple[Any, ...],
    bad: BadRows,
    raw: RawLines,
    with_line: bool,
) -> list[tuple[Any, ...]]:
    """The good rows of the chunk, checked one by one; the bad ones go to ``bad``."""
    out: list[tuple[Any, ...]] = []
    last = start  # the last line of the previous record
    for record in chunk:
        first = last + 1
        if isinstance(record, _Malformed):
            last = max(record.line_num, first)
            _reject(bad, raw, BadRow(first, None, f"malformed CSV: {record.message}"), last)
            continue
        last += 1 + _breaks(record)
        if not record:  # a blank line
            continue
        problem = _check(record, columns, nulls)
        if problem is not None:
            _reject(bad, raw, BadRow(first, *problem), last)
            continue
        out.append((*record, *extra, first) if with_line else (*record, *extra))
    return out


def _check(
    record: list[str], columns: Sequence[ColumnCheck], nulls: frozenset[str]
) -> tuple[str | None, str] | None:
    """Convert ``record`` in place; ``(column, reason)`` when it is a bad row."""
    if len(record) != len(columns):
        return None, f"expected {len(columns)} fields, found {len(record)}"
    for c in columns:
        value = record[c.index]
        if value in nulls:
            if c.required:
                return c.name, "missing required value"
            record[c.index] = None  # type: ignore[call-overload]
        elif c.convert is not None:
            try:
                record[c.index] = c.convert(value)
            except (ValueError, TypeError):
                return c.name, f"{value!r} is not a valid {c.schema_type}"
    return None


def _reject(bad: BadRows, raw: RawLines, row: BadRow, last: int) -> None:
    if bad.policy.quarantine and not bad.doomed:
        row = BadRow(row.line, row.column, row.reason, raw.text(row.line, last))
    bad.add(row)


def _breaks(record: list[str]) -> int:
    """How many line breaks the fields of a record hold (``\\r\\n``, ``\\r`` or ``\\n``)."""
    n = 0
    for f in record:
        if "\n" in f or "\r" in f:
            n += f.count("\n") + f.count("\r") - f.count("\r\n")
    return n


class RawLines:
    """The text of lines of a file, read forward only, opened on first use.

    Lines are split as the csv module's file handle splits them (``newline=""``), so line
    numbers agree with the reader's.
    """

    def __init__(self, path: Path, encoding: str) -> None:
        self.path = path
        self.encoding = encoding
        self._fh: TextIO | None = None
        self._read = 0  # lines read so far

    def text(self, first: int, last: int) -> str | None:
        """Lines ``first`` to ``last`` without the final line break (``None``: already passed)."""
        if first <= self._read:
            return None
        try:
            if self._fh is None:
                self._fh = self.path.open(newline="", encoding=self.encoding)
            deque(islice(self._fh, first - 1 - self._read), maxlen=0)
            lines = list(islice(self._fh, last - first + 1))
        except (OSError, UnicodeDecodeError):
            return None
        self._read = first - 1 + len(lines)
        return "".join(lines).removesuffix("\n").removesuffix("\r")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
