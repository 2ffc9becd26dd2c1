"""The SQLAlchemy connection source: every database that is not a SQLite file or DuckDB.

PostgreSQL, MySQL/MariaDB, SQLite in memory or with URL options, and any engine given as
a SQLAlchemy ``Engine`` are reached through its pool (pre-ping and a connect timeout for
servers, qarion-etl's SQLite settings on every new SQLite connection). ``connect()`` wraps
a pooled SQLAlchemy ``Connection`` in ``SqlAlchemyConnection``, which follows the
``Connection`` protocol; ``dedicated()`` hands out a driver connection detached from the
pool, in autocommit mode. ``sqlalchemy`` itself is imported only when an engine is built.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qarion_etl.db.connection import DriverConnection, close_quietly, is_driver_error
from qarion_etl.db.engines import Dialect, dialect_of_url, known_dialect
from qarion_etl.db.statements import StatementLog, run_recorded
from qarion_etl.db.urls import resolve_url
from qarion_etl.errors import StoreUnavailable
from qarion_etl.masking import mask_url

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Engine

    from qarion_etl.db.connection import Connection, Result
    from qarion_etl.db.schema import TableSpec


def create_engine(url: str, *, root: Path | None = None, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine for ``url`` with qarion-etl's settings for its dialect.

    A relative SQLite or DuckDB path in ``url`` is resolved against ``root``.

    Raises:
        StoreUnavailable: the URL is not valid or its driver is not installed.
    """
    import sqlalchemy as sa

    url = resolve_url(url, root)
    for name, value in _engine_options(dialect_of_url(url)).items():
        if isinstance(value, dict):
            merged = kwargs.setdefault(name, {})
            for key, item in value.items():
                merged.setdefault(key, item)
        else:
            kwargs.setdefault(name, value)
    try:
        engine = sa.create_engine(url, **kwargs)
    except Exception as exc:  # bad URL, missing driver
        raise StoreUnavailable(f"cannot use database {mask_url(url)}: {exc}") from exc
    on_connect = known_dialect(engine.dialect.name)
    if on_connect is not None and on_connect.connect_statements:
        sa.event.listen(engine, "connect", lambda raw, _record: on_connect.prepare(raw))
    return engine


def _engine_options(dialect: Dialect) -> dict[str, Any]:
    """Keyword arguments for ``sqlalchemy.create_engine`` on this engine."""
    if dialect.lock_timeout_seconds is not None:
        return {"connect_args": {"timeout": dialect.lock_timeout_seconds}}
    if dialect.is_server:
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    return {}


def dialect_of_engine(engine: Engine) -> Dialect:
    """Our dialect for a SQLAlchemy engine; an unlisted engine keeps its own quoting."""
    known = known_dialect(engine.dialect.name)
    if known is not None:
        return known
    from qarion_etl.db.engines.generic import Generic

    return Generic(
        engine.dialect.name,
        paramstyle="qmark" if engine.dialect.paramstyle == "qmark" else "format",
        quote_identifier=engine.dialect.identifier_preparer.quote_identifier,
    )


class SqlAlchemyConnection:
    """A pooled SQLAlchemy ``Connection`` seen through the ``Connection`` protocol."""

    def __init__(self, conn: sa.Connection, dialect: Dialect) -> None:
        # A statement without parameters goes to the driver as ``cursor.execute(sql)``, so
        # psycopg and PyMySQL read no '%' in it as a placeholder ("LIKE 'a%'", "id % 2").
        self.sa = conn.execution_options(no_parameters=True)
        self.dialect = dialect

    @property
    def raw(self) -> Any:
        return self.sa.connection.dbapi_connection

    @property
    def cancellable(self) -> bool:
        return self.dialect.cancellable

    def cancel(self) -> None:
        self.dialect.cancel(self.raw)

    #: Set by ``DatabaseService.connect``: where this connection reports its statements.
    statement_log: StatementLog | None = None

    def exec_driver_sql(self, sql: str, params: Sequence[Any] | None = None) -> Result:
        log = self.statement_log
        if log is not None and log.sink is not None:
            result: Result = run_recorded(log, sql, params, lambda: self._exec(sql, params))
            return result
        return self._exec(sql, params)

    def _exec(self, sql: str, params: Sequence[Any] | None) -> Result:
        if params:
            return self.sa.exec_driver_sql(sql, tuple(params))
        return self.sa.exec_driver_sql(sql)

    @contextmanager
    def begin(self) -> Iterator[SqlAlchemyConnection]:
        with self.sa.begin():
            if self.dialect.driver_begins_lazily:
                # pysqlite begins only before DML: begin now, so CREATE/DROP/RENAME belong to
                # this transaction too (and the write lock is taken first, as natively).
                self.sa.exec_driver_sql(self.dialect.begin_statement)
            yield self

    def close(self) -> None:
        self.sa.close()

    def __enter__(self) -> SqlAlchemyConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sqlalchemy_connection(conn: Connection) -> sa.Connection:
    assert isinstance(conn, SqlAlchemyConnection), "not a connection of this source"
    return conn.sa


class SqlAlchemySource:
    """Connections from one SQLAlchemy engine."""

    native = False

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=False)
        self.dialect = dialect_of_engine(engine)

    @classmethod
    def from_url(cls, url: str) -> SqlAlchemySource:
        return cls(create_engine(url))

    @property
    def dbapi(self) -> Any:
        """The driver module (for its exception classes)."""
        return self.engine.dialect.dbapi

    # --- connections ---------------------------------------------------------------------
    def connect(self) -> Connection:
        return SqlAlchemyConnection(self.engine.connect(), self.dialect)

    def dedicated(self) -> DriverConnection:
        """A driver connection detached from the pool, in autocommit mode, owned by the caller."""
        fairy = self.engine.raw_connection()
        fairy.detach()
        raw = fairy.dbapi_connection
        self.dialect.autocommit(raw)
        return DriverConnection(raw, self.dialect, close_quietly)

    # --- catalog -------------------------------------------------------------------------
    def table_names(self, conn: Connection, schema: str | None = None) -> list[str]:
        import sqlalchemy as sa

        return list(sa.inspect(_sqlalchemy_connection(conn)).get_table_names(schema=schema))

    def has_table(self, conn: Connection, name: str, schema: str | None = None) -> bool:
        import sqlalchemy as sa

        return bool(sa.inspect(_sqlalchemy_connection(conn)).has_table(name, schema=schema))

    def primary_key(self, conn: Connection, name: str) -> list[str]:
        import sqlalchemy as sa

        pk = sa.inspect(_sqlalchemy_connection(conn)).get_pk_constraint(name)
        return list(pk.get("constrained_columns") or [])

    def create_tables(self, specs: list[TableSpec]) -> None:
        """``MetaData.create_all`` of ``specs`` (SQLAlchemy writes the DDL for its dialect)."""
        import sqlalchemy as sa

        metadata = sa.MetaData()
        for spec in specs:
            spec.to_sqlalchemy(metadata, self.dialect)
        with self.engine.begin() as conn:
            metadata.create_all(conn, checkfirst=True)

    # --- errors --------------------------------------------------------------------------
    def is_database_error(self, exc: BaseException) -> bool:
        sa = sys.modules.get("sqlalchemy")  # loaded: this source built an engine
        return (sa is not None and isinstance(exc, sa.exc.SQLAlchemyError)) or is_driver_error(exc)

    def connection_lost(self, exc: BaseException) -> bool:
        sa = sys.modules.get("sqlalchemy")
        return sa is not None and isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated

    def connect_errors(self) -> tuple[type[BaseException], ...]:
        import sqlalchemy as sa

        return (sa.exc.SQLAlchemyError,)

    # --- lifetime ------------------------------------------------------------------------
    def sqlalchemy_engine(self) -> Engine:
        return self.engine

    def close(self) -> None:
        self.engine.dispose()

    def after_fork(self) -> None:
        self.engine.dispose(close=False)
