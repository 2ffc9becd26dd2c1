"""How a transformation's ``materialized`` setting writes its dataset, beside the table.

- ``table`` (the default): the SELECT's rows replace the target (``transformation``).
- ``view``: the SELECT is published as a view (``db.views``); nothing is copied, so the
  result has no ``rows_written`` and says ``"materialized": "view"``.
- ``incremental``: the first run (or one under ``--full-refresh``) builds the table; later
  runs add the SELECT's rows to it, upserting on ``unique_key`` when one is given and
  appending otherwise. ``is_incremental()`` in the SQL is true exactly when rows are added
  to an existing table, so a query can read only what is new::

      SELECT * FROM {{ source_dataset }}
      {% if is_incremental() %}
      WHERE id > (SELECT MAX(id) FROM {{ target_dataset }})
      {% endif %}

``[tasks.properties] processing_type = "INCREMENTAL"`` is the older spelling of the same
write; it upserts on ``unique_key`` or, without one, on the flow's ``[input].primary_key``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from qarion_etl.db.connection import Connection
from qarion_etl.db.dependents import views_kept
from qarion_etl.db.materialize import INCREMENTAL, STAGING_PREFIX, Namespace, Stage
from qarion_etl.db.views import drop_view, publish_view, relation_kind, sweep_staging_views
from qarion_etl.errors import QarionError, clip
from qarion_etl.tasks.base import TaskContext


def is_incremental(ctx: TaskContext) -> bool:
    """Whether this try adds to an existing table (what ``is_incremental()`` returns)."""
    target = ctx.spec.target_dataset_id
    if target is None or ctx.processing_type != INCREMENTAL:
        return False
    with ctx.db.errors(), ctx.db.connect() as conn:
        return relation_kind(conn, Namespace(ctx.db, ctx.namespace), target) == "table"


def upsert_key(ctx: TaskContext) -> list[str]:
    """The columns an incremental write replaces rows on (empty: it appends)."""
    spec = ctx.spec
    if spec.unique_key:
        return list(spec.unique_key)
    if spec.materialized == "incremental":
        return []
    return list(ctx.flow.input.primary_key)


def check_key(ctx: TaskContext, key: Sequence[str], columns: Sequence[str]) -> None:
    """Raise when a ``unique_key`` column is not among the query's ``columns``."""
    spec = ctx.spec
    if not spec.unique_key:
        return
    missing = [k for k in key if k not in columns]
    if missing:
        raise QarionError(
            f"no column {', '.join(map(repr, missing))} in the query's result "
            f"(its columns: {clip(', '.join(columns), 300)})",
            path=ctx.flow.shown_path,
            line=spec.line_of("unique_key"),
            task_id=spec.id,
            key="unique_key",
        )


def publish_table(conn: Connection, stage: Stage, processing_type: str, key: Sequence[str]) -> None:
    """Publish a staged table, first dropping a view of the target's name (the model was a
    view before); on PostgreSQL the views that read it are kept (``db.dependents``)."""
    dialect = stage.ns.db.dialect
    with views_kept(conn, dialect, [stage.ns.qualified(stage.target)]):
        drop_view(conn, stage.ns, stage.target)
        stage.publish(conn, processing_type, key)


def write_view(ctx: TaskContext, target: str, sql: str) -> dict[str, Any]:
    """Publish ``sql`` as the view ``target``; the result names its columns, not rows.

    The task's checks run first, on a staging view of the same SELECT: a failing ``error``
    check leaves the published view (or table) as it was.
    """
    ns = Namespace(ctx.db, ctx.namespace)
    ctx.db.create_namespace(ctx.namespace)
    checks: list[dict[str, Any]] = []
    with ctx.writing(), ctx.db.errors(sql), ctx.db.connect() as conn, ctx.interruptible(conn):
        with conn.begin():
            ns.ensure(conn)
            sweep_staging_views(conn, ns, target)
            if ctx.spec.checks:
                checks = _checked_view(ctx, conn, ns, target, sql)
            ctx.before_publish()
            publish_view(conn, ns, target, sql)
            # A view is checked when read (SQLite binds its names then): read none of it.
            head = conn.exec_driver_sql(f"SELECT * FROM {ns.qualified(target)} WHERE 1 = 0")
            columns = list(head.keys())
            head.close()
    result: dict[str, Any] = {"target_dataset": target, "materialized": "view", "columns": columns}
    if checks:
        result["checks"] = checks
    return result


def _checked_view(
    ctx: TaskContext, conn: Connection, ns: Namespace, target: str, sql: str
) -> list[dict[str, Any]]:
    """The view's checks, run on a staging view of ``sql`` that is dropped afterwards."""
    from qarion_etl.tasks.checks import guard

    stage = Stage(ns, target, f"{STAGING_PREFIX}{target}_{uuid.uuid4().hex[:8]}")
    conn.exec_driver_sql(f"CREATE VIEW {stage.table} AS {sql}")
    try:
        checks = guard(ctx, conn, stage, [])
    except BaseException:
        if not ns.db.dialect.transactional_ddl:  # elsewhere the rollback removes it
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {stage.table}")
        raise
    conn.exec_driver_sql(f"DROP VIEW {stage.table}")
    return checks
