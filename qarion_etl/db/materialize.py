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

from qarion_etl.db.connection import Connection
from qarion_etl.db.service import DatabaseService

STAGING_PREFIX = "_qtmp_"
FULL_REFRESH = "FULL_REFRESH"
INCREMENTAL = "INCREMENTAL"


@dataclass
class Namespace:
    """Table names of one flow namespace on one database."""

    db: DatabaseService
    namespace: str

    @property
    def schema(self) -> str | None:
        return self.db.dialect.schema(self.namespace)

    def physical(self, name: str) -> str:
        """The table's own name in the database (prefixed where there are no schemas)."""
        return self.db.dialect.physical(self.namespace, name)

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
        ns, dialect = self.ns, self.ns.db.dialect
        q = dialect.quote
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
        old = None
        if dialect.swap_by_rename_table and ns.exists(conn, self.target):
            old = ns.qualified(f"{STAGING_PREFIX}{self.target}_{uuid.uuid4().hex[:8]}_old")
        for statement in dialect.swap(
            target=target, staging=self.table, renamed=q(ns.physical(self.target)), old=old
        ):
            conn.exec_driver_sql(statement)


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
                yield conn, stage
        except BaseException:
            if not db.dialect.transactional_ddl:
                _drop_quietly(conn, stage.table)
            raise


def _drop_quietly(conn: Connection, table: str) -> None:
    try:
        with conn.begin():
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    except Exception:  # the next write of this dataset sweeps it
        pass
