"""One run while it executes: ``RunExecution``, built and started by ``FlowRunner.run``.

It gets the run's ``dag_run_id`` and ``batch_id`` from the run store (or reopens the run
given to ``--resume``/``--task``), executes the selected tasks in dependency order
(independent ones concurrently, up to ``max_workers``: ``scheduling``), tries each task up to its
``retries`` (clearing the try's XComs before the next), records every task instance,
pushes each result to XCom, and writes the results file. A failed task skips its
descendants; ``fail_fast`` stops the run; Ctrl-C sets a cancel flag that every task checks
before it publishes, marks the run ``interrupted`` and re-raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from qarion_etl.errors import RunInOtherFlow, RunNotFound, RunStillRunning
from qarion_etl.run.history import RunStore, TaskInstanceRecord, write_results
from qarion_etl.run.logs import RunLog, TrySql, results_file, run_folder, sql_file
from qarion_etl.run.model import (
    RunOptions,
    RunResult,
    RunStatus,
    TaskOutcome,
    TaskStatus,
    error_text,
    new_run_id,
    now_iso,
)
from qarion_etl.run.owner import owner_alive
from qarion_etl.run.plans import plan_of
from qarion_etl.run.rendering import task_renderer
from qarion_etl.run.reporting import Reporter
from qarion_etl.run.scheduling import schedule
from qarion_etl.run.tries import Progress, TaskTries, TryPlan, Watchdog
from qarion_etl.tasks.base import TaskContext

if TYPE_CHECKING:
    from qarion_etl.db.service import DatabaseService
    from qarion_etl.definitions.flow import Flow
    from qarion_etl.definitions.graph import TaskGraph
    from qarion_etl.project import Project
    from qarion_etl.xcom import XComService

SUCCESS, FAILED, SKIPPED = TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.SKIPPED
NOT_RUN, KEPT, INTERRUPTED = TaskStatus.NOT_RUN, TaskStatus.KEPT, TaskStatus.INTERRUPTED


class RunExecution:
    """The state of one run while it executes.

    ``execute()`` connects the stores, allocates or reopens the run, schedules the tasks and
    returns the ``RunResult``; every attribute it fills in is declared here.
    """

    def __init__(
        self,
        project: Project,
        reporter: Reporter,
        flow: Flow,
        graph: TaskGraph,
        selected: list[str],
        opts: RunOptions,
    ) -> None:
        self.project = project
        self.reporter = reporter
        self.flow = flow
        self.graph = graph
        self.opts = opts
        self.selected = selected
        self.cancel = opts.stop or threading.Event()
        self.outcomes: dict[str, TaskOutcome] = {
            t: TaskOutcome(t) for t in flow.task_ids if t in selected
        }
        self.clear_first: set[str] = set()
        self.try_base: dict[str, int] = {}  # task id -> tries it had in this run before
        self.active: dict[str, TaskContext] = {}  # task id -> the context of its running try
        self.run_for_task: dict[str, str] = {}
        # Set by execute(): the run's identity, its stores and the SQLite write lock.
        self.started_at = ""
        self.ds = ""
        self.dag_run_id = ""
        self.batch_id = 0
        self.store: RunStore = project.run_store()
        self.db: DatabaseService | None = None
        self.xcom: XComService | None = None
        self.write_lock: threading.Lock | None = None
        self.log: RunLog | None = None
        self.folder = Path()
        self.worked_before = 0.0  # seconds a resumed run worked in its earlier parts  # .qarion/runs/<flow_id>/<dag_run_id>/

    # --- setup ---------------------------------------------------------------------
    def _prepare(self, store: RunStore) -> None:
        opts, flow = self.opts, self.flow
        existing = opts.resume or (opts.run_id if opts.task else None)
        record = store.get_run(existing, flow.id) if existing else None
        if opts.resume and record is None:
            others = store.runs_with_id(opts.resume)
            if others:
                raise RunInOtherFlow(opts.resume, flow.id, others[0].flow_id)
            raise RunNotFound(opts.resume, flow.id)
        if (
            opts.resume
            and record is not None
            and record.status == RunStatus.RUNNING
            and record.owner
        ):
            if owner_alive(record.owner):
                raise RunStillRunning(
                    opts.resume, record.owner.get("pid"), record.owner.get("host")
                )
        if record is None:
            # With --task, another process may start the same run at this moment (Airflow's
            # first tasks on several workers): join its record, keeping one batch id.
            record, created = store.open_run(
                opts.run_id or new_run_id(flow.id),
                flow.id,
                self.started_at,
                batch_id=opts.batch_id,
                owned=not opts.orchestrated,
                join=opts.task is not None,
            )
            self.dag_run_id, self.batch_id = record.dag_run_id, record.batch_id
            if created:
                # What this run executes, for its pictures (kept once: the first one wins).
                plan = plan_of(flow, self.graph, self.project.scrub)
                store.save_plan(flow.id, self.dag_run_id, plan)
                record = None
        if record is not None:
            self.dag_run_id, self.batch_id = record.dag_run_id, record.batch_id
            prior = {ti.task_id: ti for ti in store.task_instances(flow.id, record.dag_run_id)}
            if opts.resume:
                for tid, ti in prior.items():
                    if tid in self.outcomes and ti.status == SUCCESS:
                        o = self.outcomes[tid]
                        o.status, o.tries, o.rows = KEPT, ti.try_number, ti.rows
                        o.xcom_keys, o.started_at, o.ended_at = (
                            ti.xcom_keys,
                            ti.started_at,
                            ti.ended_at,
                        )
            self.clear_first = {t for t in self.outcomes if t in prior or opts.task}
            if not opts.orchestrated:  # the orchestrator counts its own tries
                self.try_base = {t: prior[t].try_number for t in self.outcomes if t in prior}
                for t, base in self.try_base.items():  # a task skipped now keeps its count
                    self.outcomes[t].tries = max(self.outcomes[t].tries, base)
            self.run_for_task = {
                t: record.dag_run_id for t, ti in prior.items() if ti.status == SUCCESS
            }
            if opts.resume and record.ended_at:  # the parts a resumed run worked add up
                self.worked_before = record.duration_seconds or 0.0
            store.reopen_run(
                flow.id,
                record.dag_run_id,
                owned=not opts.orchestrated,
                worked=self.worked_before or None,
            )
        # Upstream tasks that this run does not execute: read their values from the run
        # where they last succeeded.
        for tid in self.outcomes:
            for up in self.graph.ancestors(tid):
                if up not in self.outcomes and up not in self.run_for_task:
                    found = store.last_success_run_of_task(flow.id, up)
                    if found:
                        self.run_for_task[up] = found

    # --- execution -----------------------------------------------------------------
    def execute(self) -> RunResult:
        project = self.project
        self.started_at = now_iso()
        t0 = time.perf_counter()
        self.ds = self.started_at[:10]
        # Reach the warehouse and build the XCom backend before the run is recorded, so a
        # refused store (a DuckDB file in use, a server down) leaves no run "running".
        db = self.db = project.engine_db()
        db.check()
        self.xcom = project.xcom_service(self.flow.id) if project.config.xcom.enabled else None
        self._prepare(self.store)
        self.folder = run_folder(project.config.state_dir, self.flow.id, self.dag_run_id)
        self.folder.mkdir(parents=True, exist_ok=True)  # once: each try's SQL file goes here
        self.log = RunLog(self.folder, self.flow.id, self.dag_run_id, self.reporter, project.scrub)
        self.reporter = self.log
        self.write_lock = threading.Lock() if db.dialect.single_writer else None
        todo = [t for t, o in self.outcomes.items() if o.status != KEPT]
        self.reporter.run_started(self.flow.id, self.dag_run_id, self.batch_id, todo)
        error: BaseException | None = None
        finished = threading.Event()
        if self.opts.stop is not None:  # ``run --all``: a stop from outside interrupts too
            Watchdog.on(self.opts.stop, self._interrupt_running, finished)
        try:
            schedule(
                todo,
                self.graph,
                self.outcomes,
                self._run_task,
                self.reporter,
                workers=self.opts.max_workers or os.cpu_count() or 1,
                fail_fast=self.opts.fail_fast,
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
            result = RunResult(
                self.flow.id,
                self.dag_run_id,
                self.batch_id,
                self._status(error),
                self.started_at,
                now_iso(),
                round(time.perf_counter() - t0, 4),
                [self.outcomes[t] for t in self.outcomes],
            )
            self._finish(result)
        return result

    def _status(self, error: BaseException | None) -> RunStatus:
        """The run's status: the one place it is decided, from how it ended and its tasks."""
        if isinstance(error, KeyboardInterrupt):
            return RunStatus.INTERRUPTED
        if error is not None:
            return RunStatus.FAILED
        if self.opts.stop is not None and self.opts.stop.is_set() and not self.opts.fail_fast:
            return RunStatus.INTERRUPTED  # ``run --all`` was stopped
        if all(o.status in (SUCCESS, KEPT) for o in self.outcomes.values()):
            return RunStatus.SUCCESS
        return RunStatus.FAILED

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

    def _run_task(self, tid: str) -> TaskOutcome:
        slots = self.opts.task_slots
        if slots is None:
            return self._run_task_now(tid)
        while not slots.acquire(timeout=0.1):  # a slot shared with the other flows
            if self.cancel.is_set():
                return self.outcomes[tid]  # never started: not run
        try:
            return self._run_task_now(tid)
        finally:
            slots.release()

    def _run_task_now(self, tid: str) -> TaskOutcome:
        assert self.db is not None, "execute() connects the warehouse first"
        spec = self.flow.task(tid)
        o = self.outcomes[tid]
        o.started_at = now_iso()
        t0 = time.perf_counter()
        ctx = TaskContext(
            flow=self.flow,
            spec=spec,
            db=self.db,
            root=self.project.config.root,
            batch_id=self.batch_id,
            dag_run_id=self.dag_run_id,
            render=task_renderer(
                self.flow,
                spec,
                self.db,
                xcom=self.xcom,
                run_for_task=self.run_for_task,
                variables=self.opts.variables,
                batch_id=self.batch_id,
                dag_run_id=self.dag_run_id,
                ds=self.ds,
            ),
            full_refresh=self.opts.full_refresh,
            cancel=self.cancel,
            write_lock=self.write_lock,
            progress=Progress(self.reporter, tid),
        )
        orchestrated = self.opts.orchestrated
        plan = TryPlan(
            flow=self.flow,
            spec=spec,
            dag_run_id=self.dag_run_id,
            batch_id=self.batch_id,
            first_try=self.try_base.get(tid, 0) + self.opts.try_number,
            retries=0 if orchestrated else spec.retries,  # the orchestrator retries
            clear_first=tid in self.clear_first,
            fenced=self.opts.task is not None,  # other processes run tries of it too
            fail_fast=self.opts.fail_fast,
            scrub=self.project.scrub,
        )
        tries = TaskTries(
            plan,
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

        header = (
            f"flow {self.flow.id}, run {self.dag_run_id}, task {tid}, try {try_number}, {now_iso()}"
        )
        return TrySql(sql_file(self.folder, tid), header, self.project.scrub, heard)

    def _record(self, o: TaskOutcome, status: TaskStatus) -> None:
        record = TaskInstanceRecord.of(o, self.dag_run_id, self.flow.id, self.batch_id, status)
        self.store.record_task(record)

    # --- the end -------------------------------------------------------------------
    def _finish(self, result: RunResult) -> None:
        for o in result.tasks:
            if o.status in (SKIPPED, NOT_RUN):
                o.ended_at = o.ended_at or now_iso()
                self._record(o, o.status)
        if self.log is not None:
            result.log_path = str(self.log.path)
        path = results_file(self.project.config.state_dir, self.flow.id, self.dag_run_id)
        if self.opts.orchestrated:  # one task of many processes: the run is settled from all
            settled = self.store.settle_run(self.flow.id, result.dag_run_id, self.flow.task_ids)
            result.results_path = write_results(result, path, merge=settled)
        else:
            result.results_path = write_results(result, path)
            self.store.finish_run(
                result.flow_id,
                result.dag_run_id,
                result.status,
                result.ended_at or now_iso(),
                {
                    "counts": result.counts(),
                    "duration_seconds": round(
                        self.worked_before + (result.duration_seconds or 0.0), 4
                    ),
                },
            )
        self.reporter.run_finished(result)
