"""One run while it executes: ``RunExecution``, built and started by ``FlowRunner.run``.

``execute`` reaches the stores, opens the run (``opening``: a new run, a resumed one, or
one joined by an orchestrator's task), schedules the selected tasks in dependency order
(independent ones concurrently, up to ``max_workers``: ``scheduling``), tries each one
(``tries``), and closes the run (``closing``: its status decided in one place, its
records, its results file). A failed task skips its descendants; ``fail_fast`` stops the
run; Ctrl-C sets a cancel flag that every task checks before it publishes, marks the run
``interrupted`` and re-raises ``KeyboardInterrupt``. How the run is driven (alone, beside
other flows, one task inside an orchestrator) is its ``Driver``'s.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from qarion_etl.run.check_values import value_puller
from qarion_etl.run.closing import close_run, run_status
from qarion_etl.run.history import RunStore, TaskInstanceRecord
from qarion_etl.run.logs import RunLog, TrySql, run_folder, sql_file
from qarion_etl.run.model import RunResult, TaskOutcome, TaskStatus, error_text, now_iso
from qarion_etl.run.opening import Opening, open_run
from qarion_etl.run.refs import require_upstream_tables
from qarion_etl.run.rendering import task_renderer
from qarion_etl.run.scheduling import schedule
from qarion_etl.run.tries import Progress, TaskTries, TryPlan, Watchdog
from qarion_etl.tasks.base import TaskContext

if TYPE_CHECKING:
    from qarion_etl.db.service import DatabaseService
    from qarion_etl.definitions.flow import Flow
    from qarion_etl.definitions.graph import TaskGraph
    from qarion_etl.project import Project
    from qarion_etl.run.drivers import Driver
    from qarion_etl.run.model import RunRequest
    from qarion_etl.run.reporting import Reporter
    from qarion_etl.xcom import XComService

FAILED, KEPT = TaskStatus.FAILED, TaskStatus.KEPT
NOT_RUN, INTERRUPTED = TaskStatus.NOT_RUN, TaskStatus.INTERRUPTED


class RunExecution:
    """The state of one run while it executes.

    ``execute()`` connects the stores, opens the run, schedules the tasks and returns the
    ``RunResult``; every attribute it fills in is declared here.
    """

    def __init__(
        self,
        project: Project,
        reporter: Reporter,
        flow: Flow,
        graph: TaskGraph,
        selected: list[str],
        request: RunRequest,
        driver: Driver,
    ) -> None:
        self.project = project
        self.reporter = reporter
        self.flow = flow
        self.graph = graph
        self.request = request
        self.driver = driver
        self.cancel = driver.stop or threading.Event()
        self.outcomes = {t: TaskOutcome(t) for t in flow.task_ids if t in selected}
        self.active: dict[str, TaskContext] = {}  # task id -> the context of its running try
        self.store: RunStore = project.run_store()
        # Set by execute(): the run as it opened, its stores and the SQLite write lock.
        self.started_at = ""
        self.opening = Opening("", 0)
        self.db: DatabaseService | None = None
        self.xcom: XComService | None = None
        self.write_lock: threading.Lock | None = None
        self.log: RunLog | None = None
        self.folder = Path()  # .qarion/runs/<flow_id>/<dag_run_id>/

    # --- the run -------------------------------------------------------------------
    def execute(self) -> RunResult:
        self._start()
        todo = [t for t, o in self.outcomes.items() if o.status != KEPT]
        self.reporter.run_started(
            self.flow.id, self.opening.dag_run_id, self.opening.batch_id, todo
        )
        t0 = time.perf_counter()
        error: BaseException | None = None
        finished = threading.Event()
        if self.driver.stop is not None:  # a stop from outside interrupts the running tasks
            Watchdog.on(self.driver.stop, self._interrupt_running, finished)
        try:
            schedule(
                todo,
                self.graph,
                self.outcomes,
                self._run_task,
                self.reporter,
                workers=self.request.max_workers or os.cpu_count() or 1,
                fail_fast=self.request.fail_fast,
                cancel=self.cancel,
                on_interrupt=self._interrupt_running,
            )
        except BaseException as exc:  # Ctrl-C, or a store lost while recording
            error = exc
            self.cancel.set()
            self._settle_unfinished(exc)
            raise
        finally:
            finished.set()
            result = self._close(error, round(time.perf_counter() - t0, 4))
        return result

    def _start(self) -> None:
        """Reach the stores, then open the run, its folder and its log."""
        project, flow = self.project, self.flow
        self.started_at = now_iso()
        # Reach the warehouse and build the XCom backend before the run is recorded, so a
        # refused store (a DuckDB file in use, a server down) leaves no run "running".
        db = self.db = project.engine_db()
        db.check()
        # A table of another flow that this run reads and nobody wrote: stop before the run.
        require_upstream_tables(project.models(), flow, self.outcomes, db)
        self.xcom = project.xcom_service(flow.id) if project.config.xcom.enabled else None
        self.opening = open_run(
            self.store,
            flow,
            self.graph,
            self.outcomes,
            self.request,
            self.driver,
            started_at=self.started_at,
            scrub=project.scrub,
            index=project.models(),
        )
        self.folder = run_folder(project.config.state_dir, flow.id, self.opening.dag_run_id)
        self.folder.mkdir(parents=True, exist_ok=True)  # once: each try's SQL file goes here
        self.log = RunLog(
            self.folder, flow.id, self.opening.dag_run_id, self.reporter, project.scrub
        )
        self.reporter = self.log
        self.write_lock = threading.Lock() if db.dialect.single_writer else None

    def _close(self, error: BaseException | None, seconds: float) -> RunResult:
        o = self.opening
        result = RunResult(
            self.flow.id,
            o.dag_run_id,
            o.batch_id,
            run_status(self.outcomes, error, self.driver, self.request.fail_fast),
            self.started_at,
            now_iso(),
            seconds,
            list(self.outcomes.values()),
            log_path=None if self.log is None else str(self.log.path),
        )
        close_run(
            result,
            store=self.store,
            driver=self.driver,
            state_dir=self.project.config.state_dir,
            task_ids=self.flow.task_ids,
            worked_before=o.worked_before,
            record=self._record,
            reporter=self.reporter,
        )
        return result

    def _settle_unfinished(self, exc: BaseException) -> None:
        """Tasks that started and never ended when the run stopped on ``exc``."""
        interrupted = isinstance(exc, KeyboardInterrupt)
        for o in self.outcomes.values():
            if o.started_at and o.status in (NOT_RUN, INTERRUPTED, TaskStatus.RUNNING):
                o.status = INTERRUPTED if interrupted else FAILED
                o.error = o.error or ("interrupted" if interrupted else error_text(exc))
                o.error = self.project.scrub(o.error)
                o.ended_at = o.ended_at or now_iso()
                try:
                    self._record(o, o.status)
                except Exception:  # the store that failed: the run's record says the rest
                    pass

    def _interrupt_running(self) -> None:
        for ctx in list(self.active.values()):
            ctx.interrupt()

    # --- one task ------------------------------------------------------------------
    def _run_task(self, tid: str) -> TaskOutcome:
        with self.driver.task_slot(self.cancel) as started:
            if not started:
                return self.outcomes[tid]  # the run stopped before a slot was free
            return self._run_task_now(tid)

    def _run_task_now(self, tid: str) -> TaskOutcome:
        o = self.outcomes[tid]
        o.started_at = now_iso()
        t0 = time.perf_counter()
        ctx = self._context(tid)
        tries = TaskTries(
            self._try_plan(tid),
            ctx,
            store=self.store,
            xcom=self.xcom,
            reporter=self.reporter,
            sql_file=lambda number: self._sql_file(tid, number),
            record=self._record,
        )
        self.active[tid] = ctx
        try:
            return tries.run(o, t0)
        except Exception as exc:  # a fault outside the task's own work: the task failed
            o.status, o.exception = FAILED, exc
            o.error = self.project.scrub(f"internal error: {error_text(exc)}")
            o.ended_at = now_iso()
            o.duration_seconds = round(time.perf_counter() - t0, 4)
            try:
                self._record(o, FAILED)
            except Exception:
                pass
            return o
        finally:
            self.active.pop(tid, None)

    def _context(self, tid: str) -> TaskContext:
        """What the task's tries work with: the warehouse, its renderer, the run's ids."""
        assert self.db is not None, "execute() connects the warehouse first"
        spec, o, request = self.flow.task(tid), self.opening, self.request
        render = task_renderer(
            self.flow,
            spec,
            self.db,
            xcom=self.xcom,
            run_for_task=o.run_for_task,
            variables=request.variables,
            batch_id=o.batch_id,
            dag_run_id=o.dag_run_id,
            ds=self.started_at[:10],
            index=self.project.models(),
        )
        return TaskContext(
            flow=self.flow,
            spec=spec,
            db=self.db,
            root=self.project.config.root,
            batch_id=o.batch_id,
            dag_run_id=o.dag_run_id,
            render=render,
            full_refresh=request.full_refresh,
            cancel=self.cancel,
            write_lock=self.write_lock,
            progress=Progress(self.reporter, tid),
            pull_value=value_puller(self.store, self.xcom, self.flow.id, o.dag_run_id)
            if spec.checks
            else None,
            scrub=self.project.scrub,
            models=self.project.models(),
        )

    def _try_plan(self, tid: str) -> TryPlan:
        spec, o = self.flow.task(tid), self.opening
        return TryPlan(
            flow=self.flow,
            spec=spec,
            dag_run_id=o.dag_run_id,
            batch_id=o.batch_id,
            first_try=o.try_base.get(tid, 0) + self.driver.try_number(),
            retries=spec.retries if self.driver.retries_tasks() else 0,
            clear_first=tid in o.clear_first,
            fenced=self.request.task is not None,  # other processes run tries of it too
            fail_fast=self.request.fail_fast,
            scrub=self.project.scrub,
        )

    def _sql_file(self, tid: str, try_number: int) -> TrySql:
        """The SQL file of one try (``-v`` hears of each statement as it ends)."""
        log = self.log

        def heard(sql: str, seconds: float, error: BaseException | None) -> None:
            if log is not None:
                log.emit(
                    "statement",
                    "debug",
                    tid,
                    sql=sql,
                    duration_seconds=round(seconds, 6),
                    error=None if error is None else str(error).splitlines()[0][:300],
                )

        run = self.opening.dag_run_id
        header = f"flow {self.flow.id}, run {run}, task {tid}, try {try_number}, {now_iso()}"
        return TrySql(sql_file(self.folder, tid), header, self.project.scrub, heard)

    def _record(self, o: TaskOutcome, status: TaskStatus) -> None:
        run, batch = self.opening.dag_run_id, self.opening.batch_id
        self.store.record_task(TaskInstanceRecord.of(o, run, self.flow.id, batch, status))
