"""The one way the code talks to a database: the ``Connection`` and ``Result`` protocols.

Both connection sources hand out objects of this shape: ``native`` for SQLite files and
DuckDB (``DriverConnection`` over the driver's own connection), ``sqlalchemy_source`` for
everything else (an adapter over a SQLAlchemy ``Connection``). A statement without
parameters reaches the engine as written on every engine: a ``%`` in task SQL is never
read as a placeholder. ``raw`` is the driver connection, for ``COPY`` and
``executemany``; ``cancel()`` abandons the running statement from another thread where
the driver can.

``DriverConnection`` is also what ``DatabaseService.dedicated()`` returns on every source:
a driver connection in autocommit mode, owned by the caller (the XCom table store keeps
one per thread), with ``begin()`` sending the dialect's ``BEGIN``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from qarion_etl.db.statements import StatementLog, run_recorded

if TYPE_CHECKING:
    from qarion_etl.db.dialects import Dialect


class Result(Protocol):
    """The rows of one statement, read the way SQLAlchemy's ``Result`` is."""

    @property
    def rowcount(self) -> int: ...
    @property
    def returns_rows(self) -> bool: ...
    def keys(self) -> Any: ...
    def first(self) -> Any: ...
    def scalar(self) -> Any: ...
    def scalar_one(self) -> Any: ...
    def one(self) -> Any: ...
    def all(self) -> Sequence[Any]: ...
    def fetchall(self) -> Sequence[Any]: ...
    def fetchmany(self, size: int) -> Sequence[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...
    def close(self) -> None: ...


class Connection(Protocol):
    """One connection to one database."""

    dialect: Dialect
    statement_log: StatementLog | None

    def exec_driver_sql(self, sql: str, params: Sequence[Any] | None = None) -> Result:
        """Run one statement (``?`` or ``%s`` placeholders as the dialect says)."""
        ...

    def begin(self) -> AbstractContextManager[Connection]:
        """A transaction, committed on success and rolled back on an error."""
        ...

    @property
    def raw(self) -> Any:
        """The driver's connection (for ``COPY`` and ``executemany``)."""
        ...

    @property
    def cancellable(self) -> bool:
        """Whether ``cancel()`` can abandon a running statement."""
        ...

    def cancel(self) -> None:
        """Abandon the statement running on this connection (called from another thread)."""
        ...

    def close(self) -> None: ...
    def __enter__(self) -> Connection: ...
    def __exit__(self, *exc: object) -> None: ...


def prepare(dialect: Dialect, raw: Any) -> None:
    """Run the dialect's ``connect_statements`` on a new driver connection."""
    if not dialect.connect_statements:
        return
    cur = raw.cursor()
    try:
        for statement, optional in dialect.connect_statements:
            try:
                cur.execute(statement)
            except Exception:
                if not optional:
                    raise
    finally:
        cur.close()


def set_autocommit(dialect: Dialect, raw: Any) -> None:
    """Put a driver connection (fresh from a pool, maybe in a transaction) in autocommit."""
    style = dialect.autocommit_style
    if style == "isolation_none":
        raw.isolation_level = None  # sqlite3
    elif style == "attribute":
        raw.rollback()  # psycopg: the attribute can only change outside a transaction
        raw.autocommit = True
    elif style == "method":
        raw.rollback()  # PyMySQL
        raw.autocommit(True)
    else:
        try:
            raw.commit()
        except Exception:  # nothing to commit
            pass


def cancel(dialect: Dialect, raw: Any) -> None:
    """Abandon the statement running on ``raw`` (from another thread), where the driver can."""
    if dialect.cancel_method == "interrupt":
        raw.interrupt()  # sqlite3, duckdb
    elif dialect.cancel_method == "cancel":
        raw.cancel()  # psycopg: asks the server to cancel the running query


class DriverResult:
    """The rows of one statement on a driver cursor."""

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

    def all(self) -> list[Any]:
        return self.fetchall()

    def fetchall(self) -> list[Any]:
        rows = list(self._cur.fetchall()) if self._cur.description else []
        self.close()
        return rows

    def fetchmany(self, size: int) -> list[Any]:
        return list(self._cur.fetchmany(size)) if self._cur.description else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    def close(self) -> None:
        if self._close:
            self._cur.close()


class DriverConnection:
    """A driver connection in autocommit mode; ``begin()`` opens an explicit transaction.

    Args:
        raw: the driver's connection (sqlite3, duckdb, psycopg, PyMySQL …), in autocommit.
        dialect: the engine's dialect (its ``BEGIN`` and whether the connection is a cursor).
        release: called with ``raw`` on ``close()`` (back to a pool, or closed).
    """

    def __init__(self, raw: Any, dialect: Dialect, release: Callable[[Any], None]) -> None:
        self._raw = raw
        self.dialect = dialect
        self._release: Callable[[Any], None] | None = release
        self._in_tx = False
        self._cursor: Any = None  # for statements without rows, made on first use

    @property
    def raw(self) -> Any:
        return self._raw

    @property
    def cancellable(self) -> bool:
        return self.dialect.cancel_method is not None

    def cancel(self) -> None:
        cancel(self.dialect, self._raw)

    #: Set by ``DatabaseService.connect``: where this connection reports its statements.
    statement_log: StatementLog | None = None

    def exec_driver_sql(self, sql: str, params: Sequence[Any] | None = None) -> DriverResult:
        log = self.statement_log
        if log is not None and log.sink is not None:
            result: DriverResult = run_recorded(log, sql, params, lambda: self._exec(sql, params))
            return result
        return self._exec(sql, params)

    def _exec(self, sql: str, params: Sequence[Any] | None) -> DriverResult:
        if self.dialect.connection_is_cursor:  # DuckDB: the connection is its own cursor
            if params:
                self._raw.execute(sql, params)
            else:
                self._raw.execute(sql)
            return DriverResult(self._raw, close=False)
        cur = self._raw.cursor()
        try:
            if params:
                cur.execute(sql, params)
            else:
                cur.execute(sql)  # no parameters: drivers then read no '%' as a placeholder
        except BaseException:
            cur.close()
            raise
        return DriverResult(cur, close=True)

    def _plain(self, sql: str) -> None:
        """Run a statement with no rows to read (``BEGIN``, ``COMMIT``) on a reused cursor."""
        log = self.statement_log
        if log is not None and log.sink is not None:
            run_recorded(log, sql, None, lambda: self._plain_now(sql))
            return
        self._plain_now(sql)

    def _plain_now(self, sql: str) -> None:
        if self.dialect.connection_is_cursor:
            self._raw.execute(sql)
            return
        if self._cursor is None:
            self._cursor = self._raw.cursor()
        self._cursor.execute(sql)

    @contextmanager
    def begin(self) -> Iterator[DriverConnection]:
        """A transaction (the dialect's ``BEGIN``), committed on success, rolled back on an error."""
        if self._in_tx:
            raise RuntimeError("a transaction is already open on this connection")
        self._plain(self.dialect.begin_statement)
        self._in_tx = True
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        self._in_tx = False
        self._plain("COMMIT")

    def rollback(self) -> None:
        """Roll back the open transaction; a broken connection discards it when it closes."""
        self._in_tx = False
        try:
            self._plain("ROLLBACK")
        except Exception:  # the connection broke; closing it discards the transaction
            pass

    def close(self) -> None:
        if self._in_tx:
            self.rollback()
        if self._cursor is not None:
            close_quietly(self._cursor)
            self._cursor = None
        release, self._release = self._release, None
        if release is not None:
            release(self._raw)

    def __enter__(self) -> DriverConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Top-level modules of the drivers whose exceptions are database errors.
DRIVER_MODULES = frozenset({"sqlite3", "psycopg", "pymysql", "duckdb", "_duckdb"})


def is_driver_error(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by a database driver (a statement, a COPY, executemany)."""
    return type(exc).__module__.split(".")[0] in DRIVER_MODULES


def close_quietly(raw: Any) -> None:
    """Close a driver connection that may already be broken or closed."""
    try:
        raw.close()
    except Exception:  # another thread's SQLite connection, or already gone
        pass
