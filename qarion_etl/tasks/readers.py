"""Streaming readers for ingestion: CSV, JSON Lines and Parquet, checked row by row.

Each reader returns a ``Reader``: the file's column names, the schema type of each column
(declared in ``[input].columns``, else ``string``), and an iterator of row tuples in
batches that never holds the whole file. Each value is converted to its declared type. A
value that does not convert, a missing required value or a row of the wrong width makes
the row a bad row: it is left out of the batches and reported to the ``BadRows``
collector with the file's line (as an editor counts it, the CSV header being line 1) and
the column, and the reader goes on. A problem of the whole file (no header, a declared
column missing, text not valid in its encoding) raises ``IngestError``.

Where the engine reads the file itself (``Dialect.file_load``: DuckDB, PostgreSQL's COPY
of a clean CSV file) these readers read it only when the engine cannot name what it
refused, and to point at a duplicate key (``formats.InputFile.locate_duplicate``).
``CsvOptions`` lives in ``db.loading``, where the engines read it too. Which reader a format
uses is in ``formats.FORMATS``; CSV batches are checked in ``csv_batches``.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qarion_etl.db.loading import CsvOptions as CsvOptions  # published here too
from qarion_etl.definitions.flow import ColumnSpec
from qarion_etl.errors import IngestError, clip
from qarion_etl.jsontext import TooDeep, loads
from qarion_etl.tasks.bad_rows import BadRow, BadRows
from qarion_etl.tasks.convert import convert_json_value, converters
from qarion_etl.tasks.csv_batches import BATCH_ROWS, ColumnCheck, RawLines, csv_batches


@dataclass
class Reader:
    """An open input file: its columns and a stream of checked rows."""

    path: Path
    shown: str
    names: list[str]
    types: list[str]
    batches: Iterator[list[tuple[Any, ...]]] = field(default_factory=lambda: iter(()))
    #: The share of the file read so far, where the reader can tell.
    position: FilePosition | None = None


class FilePosition:
    """How far into its file an open reader is, as a share of the file's size."""

    def __init__(self, path: Path) -> None:
        self.size = max(path.stat().st_size, 1)
        self.handle: Any = None  # the text handle being read; its binary buffer knows the offset

    def fraction(self) -> float | None:
        fh = self.handle
        if fh is None:
            return None
        try:
            offset: int = fh.buffer.tell()
            return min(offset / self.size, 1.0)
        except (ValueError, OSError, AttributeError):  # closed, or not a file
            return None


def _fail(shown: str, line: int, message: str) -> IngestError:
    return IngestError(message, path=shown, line=line)


def column_types(names: Sequence[str], declared: Sequence[ColumnSpec], shown: str) -> list[str]:
    """The schema type of each file column; every declared column must be in the file."""
    missing = [c.name for c in declared if c.name not in names]
    if missing:
        raise IngestError(
            f"the file has no column {', '.join(repr(m) for m in missing)} "
            f"declared in [input].columns{_header_shown(names, declared)}",
            path=shown,
            line=1,
        )
    if "batch_id" in names:
        raise IngestError(
            "the file has a 'batch_id' column, which qarion-etl adds to landing tables",
            path=shown,
            line=1,
        )
    by_name = {c.name: c.schema_type for c in declared}
    return [by_name.get(n, "string") for n in names]


def _header_shown(names: Sequence[str], declared: Sequence[ColumnSpec]) -> str:
    """What an error about missing columns says of the file's header.

    Its columns when it names some declared column (it is the input, with a column
    missing); else only how many fields its first line has: a file that is not the input
    it claims to be (``/etc/passwd`` read as CSV) has its content kept out of the error.
    """
    if any(c.name in names for c in declared):
        return f" (its columns: {clip(', '.join(names), 300)})"
    which = "its only column is not" if len(names) == 1 else f"none of its {len(names)} columns is"
    return f" ({which} a declared one: is it the file meant, in this format?)"


def undecodable_line(path: Path, encoding: str) -> tuple[int, str]:
    """The first line of ``path`` (1-based) that is not valid ``encoding`` text, and why.

    Text files are decoded in buffered chunks, so a ``UnicodeDecodeError`` does not say on
    which line it happened; this re-reads the file line by line in binary to find it.
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as exc:
                return lineno, exc.reason
    return 1, "invalid text"


def csv_header(path: Path, shown: str, opts: CsvOptions) -> list[str]:
    try:
        with path.open(newline="", encoding=opts.encoding) as fh:
            row = next(_csv_reader(fh, opts), None)
    except UnicodeDecodeError:
        line, reason = undecodable_line(path, opts.encoding)
        raise _fail(shown, line, f"not valid {opts.encoding} text: {reason}") from None
    except csv.Error as exc:
        raise _fail(shown, 1, f"malformed CSV: {exc}") from None
    if row is None:
        raise IngestError("the file is empty (no header line)", path=shown, line=1)
    return [c.strip() for c in row] if opts.header else [f"column{i + 1}" for i in range(len(row))]


def _csv_reader(fh: Any, opts: CsvOptions) -> Any:
    return csv.reader(
        fh,
        delimiter=opts.delimiter,
        quotechar=opts.quote,
        escapechar=opts.escape,
        doublequote=opts.escape is None,
        strict=True,
    )


def csv_rows(
    path: Path,
    shown: str,
    opts: CsvOptions,
    declared: Sequence[ColumnSpec],
    bad: BadRows,
    extra: tuple[Any, ...] = (),
    bind_as: Mapping[str, Callable[[Any], Any]] | None = None,
    with_line: bool = False,
) -> Reader:
    """A checked CSV reader; ``extra`` values are appended to every row (the batch id)."""
    names = csv_header(path, shown, opts)
    types = column_types(names, declared, shown)
    required = {c.name for c in declared if c.required}
    convs = converters(bind_as)
    columns = [
        ColumnCheck(i, n, t, n in required, None if t == "string" else convs[t])
        for i, (n, t) in enumerate(zip(names, types, strict=True))
    ]
    position = FilePosition(path)
    batches = _csv_batches(path, shown, opts, columns, extra, bad, with_line, position)
    return Reader(path, shown, names, types, batches, position)


def _csv_batches(
    path: Path,
    shown: str,
    opts: CsvOptions,
    columns: list[ColumnCheck],
    extra: tuple[Any, ...],
    bad: BadRows,
    with_line: bool,
    position: FilePosition,
) -> Iterator[list[tuple[Any, ...]]]:
    raw = RawLines(path, opts.encoding)
    try:
        with path.open(newline="", encoding=opts.encoding) as fh:
            position.handle = fh
            reader = _csv_reader(fh, opts)
            if opts.header:
                next(reader, None)
            nulls = frozenset(opts.null_values)
            yield from csv_batches(reader, columns, nulls, extra, bad, raw, with_line)
    except UnicodeDecodeError:
        line, reason = undecodable_line(path, opts.encoding)
        raise _fail(shown, line, f"not valid {opts.encoding} text: {reason}") from None
    finally:
        raw.close()


def jsonl_keys(path: Path, shown: str, encoding: str = "utf-8") -> list[str]:
    """The keys of the file's first JSON object (the first line that is one)."""
    with path.open(encoding=encoding) as fh:
        for lineno, text in enumerate(fh, 1):
            if text.strip():
                try:
                    return list(_json_line(text, shown, lineno))
                except IngestError:
                    continue  # a bad row: the next object says what the columns are
    raise IngestError("the file has no JSON object", path=shown, line=1)


def _json_line(text: str, shown: str, lineno: int) -> dict[str, Any]:
    try:
        obj = loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(shown, lineno, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except TooDeep as exc:
        raise _fail(shown, lineno, str(exc)) from None
    if not isinstance(obj, dict):
        raise _fail(shown, lineno, "each line must be a JSON object")
    return obj


def jsonl_rows(
    path: Path,
    shown: str,
    declared: Sequence[ColumnSpec],
    bad: BadRows,
    extra: tuple[Any, ...] = (),
    encoding: str = "utf-8",
    bind_as: Mapping[str, Callable[[Any], Any]] | None = None,
    with_line: bool = False,
) -> Reader:
    """A checked JSON Lines reader: columns are the declared ones plus the first object's keys."""
    keys = jsonl_keys(path, shown, encoding)
    names = [c.name for c in declared] + [k for k in keys if k not in {c.name for c in declared}]
    if "batch_id" in names:
        raise IngestError(
            "the file has a 'batch_id' field, which qarion-etl adds to landing tables",
            path=shown,
            line=1,
        )
    by_name = {c.name: c for c in declared}
    types = [by_name[n].schema_type if n in by_name else "string" for n in names]
    required = {n for n in names if n in by_name and by_name[n].required}
    bound = bind_as or {}
    plan = [(n, t, bound.get(t)) for n, t in zip(names, types, strict=True)]

    def row_of(obj: dict[str, Any]) -> list[Any] | tuple[str, str]:
        out: list[Any] = []
        for name, stype, to_bound in plan:
            value = obj.get(name)
            if value is None:
                if name in required:
                    return name, "missing required value"
                out.append(None)
                continue
            try:
                converted = convert_json_value(value, stype)
            except (ValueError, TypeError):
                return name, f"{value!r} is not a valid {stype}"
            out.append(converted if to_bound is None else to_bound(converted))
        return out

    position = FilePosition(path)

    def batches() -> Iterator[list[tuple[Any, ...]]]:
        batch: list[tuple[Any, ...]] = []
        with path.open(encoding=encoding) as fh:
            position.handle = fh
            for lineno, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    row = row_of(_json_line(text, shown, lineno))
                except IngestError as exc:
                    bad.add(BadRow(lineno, None, exc.message, text.rstrip("\r\n")))
                    continue
                if isinstance(row, tuple):
                    bad.add(BadRow(lineno, *row, text.rstrip("\r\n")))
                    continue
                batch.append((*row, *extra, lineno) if with_line else (*row, *extra))
                if len(batch) >= BATCH_ROWS:
                    yield batch
                    batch = []
        if batch:
            yield batch

    return Reader(path, shown, names, types, batches(), position)


def parquet_rows(
    path: Path,
    shown: str,
    declared: Sequence[ColumnSpec],
    bad: BadRows,
    extra: tuple[Any, ...] = (),
) -> Reader:
    """Parquet read through DuckDB's reader in batches (for engines other than DuckDB).

    A Parquet file has no lines: a bad row (a missing required value) is named by its row
    number, and its raw text is the row as JSON.
    """
    import duckdb

    con = duckdb.connect()
    rel = con.execute("SELECT * FROM read_parquet(?)", [str(path)])
    names = [d[0] for d in rel.description]
    types = column_types(names, declared, shown)
    required = [i for i, n in enumerate(names) if any(c.name == n and c.required for c in declared)]

    def batches() -> Iterator[list[tuple[Any, ...]]]:
        row_no = 0
        try:
            while chunk := rel.fetchmany(BATCH_ROWS):
                good: list[tuple[Any, ...]] = []
                for row in chunk:
                    row_no += 1
                    missing = next((i for i in required if row[i] is None), None)
                    if missing is None:
                        good.append((*row, *extra))
                        continue
                    text = json.dumps(dict(zip(names, row, strict=True)), default=str)
                    bad.add(BadRow(row_no, names[missing], "missing required value", text))
                yield good
        finally:
            con.close()

    return Reader(path, shown, names, types, batches())
