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
by a killed process are swept on the next write of the same dataset. On PostgreSQL, the
views that read a replaced table are kept across the swap (``dependents``).

A write may stage more than one table (an ingestion that quarantines bad rows writes
``<target>__rejects`` beside its target): ``publish_all`` publishes them in the same
transaction, and on MySQL swaps them all with one ``RENAME TABLE``, so readers see both
tables change together or neither.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from qarion_etl.db.connection import Connection
from qarion_etl.db.dependents import views_kept
from qarion_etl.db.service import DatabaseService

STAGING_PREFIX = "_qtmp_"
#: What follows ``_qtmp_<target>_`` in a staging table's name (``_old``: a replaced table).
STAGING_TOKEN = re.compile(r"[0-9a-f]{8}(_old)?")
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
        """Staging tables of ``target`` left behind by an earlier, killed run.

        Only ``target``'s own: ``_qtmp_orders_<token>`` is one of ``orders``, not of
        ``orders_landing`` (nor of ``orders__rejects``), whose write may be running.
        """
        prefix = self.physical(f"{STAGING_PREFIX}{target}_")
        names = self.db.table_names(conn, schema=self.schema)
        cut = len(self.physical(""))
        return [
            n[cut:]
            for n in names
            if n.startswith(prefix) and STAGING_TOKEN.fullmatch(n[len(prefix) :])
        ]


@dataclass
class Stage:
    """A staging table for one write of ``target``.

    ``companions`` are the staging tables of other targets written with it, in the same
    transaction (an ingestion's rejects table): see ``staged_write``.
    """

    ns: Namespace
    target: str
    name: str
    companions: dict[str, Stage] = field(default_factory=dict)

    @property
    def table(self) -> str:
        """The staging table's quoted, namespaced name."""
        return self.ns.qualified(self.name)

    def companion(self, target: str) -> Stage:
        """The staging table of ``target``, one of the ``also`` targets of ``staged_write``."""
        return self.companions[target]

    def columns(self, conn: Connection) -> list[str]:
        result = conn.exec_driver_sql(f"SELECT * FROM {self.table} WHERE 1 = 0")
        cols = list(result.keys())
        result.close()
        return cols

    def publish(
        self, conn: Connection, processing_type: str, primary_key: Sequence[str] = ()
    ) -> None:
        """Make the staged rows the target's content (replace, append or upsert)."""
        publish_all(conn, [(self, processing_type, primary_key)])

    def append(self, conn: Connection, primary_key: Sequence[str]) -> bool:
        """Add the staged rows to the existing target (replacing rows with the same key).

        Returns whether that is done; ``False`` when the engine put the target's other rows
        into the staging table instead, which is then swapped in (``Dialect.append``).
        """
        cols = self.columns(conn)
        keys = [k for k in primary_key if k in cols]
        target = self.ns.qualified(self.target)
        statements, swap = self.ns.db.dialect.append(target, self.table, cols, keys)
        for statement in statements:
            conn.exec_driver_sql(statement)
        return not swap


def publish_all(conn: Connection, writes: Sequence[tuple[Stage, str, Sequence[str]]]) -> None:
    """Publish staged tables together: each ``(stage, processing_type, primary_key)``.

    ``INCREMENTAL`` into an existing target appends (upserts on the key); anything else
    swaps the staging table in. The appends come first, then every swap at once: on
    MySQL/MariaDB, whose DDL commits by itself, the swaps are one ``RENAME TABLE``
    statement, atomic for all the tables.
    """
    swaps: list[tuple[str, str, str, str | None]] = []
    for stage, processing_type, primary_key in writes:
        ns, dialect = stage.ns, stage.ns.db.dialect
        exists = ns.exists(conn, stage.target)
        if processing_type == INCREMENTAL and exists and stage.append(conn, primary_key):
            continue
        old = None
        if dialect.swap_by_rename_table and exists:
            old = ns.qualified(f"{STAGING_PREFIX}{stage.target}_{uuid.uuid4().hex[:8]}_old")
        renamed = dialect.quote(ns.physical(stage.target))
        swaps.append((ns.qualified(stage.target), stage.table, renamed, old))
    if not swaps:
        return
    dialect = writes[0][0].ns.db.dialect
    with views_kept(conn, dialect, [target for target, *_ in swaps]):
        for statement in dialect.swaps(swaps):
            conn.exec_driver_sql(statement)


def _staging_name(target: str) -> str:
    return f"{STAGING_PREFIX}{target}_{uuid.uuid4().hex[:8]}"


@contextmanager
def staged_write(
    db: DatabaseService, namespace: str, target: str, also: Sequence[str] = ()
) -> Iterator[tuple[Connection, Stage]]:
    """A transaction and a fresh staging name for writing ``target`` (and the ``also`` targets).

    The caller creates and fills ``stage.table`` (and ``stage.companion(t).table`` for the
    targets of ``also`` it writes) on the connection and publishes them (``publish_all``);
    leaving the block commits. On an error nothing of the write stays: the transaction
    rolls back and (on MySQL) the staging tables are dropped.
    """
    ns = Namespace(db, namespace)
    stage = Stage(ns, target, _staging_name(target))
    stage.companions = {t: Stage(ns, t, _staging_name(t)) for t in also}
    db.create_namespace(namespace)  # alone: tasks writing at once must not both create it
    with db.connect() as conn:
        with conn.begin():
            ns.ensure(conn)
            for name in (target, *also):
                for stale in ns.stale_staging(conn, name):
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {ns.qualified(stale)}")
        try:
            with conn.begin():
                yield conn, stage
        except BaseException:
            if not db.dialect.transactional_ddl:
                for staged in (stage, *stage.companions.values()):
                    _drop_quietly(conn, staged.table)
            raise


def _drop_quietly(conn: Connection, table: str) -> None:
    try:
        with conn.begin():
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    except Exception:  # the next write of this dataset sweeps it
        pass
