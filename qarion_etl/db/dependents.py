"""Views that read a table being replaced, kept across the replacement (PostgreSQL).

PostgreSQL binds a view to the tables it reads, not to their names: a table that a view
reads cannot be dropped, so the swap that publishes a new table (``materialize``) or a
new view (``views``) would fail once any view reads the old one. ``views_kept`` finds the
views that depend on the replaced tables (and the views on those, at any depth), drops
them before the swap and creates them again after it, from their own definitions, in the
same transaction: readers see the old tables and views or the new ones. The other
engines resolve a view's names when it is read, so nothing is done there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from qarion_etl.db.connection import Connection
from qarion_etl.db.engines.base import Dialect

#: The views (relkind 'v') that depend on the relations named by ``?`` (a text array of
#: qualified, quoted names), nearest first; each with its depth below them.
_DEPENDENT_VIEWS = """
WITH RECURSIVE deps(oid, depth) AS (
  SELECT r.ev_class, 1
  FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
  WHERE d.classid = 'pg_rewrite'::regclass AND r.ev_class <> d.refobjid
    AND d.refobjid IN (SELECT to_regclass(t) FROM unnest(CAST(? AS text[])) AS t)
  UNION ALL
  SELECT r.ev_class, deps.depth + 1
  FROM deps JOIN pg_depend d ON d.refobjid = deps.oid JOIN pg_rewrite r ON r.oid = d.objid
  WHERE d.classid = 'pg_rewrite'::regclass AND r.ev_class <> d.refobjid AND deps.depth < 64
)
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), pg_get_viewdef(c.oid),
       MAX(deps.depth) AS depth
FROM deps JOIN pg_class c ON c.oid = deps.oid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'v'
GROUP BY n.nspname, c.relname, c.oid
ORDER BY depth, 1
"""


@contextmanager
def views_kept(conn: Connection, dialect: Dialect, targets: Sequence[str]) -> Iterator[None]:
    """Inside, the tables or views ``targets`` (qualified, quoted) may be dropped and made
    again; the views that read them are dropped first and created again on leaving."""
    if dialect.name != "postgresql" or not targets:
        yield
        return
    rows = conn.exec_driver_sql(dialect.sql(_DEPENDENT_VIEWS), (list(targets),)).fetchall()
    for name, _, _ in reversed(rows):
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
    yield
    for name, definition, _ in rows:
        conn.exec_driver_sql(f"CREATE VIEW {name} AS {definition}")
