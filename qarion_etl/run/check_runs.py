"""``qarion-etl check``: a flow's data checks run against its published datasets alone.

The same checks as during a run (``tasks.checks``), on the tables as they are now, in one
read-only pass: nothing is written, no run is recorded. ``compare_to`` reads the newest
successful run's value as ``current`` and the one before it as ``previous``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qarion_etl.db.materialize import Namespace
from qarion_etl.errors import SqlError
from qarion_etl.run.check_values import value_puller
from qarion_etl.run.rendering import PullResolver, render_task_sql
from qarion_etl.tasks.checks import FAIL, CheckScope, run_checks

if TYPE_CHECKING:
    from qarion_etl.definitions.flow import Flow, TaskSpec
    from qarion_etl.project import Project
    from qarion_etl.xcom import XComService


@dataclass
class TaskChecks:
    """The checks of one task on its published dataset (``error``: they could not run)."""

    task_id: str
    dataset: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None or any(c["status"] == FAIL for c in self.checks)


@dataclass
class CheckReport:
    """What ``check_flow`` found, task by task; ``ok`` when no ``error`` check failed."""

    flow_id: str
    tasks: list[TaskChecks] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(t.failed for t in self.tasks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "flow_id": self.flow_id,
            "status": "success" if self.ok else "failed",
            "tasks": [
                {"task_id": t.task_id, "dataset": t.dataset, "checks": t.checks, "error": t.error}
                for t in self.tasks
            ],
        }


def check_flow(
    project: Project,
    flow_ref: str,
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> CheckReport:
    """Run the checks of the selected tasks of ``flow_ref`` on their published datasets.

    Raises:
        FlowNotFound, FlowValidationError, SelectionError: a bad flow or selection.
    """
    from qarion_etl.definitions.dag import topological_order
    from qarion_etl.run.selection import select_tasks

    flow, graph = project.validate(flow_ref)
    order = topological_order(graph, flow)
    chosen = order
    if select or exclude:
        chosen = select_tasks(
            graph, order, select, exclude, flow=flow, selectors=project.config.selectors
        )
    report = CheckReport(flow.id)
    checked = [flow.task(t) for t in chosen]
    checked = [s for s in checked if s.checks and s.target_dataset_id]
    if not checked:
        return report
    xcom = project.xcom_service(flow.id) if project.config.xcom.enabled else None
    puller = value_puller(project.run_store(), xcom, flow.id, None)
    for spec in checked:
        report.tasks.append(_check_task(project, flow, spec, xcom, puller))
    return report


def _check_task(
    project: Project,
    flow: Flow,
    spec: TaskSpec,
    xcom: XComService | None,
    puller: Callable[[str, str, str], Any] | None,
) -> TaskChecks:
    db = project.engine_db()
    target = str(spec.target_dataset_id)
    found = TaskChecks(spec.id, target)
    published = db.qualified(flow.namespace, target)
    resolver = PullResolver(flow.id, None, (lambda: xcom) if xcom is not None else None)
    today = dt.date.today().isoformat()

    def render(source: str) -> str:
        return render_task_sql(
            flow, spec, db, resolver, {}, 0, None, today, source, index=project.models()
        )

    scope = CheckScope(
        db,
        flow,
        spec,
        published,
        published,
        render=render,
        pull_value=puller,
        scrub=project.scrub,
        index=project.models(),
    )
    with db.connect() as conn:
        if not Namespace(db, flow.namespace).exists(conn, target):
            found.error = f"dataset '{target}' is not published yet: run the flow first"
            return found
        try:
            found.checks = [r.as_dict() for r in run_checks(conn, scope)]
        except SqlError as exc:
            found.error = project.scrub(str(exc))
    return found
