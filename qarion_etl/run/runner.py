"""``FlowRunner``: execute a flow end to end and return a ``RunResult``.

``FlowRunner.run`` validates the flow, chooses the tasks (``selection``, ``--task``) and
hands them to a ``RunExecution`` (``execution``), which runs them, records each task
instance and pushes each result to XCom (``return_value`` plus one key per top-level
field). ``FlowRunner.render`` renders one task's SQL without running anything.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qarion_etl.definitions.dag import topological_order
from qarion_etl.errors import BadBatchId, BadRunId, TaskNeedsRun, TaskNotFound
from qarion_etl.run.drivers import Driver, Orchestrated, Standalone
from qarion_etl.run.execution import RunExecution
from qarion_etl.run.model import (
    RunOptions,
    RunRequest,
    RunResult,
    RunStatus,
    TaskOutcome,
    now_iso,
)
from qarion_etl.run.rendering import render_task
from qarion_etl.run.reporting import NullReporter, Reporter, SerialReporter
from qarion_etl.xcom.records import BATCH_MAX

if TYPE_CHECKING:
    from qarion_etl.definitions.flow import Flow
    from qarion_etl.definitions.graph import TaskGraph
    from qarion_etl.project import Project


class FlowRunner:
    """Runs flows of one project.

    Example::

        with Project.load("qarion-etl.toml") as project:
            result = FlowRunner(project).run("data_pipeline", RunOptions())
            assert result.ok
    """

    def __init__(self, project: Project, reporter: Reporter | None = None) -> None:
        self.project = project
        self.reporter = SerialReporter(reporter or NullReporter())

    # --- public API ----------------------------------------------------------------
    def run(
        self,
        flow_ref: str | Path,
        request: RunRequest | None = None,
        *,
        driver: Driver | None = None,
    ) -> RunResult:
        """Run ``flow_ref`` (a path or a flow id) as ``request`` asks; returns what happened.

        Args:
            driver: how the run is driven (``run.drivers``): ``Standalone()`` by default;
                a ``RunOptions`` with ``orchestrated=True`` means ``Orchestrated(try_number)``.
        """
        request = request or RunRequest()
        driver = driver or _driver_of(request)
        _check_ids(request)
        # One task of a run (an orchestrator's worker, a CI matrix job): its own templates are
        # read, the rest of the flow when its tasks run (Airflow validated it whole already).
        only = [request.task] if request.task else None
        flow, graph = self.project.validate(flow_ref, only=only)
        if request.resume == "latest":
            latest = self.project.run_store().find_run("latest", flow.id).dag_run_id
            request = replace(request, resume=latest)
        selected = self._selected(flow, graph, request)
        if request.dry_run:
            started = now_iso()
            return RunResult(
                flow.id,
                request.run_id or "(dry run)",
                request.batch_id or 0,
                RunStatus.DRY_RUN,
                started,
                now_iso(),
                0.0,
                [TaskOutcome(t) for t in selected],
                dry_run=True,
            )
        execution = RunExecution(
            self.project, self.reporter, flow, graph, selected, request, driver
        )
        return execution.execute()

    def _selected(self, flow: Flow, graph: TaskGraph, request: RunRequest) -> list[str]:
        """The tasks ``request`` asks for, in topological order."""
        if request.task:
            if request.task not in graph:
                raise TaskNotFound(request.task, flow.id, flow.task_ids)
            if not request.run_id and not request.resume:
                raise TaskNeedsRun(request.task)
            return [request.task]
        order = topological_order(graph, flow)
        if not (request.select or request.exclude or request.selector):
            return order  # every task: the selection grammar is not needed
        from qarion_etl.run.selection import select_tasks

        return select_tasks(
            graph,
            order,
            request.select,
            request.exclude,
            flow=flow,
            selector=request.selector,
            selectors=self.project.config.selectors,
        )

    def render(
        self,
        flow_ref: str | Path,
        task_id: str,
        *,
        given: dict[tuple[str, str], Any] | None = None,
        variables: dict[str, Any] | None = None,
        batch_id: int | None = None,
        dag_run_id: str | None = None,
    ) -> str:
        """The SQL of ``task_id`` rendered, executing nothing (see ``rendering.render_task``)."""
        return render_task(
            self.project,
            flow_ref,
            task_id,
            given=given,
            variables=variables,
            batch_id=batch_id,
            dag_run_id=dag_run_id,
        )


def _driver_of(request: RunRequest) -> Driver:
    """The driver a request implies: ``RunOptions(orchestrated=True)`` is an orchestrator's."""
    if isinstance(request, RunOptions) and request.orchestrated:
        return Orchestrated(request.try_number)
    return Standalone()


def _check_ids(request: RunRequest) -> None:
    """Ids the stores cannot hold are refused before anything is read."""
    for role, value in (("run_id", request.run_id), ("resume", request.resume)):
        if value is not None and (not value or len(value) > 250 or not value.isprintable()):
            raise BadRunId(value, role)
    if request.batch_id is not None and not 0 <= request.batch_id <= BATCH_MAX:
        raise BadBatchId(request.batch_id, 0, BATCH_MAX)
