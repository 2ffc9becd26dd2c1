"""Apache Spark through Spark Connect (``sc://host:15002``), or a session in this process.

The dialect: backtick quoting, string literals with backslash escapes, Spark SQL types
(``TIMESTAMP_NTZ`` for the flows' timezone-free timestamps), a flow namespace as a Spark
database, no transactions. The client and the connections are in ``spark_session`` (the
engine brings its own connection source: ``connection_source``), the loads of input
files Spark reads itself in ``spark_files``; ``pyspark`` is imported only there, when a
Spark warehouse is used.

**Tables and atomicity.** ``table_format`` (a URL option: ``sc://host:15002/;table_format=
delta``) says what the tables are. ``parquet``, the default, has no transactions and no
``DELETE``/``MERGE``: a dataset is written to a staging table, checked, then swapped in by
renames (the old table is renamed away, the staged one renamed in, the old one dropped),
so a reader sees the old table, then for the moment between the two renames no table, then
the new one; ``INCREMENTAL`` without a key appends with ``INSERT INTO``, and with a key
copies the target's rows whose key is not staged into the staging table, which is then
swapped in the same way. ``delta`` and ``iceberg`` replace a table with one
``CREATE OR REPLACE TABLE … AS`` and upsert with ``MERGE INTO``, which their readers see
atomically. A failed write drops its staging table (``transactional_ddl`` is off).

**Rows from Python** (``load_rows``) go in as Arrow tables (``createDataFrame``), one
``INSERT INTO … SELECT`` with casts to the table's types per large batch, never row by row.

Error kinds come from the SQLSTATE Spark sends with every error: 42601 and the rest of
class 42 -> ``syntax`` (42703, 42883, 42702 -> ``binder``; 42P01, 42704, 42P06, 42P07,
42K03 -> ``catalog``), class 22 and KD000 -> ``type``, 23 -> ``constraint``, 0A (a feature
this table or catalog lacks) -> ``syntax``, 08 -> ``lost_connection``; an executor or the
Connect channel lost (gRPC ``UNAVAILABLE``, ``ExecutorLostFailure``, a session the server
no longer knows) -> ``lost_connection`` too.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from qarion_etl.db.engines.base import Dialect, column_types_of
from qarion_etl.errors import ConfigError

if TYPE_CHECKING:
    from qarion_etl.db.loading import FileLoad, FileSource

TableFormat = Literal["parquet", "delta", "iceberg"]
TABLE_FORMATS: tuple[TableFormat, ...] = ("parquet", "delta", "iceberg")

_EXACT = {
    "42601": "syntax",
    "42703": "binder",
    "42883": "binder",
    "42702": "binder",
    "42P01": "catalog",
    "42704": "catalog",
    "42P06": "catalog",
    "42P07": "catalog",
    "42K03": "catalog",  # a path that does not exist
    "KD000": "type",  # INCOMPATIBLE_DATA_FOR_TABLE: a value the column cannot take
    "HY008": "other",  # OPERATION_CANCELED: the runner knows why it cancelled
}
_CLASS = {"42": "syntax", "22": "type", "23": "constraint", "0A": "syntax", "08": "lost_connection"}
#: Words of an error that mean a worker or the channel went away, not the statement.
_LOST = (
    "ExecutorLostFailure",
    "FetchFailed",
    "SESSION_NOT_FOUND",
    "SESSION_CLOSED",
    "Connection refused",
)
#: gRPC statuses of a channel that broke (the server went away, or the call was cut).
_LOST_STATUS = ("UNAVAILABLE", "ABORTED")

#: Checked rows sent per ``createDataFrame``: fewer, larger Spark jobs.
ROWS_PER_FRAME = 100_000


class Spark(Dialect):
    """Spark SQL; one instance per ``table_format`` and file access.

    Args:
        table_format: ``parquet`` (the default), ``delta`` or ``iceberg``.
        reads_local_files: the executors read this machine's files (local mode, or a
            Connect server on this machine, or storage mounted alike everywhere), so an
            input file is read by Spark itself.
    """

    name = "spark"
    url_schemes = ("sc",)
    identifier_quote = "`"
    column_types = column_types_of(
        "STRING", "BIGINT", "DOUBLE", "DECIMAL(38, 10)", "BOOLEAN", "DATE", "TIMESTAMP_NTZ"
    )
    has_schemas = True
    transactional_ddl = False
    bulk_load = "read_file"
    cancellable = True
    is_server = True

    def __init__(
        self, table_format: TableFormat = "parquet", *, reads_local_files: bool = True
    ) -> None:
        super().__init__()
        self.table_format: TableFormat = table_format
        self.reads_local_files = reads_local_files
        #: parquet: renames swap tables, the old one first out of the way.
        self.swap_by_rename_table = table_format == "parquet"

    def __repr__(self) -> str:
        return f"<Spark dialect {self.table_format}>"

    # --- values --------------------------------------------------------------------------
    def escape_text(self, text: str) -> str:
        # Spark reads backslash escapes in string literals (spark.sql.parser.
        # escapedStringLiterals is off by default).
        return text.replace("\\", "\\\\").replace("'", "\\'")

    def literal(self, value: Any) -> str:
        # A quoted date or timestamp is a string, which Spark does not cast into a DATE or
        # TIMESTAMP_NTZ column on insert: typed literals.
        if isinstance(value, _dt.datetime):
            return f"TIMESTAMP_NTZ {super().literal(value)}"
        if isinstance(value, _dt.date):
            return f"DATE {super().literal(value)}"
        return super().literal(value)

    # --- statements ----------------------------------------------------------------------
    def swaps(self, tables: Sequence[tuple[str, str, str, str | None]]) -> list[str]:
        if self.table_format != "parquet":
            # One atomic replace per table: readers see the old snapshot or the new one.
            using = f"USING {self.table_format}"
            return [
                statement
                for target, staging, _, _ in tables
                for statement in (
                    f"CREATE OR REPLACE TABLE {target} {using} AS SELECT * FROM {staging}",
                    f"DROP TABLE {staging}",
                )
            ]
        # Renames are catalog operations: the old table goes out of the way first and is
        # dropped (files deleted) only after the new one is in, so the window without a
        # table is one rename per table, not a drop and a rename.
        out = [f"ALTER TABLE {target} RENAME TO {old}" for target, _, _, old in tables if old]
        out += [f"ALTER TABLE {staging} RENAME TO {renamed}" for _, staging, renamed, _ in tables]
        out += [f"DROP TABLE {old}" for _, _, _, old in tables if old]
        return out

    def append(
        self, target: str, staging: str, columns: Sequence[str], keys: Sequence[str]
    ) -> tuple[list[str], bool]:
        q = self.quote
        col_list = ", ".join(q(c) for c in columns)
        if not keys:
            return [
                f"INSERT INTO {target} ({col_list}) SELECT {col_list} FROM {staging}",
                f"DROP TABLE {staging}",
            ], False
        match = " AND ".join(f"s.{q(k)} <=> t.{q(k)}" for k in keys)
        if self.table_format != "parquet":
            return [
                f"MERGE INTO {target} t USING {staging} s ON {match} "
                "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *",
                f"DROP TABLE {staging}",
            ], False
        # Parquet tables cannot delete rows: the target's rows whose key is not staged join
        # the staged ones, and the staging table becomes the whole new table.
        keep = (
            f"INSERT INTO {staging} ({col_list}) SELECT {col_list} FROM {target} t "
            f"WHERE NOT EXISTS (SELECT 1 FROM {staging} s WHERE {match})"
        )
        return [keep], True

    # --- loading -------------------------------------------------------------------------
    def file_load(self, source: FileSource) -> FileLoad | None:
        if not self.reads_local_files:
            return None
        from qarion_etl.db.engines.spark_files import spark_file_load

        return spark_file_load(self, source)

    def batch_statement(self, table: str, columns: Sequence[str]) -> str:
        col_list = ", ".join(self.quote(c) for c in columns)
        return (
            f"INSERT INTO {table} ({col_list}) SELECT {col_list} "
            f"FROM <up to {ROWS_PER_FRAME:,} rows sent as Arrow, cast to the table's types>"
        )

    def load_rows(
        self,
        raw: Any,
        table: str,
        columns: Sequence[str],
        batches: Iterable[Sequence[tuple[Any, ...]]],
        after_batch: Callable[[], None] = lambda: None,
    ) -> int:
        from qarion_etl.db.engines.spark_session import insert_frame

        total = 0
        for chunk in _regrouped(batches, ROWS_PER_FRAME, after_batch):
            insert_frame(raw, self, table, columns, chunk)
            total += len(chunk)
        return total

    # --- driver connections --------------------------------------------------------------
    def cancel(self, raw: Any) -> None:
        raw.interruptAll()  # a whole session; connections cancel by their own tag

    def connection_source(self, url: str, root: Path | None) -> Any:
        from qarion_etl.db.engines.spark_session import SparkSource

        target, ours, theirs = parse_url(url)
        return SparkSource(url, target, theirs, dialect_for(target, ours), root)

    # --- errors --------------------------------------------------------------------------
    def error_kind(self, error: BaseException) -> str:
        text = f"{type(error).__name__} {error}"
        if any(word in text for word in _LOST) or _grpc_status(error) in _LOST_STATUS:
            return "lost_connection"
        sqlstate = _sqlstate(error)
        if sqlstate is None:
            return "other"
        return _EXACT.get(sqlstate) or _CLASS.get(sqlstate[:2], "other")


_LOCAL = re.compile(r"spark://(local(?:\[(?:\d+|\*)\])?)/?(;.*)?$", re.IGNORECASE)
_REMOTE = re.compile(r"(sc://[^/;]+)/?(;.*)?$", re.IGNORECASE)
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def parse_url(url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """``(target, qarion-etl's options, the client's options)`` of a Spark URL.

    The target is ``sc://host:port`` or a local master (``local[2]``).

    Raises:
        ConfigError: not a Spark URL, or an option qarion-etl reads has a wrong value.
    """
    m = _LOCAL.match(url) or _REMOTE.match(url)
    if m is None:
        raise ConfigError(
            f"{_shown(url)} is not a Spark URL: use sc://host:port (Spark Connect) or "
            "spark://local[N] (a session in this process)"
        )
    ours: dict[str, str] = {}
    theirs: dict[str, str] = {}
    for part in filter(None, (m.group(2) or "").split(";")):
        key, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"{_shown(url)}: option {key!r} needs a value ({key}=…)")
        (ours if key in ("table_format", "local_files") else theirs)[key] = value
    if ours.get("table_format", "parquet") not in TABLE_FORMATS:
        raise ConfigError(
            f"{_shown(url)}: table_format must be one of {', '.join(TABLE_FORMATS)}, "
            f"not {ours['table_format']!r}"
        )
    if ours.get("local_files", "read") not in ("read", "send"):
        raise ConfigError(f"{_shown(url)}: local_files must be 'read' or 'send'")
    return m.group(1), ours, theirs


def _shown(url: str) -> str:
    from qarion_etl.masking import mask_url

    return mask_url(url.split(";", 1)[0])


def dialect_for(target: str, ours: dict[str, str]) -> Spark:
    """The Spark dialect of a URL's target and options."""
    host = target[5:].rsplit(":", 1)[0] if target.lower().startswith("sc://") else None
    local = host is None or host.lower() in _LOOPBACK
    files = ours.get("local_files", "read" if local else "send")
    fmt = ours.get("table_format", "parquet")
    assert fmt in TABLE_FORMATS
    return Spark(fmt, reads_local_files=files == "read")


def _grpc_status(error: BaseException) -> str | None:
    """The gRPC status name of a Spark Connect error (``UNAVAILABLE`` …), if it has one."""
    for method in ("getGrpcStatusCode", "code"):  # pyspark's errors; grpc's own
        get = getattr(error, method, None)
        if callable(get):
            try:
                return str(getattr(get(), "name", "")) or None
            except Exception:  # not a gRPC call after all
                return None
    return None


def _sqlstate(error: BaseException) -> str | None:
    get = getattr(error, "getSqlState", None)
    try:
        state = get() if callable(get) else None
    except Exception:  # an error without its details
        return None
    return state if isinstance(state, str) and len(state) == 5 else None


def _regrouped(
    batches: Iterable[Sequence[tuple[Any, ...]]], size: int, after_batch: Callable[[], None]
) -> Iterable[list[tuple[Any, ...]]]:
    """The rows of ``batches`` in lists of ``size`` (the last shorter); ``after_batch``
    runs after each batch read, and once more after the last list is sent."""

    def rows() -> Iterable[tuple[Any, ...]]:
        for batch in batches:
            yield from batch
            after_batch()

    it = iter(rows())
    while chunk := list(islice(it, size)):
        yield chunk
    after_batch()


__all__ = ["TABLE_FORMATS", "Spark", "TableFormat", "dialect_for", "parse_url"]
