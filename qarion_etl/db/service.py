"""``DatabaseService``: one database, shared by the runner, run history and the XCom table.

A database is named by a URL or given as a SQLAlchemy ``Engine``. The service resolves
relative SQLite and DuckDB paths against the project root, picks its connection source
once (the engine's own where its dialect brings one, as Spark does; ``native`` for SQLite
files and DuckDB; ``sqlalchemy_source`` for everything else) and delegates to it; the engine's facts, loads and error kinds come from its ``Dialect``. Failing to reach the
database is ``StoreUnavailable`` (exit code 3), and ``errors(sql)`` turns a driver's
error into a task failure with the driver's message and the statement.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from qarion_etl.db.engines import dialect_of_url
from qarion_etl.db.native import NativeSource
from qarion_etl.db.statements import StatementLog
from qarion_etl.db.urls import native_target, resolve_url
from qarion_etl.errors import SqlError, StoreUnavailable
from qarion_etl.masking import mask_url

T = TypeVar("T")

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from qarion_etl.db.connection import Connection, DriverConnection
    from qarion_etl.db.engines import Dialect
    from qarion_etl.db.schema import TableSpec

__all__ = ["DatabaseService", "mask_url", "resolve_url"]  # and create_engine, on first use


class ConnectionSource(Protocol):
    """Where a ``DatabaseService`` gets its connections: ``NativeSource`` or ``SqlAlchemySource``."""

    native: bool
    dialect: Dialect
    url: str

    @property
    def dbapi(self) -> Any: ...
    def connect(self) -> Connection: ...
    def dedicated(self) -> DriverConnection: ...
    def table_names(self, conn: Connection, schema: str | None = None) -> list[str]: ...
    def has_table(self, conn: Connection, name: str, schema: str | None = None) -> bool: ...
    def primary_key(self, conn: Connection, name: str) -> list[str]: ...
    def create_tables(self, specs: list[TableSpec]) -> None: ...
    def is_database_error(self, exc: BaseException) -> bool: ...
    def connection_lost(self, exc: BaseException) -> bool: ...
    def connect_errors(self) -> tuple[type[BaseException], ...]: ...
    def sqlalchemy_engine(self) -> Engine: ...
    def close(self) -> None: ...
    def after_fork(self) -> None: ...


def _lost_create_race(exc: BaseException) -> bool:
    """Another thread or process created the same catalog object at the same moment.

    Its loser sees "already exists" (SQLite, MySQL), a duplicate key in the catalog
    (PostgreSQL: ``pg_namespace_nspname_index``) or a write-write conflict (DuckDB).
    """
    text = str(getattr(exc, "orig", None) or exc).lower()
    return (
        "integrity" in type(exc).__name__.lower()
        or "already exists" in text
        or "duplicate key" in text
        or "write-write conflict" in text
    )


def _locked(exc: BaseException) -> bool:
    """SQLite's "database is locked": other writers held it past the driver's own wait."""
    return "database is locked" in str(getattr(exc, "orig", None) or exc).lower()


class DatabaseService:
    """One database: a connection source plus the engine's dialect.

    Args:
        engine: a database URL, or a SQLAlchemy ``Engine``.
        root: folder that relative SQLite/DuckDB paths in a URL are resolved against.
        what: what this database is for, used in error messages ("metadata database").
    """

    def __init__(
        self, engine: Engine | str, *, root: Path | None = None, what: str = "database"
    ) -> None:
        self.what = what
        #: Statements run on this database's connections, for the thread recording them.
        self.statements = StatementLog()
        self._namespaces: set[str] = set()  # schemas known to exist (create_namespace)
        self._tables: set[str] = set()  # tables of the default schema known to exist
        self._namespace_lock = threading.Lock()
        self._source: ConnectionSource
        if isinstance(engine, str):
            url = resolve_url(str(engine), root)
            target = native_target(url)
            own = dialect_of_url(url).connection_source(url, root)
            if own is not None:  # an engine with its own client (Spark Connect)
                self._source = own
            elif target is not None:
                self._source = NativeSource(*target, url)
            else:
                from qarion_etl.db.sqlalchemy_source import SqlAlchemySource

                self._source = SqlAlchemySource.from_url(url)
        else:
            from qarion_etl.db.sqlalchemy_source import SqlAlchemySource

            self._source = SqlAlchemySource(engine)

    @property
    def engine(self) -> Engine:
        """A SQLAlchemy engine for this database (created on first use for native ones)."""
        return self._source.sqlalchemy_engine()

    @property
    def native(self) -> bool:
        """Whether connections come straight from the driver (SQLite files, DuckDB)."""
        return self._source.native

    @property
    def dialect(self) -> Dialect:
        """The engine's ``Dialect`` (``dialect.name``: ``sqlite``, ``postgresql`` …)."""
        return self._source.dialect

    @property
    def url(self) -> str:
        """The URL with its password masked."""
        return mask_url(self._source.url)

    @property
    def dbapi(self) -> Any:
        """The driver module, for its exception classes."""
        return self._source.dbapi

    @property
    def has_schemas(self) -> bool:
        return self.dialect.has_schemas

    def sql(self, statement: str) -> str:
        """``statement`` written with ``?`` placeholders, in the driver's style."""
        return self.dialect.sql(statement)

    def quote(self, name: str) -> str:
        """Quote one identifier by the dialect's rules (always quoted, never pasted)."""
        return self.dialect.quote(name)

    def qualified(self, namespace: str | None, name: str) -> str:
        """The quoted name of table ``name`` in ``namespace``.

        Engines with schemas put the table in the schema ``namespace``; the others (SQLite,
        MySQL/MariaDB, where a schema is a database) prefix the table: ``namespace__name``.
        """
        return self.dialect.qualified(namespace, name)

    def ensure_namespace(self, conn: Connection, namespace: str | None) -> None:
        """``CREATE SCHEMA IF NOT EXISTS`` on ``conn`` (inside the caller's transaction).

        Call ``create_namespace`` first: two transactions that both create the schema
        conflict (DuckDB) or break the catalog's unique index (PostgreSQL); once it
        exists, this statement changes nothing and conflicts with nothing.
        """
        if namespace and self.has_schemas and namespace not in self._namespaces:
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {self.quote(namespace)}")

    def create_namespace(self, namespace: str | None) -> None:
        """Create the schema of ``namespace`` if it is missing, in a transaction of its own.

        Safe when other threads and processes create it at the same moment: threads of
        this service take turns, and the loser of a race between processes tries again
        (its ``IF NOT EXISTS`` then finds the schema). Remembered once it exists.
        """
        if not namespace or not self.has_schemas or namespace in self._namespaces:
            return
        with self._namespace_lock:
            if namespace in self._namespaces:
                return
            for attempt in range(1, 6):
                try:
                    with self.errors(), self.begin() as conn:
                        self.ensure_namespace(conn, namespace)
                    break
                except SqlError as exc:
                    if attempt == 5 or not _lost_create_race(exc.__cause__ or exc):
                        raise
                    time.sleep(0.01 * attempt * (1 + random.random()))
            self._namespaces.add(namespace)

    def table_names(self, conn: Connection, schema: str | None = None) -> list[str]:
        """Names of the tables in ``schema`` (or the default one)."""
        return self._source.table_names(conn, schema)

    def has_table(self, conn: Connection, name: str, schema: str | None = None) -> bool:
        return self._source.has_table(conn, name, schema)

    def primary_key(self, conn: Connection, name: str) -> list[str]:
        """The primary-key columns of table ``name`` (of the default schema), in key order."""
        return self._source.primary_key(conn, name)

    # --- connections ---------------------------------------------------------------
    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection; failing to connect raises ``StoreUnavailable``."""
        try:
            conn = self._source.connect()
        except self._source.connect_errors() as exc:
            raise self.unavailable(exc) from exc
        conn.statement_log = self.statements
        with conn:
            yield conn

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside a transaction, committed on success."""
        with self.connect() as conn, conn.begin():
            yield conn

    def dedicated(self) -> DriverConnection:
        """A new connection in autocommit mode, owned (and closed) by the caller."""
        try:
            return self._source.dedicated()
        except self._source.connect_errors() as exc:
            raise self.unavailable(exc) from exc

    def create_tables(self, specs: list[TableSpec]) -> None:
        """Create ``specs`` if they do not exist; safe when other processes do it at once.

        Two processes can both see a table missing and both create it; the loser gets "already
        exists" (SQLite, MySQL) or a duplicate key in the catalog (PostgreSQL), checks again and
        finds the table. A database locked by other writers is waited for up to the engine's
        lock timeout. Other database errors raise ``StoreUnavailable``. Tables this service
        created or found are not looked for again (the run history and the XCom table, read
        by one process, cost one look).
        """
        names = {spec.name for spec in specs}
        if names <= self._tables:
            return
        patience = time.monotonic() + (self.dialect.lock_timeout_seconds or 0)
        for attempt in itertools.count(1):
            try:
                self._source.create_tables(specs)
                break
            except Exception as exc:
                race = attempt < 5 and _lost_create_race(exc)
                if race or (_locked(exc) and time.monotonic() < patience):
                    time.sleep(min(0.01 * attempt * (1 + random.random()), 0.5))
                    continue
                if self._source.is_database_error(exc):
                    raise self.unavailable(exc) from exc
                raise
        self._tables |= names

    def known_tables(self) -> set[str]:
        """The tables of the default schema (one look, then what this service knows)."""
        if not self._tables:
            with self.connect() as conn:
                self._tables = set(self.table_names(conn))
        return set(self._tables)

    def forget_tables(self, names: Iterable[str]) -> None:
        """Tables dropped through this service: looked for again when next created."""
        self._tables.difference_update(names)

    @contextmanager
    def errors(self, sql: str | None = None) -> Iterator[None]:
        """Turn a database error inside the block into an ``SqlError`` (``db.errors``).

        It keeps the driver's whole message, its kind (which decides whether another try
        can pass) and, with ``sql`` (the statement the block runs), the line it is about.
        """
        try:
            yield
        except SqlError:
            raise
        except Exception as exc:
            lost = self._source.connection_lost(exc)
            if lost or self._source.is_database_error(exc):
                from qarion_etl.db.errors import sql_error  # only when something failed

                error = sql_error(exc, self.dialect, sql, self.what)
                if lost and error.kind == "other":
                    error.kind = "lost_connection"
                    error.message = f"lost the {self.what} connection: {error.message}"
                raise error from exc
            raise

    def connection_errors(self) -> tuple[type[BaseException], ...]:
        """The driver's exceptions that mean a connection broke (reconnecting may help)."""
        dbapi = self.dbapi
        names = ("OperationalError", "InterfaceError", "IOException")  # the last: DuckDB's
        return tuple(e for e in (getattr(dbapi, n, None) for n in names) if e is not None)

    def is_conflict(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a transaction the server gave up on because of another one
        (a deadlock or a serialisation failure: trying again is the cure)."""
        return self.dialect.is_conflict(getattr(exc, "orig", None) or exc)

    def retry_conflicts(self, work: Callable[[], T], attempts: int = 5) -> T:
        """``work()`` (one whole transaction), again after a deadlock or serialisation failure."""
        for attempt in range(1, attempts + 1):
            try:
                return work()
            except Exception as exc:
                if attempt == attempts or not self.is_conflict(exc):
                    raise
                time.sleep(0.02 * attempt * (1 + random.random()))
        raise AssertionError("unreachable")

    def is_integrity_error(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the driver's ``IntegrityError`` (also wrapped by SQLAlchemy)."""
        error = getattr(self.dbapi, "IntegrityError", None)
        orig = getattr(exc, "orig", None) or exc
        return error is not None and isinstance(orig, error)

    def unavailable(self, exc: BaseException) -> StoreUnavailable:
        detail = getattr(exc, "orig", None) or exc
        text = str(detail).strip().splitlines()[0] if str(detail).strip() else type(detail).__name__
        if "Could not set lock on file" in text:
            pid = re.search(r"PID (\d+)", text)
            holder = f" (process {pid.group(1)})" if pid else ""
            return StoreUnavailable(
                f"the {self.what} {self.url} is in use by another process{holder}: DuckDB allows one "
                "writer process at a time; wait for the other run to finish"
            )
        return StoreUnavailable(f"cannot reach the {self.what} at {self.url}: {text}")

    def check(self) -> None:
        """Open a connection and run ``SELECT 1``."""
        with self.connect() as conn:
            conn.exec_driver_sql("SELECT 1").fetchall()

    def after_fork(self) -> None:
        """In a forked child: leave the parent's connections alone."""
        self._source.after_fork()

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> DatabaseService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def __getattr__(name: str) -> Any:
    """``create_engine`` (the SQLAlchemy source's), imported when asked for."""
    if name == "create_engine":
        from qarion_etl.db.sqlalchemy_source import create_engine

        return create_engine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
