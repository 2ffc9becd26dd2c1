"""DuckDB: the embedded default warehouse, through the ``duckdb`` module itself.

It reads input files itself (``duckdb_files``), takes rows from Python as one ``unnest``
of a list per column, checks keys by sorting, and cancels with ``interrupt()``.

Error kinds come from the exception's class: ``ParserException`` -> ``syntax``,
``BinderException`` -> ``binder``, ``CatalogException`` -> ``catalog``,
``ConversionException``/``OutOfRangeException`` -> ``type``, ``ConstraintException`` ->
``constraint``, ``TransactionException`` -> ``serialization`` and an ``IOException`` about
a lock -> ``lock``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from qarion_etl.db.engines.base import Dialect, FileDatabase, metadata_types_of
from qarion_etl.db.engines.duckdb_files import SOURCES, DuckDBFileLoad
from qarion_etl.db.loading import FileLoad, FileSource

_KINDS = {
    "ParserException": "syntax",
    "SyntaxException": "syntax",
    "BinderException": "binder",
    "CatalogException": "catalog",
    "ConversionException": "type",
    "OutOfRangeException": "type",
    "ConstraintException": "constraint",
    "TransactionException": "serialization",
}


class DuckDB(Dialect):
    name = "duckdb"
    metadata_types = metadata_types_of(
        "BIGINT", "INTEGER", "TEXT", "TEXT", "TIMESTAMP WITHOUT TIME ZONE"
    )
    has_schemas = True
    transactional_ddl = True
    begin_statement = "BEGIN TRANSACTION"
    bulk_load = "read_file"
    cancellable = True
    tables_query = (
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? "
        "AND database_name = current_database()"
    )
    primary_key_query = (
        "SELECT unnest(constraint_column_names) FROM duckdb_constraints() "
        "WHERE table_name = ? AND constraint_type = 'PRIMARY KEY' "
        "AND database_name = current_database()"
    )
    native_driver = "duckdb"

    def file_load(self, source: FileSource) -> FileLoad | None:
        return DuckDBFileLoad(self, source) if source.format in SOURCES else None

    def batch_statement(self, table: str, columns: Sequence[str]) -> str:
        col_list = ", ".join(self.quote(c) for c in columns)
        return f"INSERT INTO {table} ({col_list}) SELECT {', '.join(['unnest(?)'] * len(columns))}"

    def insert_batch(
        self, cur: Any, table: str, columns: Sequence[str], batch: Sequence[tuple[Any, ...]]
    ) -> None:
        # executemany runs about 1,500 rows a second; a Python list binds as one LIST value,
        # and unnest() of each column's list inserts the batch at once.
        cur.execute(
            self.batch_statement(table, columns), [list(col) for col in zip(*batch, strict=True)]
        )

    def duplicate_key_sql(self, table: str, keys: Iterable[str]) -> str:
        # Sorting and comparing each key with the one before it is about three times faster
        # than grouping on keys that arrive in order (exports usually do), needs less memory,
        # and is no slower on shuffled keys. The first row has no previous one: its lag() is
        # NULL like a NULL key's, hence _row. NULL keys count as equal, as when grouping.
        q = self.quote
        pk = list(keys)
        cols = ", ".join(q(k) for k in pk)
        previous = ", ".join(f"lag({q(k)}) OVER w AS {q(f'_prev_{i}')}" for i, k in enumerate(pk))
        same = " AND ".join(
            f"{q(k)} IS NOT DISTINCT FROM {q(f'_prev_{i}')}" for i, k in enumerate(pk)
        )
        return (
            f"SELECT {cols} FROM (SELECT {cols}, {previous}, row_number() OVER w AS {q('_row')} "
            f"FROM {table} WINDOW w AS (ORDER BY {cols})) WHERE {q('_row')} > 1 AND {same} LIMIT 1"
        )

    def cursor(self, raw: Any) -> Any:
        # A DuckDB connection runs statements itself; its cursor() is another connection,
        # outside the transaction.
        return raw

    def cancel(self, raw: Any) -> None:
        raw.interrupt()

    def open_file(self, path: str) -> FileDatabase:
        return _DuckDBFile(path)

    def sqlalchemy_creator(self, connect: Callable[[], Any]) -> Callable[[], Any] | None:
        # DuckDB refuses a second open of one file with another configuration in the same
        # process: SQLAlchemy's connections come from the native database.
        from duckdb_engine import ConnectionWrapper

        return lambda: ConnectionWrapper(connect())

    def error_kind(self, error: BaseException) -> str:
        names = [c.__name__ for c in type(error).__mro__]
        found = next((_KINDS[n] for n in names if n in _KINDS), None)
        if found is not None:
            return found
        if "IOException" in names and "lock" in str(error).lower():
            return "lock"
        return "other"

    def is_conflict(self, error: BaseException) -> bool:
        # Optimistic concurrency: "Conflict on …"; other TransactionExceptions (a BEGIN
        # inside a transaction) are no conflict.
        return type(error).__name__ == "TransactionException" and "conflict" in str(error).lower()


class _DuckDBFile(FileDatabase):
    """One database object per process, opened on first use; a connection is a cursor of it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._database: Any = None

    def connect(self) -> Any:
        with self._lock:
            if self._database is None:
                import duckdb

                self._database = duckdb.connect(self.path)
            return self._database.cursor()  # its own connection to the same database

    def close(self) -> None:
        with self._lock:
            database, self._database = self._database, None
        if database is not None:
            try:
                database.close()
            except Exception:  # already gone
                pass
