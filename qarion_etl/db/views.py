"""Views as datasets: what a name is in the database, and publishing a view in its place.

A transformation with ``materialized = "view"`` publishes its SELECT as a view instead of
a table. The name may hold a table (the model was a table before), a view, or nothing:

- on DuckDB, PostgreSQL and SQLite, whose DDL is transactional, the old table or view is
  dropped and the view created in one transaction: readers see the old or the new one;
- on MySQL/MariaDB, whose DDL commits by itself, a view replaces a view with
  ``CREATE OR REPLACE VIEW``, and a table with a view made under a staging name and one
  ``RENAME TABLE`` of both (atomic), after which the old table is dropped.

The other way, a model that was a view and becomes a table (or incremental), drops the view
before its table is swapped in (``drop_view``). A staging view left on MySQL/MariaDB by a
process killed between its statements is dropped by the next write of the view
(``sweep_staging_views``); elsewhere the rollback of the killed transaction removed it.
"""

from __future__ import annotations

import uuid
from typing import Literal

from qarion_etl.db.connection import Connection
from qarion_etl.db.dependents import views_kept
from qarion_etl.db.materialize import STAGING_PREFIX, STAGING_TOKEN, Namespace

Relation = Literal["table", "view"]

#: The schema a name without one is looked up in (``information_schema``), per engine.
_CURRENT_SCHEMA = {
    "postgresql": "current_schema()",
    "mysql": "DATABASE()",
    "duckdb": "current_schema()",
}


def relation_kind(conn: Connection, ns: Namespace, name: str) -> Relation | None:
    """Whether dataset ``name`` of ``ns`` is a table, a view, or not there.

    On an engine without ``information_schema`` (Spark), a name that exists is a table.
    """
    dialect = ns.db.dialect
    physical = ns.physical(name)
    if dialect.name not in (*_CURRENT_SCHEMA, "sqlite"):
        return "table" if ns.exists(conn, name) else None
    if dialect.name == "sqlite":
        sql = "SELECT type FROM sqlite_master WHERE name = ? AND type IN ('table', 'view')"
        params: tuple[str, ...] = (physical,)
    else:
        schema = ns.schema
        where = "table_schema = ?" if schema else f"table_schema = {_CURRENT_SCHEMA[dialect.name]}"
        sql = f"SELECT table_type FROM information_schema.tables WHERE table_name = ? AND {where}"
        if dialect.name == "duckdb":
            sql += " AND table_catalog = current_database()"
        params = (physical, schema) if schema else (physical,)
    row = conn.exec_driver_sql(dialect.sql(sql), params).first()
    if row is None:
        return None
    return "view" if "VIEW" in str(row[0]).upper() else "table"


def publish_view(conn: Connection, ns: Namespace, target: str, select: str) -> None:
    """Make ``target`` a view of ``select``, replacing the table or view of that name.

    Runs inside the caller's transaction; on MySQL/MariaDB the swap is one statement.
    """
    dialect = ns.db.dialect
    qualified = ns.qualified(target)
    kind = relation_kind(conn, ns, target)
    if dialect.name == "mysql":
        if kind != "table":
            conn.exec_driver_sql(f"CREATE OR REPLACE VIEW {qualified} AS {select}")
            return
        token = uuid.uuid4().hex[:8]
        staging = ns.qualified(f"{STAGING_PREFIX}{target}_{token}")
        old = ns.qualified(f"{STAGING_PREFIX}{target}_{token}_old")
        conn.exec_driver_sql(f"CREATE VIEW {staging} AS {select}")
        try:
            conn.exec_driver_sql(f"RENAME TABLE {qualified} TO {old}, {staging} TO {qualified}")
        except BaseException:
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {staging}")
            raise
        conn.exec_driver_sql(f"DROP TABLE {old}")
        return
    with views_kept(conn, dialect, [qualified] if kind is not None else []):
        if kind is not None:
            conn.exec_driver_sql(f"DROP {kind.upper()} {qualified}")
        conn.exec_driver_sql(f"CREATE VIEW {qualified} AS {select}")


def drop_view(conn: Connection, ns: Namespace, target: str) -> bool:
    """Drop ``target`` if it is a view (a model that becomes a table); whether it was one."""
    if relation_kind(conn, ns, target) != "view":
        return False
    conn.exec_driver_sql(f"DROP VIEW {ns.qualified(target)}")
    return True


def sweep_staging_views(conn: Connection, ns: Namespace, target: str) -> list[str]:
    """Drop the staging views of ``target`` an earlier, killed write left; their names.

    Only on an engine whose DDL commits by itself (MySQL/MariaDB): only ``target``'s own
    (``_qtmp_<target>_<token>``), never those of a longer name being written now.
    """
    dialect = ns.db.dialect
    if dialect.transactional_ddl or dialect.name not in _CURRENT_SCHEMA:
        return []
    schema = ns.schema
    where = "table_schema = ?" if schema else f"table_schema = {_CURRENT_SCHEMA[dialect.name]}"
    sql = f"SELECT table_name FROM information_schema.views WHERE {where}"
    rows = conn.exec_driver_sql(dialect.sql(sql), (schema,) if schema else ()).fetchall()
    prefix = ns.physical(f"{STAGING_PREFIX}{target}_")
    cut = len(ns.physical(""))
    stale = [
        str(name)[cut:]
        for (name,) in rows
        if str(name).startswith(prefix) and STAGING_TOKEN.fullmatch(str(name)[len(prefix) :])
    ]
    for name in stale:
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {ns.qualified(name)}")
    return stale
