"""Spark reads an input file itself: a temporary view over the file, checked, then one CTAS.

For CSV, the view reads every column as text (``USING csv``, with the file's delimiter,
quote, escape and encoding, records over several lines, and a column that keeps a record
Spark cannot split into the declared number of fields). One query then counts the rows and
the bad ones, by a typed cast check that accepts only what the checked reader accepts: a
required value that is missing, a value that is not its type's text form (a conservative
pattern, then ``try_cast``), a malformed record, text that did not decode. A clean file
(the usual case) becomes the staged table with one ``CREATE TABLE … AS SELECT`` of the
cast values and the batch id: rows never pass through Python, and the executors do the
work. When any row is bad, Spark cannot say on which line of the file it is, so the load
gives way (``ReadAgain``): the checked reader reads the file, names every bad row with
its line as on every engine, applies ``on_bad_rows`` and sends the good rows as Arrow.

A Parquet file is read with its own types, the declared columns cast to theirs; a file
Spark refuses fails the load, as on DuckDB. JSON Lines files go through the checked
reader (Spark's JSON reader converts values by other rules than the reader's).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from qarion_etl.db.errors import describe
from qarion_etl.db.loading import (
    CsvOptions,
    FileLoad,
    FileSource,
    LoadWatch,
    ReadAgain,
    loaded,
    missing_required,
)
from qarion_etl.db.statements import SqlRunner
from qarion_etl.errors import IngestError

if TYPE_CHECKING:
    from qarion_etl.db.engines.base import Dialect

#: The column of a record Spark could not split into the declared fields.
CORRUPT = "_qarion_corrupt_record"
#: What a decoder puts for bytes that are not text in the file's encoding.
REPLACEMENT = "\ufffd"
_NUMBER = r"^ *[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)? *$"
#: The text forms Spark accepts for each type, no wider than Python's own converters.
PATTERNS = {
    "integer": r"^ *[+-]?[0-9]+ *$",
    "float": _NUMBER,
    "decimal": _NUMBER,
    "date": r"^ *[0-9]{4}-[0-9]{2}-[0-9]{2} *$",
    "timestamp": r"^ *[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)? *$",
}
_TRUE = ("true", "t", "1", "yes", "y")
_FALSE = ("false", "f", "0", "no", "n")


def spark_file_load(dialect: Dialect, source: FileSource) -> FileLoad | None:
    """Spark's load of ``source`` when it reads the format as the checked reader does."""
    if source.format == "parquet":
        return SparkParquetLoad(dialect, source)
    if source.format == "csv" and len(CsvOptions.from_config(source.config).quote) == 1:
        return SparkCsvLoad(dialect, source)
    return None


class SparkCsvLoad(FileLoad):
    """A CSV file read by Spark; a file with any bad row is handed to the checked reader."""

    def __init__(self, dialect: Dialect, source: FileSource) -> None:
        self.dialect = dialect
        self.source = source

    def run(self, conn: SqlRunner, table: str, batch_id: int, watch: LoadWatch) -> int:
        d, source = self.dialect, self.source
        columns = source.file_columns()
        view = d.quote(f"_qsrc_{uuid.uuid4().hex[:12]}")
        conn.exec_driver_sql(self._view_sql(view, [n for n, _ in columns]))
        texts = self._texts(view, [n for n, _ in columns])
        try:
            checked = conn.exec_driver_sql(self._check_sql(texts, columns)).first()
            rows, bad = int(checked[0]), int(checked[1] or 0)
            watch.check_cancel()
            if bad:
                raise ReadAgain(f"{bad:,} rows Spark cannot name the lines of")
            values = ", ".join(f"{self._value(n, t)} AS {d.quote(n)}" for n, t in columns)
            conn.exec_driver_sql(
                f"CREATE TABLE {table} AS SELECT {values}, "
                f"CAST({int(batch_id)} AS BIGINT) AS batch_id FROM {texts}"
            )
        finally:
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {view}")
        loaded(conn, rows, table)
        return rows

    def _view_sql(self, view: str, names: Sequence[str]) -> str:
        d = self.dialect
        opts = CsvOptions.from_config(self.source.config)
        options = {
            "path": str(self.source.path),
            "header": "true" if opts.header else "false",
            "sep": opts.delimiter,
            "quote": opts.quote,
            # No escape character: a quote inside a quoted field is doubled (RFC 4180).
            "escape": opts.escape or opts.quote,
            "encoding": opts.encoding,
            "multiLine": "true",
            "mode": "PERMISSIVE",
            "columnNameOfCorruptRecord": CORRUPT,
            "enforceSchema": "true",
        }
        cols = ", ".join(f"{d.quote(n)} STRING" for n in [*names, CORRUPT])
        opts_sql = ", ".join(f"{k} {d.literal(v)}" for k, v in options.items())
        return f"CREATE TEMPORARY VIEW {view} ({cols}) USING csv OPTIONS ({opts_sql})"

    def _texts(self, view: str, names: Sequence[str]) -> str:
        """The view's text columns, NULL where a value is one of the file's null values."""
        d = self.dialect
        nulls = ", ".join(
            d.literal(v) for v in CsvOptions.from_config(self.source.config).null_values
        )
        cols = [
            f"CASE WHEN {d.quote(n)} IN ({nulls}) THEN NULL ELSE {d.quote(n)} END AS {d.quote(n)}"
            if nulls
            else d.quote(n)
            for n in names
        ]
        return f"(SELECT {', '.join(cols)}, {d.quote(CORRUPT)} FROM {view}) AS src"

    def _value(self, name: str, schema_type: str) -> str:
        """The column's value of its type, NULL where its text is not one."""
        d, text = self.dialect, self.dialect.quote(name)
        if schema_type == "string":
            return text
        if schema_type == "boolean":
            trimmed = f"lower(trim({text}))"
            yes = ", ".join(d.literal(v) for v in _TRUE)
            no = ", ".join(d.literal(v) for v in _FALSE)
            return (
                f"CASE WHEN {trimmed} IN ({yes}) THEN TRUE WHEN {trimmed} IN ({no}) THEN FALSE END"
            )
        pattern = d.literal(PATTERNS[schema_type])
        return (
            f"CASE WHEN {text} RLIKE {pattern} "
            f"THEN try_cast(trim({text}) AS {d.sql_type(schema_type)}) END"
        )

    def _check_sql(self, texts: str, columns: Sequence[tuple[str, str]]) -> str:
        d = self.dialect
        required = {c.name for c in self.source.columns if c.required}
        bad = [f"{d.quote(CORRUPT)} IS NOT NULL"]
        for name, schema_type in columns:
            text = d.quote(name)
            bad.append(f"instr({text}, {d.literal(REPLACEMENT)}) > 0")
            if name in required:
                bad.append(f"{text} IS NULL")
            if schema_type != "string":
                bad.append(f"({text} IS NOT NULL AND {self._value(name, schema_type)} IS NULL)")
        return f"SELECT count(*), count_if({' OR '.join(bad)}) FROM {texts}"


class SparkParquetLoad(FileLoad):
    """A Parquet file read by Spark, the declared columns cast to their types."""

    def __init__(self, dialect: Dialect, source: FileSource) -> None:
        self.dialect = dialect
        self.source = source

    def run(self, conn: SqlRunner, table: str, batch_id: int, watch: LoadWatch) -> int:
        d, source = self.dialect, self.source
        view = d.quote(f"_qsrc_{uuid.uuid4().hex[:12]}")
        path = d.literal(str(source.path))
        try:
            conn.exec_driver_sql(
                f"CREATE TEMPORARY VIEW {view} USING parquet OPTIONS (path {path})"
            )
            names = conn.exec_driver_sql(f"SELECT * FROM {view} WHERE 1 = 0").keys()
            declared = {c.name: c.schema_type for c in source.columns}
            missing = [n for n in declared if n not in names]
            if missing:
                raise IngestError(f"the file has no column {', '.join(missing)}", path=source.shown)
            values = ", ".join(
                f"CAST({d.quote(n)} AS {d.sql_type(declared[n])}) AS {d.quote(n)}"
                if n in declared
                else d.quote(n)
                for n in names
            )
            conn.exec_driver_sql(
                f"CREATE TABLE {table} AS SELECT {values}, "
                f"CAST({int(batch_id)} AS BIGINT) AS batch_id FROM {view}"
            )
        except Exception as exc:
            watch.check_cancel()  # interrupted, not refused
            if isinstance(exc, IngestError) or d.error_kind(exc) == "lost_connection":
                raise
            raise IngestError(f"cannot load: {describe(exc)}", path=source.shown) from exc
        finally:
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {view}")
        if missing_required(conn, table, source, d.quote):
            raise IngestError("a required column has missing values", path=source.shown)
        rows = int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())
        loaded(conn, rows, table)
        return rows
