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
from qarion_etl.run.execution import RunExecution
from qarion_etl.run.model import RunOptions, RunResult, RunStatus, TaskOutcome, now_iso
from qarion_etl.run.rendering import render_task
from qarion_etl.run.reporting import NullReporter, Reporter, SerialReporter
from qarion_etl.run.selection import select_tasks
from qarion_etl.xcom.records import BATCH_MAX

if TYPE_CHECKING:
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
    def run(self, flow_ref: str | Path, options: RunOptions | None = None) -> RunResult:
        """Run ``flow_ref`` (a path or a flow id) and return what happened."""
        opts = options or RunOptions()
        for role, value in (("run_id", opts.run_id), ("resume", opts.resume)):
            if value is not None and (not value or len(value) > 250 or not value.isprintable()):
                raise BadRunId(value, role)
        if opts.batch_id is not None and not 0 <= opts.batch_id <= BATCH_MAX:
            raise BadBatchId(opts.batch_id, 0, BATCH_MAX)
        flow, graph = self.project.validate(flow_ref)
        if opts.resume == "latest":
            opts = replace(
                opts, resume=self.project.run_store().find_run("latest", flow.id).dag_run_id
            )
        order = topological_order(graph, flow)
        if opts.task:
            if opts.task not in graph:
                raise TaskNotFound(opts.task, flow.id, flow.task_ids)
            if not opts.run_id and not opts.resume:
                raise TaskNeedsRun(opts.task)
            selected = [opts.task]
        else:
            selected = select_tasks(
                graph,
                order,
                opts.select,
                opts.exclude,
                flow=flow,
                selector=opts.selector,
                selectors=self.project.config.selectors,
            )
        if opts.dry_run:
            started = now_iso()
            return RunResult(
                flow.id,
                opts.run_id or "(dry run)",
                opts.batch_id or 0,
                RunStatus.DRY_RUN,
                started,
                now_iso(),
                0.0,
                [TaskOutcome(t) for t in selected],
                dry_run=True,
            )
        return RunExecution(self.project, self.reporter, flow, graph, selected, opts).execute()

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
