"""Streaming readers for ingestion: CSV, JSON Lines and Parquet, checked row by row.

``open_reader`` returns a ``Reader``: the file's column names, the schema type of each
column (declared in ``[input].columns``, else ``string``), and an iterator of
``(line, values)`` in batches that never holds the whole file. Each value is converted to
its declared type; a value that does not convert, a missing required value or a row of the
wrong width raises ``IngestError`` naming the file, the line (as an editor counts it, the
CSV header being line 1) and the column.

The DuckDB fast path does not use these readers to load, only to point at the first bad
row when DuckDB refuses the file (``formats.InputFile.locate_problem``). Which reader a
format uses is in ``formats.FORMATS``.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qarion_etl.definitions.flow import ColumnSpec
from qarion_etl.errors import IngestError
from qarion_etl.jsontext import TooDeep, loads
from qarion_etl.tasks.convert import TEXT_STORED, convert_json_value, converters

BATCH_ROWS = 10_000


@dataclass
class Reader:
    """An open input file: its columns and a stream of checked rows."""

    path: Path
    shown: str
    names: list[str]
    types: list[str]
    batches: Iterator[list[tuple[Any, ...]]] = field(default_factory=lambda: iter(()))


@dataclass(frozen=True, slots=True)
class CsvOptions:
    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None
    header: bool = True
    encoding: str = "utf-8"
    null_values: tuple[str, ...] = ("",)

    @classmethod
    def from_config(cls, config: Any) -> CsvOptions:
        nulls = config.get("null_values", [""])
        return cls(
            delimiter=str(config.get("delimiter", ",")),
            quote=str(config.get("quote", '"')),
            escape=config.get("escape"),
            header=bool(config.get("header", True)),
            encoding=str(config.get("encoding", "utf-8")),
            null_values=tuple(nulls) if isinstance(nulls, list) else (str(nulls),),
        )


def _fail(shown: str, line: int, message: str) -> IngestError:
    return IngestError(message, path=shown, line=line)


def column_types(names: Sequence[str], declared: Sequence[ColumnSpec], shown: str) -> list[str]:
    """The schema type of each file column; every declared column must be in the file."""
    missing = [c.name for c in declared if c.name not in names]
    if missing:
        raise IngestError(
            f"the file has no column {', '.join(repr(m) for m in missing)} "
            f"declared in [input].columns (its columns: {', '.join(names)})",
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
    extra: tuple[Any, ...] = (),
    as_text: bool = False,
    with_line: bool = False,
) -> Reader:
    """A checked CSV reader; ``extra`` values are appended to every row (the batch id)."""
    names = csv_header(path, shown, opts)
    types = column_types(names, declared, shown)
    required = {c.name for c in declared if c.required}
    return Reader(
        path,
        shown,
        names,
        types,
        _csv_batches(
            path, shown, opts, names, types, required, extra, converters(as_text), with_line
        ),
    )


def _csv_batches(
    path: Path,
    shown: str,
    opts: CsvOptions,
    names: list[str],
    types: list[str],
    required: set[str],
    extra: tuple[Any, ...],
    convs: dict[str, Callable[[str], Any]],
    with_line: bool = False,
) -> Iterator[list[tuple[Any, ...]]]:
    nulls = set(opts.null_values)
    width = len(names)
    plan = [
        (i, convs[t], names[i] in required, names[i], t)
        for i, t in enumerate(types)
        if t != "string"
    ]
    strings = [(i, names[i] in required, names[i]) for i, t in enumerate(types) if t == "string"]
    with path.open(newline="", encoding=opts.encoding) as fh:
        reader = _csv_reader(fh, opts)
        if opts.header:
            next(reader, None)
        batch: list[tuple[Any, ...]] = []
        last = reader.line_num
        try:
            for row in reader:
                line, last = last + 1, reader.line_num
                if len(row) != width:
                    if not row:
                        continue
                    raise _fail(shown, line, f"expected {width} fields, found {len(row)}")
                for i, conv, req, name, stype in plan:
                    value = row[i]
                    if value in nulls:
                        if req:
                            raise _fail(shown, line, f"column '{name}': missing required value")
                        row[i] = None
                        continue
                    try:
                        row[i] = conv(value)
                    except (ValueError, TypeError):
                        raise _fail(
                            shown, line, f"column '{name}': {value!r} is not a valid {stype}"
                        ) from None
                for i, req, name in strings:
                    if row[i] in nulls:
                        if req:
                            raise _fail(shown, line, f"column '{name}': missing required value")
                        row[i] = None
                batch.append((*row, *extra, line) if with_line else (*row, *extra))
                if len(batch) >= BATCH_ROWS:
                    yield batch
                    batch = []
        except csv.Error as exc:
            raise _fail(shown, last + 1, f"malformed CSV: {exc}") from None
        except UnicodeDecodeError:
            line, reason = undecodable_line(path, opts.encoding)
            raise _fail(shown, line, f"not valid {opts.encoding} text: {reason}") from None
        if batch:
            yield batch


def jsonl_keys(path: Path, shown: str, encoding: str = "utf-8") -> list[str]:
    with path.open(encoding=encoding) as fh:
        for lineno, text in enumerate(fh, 1):
            if text.strip():
                obj = _json_line(text, shown, lineno)
                return list(obj)
    raise IngestError("the file is empty", path=shown, line=1)


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
    extra: tuple[Any, ...] = (),
    encoding: str = "utf-8",
    as_text: bool = False,
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

    def batches() -> Iterator[list[tuple[Any, ...]]]:
        batch: list[tuple[Any, ...]] = []
        with path.open(encoding=encoding) as fh:
            for lineno, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                obj = _json_line(text, shown, lineno)
                out: list[Any] = []
                for name, stype in zip(names, types, strict=True):
                    value = obj.get(name)
                    if value is None:
                        if name in by_name and by_name[name].required:
                            raise _fail(shown, lineno, f"column '{name}': missing required value")
                        out.append(None)
                        continue
                    try:
                        converted = convert_json_value(value, stype)
                        out.append(
                            TEXT_STORED[stype](converted)
                            if as_text and stype in TEXT_STORED
                            else converted
                        )
                    except (ValueError, TypeError):
                        raise _fail(
                            shown, lineno, f"column '{name}': {value!r} is not a valid {stype}"
                        ) from None
                batch.append((*out, *extra, lineno) if with_line else (*out, *extra))
                if len(batch) >= BATCH_ROWS:
                    yield batch
                    batch = []
        if batch:
            yield batch

    return Reader(path, shown, names, types, batches())


def parquet_rows(
    path: Path, shown: str, declared: Sequence[ColumnSpec], extra: tuple[Any, ...] = ()
) -> Reader:
    """Parquet read through DuckDB's reader in batches (for engines other than DuckDB)."""
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
                for row in chunk:
                    row_no += 1
                    for i in required:
                        if row[i] is None:
                            raise _fail(
                                shown,
                                row_no,
                                f"column '{names[i]}': missing required value (row {row_no})",
                            )
                yield [(*row, *extra) for row in chunk]
        finally:
            con.close()

    return Reader(path, shown, names, types, batches())
