"""Direct driver connections for the embedded databases: SQLite files and DuckDB.

The default project keeps its warehouse in DuckDB and its run state and XComs in a SQLite
file. Going through SQLAlchemy there costs about 0.3 s of imports per process (SQLAlchemy
itself, duckdb-engine and the PostgreSQL dialect it builds on), more than the engine work of
a million-row load. So ``DatabaseService`` talks to these two through their own Python
modules, and through SQLAlchemy for every other URL (or when given an ``Engine``).

``NativeConnection`` offers the small part of SQLAlchemy's ``Connection`` that the runner
uses (``exec_driver_sql``, ``begin``, ``close``, ``connection.dbapi_connection``), so the
code above it does not care which kind it holds. Statements use the driver's own
parameter style (``?`` for both).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

SQLITE_BUSY_TIMEOUT_MS = 30_000

#: The statement that opens a write transaction, per dialect (``BEGIN`` elsewhere). SQLite's
#: takes the write lock at once, so DDL and the writes after it are one transaction and two
#: writers queue instead of deadlocking.
BEGIN = {
    "sqlite": "BEGIN IMMEDIATE",
    "duckdb": "BEGIN TRANSACTION",
    "mysql": "START TRANSACTION",
    "mariadb": "START TRANSACTION",
}

#: URL prefixes served natively, and the dialect each one is.
_NATIVE = {"sqlite:///": "sqlite", "sqlite+pysqlite:///": "sqlite", "duckdb:///": "duckdb"}


def native_target(url: str) -> tuple[str, str] | None:
    """``(dialect, database path)`` when ``url`` is served natively, else ``None``.

    SQLite in memory (private to each SQLAlchemy connection) and URLs with query options stay
    with SQLAlchemy, which knows what those mean.
    """
    for prefix, dialect in _NATIVE.items():
        if url.startswith(prefix):
            path = url[len(prefix) :]
            if "?" in path or not path:
                return None
            if path.startswith(":memory:") and dialect == "sqlite":
                return None
            return dialect, path
    return None


class Result:
    """The rows of one statement (a cursor), read the way SQLAlchemy's ``Result`` is."""

    __slots__ = ("_cur", "_close")

    def __init__(self, cursor: Any, close: bool) -> None:
        self._cur = cursor
        self._close = close

    @property
    def rowcount(self) -> int:
        return int(self._cur.rowcount)

    @property
    def returns_rows(self) -> bool:
        return self._cur.description is not None

    def keys(self) -> list[str]:
        return [d[0] for d in self._cur.description or ()]

    def first(self) -> Any:
        row = self._cur.fetchone() if self._cur.description else None
        self.close()
        return row

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        row = self.first()
        if row is None:
            raise LookupError("the statement returned no row")
        return row[0]

    def one(self) -> Any:
        rows = self.fetchall()
        if len(rows) != 1:
            raise LookupError(f"expected one row, the statement returned {len(rows)}")
        return rows[0]

    def one_or_none(self) -> Any:
        rows = self.fetchall()
        if len(rows) > 1:
            raise LookupError(f"expected at most one row, the statement returned {len(rows)}")
        return rows[0] if rows else None

    def all(self) -> list[Any]:
        return self.fetchall()

    def fetchall(self) -> list[Any]:
        rows = self._cur.fetchall() if self._cur.description else []
        self.close()
        return rows

    def fetchmany(self, size: int) -> list[Any]:
        return self._cur.fetchmany(size) if self._cur.description else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    def close(self) -> None:
        if self._close:
            self._cur.close()


class _Handle:
    """``conn.connection.dbapi_connection``, as on a SQLAlchemy connection."""

    __slots__ = ("dbapi_connection",)

    def __init__(self, raw: Any) -> None:
        self.dbapi_connection = raw


class NativeConnection:
    """One driver connection in autocommit mode; ``begin()`` opens an explicit transaction."""

    def __init__(self, raw: Any, dialect: str, release: Any) -> None:
        self.raw = raw
        self.dialect = dialect
        self.connection = _Handle(raw)
        self._release = release
        self._in_tx = False

    def exec_driver_sql(self, sql: str, params: Sequence[Any] | None = None) -> Result:
        if self.dialect == "duckdb":  # a DuckDB connection is its own cursor
            if params:
                self.raw.execute(sql, params)
            else:
                self.raw.execute(sql)
            return Result(self.raw, close=False)
        cur = self.raw.cursor()
        try:
            cur.execute(sql, params or ())
        except BaseException:
            cur.close()
            raise
        return Result(cur, close=True)

    @contextmanager
    def begin(self) -> Iterator[NativeConnection]:
        """A transaction (``BEGIN``), committed on success and rolled back on an error."""
        if self._in_tx:
            raise RuntimeError("a transaction is already open on this connection")
        self.raw.execute(BEGIN[self.dialect])
        self._in_tx = True
        try:
            yield self
        except BaseException:
            self._rollback()
            raise
        self._in_tx = False
        self.raw.execute("COMMIT")

    def _rollback(self) -> None:
        self._in_tx = False
        try:
            self.raw.execute("ROLLBACK")
        except Exception:  # the connection broke; closing it discards the transaction
            pass

    def close(self) -> None:
        if self._in_tx:
            self._rollback()
        release, self._release = self._release, None
        if release is not None:
            release(self.raw)

    def __enter__(self) -> NativeConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NativePool:
    """Driver connections to one SQLite file or DuckDB database, reused between uses."""

    def __init__(self, dialect: str, path: str) -> None:
        self.dialect = dialect
        self.path = path
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._all: list[Any] = []
        self._root: Any = None

    @property
    def module(self) -> Any:
        """The driver module (for its exception classes)."""
        if self.dialect == "sqlite":
            import sqlite3

            return sqlite3
        import duckdb

        return duckdb

    def new_raw(self) -> Any:
        """A new driver connection in autocommit mode, owned by the caller."""
        if self.dialect == "sqlite":
            return _sqlite_connect(self.path)
        with self._lock:
            if self._root is None:
                import duckdb

                self._root = duckdb.connect(self.path)
            return self._root.cursor()  # its own connection to the same database

    def connect(self) -> NativeConnection:
        with self._lock:
            raw = self._idle.pop() if self._idle else None
        if raw is None:
            raw = self.new_raw()
            with self._lock:
                self._all.append(raw)
        return NativeConnection(raw, self.dialect, self._checkin)

    def _checkin(self, raw: Any) -> None:
        with self._lock:
            if raw in self._all:
                self._idle.append(raw)

    def close(self) -> None:
        with self._lock:
            conns, self._all, self._idle = self._all, [], []
            root, self._root = self._root, None
        for raw in [*conns, *([root] if root is not None else [])]:
            try:
                raw.close()
            except Exception:  # another thread's SQLite connection, or already closed
                pass

    def forget(self) -> None:
        """In a forked child: drop the parent's connections without closing them."""
        self._lock = threading.Lock()
        self._idle, self._all, self._root = [], [], None


def sqlite_pragmas(conn: Any) -> None:
    """qarion-etl's SQLite settings: WAL for readers beside a writer, a bounded busy wait."""
    cur = conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    try:
        cur.execute("PRAGMA journal_mode = WAL")
    except Exception:  # read-only or in-memory databases keep their mode
        pass
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.close()


def _sqlite_connect(path: str) -> Any:
    import sqlite3

    conn = sqlite3.connect(
        path,
        timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
    )
    sqlite_pragmas(conn)
    return conn
