"""Database access shared by the runner, run metadata and the database XCom backend.

``DatabaseService`` is one database, named by a URL or given as a SQLAlchemy ``Engine``:
it resolves relative SQLite and DuckDB paths against the project root, tunes SQLite for
concurrent readers and writers (WAL, a bounded busy timeout), quotes identifiers by the
dialect and turns "cannot connect" into ``StoreUnavailable`` (exit code 3).

SQLite files and DuckDB databases named by URL are opened with their own drivers
(``qarion_etl.native``); every other database goes through a SQLAlchemy engine, created on
first use, so the default project never imports SQLAlchemy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qarion_etl.errors import StoreUnavailable
from qarion_etl.interpolate import mask_url  # re-exported: callers import it from here too
from qarion_etl.native import (
    BEGIN,
    SQLITE_BUSY_TIMEOUT_MS,
    NativePool,
    native_target,
    sqlite_pragmas,
)

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Engine

__all__ = ["DatabaseService", "create_engine", "mask_url", "resolve_url"]


def resolve_url(url: str, root: Path | None) -> str:
    """Make a relative SQLite or DuckDB file path absolute against ``root``.

    Creates the parent folder of the file, so ``sqlite:///.qarion/metadata.db`` works on
    first use.
    """
    for scheme in ("sqlite:///", "sqlite+pysqlite:///", "duckdb:///"):
        if url.startswith(scheme):
            rest = url[len(scheme) :]
            path_part, sep, query = rest.partition("?")
            if not path_part or path_part == ":memory:" or path_part.startswith(":memory:"):
                return url
            path = Path(path_part)
            if not path.is_absolute() and root is not None:
                path = root / path
            path.parent.mkdir(parents=True, exist_ok=True)
            return f"{scheme}{path}{sep}{query}"
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    sqlite_pragmas(dbapi_conn)


def create_engine(url: str, *, root: Path | None = None, **kwargs: Any) -> Engine:
    """Create a SQLAlchemy engine for ``url`` with qarion-etl's settings per dialect."""
    import sqlalchemy as sa

    url = resolve_url(url, root)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    elif url.startswith(("postgresql", "mysql", "mariadb")):
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("connect_args", {}).setdefault("connect_timeout", 10)
    try:
        engine = sa.create_engine(url, **kwargs)
    except Exception as exc:  # bad URL, missing driver
        raise StoreUnavailable(f"cannot use database {mask_url(url)}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class DatabaseService:
    """One database: a connection source plus dialect-aware helpers.

    Args:
        engine: a database URL, or a SQLAlchemy ``Engine``.
        root: folder that relative SQLite/DuckDB paths in a URL are resolved against.
        what: what this database is for, used in error messages ("metadata database").
    """

    def __init__(
        self, engine: Engine | str, *, root: Path | None = None, what: str = "database"
    ) -> None:
        self.what = what
        self._engine: Engine | None = None
        self._native: NativePool | None = None
        if isinstance(engine, str):
            self._url = resolve_url(str(engine), root)
            target = native_target(self._url)
            if target is not None:
                self._native = NativePool(*target)
                self._dialect = target[0]
            else:
                self._engine = create_engine(self._url)
                self._dialect = self._engine.dialect.name
        else:
            self._engine = engine
            self._url = engine.url.render_as_string(hide_password=False)
            self._dialect = engine.dialect.name

    @property
    def engine(self) -> Engine:
        """A SQLAlchemy engine for this database (created on first use for native ones)."""
        if self._engine is None:
            if self._native is not None and self._dialect == "duckdb":
                # DuckDB refuses a second open of one file with another configuration in the
                # same process: SQLAlchemy's connections come from the native database.
                from duckdb_engine import ConnectionWrapper

                pool = self._native
                self._engine = create_engine(
                    self._url, creator=lambda: ConnectionWrapper(pool.new_raw())
                )
            else:
                self._engine = create_engine(self._url)
        return self._engine

    @property
    def native(self) -> bool:
        """Whether connections come straight from the driver (SQLite files, DuckDB)."""
        return self._native is not None

    @property
    def dialect(self) -> str:
        """The dialect name: ``sqlite``, ``postgresql``, ``mysql``, ``duckdb`` …"""
        return self._dialect

    @property
    def is_mysql(self) -> bool:
        return self._dialect in ("mysql", "mariadb")

    @property
    def url(self) -> str:
        """The URL with its password masked."""
        return mask_url(self._url)

    @property
    def paramstyle(self) -> str:
        """The driver's placeholder style: ``qmark`` (``?``) or ``format`` (``%s``)."""
        if self._native is not None or self._dialect in ("sqlite", "duckdb"):
            return "qmark"
        return "qmark" if self.engine.dialect.paramstyle == "qmark" else "format"

    def sql(self, statement: str) -> str:
        """``statement`` written with ``?`` placeholders, in the driver's style."""
        return statement if self.paramstyle == "qmark" else statement.replace("?", "%s")

    @property
    def dbapi(self) -> Any:
        """The driver module, for its exception classes."""
        if self._native is not None:
            return self._native.module
        return self.engine.dialect.dbapi

    @property
    def has_schemas(self) -> bool:
        return self.dialect in ("postgresql", "duckdb")

    def quote(self, name: str) -> str:
        """Quote one identifier by the dialect's rules (always quoted, never pasted)."""
        if self.is_mysql:
            return "`" + name.replace("`", "``") + "`"
        if self._native is not None or self.dialect == "postgresql":
            return '"' + name.replace('"', '""') + '"'
        return self.engine.dialect.identifier_preparer.quote_identifier(name)

    def qualified(self, namespace: str | None, name: str) -> str:
        """The quoted name of table ``name`` in ``namespace``.

        Engines with schemas put the table in the schema ``namespace``; the others (SQLite,
        MySQL/MariaDB, where a schema is a database) prefix the table: ``namespace__name``.
        """
        if not namespace:
            return self.quote(name)
        if self.has_schemas:
            return f"{self.quote(namespace)}.{self.quote(name)}"
        return self.quote(f"{namespace}__{name}")

    def ensure_namespace(self, conn: Any, namespace: str | None) -> None:
        if namespace and self.has_schemas:
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {self.quote(namespace)}")

    def table_names(self, conn: Any, schema: str | None = None) -> list[str]:
        """Names of the tables in ``schema`` (or the default one)."""
        if self._native is None:
            import sqlalchemy as sa

            return list(sa.inspect(conn).get_table_names(schema=schema))
        if self.dialect == "sqlite":
            rows = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            ).fetchall()
        else:
            rows = conn.exec_driver_sql(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? "
                "AND database_name = current_database()",
                (schema or "main",),
            ).fetchall()
        return [r[0] for r in rows]

    def has_table(self, conn: Any, name: str, schema: str | None = None) -> bool:
        if self._native is None:
            import sqlalchemy as sa

            return bool(sa.inspect(conn).has_table(name, schema=schema))
        return name in self.table_names(conn, schema)

    # --- connections ---------------------------------------------------------------
    @contextmanager
    def connect(self) -> Iterator[Any]:
        """A connection; failing to connect raises ``StoreUnavailable``."""
        if self._native is not None:
            try:
                conn = self._native.connect()
            except self.dbapi.Error as exc:
                raise self.unavailable(exc) from exc
            with conn:
                yield conn
            return
        import sqlalchemy as sa

        try:
            sa_conn = self.engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise self.unavailable(exc) from exc
        with sa_conn:
            yield sa_conn

    @contextmanager
    def begin(self) -> Iterator[Any]:
        """A connection inside a transaction, committed on success."""
        with self.connect() as conn, conn.begin():
            yield conn

    def raw_connection(self) -> Any:
        """A new driver connection in autocommit mode, owned (and closed) by the caller."""
        if self._native is not None:
            try:
                return self._native.new_raw()
            except self.dbapi.Error as exc:
                raise self.unavailable(exc) from exc
        import sqlalchemy as sa

        try:
            fairy = self.engine.raw_connection()
        except sa.exc.SQLAlchemyError as exc:
            raise self.unavailable(exc) from exc
        fairy.detach()
        conn: Any = fairy.dbapi_connection
        if self.dialect == "sqlite":
            conn.isolation_level = None
        elif self.dialect == "postgresql":
            conn.rollback()
            conn.autocommit = True
        elif self.is_mysql:
            conn.rollback()
            conn.autocommit(True)
        else:
            try:
                conn.commit()
            except Exception:  # nothing to commit
                pass
        return conn

    def begin_sql(self) -> str:
        """The statement that opens a write transaction on a raw connection."""
        return BEGIN.get(self.dialect, "BEGIN")

    def create_all(self, metadata: sa.MetaData) -> None:
        """``metadata.create_all``, tolerating another process that creates the same tables at once.

        Two processes can both see a table missing and both create it; the loser gets "already
        exists" (SQLite, MySQL) or a duplicate key in the catalog (PostgreSQL). It then checks
        again and finds the table. Other operational errors raise ``StoreUnavailable``.
        """
        import sqlalchemy as sa

        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    metadata.create_all(conn, checkfirst=True)
                return
            except sa.exc.SQLAlchemyError as exc:
                if isinstance(exc, sa.exc.DBAPIError):
                    if attempt < 4 and _lost_create_race(exc):
                        continue
                    if (
                        isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))
                        or exc.connection_invalidated
                    ):
                        raise self.unavailable(exc) from exc
                    raise
                raise self.unavailable(exc) from exc

    def execute_ddl(self, statements: list[str]) -> None:
        """Run ``CREATE … IF NOT EXISTS`` statements in one transaction (native databases)."""
        for attempt in range(5):
            try:
                with self.begin() as conn:
                    for statement in statements:
                        conn.exec_driver_sql(statement)
                return
            except self.dbapi.Error as exc:
                if attempt < 4 and _lost_create_race(exc):
                    continue
                raise self.unavailable(exc) from exc

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
        if self._native is not None:
            self._native.forget()
        if self._engine is not None:
            self._engine.dispose(close=False)

    def close(self) -> None:
        if self._native is not None:
            self._native.close()
        if self._engine is not None:
            self._engine.dispose()

    def __enter__(self) -> DatabaseService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lost_create_race(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", None) or exc).lower()
    return (
        "integrity" in type(exc).__name__.lower()
        or "already exists" in text
        or "duplicate key" in text
    )
