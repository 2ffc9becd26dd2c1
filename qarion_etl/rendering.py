"""Rendering a task's SQL template: for a run (``FlowRunner``) and for ``qarion-etl render``.

``render_task`` touches no store for pulls answered by ``given``; the XCom store is only
connected for a pull it must read. ``render_task_sql`` builds the template context
(design.md §5) with the engine's quoting of ``source_dataset``/``target_dataset``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qarion_etl.errors import UsageError

if TYPE_CHECKING:
    from qarion_etl.db_service import DatabaseService
    from qarion_etl.flow import Flow, TaskSpec
    from qarion_etl.project import Project


def render_task(
    project: Project,
    flow_ref: str | Path,
    task_id: str,
    *,
    given: dict[tuple[str, str], Any] | None = None,
    variables: dict[str, Any] | None = None,
    batch_id: int | None = None,
    dag_run_id: str | None = None,
) -> str:
    """The SQL of ``task_id`` rendered, executing nothing.

    Pulls answered by ``given`` (``{(task, key): value}``) touch no store; other pulls
    read the newest matching value from the XCom store.
    """
    from qarion_etl.templating import PullResolver

    flow, _ = project.validate(flow_ref)
    try:
        spec = flow.task(task_id)
    except KeyError:
        from qarion_etl.config import did_you_mean

        raise UsageError(
            f"no task '{task_id}' in flow '{flow.id}'{did_you_mean(task_id, flow.task_ids)}"
        ) from None
    sql = spec.config.get("sql")
    if not isinstance(sql, str):
        raise UsageError(f"task '{task_id}' is a {spec.type} task: it has no SQL to render")
    factory = (lambda: project.xcom_service(flow.id)) if project.config.xcom.enabled else None
    resolver = PullResolver(flow.id, dag_run_id, factory, given=given or {})
    return render_task_sql(
        flow,
        spec,
        project.engine_db(),
        resolver,
        variables or {},
        batch_id if batch_id is not None else 0,
        dag_run_id,
        dt.date.today().isoformat(),
    )


def render_task_sql(
    flow: Flow,
    spec: TaskSpec,
    db: DatabaseService,
    resolver: Any,
    variables: dict[str, Any],
    batch_id: int,
    dag_run_id: str | None,
    ds: str,
    source: str | None = None,
) -> str:
    """Render ``source`` (default: the task's ``config.sql``) with the run's template context."""
    from qarion_etl.templating import render_sql, template_context

    context = template_context(
        flow_id=flow.id,
        task_id=spec.id,
        dag_run_id=dag_run_id,
        batch_id=batch_id,
        ds=ds,
        source_dataset=db.qualified(flow.namespace, spec.source_dataset_id)
        if spec.source_dataset_id
        else None,
        target_dataset=db.qualified(flow.namespace, spec.target_dataset_id)
        if spec.target_dataset_id
        else None,
        variables=variables,
        resolver=resolver,
    )
    return render_sql(
        source if source is not None else str(spec.config["sql"]), context, db.dialect
    )
