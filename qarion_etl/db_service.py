"""Database access shared by the runner, run metadata and the database XCom backend.

``DatabaseService`` wraps one SQLAlchemy engine: it creates it from a URL (relative
SQLite and DuckDB paths resolve against the project root), tunes SQLite for concurrent
readers and writers (WAL, a bounded busy timeout), quotes identifiers by the dialect and
turns "cannot connect" into ``StoreUnavailable`` (exit code 3).

SQLAlchemy is imported here at module level on purpose: this module is only imported by
code that is about to talk to a database, never by ``--help`` or ``validate``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from qarion_etl.errors import StoreUnavailable
from qarion_etl.interpolate import mask_url  # re-exported: callers import it from here too

SQLITE_BUSY_TIMEOUT_MS = 30_000


def resolve_url(url: str, root: Path | None) -> str:
    """Make a relative SQLite or DuckDB file path absolute against ``root``.

    Creates the parent folder of the file, so ``sqlite:///.qarion/metadata.db`` works on
    first use.
    """
    for scheme in ("sqlite:///", "duckdb:///"):
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
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    try:
        cur.execute("PRAGMA journal_mode = WAL")
    except Exception:  # read-only or in-memory databases keep their mode
        pass
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.close()


def create_engine(url: str, *, root: Path | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with qarion-etl's settings per dialect."""
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
    """One database: an engine plus dialect-aware helpers.

    Args:
        engine: a SQLAlchemy ``Engine`` or a database URL.
        root: folder that relative SQLite/DuckDB paths in a URL are resolved against.
        what: what this database is for, used in error messages ("metadata database").
    """

    def __init__(
        self, engine: Engine | str, *, root: Path | None = None, what: str = "database"
    ) -> None:
        self.engine: Engine = (
            engine if isinstance(engine, Engine) else create_engine(engine, root=root)
        )
        self.what = what

    @property
    def dialect(self) -> str:
        """The dialect name: ``sqlite``, ``postgresql``, ``mysql``, ``duckdb`` …"""
        return self.engine.dialect.name

    @property
    def url(self) -> str:
        """The URL with its password masked."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def has_schemas(self) -> bool:
        return self.dialect in ("postgresql", "duckdb")

    def quote(self, name: str) -> str:
        """Quote one identifier by the dialect's rules (always quoted, never pasted)."""
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

    def ensure_namespace(self, conn: Connection, namespace: str | None) -> None:
        if namespace and self.has_schemas:
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {self.quote(namespace)}")

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection; failing to connect raises ``StoreUnavailable``."""
        try:
            conn = self.engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise self.unavailable(exc) from exc
        with conn:
            yield conn

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside a transaction, committed on success."""
        with self.connect() as conn, conn.begin():
            yield conn

    def create_all(self, metadata: sa.MetaData) -> None:
        """``metadata.create_all``, tolerating another process that creates the same tables at once.

        Two processes can both see a table missing and both create it; the loser gets "already
        exists" (SQLite, MySQL) or a duplicate key in the catalog (PostgreSQL). It then checks
        again and finds the table. Other operational errors raise ``StoreUnavailable``.
        """
        for attempt in range(5):
            try:
                with self.begin() as conn:
                    metadata.create_all(conn, checkfirst=True)
                return
            except sa.exc.DBAPIError as exc:
                if attempt < 4 and _lost_create_race(exc):
                    continue
                if (
                    isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))
                    or exc.connection_invalidated
                ):
                    raise self.unavailable(exc) from exc
                raise

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
            conn.exec_driver_sql("SELECT 1")

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> DatabaseService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lost_create_race(exc: sa.exc.DBAPIError) -> bool:
    text = str(getattr(exc, "orig", None) or exc).lower()
    return (
        isinstance(exc, sa.exc.IntegrityError)
        or "already exists" in text
        or "duplicate key" in text
    )
