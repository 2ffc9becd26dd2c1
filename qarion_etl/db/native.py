"""The native connection source: SQLite files, DuckDB and PostgreSQL through their drivers.

The default project keeps its warehouse in DuckDB and its run state and XComs in a SQLite
file. Going through SQLAlchemy there costs about 0.3 s of imports per process (SQLAlchemy
itself, duckdb-engine and the PostgreSQL dialect it builds on), more than the engine work of
a million-row load, and as much again in every Airflow task process. So ``DatabaseService``
talks to these through ``sqlite3``, ``duckdb`` and ``psycopg`` (PostgreSQL URLs without
query options), and through SQLAlchemy for every other URL (``sqlalchemy_source``). Both sources
hand out ``Connection`` objects (``qarion_etl.db.connection``), so the code above does not
care which kind it holds.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from qarion_etl.db.connection import DriverConnection, close_quietly, is_driver_error
from qarion_etl.db.engines import Dialect, dialect_named

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from qarion_etl.db.connection import Connection
    from qarion_etl.db.schema import TableSpec


class NativeSource:
    """Driver connections to one SQLite file or DuckDB database, reused between uses.

    Args:
        dialect: ``sqlite`` or ``duckdb``.
        path: the database file (``:memory:`` for an in-memory DuckDB).
        url: the URL it was named by (for messages and the SQLAlchemy engine).
    """

    native = True

    def __init__(self, dialect: str, path: str, url: str) -> None:
        self.dialect: Dialect = dialect_named(dialect)
        self.path = path
        self.url = url
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._all: list[Any] = []
        self._file = self.dialect.open_file(path)
        self._engine: Engine | None = None

    @property
    def dbapi(self) -> Any:
        """The driver module (for its exception classes)."""
        assert self.dialect.native_driver is not None
        return importlib.import_module(self.dialect.native_driver)

    # --- connections ---------------------------------------------------------------------
    def new_raw(self) -> Any:
        """A new driver connection in autocommit mode, owned by the caller."""
        return self._file.connect()

    def connect(self) -> Connection:
        """A pooled connection; closing it puts it back (a server's, only while it is open)."""
        with self._lock:
            raw = self._idle.pop() if self._idle else None
        if raw is not None and self.dialect.is_server and self.dialect.closed(raw):
            with self._lock:
                if raw in self._all:
                    self._all.remove(raw)
            raw = None
        if raw is None:
            raw = self.new_raw()
            with self._lock:
                self._all.append(raw)
        return DriverConnection(raw, self.dialect, self._checkin)

    def dedicated(self) -> DriverConnection:
        """A new connection in autocommit mode, owned (and closed) by the caller."""
        return DriverConnection(self.new_raw(), self.dialect, close_quietly)

    def _checkin(self, raw: Any) -> None:
        with self._lock:
            if raw in self._all:
                self._idle.append(raw)

    # --- catalog -------------------------------------------------------------------------
    def table_names(self, conn: Connection, schema: str | None = None) -> list[str]:
        sql = self.dialect.tables_query
        assert sql is not None, f"{self.dialect.name} has no catalog query"
        params = (schema or self.dialect.default_schema,) if "?" in sql else None
        return [r[0] for r in conn.exec_driver_sql(self.dialect.sql(sql), params).fetchall()]

    def has_table(self, conn: Connection, name: str, schema: str | None = None) -> bool:
        return name in self.table_names(conn, schema)

    def primary_key(self, conn: Connection, name: str) -> list[str]:
        sql = self.dialect.primary_key_query
        assert sql is not None, f"{self.dialect.name} has no primary-key query"
        rows = conn.exec_driver_sql(self.dialect.sql(sql), (name,)).fetchall()
        return [str(r[0]) for r in rows]

    def create_tables(self, specs: list[TableSpec]) -> None:
        """``CREATE … IF NOT EXISTS`` for the missing ``specs``, in one transaction.

        The tables are looked for first, with a read that takes no write lock: once they
        exist, a process that starts (a CLI call, an Airflow task) does not queue behind the
        writers of a busy database only to create nothing.
        """
        with self.connect() as conn:
            present = set(self.table_names(conn))
        missing = [spec for spec in specs if spec.name not in present]
        if not missing:
            return
        with self.connect() as conn, conn.begin():
            for spec in missing:
                for statement in spec.ddl(self.dialect):
                    conn.exec_driver_sql(statement)

    # --- errors --------------------------------------------------------------------------
    def is_database_error(self, exc: BaseException) -> bool:
        return is_driver_error(exc)

    def connection_lost(self, exc: BaseException) -> bool:
        """A server's connection that broke (embedded databases have none to lose)."""
        return self.dialect.is_server and self.dialect.error_kind(exc) == "lost_connection"

    def connect_errors(self) -> tuple[type[BaseException], ...]:
        return (self.dbapi.Error,)

    # --- SQLAlchemy, for code that wants it ------------------------------------------------
    def sqlalchemy_engine(self) -> Engine:
        """A SQLAlchemy engine on the same database, created on first use."""
        if self._engine is None:
            from qarion_etl.db.sqlalchemy_source import create_engine  # only when asked for

            creator = self.dialect.sqlalchemy_creator(self.new_raw)
            if creator is None:
                self._engine = create_engine(self.url)
            else:
                self._engine = create_engine(self.url, creator=creator)
        return self._engine

    # --- lifetime ------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            conns, self._all, self._idle = self._all, [], []
        for raw in conns:
            close_quietly(raw)
        self._file.close()
        if self._engine is not None:
            self._engine.dispose()

    def after_fork(self) -> None:
        """In a forked child: drop the parent's connections without closing them."""
        self._lock = threading.Lock()
        self._idle, self._all = [], []
        self._file = self.dialect.open_file(self.path)
        if self._engine is not None:
            self._engine.dispose(close=False)
