"""The ``read_file`` bulk-load path (DuckDB): the engine reads the input file itself.

The landing table is one ``CREATE TABLE … AS SELECT … FROM read_csv(…)`` (or
``read_json``/``read_parquet``) with the declared column types, so rows never pass
through Python. For CSV, DuckDB's own reject tables (``store_rejects``, with
``rejects_table`` and ``rejects_scan`` named per load) keep the rows it could not read
(a value that does not cast, a row of the wrong width, a bad quote) out of the table and
list them with their text; those become bad rows with the reasons the other engines
give, their line found from their byte offset in the file (DuckDB counts records, not
lines). With ``force_not_null`` on required typed columns, a missing value there is such
a rejected row too.

What DuckDB cannot name raises ``ReadAgain``, and the ingestion reads the file again
with the checked Python reader, inserting the good rows itself: a JSON Lines file DuckDB
refuses (``read_json`` stops at the first bad value, and its ``ignore_errors`` loads the
bad values as NULL instead of leaving the row out), a missing value of a required column
DuckDB loaded as NULL (a string column), text DuckDB cannot decode. A clean file never
takes that path.
"""

from __future__ import annotations

import csv
import io
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qarion_etl.db.connection import Connection
from qarion_etl.db.errors import describe
from qarion_etl.db.materialize import Stage
from qarion_etl.errors import IngestError
from qarion_etl.tasks.bad_rows import NAMED_ROWS, BadRow, BadRows
from qarion_etl.tasks.formats import InputFile
from qarion_etl.tasks.readers import CsvOptions, column_types, csv_header
from qarion_etl.tasks.rejects import RejectsWriter

#: Rejected rows translated (and quarantined) per query of DuckDB's reject table.
_PAGE = 10_000
#: Seconds between two looks at DuckDB's progress while it reads a file.
PROGRESS_POLL = 0.5


class ReadAgain(Exception):
    """The engine cannot load this file or name its bad rows: read it with the checked reader."""


def engine_read(
    conn: Connection,
    stage: Stage,
    source: InputFile,
    batch_id: int,
    bad: BadRows,
    rejects: RejectsWriter | None,
    check_cancel: Callable[[], None],
    progress: Callable[[int | None, float | None], None] | None = None,
) -> int:
    """Create and fill ``stage.table`` from ``source`` in DuckDB; returns the rows loaded.

    Raises:
        ReadAgain: DuckDB refused the file or cannot say which rows are bad.
    """
    d = stage.ns.db.dialect
    token = uuid.uuid4().hex[:8]
    tables = (f"_qrej_{token}", f"_qscan_{token}") if source.format == "csv" else None
    sql = (
        f"CREATE TABLE {stage.table} AS SELECT *, CAST({int(batch_id)} AS BIGINT) AS batch_id "
        f"FROM {source.duckdb_source(d, tables)}"
    )
    try:
        with _watching(conn, progress):
            conn.exec_driver_sql(sql)
    except Exception as exc:
        check_cancel()  # interrupted, not refused
        if not source.kind.reread_refused:
            raise IngestError(f"cannot load: {describe(exc)}", path=source.shown) from exc
        raise ReadAgain(describe(exc)) from exc
    if missing_required(conn, stage, source):
        raise ReadAgain("a required column has missing values")
    if tables is not None:
        try:
            _take_rejects(conn, tables[0], source, bad, rejects)
        finally:
            for name in tables:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {d.quote(name)}")
    return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {stage.table}").scalar_one())


@contextmanager
def _watching(
    conn: Connection, progress: Callable[[int | None, float | None], None] | None
) -> Iterator[None]:
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


def missing_required(conn: Connection, stage: Stage, source: InputFile) -> bool:
    required = [c.name for c in source.columns if c.required]
    if not required:
        return False
    q = stage.ns.db.quote
    cond = " OR ".join(f"{q(c)} IS NULL" for c in required)
    return (
        conn.exec_driver_sql(f"SELECT 1 FROM {stage.table} WHERE {cond} LIMIT 1").first()
        is not None
    )


def _take_rejects(
    conn: Connection, table: str, source: InputFile, bad: BadRows, rejects: RejectsWriter | None
) -> None:
    """Turn the rows DuckDB rejected into bad rows (and quarantine them)."""
    q = conn.dialect.quote(table)
    total = int(conn.exec_driver_sql(f"SELECT count(DISTINCT line) FROM {q}").scalar_one())
    if not total:
        return
    if conn.exec_driver_sql(f"SELECT 1 FROM {q} WHERE error_type LIKE 'INVALID%' LIMIT 1").first():
        raise ReadAgain("text DuckDB cannot decode")  # the reader says where and why
    # One row per rejected record: its first error.
    query = (
        "SELECT line, line_byte_position, column_idx, column_name, error_type, csv_line, "
        f"error_message FROM {q} WHERE line > ? QUALIFY row_number() OVER "
        "(PARTITION BY line ORDER BY byte_position, column_idx) = 1 ORDER BY line LIMIT ?"
    )
    tolerated = bad.policy.tolerated
    translate = _Translator(source)
    try:
        if rejects is None or (tolerated is not None and total > tolerated):
            first = conn.exec_driver_sql(query, (0, NAMED_ROWS)).fetchall()
            bad.add_counted([translate(r) for r in first], total)
            return
        after = 0
        while page := conn.exec_driver_sql(query, (after, _PAGE)).fetchall():
            for r in page:
                bad.add(translate(r))
            after = int(page[-1][0])
            rejects.write(bad.drain())
    finally:
        translate.close()


class _Translator:
    """A row of DuckDB's reject table as a ``BadRow`` worded as the Python reader words it."""

    def __init__(self, source: InputFile) -> None:
        self.opts = CsvOptions.from_config(source.config)
        names = csv_header(source.path, source.shown, self.opts)
        self.types = dict(
            zip(names, column_types(names, source.columns, source.shown), strict=True)
        )
        self.width = len(names)
        self.nulls = set(self.opts.null_values)
        self.lines = LineFinder(source.path)

    def __call__(self, reject: Any) -> BadRow:
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
                    return BadRow(at, column, "missing required value", raw)
                return BadRow(at, column, f"{value!r} is not a valid {self.types[column]}", raw)
        if error_type in ("MISSING COLUMNS", "TOO MANY COLUMNS") and fields is not None:
            return BadRow(at, None, f"expected {self.width} fields, found {len(fields)}", raw)
        text = str(message).strip().rstrip(".")
        return BadRow(at, None, f"malformed CSV: {text[:1].lower()}{text[1:]}", raw)

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
