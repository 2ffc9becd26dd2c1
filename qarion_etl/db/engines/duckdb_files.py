"""DuckDB reads an input file itself: ``CREATE TABLE … AS SELECT … FROM read_csv(…)``.

The landing table is one statement over ``read_csv``/``read_json``/``read_parquet`` with
the declared column types, so rows never pass through Python. For CSV, DuckDB's own
reject tables (``store_rejects``, with ``rejects_table`` and ``rejects_scan`` named per
load) keep the rows it could not read (a value that does not cast, a row of the wrong
width, a bad quote) out of the table and list them with their text; those become refused
rows worded as the checked reader words them, their line found from their byte offset in
the file (DuckDB counts records, not lines). With ``force_not_null`` on required typed
columns, a missing value there is such a rejected row too.

What DuckDB cannot name raises ``ReadAgain``, and the ingestion reads the file again with
the checked reader: a JSON Lines file DuckDB refuses (``read_json`` stops at the first bad
value, and its ``ignore_errors`` loads the bad values as NULL instead of leaving the row
out), a missing value of a required column DuckDB loaded as NULL (a string column), text
DuckDB cannot decode. A clean file never takes that path.
"""

from __future__ import annotations

import csv
import io
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qarion_etl.db.errors import describe
from qarion_etl.db.loading import (
    CsvOptions,
    FileLoad,
    FileSource,
    LoadWatch,
    Progress,
    ReadAgain,
    RejectedRow,
    Rejections,
    missing_required,
)
from qarion_etl.db.statements import SqlRunner
from qarion_etl.errors import IngestError

if TYPE_CHECKING:
    from qarion_etl.db.engines.base import Dialect

#: Rejected rows translated (and quarantined) per query of DuckDB's reject table.
_PAGE = 10_000
#: Seconds between two looks at DuckDB's progress while it reads a file.
PROGRESS_POLL = 0.5


class DuckDBFileLoad(FileLoad):
    """One file read by DuckDB into a new table, its CSV rejects turned into refused rows."""

    def __init__(self, dialect: Dialect, source: FileSource) -> None:
        self.dialect = dialect
        self.source = source

    def run(self, conn: SqlRunner, table: str, batch_id: int, watch: LoadWatch) -> int:
        d, source = self.dialect, self.source
        token = uuid.uuid4().hex[:8]
        rejects = (f"_qrej_{token}", f"_qscan_{token}") if source.format == "csv" else None
        sql = (
            f"CREATE TABLE {table} AS SELECT *, CAST({int(batch_id)} AS BIGINT) AS batch_id "
            f"FROM {SOURCES[source.format](d, source, rejects)}"
        )
        try:
            with _watching(conn, watch.progress):
                conn.exec_driver_sql(sql)
        except Exception as exc:
            watch.check_cancel()  # interrupted, not refused
            if not source.reread_refused:
                raise IngestError(f"cannot load: {describe(exc)}", path=source.shown) from exc
            raise ReadAgain(describe(exc)) from exc
        if missing_required(conn, table, source, d.quote):
            raise ReadAgain("a required column has missing values")
        if rejects is not None:
            try:
                _take_rejects(conn, d.quote(rejects[0]), source, watch.rejected)
            finally:
                for name in rejects:
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {d.quote(name)}")
        return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one())


def _csv(d: Dialect, f: FileSource, rejects: tuple[str, str] | None) -> str:
    opts = CsvOptions.from_config(f.config)
    columns = f.file_columns()
    typed = ", ".join(f"{d.literal(n)}: {d.literal(d.sql_type(t))}" for n, t in columns)
    args = [
        f"header = {str(opts.header).lower()}",
        f"delim = {d.literal(opts.delimiter)}",
        f"quote = {d.literal(opts.quote)}",
        f"columns = {{{typed}}}",
        "auto_detect = false",
        f"nullstr = [{', '.join(d.literal(n) for n in opts.null_values)}]",
    ]
    if opts.escape:
        args.append(f"escape = {d.literal(opts.escape)}")
    if rejects is not None:
        args += [
            "store_rejects = true",
            f"rejects_table = {d.literal(rejects[0])}",
            f"rejects_scan = {d.literal(rejects[1])}",
        ]
        # A missing value of a required typed column is then a rejected row too (DuckDB
        # cannot cast the null text), named with its line like any other.
        strict = _not_null_columns(f, columns, opts.null_values)
        if strict:
            args.append(f"force_not_null = [{', '.join(d.literal(n) for n in strict)}]")
    return f"read_csv({d.literal(str(f.path))}, {', '.join(args)})"


def _not_null_columns(
    f: FileSource, columns: Sequence[tuple[str, str]], nulls: Sequence[str]
) -> list[str]:
    """Required typed columns whose null texts (``null_values``) are no value of their type."""
    required = {c.name for c in f.columns if c.required}
    return [
        name
        for name, stype in columns
        if name in required and stype != "string" and not any(f.converts(v, stype) for v in nulls)
    ]


def _jsonl(d: Dialect, f: FileSource, rejects: tuple[str, str] | None) -> str:
    typed = ", ".join(f"{d.literal(n)}: {d.literal(d.sql_type(t))}" for n, t in f.file_columns())
    return (
        f"read_json({d.literal(str(f.path))}, format = 'newline_delimited', columns = {{{typed}}})"
    )


def _parquet(d: Dialect, f: FileSource, rejects: tuple[str, str] | None) -> str:
    source = f"read_parquet({d.literal(str(f.path))})"
    if not f.columns:
        return source
    casts = ", ".join(
        f"CAST({d.quote(c.name)} AS {d.sql_type(c.schema_type)}) AS {d.quote(c.name)}"
        for c in f.columns
    )
    return f"(SELECT * REPLACE ({casts}) FROM {source})"


#: The SQL that reads a file of each format DuckDB reads itself, with the declared types
#: (``rejects``: the temporary tables where DuckDB lists the CSV rows it skips).
SOURCES: dict[str, Callable[[Dialect, FileSource, tuple[str, str] | None], str]] = {
    "csv": _csv,
    "jsonl": _jsonl,
    "parquet": _parquet,
}


@contextmanager
def _watching(conn: SqlRunner, progress: Progress | None) -> Iterator[None]:
    """While inside, tell ``progress`` DuckDB's estimate of the share of the file read.

    DuckDB does not count rows while it reads a file; its query progress (kept only with
    ``enable_progress_bar`` on, printed nowhere) is the share of the scan done.
    """
    if progress is None:
        yield
        return
    raw = conn.raw
    raw.execute("SET enable_progress_bar = true")
    raw.execute("SET enable_progress_bar_print = false")
    done = threading.Event()

    def watch() -> None:
        while not done.wait(PROGRESS_POLL):
            try:
                share = raw.query_progress()
            except Exception:  # the statement just ended
                return
            if share >= 0:
                progress(None, min(share / 100, 1.0))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        raw.execute("SET enable_progress_bar = false")


def _take_rejects(conn: SqlRunner, table: str, source: FileSource, rejected: Rejections) -> None:
    """Hand the rows DuckDB rejected (listed in ``table``, quoted) to ``rejected``."""
    total = int(conn.exec_driver_sql(f"SELECT count(DISTINCT line) FROM {table}").scalar_one())
    if not total:
        return
    if conn.exec_driver_sql(
        f"SELECT 1 FROM {table} WHERE error_type LIKE 'INVALID%' LIMIT 1"
    ).first():
        raise ReadAgain("text DuckDB cannot decode")  # the reader says where and why
    # One row per rejected record: its first error.
    query = (
        "SELECT line, line_byte_position, column_idx, column_name, error_type, csv_line, "
        f"error_message FROM {table} WHERE line > ? QUALIFY row_number() OVER "
        "(PARTITION BY line ORDER BY byte_position, column_idx) = 1 ORDER BY line LIMIT ?"
    )
    translate = _Translator(source)
    try:
        if not rejected.wanted(total):
            first = conn.exec_driver_sql(query, (0, rejected.named)).fetchall()
            rejected.first([translate(r) for r in first], total)
            return
        after = 0
        while page := conn.exec_driver_sql(query, (after, _PAGE)).fetchall():
            rejected.add([translate(r) for r in page])
            after = int(page[-1][0])
    finally:
        translate.close()


class _Translator:
    """A row of DuckDB's reject table as a ``RejectedRow`` worded as the checked reader words it."""

    def __init__(self, source: FileSource) -> None:
        self.opts = CsvOptions.from_config(source.config)
        columns = source.file_columns()
        self.types = dict(columns)
        self.width = len(columns)
        self.nulls = set(self.opts.null_values)
        self.lines = LineFinder(source.path)

    def __call__(self, reject: Any) -> RejectedRow:
        line, position, column_idx, column, error_type, csv_line, message = tuple(reject)
        raw = str(csv_line).strip("\r\n") if csv_line is not None else None
        fields = self._fields(raw)
        found = None
        if position is not None and raw:
            found = self.lines.line_at(int(position) - 1, raw.encode("utf-8")[:32])
        at = found or int(line)
        if error_type == "CAST" and fields is not None and column in self.types:
            index = int(column_idx) - 1
            if 0 <= index < len(fields):
                value = fields[index]
                if value in self.nulls:
                    return RejectedRow(at, column, "missing required value", raw)
                return RejectedRow(
                    at, column, f"{value!r} is not a valid {self.types[column]}", raw
                )
        if error_type in ("MISSING COLUMNS", "TOO MANY COLUMNS") and fields is not None:
            return RejectedRow(at, None, f"expected {self.width} fields, found {len(fields)}", raw)
        text = str(message).strip().rstrip(".")
        return RejectedRow(at, None, f"malformed CSV: {text[:1].lower()}{text[1:]}", raw)

    def _fields(self, raw: str | None) -> list[str] | None:
        if raw is None:
            return None
        o = self.opts
        try:
            reader = csv.reader(
                io.StringIO(raw, newline=""),
                delimiter=o.delimiter,
                quotechar=o.quote,
                escapechar=o.escape,
                doublequote=o.escape is None,
                strict=True,
            )
            return next(reader, [])
        except csv.Error:
            return None

    def close(self) -> None:
        self.lines.close()


class LineFinder:
    """The line on which a record starts, from its byte offset; offsets asked in order.

    Lines end with ``\\n``, ``\\r\\n`` or ``\\r``, as the Python readers count them. DuckDB
    may give the offset of the line break before a record (CRLF files, blank lines before
    it); those are passed over. When the bytes found there are not the record's, the
    answer is ``None`` and the caller keeps DuckDB's own count.
    """

    def __init__(self, path: Path) -> None:
        self._fh = path.open("rb")
        self._at = 0  # bytes counted
        self._breaks = 0  # line breaks in them
        self._cr = False  # they end with \r (a \n next is the same break)

    def line_at(self, offset: int, expect: bytes) -> int | None:
        if offset < self._at:
            return None
        self._count_to(offset)
        head = self._fh.read(len(expect) + 256)
        self._fh.seek(self._at)
        skip = len(head) - len(head.lstrip(b"\r\n"))
        if skip:
            self._count_to(self._at + skip)
        if not head[skip:].startswith(expect):
            return None
        return self._breaks + 1

    def _count_to(self, offset: int) -> None:
        while self._at < offset:
            data = self._fh.read(min(1 << 20, offset - self._at))
            if not data:
                return
            n = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
            if self._cr and data.startswith(b"\n"):
                n -= 1
            self._breaks += n
            self._cr = data.endswith(b"\r")
            self._at += len(data)

    def close(self) -> None:
        self._fh.close()
