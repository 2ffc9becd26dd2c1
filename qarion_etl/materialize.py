"""Atomic table writes: load into a staging table, then swap it in.

Every task that writes a dataset builds its rows in a staging table in the target's
namespace (``_qtmp_<target>_<token>``) and calls ``Stage.publish``:

- ``FULL_REFRESH`` replaces the target (``DROP`` + ``ALTER TABLE … RENAME``);
- ``INCREMENTAL`` appends the batch, or upserts it on the primary key (delete the
  matching keys, insert the batch), and creates the target on the first run.

On PostgreSQL, SQLite and DuckDB, DDL is transactional, so the load, the checks and the
swap are one transaction: a failure rolls everything back and leaves no staging table.
MySQL/MariaDB commit DDL implicitly, so there the swap is one ``RENAME TABLE`` statement
(atomic for several tables) and a failed load drops its staging table. Staging tables left
by a killed process are swept on the next write of the same dataset.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from qarion_etl.db_service import DatabaseService

Connection = Any  # a SQLAlchemy Connection or a qarion_etl.native.NativeConnection

STAGING_PREFIX = "_qtmp_"
FULL_REFRESH = "FULL_REFRESH"
INCREMENTAL = "INCREMENTAL"

#: SQL type of each flow ``schema_type`` per dialect (DuckDB's names are the default).
_TYPES: dict[str, dict[str, str]] = {
    "duckdb": {
        "string": "VARCHAR",
        "integer": "BIGINT",
        "float": "DOUBLE",
        "decimal": "DECIMAL(38, 10)",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
    },
    "postgresql": {
        "string": "TEXT",
        "integer": "BIGINT",
        "float": "DOUBLE PRECISION",
        "decimal": "NUMERIC(38, 10)",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
    },
    "sqlite": {
        "string": "TEXT",
        "integer": "INTEGER",
        "float": "REAL",
        "decimal": "NUMERIC",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
    },
    "mysql": {
        "string": "TEXT",
        "integer": "BIGINT",
        "float": "DOUBLE",
        "decimal": "DECIMAL(38, 10)",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp": "DATETIME(6)",
    },
}


def sql_type(dialect: str, schema_type: str) -> str:
    """The column type used for ``schema_type`` on ``dialect``."""
    return _TYPES.get(dialect, _TYPES["duckdb"])[schema_type]


@dataclass
class Namespace:
    """Table names of one flow namespace on one database."""

    db: DatabaseService
    namespace: str

    @property
    def schema(self) -> str | None:
        return self.namespace if self.db.has_schemas and self.namespace else None

    def physical(self, name: str) -> str:
        """The table's own name in the database (prefixed where there are no schemas)."""
        if self.namespace and not self.db.has_schemas:
            return f"{self.namespace}__{name}"
        return name

    def qualified(self, name: str) -> str:
        return self.db.qualified(self.namespace, name)

    def exists(self, conn: Connection, name: str) -> bool:
        return self.db.has_table(conn, self.physical(name), schema=self.schema)

    def ensure(self, conn: Connection) -> None:
        self.db.ensure_namespace(conn, self.namespace)

    def stale_staging(self, conn: Connection, target: str) -> list[str]:
        """Staging tables of ``target`` left behind by an earlier, killed run."""
        prefix = self.physical(f"{STAGING_PREFIX}{target}_")
        names = self.db.table_names(conn, schema=self.schema)
        cut = len(self.physical(""))
        return [n[cut:] for n in names if n.startswith(prefix)]


@dataclass
class Stage:
    """A staging table for one write of ``target``."""

    ns: Namespace
    target: str
    name: str

    @property
    def table(self) -> str:
        """The staging table's quoted, namespaced name."""
        return self.ns.qualified(self.name)

    def columns(self, conn: Connection) -> list[str]:
        result = conn.exec_driver_sql(f"SELECT * FROM {self.table} WHERE 1 = 0")
        cols = list(result.keys())
        result.close()
        return cols

    def publish(
        self, conn: Connection, processing_type: str, primary_key: Sequence[str] = ()
    ) -> None:
        """Make the staged rows the target's content (replace, append or upsert)."""
        db, ns = self.ns.db, self.ns
        q = db.quote
        target = ns.qualified(self.target)
        if processing_type == INCREMENTAL and ns.exists(conn, self.target):
            cols = self.columns(conn)
            keys = [k for k in primary_key if k in cols]
            if keys:
                match = " AND ".join(f"s.{q(k)} = {target}.{q(k)}" for k in keys)
                conn.exec_driver_sql(
                    f"DELETE FROM {target} WHERE EXISTS (SELECT 1 FROM {self.table} s WHERE {match})"
                )
            col_list = ", ".join(q(c) for c in cols)
            conn.exec_driver_sql(
                f"INSERT INTO {target} ({col_list}) SELECT {col_list} FROM {self.table}"
            )
            conn.exec_driver_sql(f"DROP TABLE {self.table}")
            return
        if db.is_mysql:
            if ns.exists(conn, self.target):
                old = ns.qualified(f"{STAGING_PREFIX}{self.target}_{uuid.uuid4().hex[:8]}_old")
                conn.exec_driver_sql(f"RENAME TABLE {target} TO {old}, {self.table} TO {target}")
                conn.exec_driver_sql(f"DROP TABLE {old}")
            else:
                conn.exec_driver_sql(f"RENAME TABLE {self.table} TO {target}")
            return
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {target}")
        conn.exec_driver_sql(f"ALTER TABLE {self.table} RENAME TO {q(ns.physical(self.target))}")


def transactional_ddl(db: DatabaseService) -> bool:
    """Whether ``CREATE``/``DROP``/``RENAME`` roll back with the transaction."""
    return db.dialect in ("postgresql", "sqlite", "duckdb")


@contextmanager
def staged_write(
    db: DatabaseService, namespace: str, target: str
) -> Iterator[tuple[Connection, Stage]]:
    """A transaction and a fresh staging name for writing ``target``.

    The caller creates and fills ``stage.table`` on the connection and calls
    ``stage.publish``; leaving the block commits. On an error nothing of the write stays:
    the transaction rolls back and (on MySQL) the staging table is dropped.
    """
    ns = Namespace(db, namespace)
    stage = Stage(ns, target, f"{STAGING_PREFIX}{target}_{uuid.uuid4().hex[:8]}")
    with db.connect() as conn:
        with conn.begin():
            ns.ensure(conn)
            for stale in ns.stale_staging(conn, target):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {ns.qualified(stale)}")
        try:
            with conn.begin():
                if db.dialect == "sqlite" and not db.native:
                    # pysqlite opens transactions only before DML; begin explicitly so that
                    # CREATE/DROP/RENAME belong to this transaction too (native
                    # connections begin with BEGIN IMMEDIATE themselves).
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn, stage
        except BaseException:
            if not transactional_ddl(db):
                _drop_quietly(conn, stage.table)
            raise


def _drop_quietly(conn: Connection, table: str) -> None:
    try:
        with conn.begin():
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    except Exception:  # the next write of this dataset sweeps it
        pass
