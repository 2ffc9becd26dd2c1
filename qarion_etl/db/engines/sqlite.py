"""SQLite: a database file through ``sqlite3``, one writer at a time.

Error kinds are read from ``sqlite3``'s message ("syntax error" -> ``syntax``, "no such column" ->
``binder``, "no such table" -> ``catalog``, "database is locked" -> ``lock``); an
``IntegrityError`` is ``constraint``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from qarion_etl.db.engines.base import Dialect, FileDatabase, column_types_of, metadata_types_of

#: How long a SQLite connection waits for another writer's lock before it gives up.
SQLITE_BUSY_TIMEOUT_MS = 30_000

_KINDS = (
    ("syntax error", "syntax"),
    ("incomplete input", "syntax"),
    ("no such column", "binder"),
    ("ambiguous column", "binder"),
    ("no such function", "binder"),
    ("wrong number of arguments", "binder"),
    ("no such table", "catalog"),
    ("already exists", "catalog"),
    ("database is locked", "lock"),
    ("database table is locked", "lock"),
)


class SQLite(Dialect):
    name = "sqlite"
    column_types = column_types_of(
        "TEXT", "INTEGER", "REAL", "NUMERIC", "BOOLEAN", "DATE", "TIMESTAMP"
    )
    metadata_types = metadata_types_of("BIGINT", "INTEGER", "TEXT", "TEXT", "DATETIME")
    transactional_ddl = True
    # Takes the write lock at once, so DDL and the writes after it are one transaction and
    # two writers queue instead of deadlocking.
    begin_statement = "BEGIN IMMEDIATE"
    # sqlite3 runs a statement per row of executemany: many rows to a statement insert
    # about twice as fast.
    rows_per_insert = 256
    # sqlite3 binds no Decimal, date or datetime: once checked, they are stored as text.
    bind_as = MappingProxyType(
        {
            "decimal": str,
            "date": lambda v: v.isoformat(),
            "timestamp": lambda v: v.isoformat(sep=" "),
        }
    )
    single_writer = True
    cancellable = True
    prefers_lookup_index = True  # SQLite takes the lookup index, which saves hashing
    datetime_as_text = True
    # pysqlite opens a transaction only before DML.
    driver_begins_lazily = True
    tables_query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    primary_key_query = "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk"
    # WAL lets readers go on beside a writer; the busy wait is bounded.
    connect_statements = (
        (f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}", False),
        ("PRAGMA journal_mode = WAL", True),
        ("PRAGMA synchronous = NORMAL", False),
    )
    lock_timeout_seconds = SQLITE_BUSY_TIMEOUT_MS / 1000
    native_driver = "sqlite3"

    def swaps(self, tables: Sequence[tuple[str, str, str, str | None]]) -> list[str]:
        # Since SQLite 3.26 a RENAME also rewrites the views that name the table, and fails
        # on a view whose table was just dropped: a view over a replaced table keeps its
        # text as written (it names the table, which the rename brings back).
        return [
            "PRAGMA legacy_alter_table = ON",
            *super().swaps(tables),
            "PRAGMA legacy_alter_table = OFF",
        ]

    def cancel(self, raw: Any) -> None:
        raw.interrupt()

    def autocommit(self, raw: Any) -> None:
        raw.isolation_level = None  # sqlite3's autocommit

    def open_file(self, path: str) -> FileDatabase:
        return _SQLiteFile(self, path)

    def error_kind(self, error: BaseException) -> str:
        if not type(error).__module__.startswith("sqlite3"):
            return "other"
        if isinstance(error, sqlite3.IntegrityError):
            return "constraint"
        text = str(error).lower()
        return next((kind for needle, kind in _KINDS if needle in text), "other")


class _SQLiteFile(FileDatabase):
    """A new ``sqlite3`` connection per connection: they share nothing but the file."""

    def __init__(self, dialect: SQLite, path: str) -> None:
        self.dialect = dialect
        self.path = path

    def connect(self) -> Any:
        raw = sqlite3.connect(
            self.path,
            timeout=self.dialect.lock_timeout_seconds or 5.0,
            isolation_level=None,  # autocommit; begin() sends BEGIN IMMEDIATE
            check_same_thread=False,
        )
        self.dialect.prepare(raw)
        return raw
