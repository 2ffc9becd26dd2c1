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

from qarion_etl.db.statements import Result, SqlRunner, StatementLog, run_recorded

if TYPE_CHECKING:
    from qarion_etl.db.engines.base import Dialect

__all__ = [
    "Connection",
    "DriverConnection",
    "DriverResult",
    "Result",
    "close_quietly",
    "is_driver_error",
]


class Connection(SqlRunner, Protocol):
    """One connection to one database."""

    dialect: Dialect

    def begin(self) -> AbstractContextManager[Connection]:
        """A transaction, committed on success and rolled back on an error."""
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
        dialect: the engine's dialect (its ``BEGIN`` and the cursor statements run on).
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
        return self.dialect.cancellable

    def cancel(self) -> None:
        self.dialect.cancel(self._raw)

    #: Set by ``DatabaseService.connect``: where this connection reports its statements.
    statement_log: StatementLog | None = None

    def exec_driver_sql(self, sql: str, params: Sequence[Any] | None = None) -> DriverResult:
        log = self.statement_log
        if log is not None and log.sink is not None:
            result: DriverResult = run_recorded(log, sql, params, lambda: self._exec(sql, params))
            return result
        return self._exec(sql, params)

    def _exec(self, sql: str, params: Sequence[Any] | None) -> DriverResult:
        cur = self.dialect.cursor(self._raw)
        owned = cur is not self._raw
        try:
            if params:
                cur.execute(sql, params)
            else:
                cur.execute(sql)  # no parameters: drivers then read no '%' as a placeholder
        except BaseException:
            if owned:
                cur.close()
            raise
        return DriverResult(cur, close=owned)

    def _plain(self, sql: str) -> None:
        """Run a statement with no rows to read (``BEGIN``, ``COMMIT``) on a reused cursor."""
        log = self.statement_log
        if log is not None and log.sink is not None:
            run_recorded(log, sql, None, lambda: self._plain_now(sql))
            return
        self._plain_now(sql)

    def _plain_now(self, sql: str) -> None:
        if self._cursor is None:
            self._cursor = self.dialect.cursor(self._raw)
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
        if self._cursor is not None and self._cursor is not self._raw:
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
