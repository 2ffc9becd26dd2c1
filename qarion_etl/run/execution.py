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
from typing import TYPE_CHECKING, Any

from qarion_etl.errors import Interrupted, StoreUnavailable, UsageError, clip, shown_path
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
from qarion_etl.tasks import get_task_class
from qarion_etl.tasks.base import TaskContext

if TYPE_CHECKING:
    from collections.abc import Callable

    from qarion_etl.db.service import DatabaseService
    from qarion_etl.definitions.flow import Flow, TaskSpec
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
        self.folder = Path()  # .qarion/runs/<flow_id>/<dag_run_id>/

    # --- setup ---------------------------------------------------------------------
    def _prepare(self, store: RunStore) -> None:
        opts, flow = self.opts, self.flow
        existing = opts.resume or (opts.run_id if opts.task else None)
        record = store.get_run(existing, flow.id) if existing else None
        if opts.resume and record is None:
            others = store.runs_with_id(opts.resume)
            if others:
                raise UsageError(
                    f"run '{opts.resume}' belongs to flow '{others[0].flow_id}', not '{flow.id}'"
                )
            raise UsageError(f"--resume {clip(opts.resume)!r}: no such run")
        if (
            opts.resume
            and record is not None
            and record.status == RunStatus.RUNNING
            and record.owner
        ):
            if owner_alive(record.owner):
                raise UsageError(
                    f"--resume {opts.resume}: the run is still running (process "
                    f"{record.owner.get('pid')} on {record.owner.get('host')}); wait for it or stop it"
                )
        if record is None:
            self.dag_run_id = opts.run_id or new_run_id(flow.id)
            self.batch_id = store.allocate_batch_id(flow.id, opts.batch_id)
            # With --task, another process may start the same run at this moment (Airflow's
            # first tasks on several workers): join its record, keeping one batch id.
            record, created = store.start_run(
                self.dag_run_id,
                flow.id,
                self.batch_id,
                self.started_at,
                owned=not opts.orchestrated,
                join=opts.task is not None,
            )
            # What this run executes, for its pictures (the first process to record it wins).
            store.save_plan(flow.id, self.dag_run_id, plan_of(flow, self.graph, self.project.scrub))
            if created:
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
            self.run_for_task = {
                t: record.dag_run_id for t, ti in prior.items() if ti.status == SUCCESS
            }
            store.reopen_run(flow.id, record.dag_run_id, owned=not opts.orchestrated)
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
        status = RunStatus.SUCCESS
        finished = threading.Event()
        if self.opts.stop is not None:  # ``run --all``: a stop from outside interrupts too
            _Watchdog.on(self.opts.stop, self._interrupt_running, finished)
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
            if any(o.status in (FAILED, SKIPPED, NOT_RUN) for o in self.outcomes.values()):
                status = RunStatus.FAILED
            if self.opts.stop is not None and self.opts.stop.is_set() and not self.opts.fail_fast:
                status = RunStatus.INTERRUPTED  # ``run --all`` was stopped
        except KeyboardInterrupt:
            status = RunStatus.INTERRUPTED
            self.cancel.set()
            for o in self.outcomes.values():
                if o.status in (NOT_RUN, INTERRUPTED) and o.started_at:
                    o.status, o.error = INTERRUPTED, "interrupted"
                    o.ended_at = o.ended_at or now_iso()
                    self._record(o, INTERRUPTED)
            raise
        finally:
            finished.set()
            result = RunResult(
                self.flow.id,
                self.dag_run_id,
                self.batch_id,
                status,
                self.started_at,
                now_iso(),
                round(time.perf_counter() - t0, 4),
                [self.outcomes[t] for t in self.outcomes],
            )
            self._finish(result)
        return result

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
        self._record(o, TaskStatus.RUNNING)
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
            progress=_Progress(self.reporter, tid),
        )
        self.active[tid] = ctx
        try:
            return self._tries(spec, o, ctx, t0)
        finally:
            self.active.pop(tid, None)

    def _tries(self, spec: TaskSpec, o: TaskOutcome, ctx: TaskContext, t0: float) -> TaskOutcome:
        tid = spec.id
        result: dict[str, Any] | None = None
        full: dict[str, Any] = {}
        pushed = False
        retries = 0 if self.opts.orchestrated else spec.retries  # the orchestrator retries
        base = self.try_base.get(tid, 0) + self.opts.try_number - 1
        for attempt in range(1, retries + 2):
            o.tries = base + attempt
            self.reporter.task_started(tid, o.tries)
            sql = self._sql_file(tid, o.tries)
            o.sql_path = str(sql.path)
            began = now_iso()
            timer = None
            if spec.timeout_seconds:
                ctx.deadline = time.monotonic() + spec.timeout_seconds
                timer = _Watchdog(spec.timeout_seconds, ctx.interrupt)
            try:
                if self.xcom is not None and (attempt > 1 or tid in self.clear_first):
                    # Every value of the task in this run, whatever batch it carries (a
                    # value pushed into the run by hand has none): the run implies its batch.
                    self.xcom.clear(flow_id=self.flow.id, task_id=tid, dag_run_id=self.dag_run_id)
                ctx.check_cancel()
                if result is None:
                    assert self.db is not None  # for mypy: execute() connected it
                    with self.db.statements.recording(sql):
                        result = get_task_class(spec.type)(spec).execute(ctx)
                    full = self._full_result(result, t0)
                # The work is done (and written); a failed push is retried on its own, so a
                # store outage never makes an INCREMENTAL task append its batch twice.
                o.xcom_keys = self._push(spec, full)
                o.error, o.exit_code, o.exception, pushed = None, None, None, True
                o.not_retried = None
                break
            except (Interrupted, KeyboardInterrupt) as exc:
                o.status, o.error = INTERRUPTED, "interrupted"
                o.attempts.append(_attempt(o.tries, INTERRUPTED, began, "interrupted"))
                self._close(o, t0)
                if isinstance(exc, KeyboardInterrupt):
                    raise
                return o
            except Exception as exc:  # a task failure of any kind
                if self.cancel.is_set() and not self.opts.fail_fast:
                    o.status, o.error = INTERRUPTED, "interrupted"
                    o.attempts.append(_attempt(o.tries, INTERRUPTED, began, "interrupted"))
                    self._close(o, t0)
                    return o
                o.exception = exc
                o.error = error_text(exc)
                if result is not None:
                    o.error = f"pushing the result to XCom failed: {o.error}"
                o.exit_code = exc.exit_code if isinstance(exc, StoreUnavailable) else None
                if ctx.timed_out():
                    # The driver's own words for it ("Interrupted!") say less than this.
                    line = self.flow.config_line(spec, "timeout_seconds")
                    where = f"{self.flow.shown_path}:{line}: " if line else ""
                    o.error = (
                        f"{where}task '{tid}': timed out after {spec.timeout_seconds:g}s"
                        " (timeout_seconds)"
                    )
                if sql.statements:
                    o.error += f"\n  SQL that ran: {shown_path(sql.path)}"
                from qarion_etl.run.retry import not_retried  # only when a try failed

                why = o.not_retried = not_retried(exc, spec)
                if why is not None and attempt <= retries:
                    o.error += f"\n  not retried: {why}"
                o.attempts.append(_attempt(o.tries, FAILED, began, o.error))
                if why is not None or attempt > retries or self.cancel.is_set():
                    break
                delay = spec.retry_delay_seconds * (
                    2 ** (attempt - 1) if spec.retry_exponential_backoff else 1
                )
                self.reporter.task_retrying(tid, o.tries, o.error, delay)
                if self.cancel.wait(delay):
                    break
            finally:
                sql.close()
                if timer is not None:
                    timer.stop()
        if result is None or not pushed:
            o.status = FAILED
            self._close(o, t0)
            return o
        o.status, o.result = SUCCESS, full
        o.attempts.append(_attempt(o.tries, SUCCESS, began, None))
        o.rows = result.get("rows_loaded", result.get("rows_written"))
        self._close(o, t0)
        return o

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

    def _full_result(self, result: dict[str, Any], t0: float) -> dict[str, Any]:
        # The task already keeps its own fields over same-named result columns.
        duration = round(time.perf_counter() - t0, 4)
        return {
            **result,
            "status": SUCCESS,
            "batch_id": self.batch_id,
            "duration_seconds": duration,
        }

    def _close(self, o: TaskOutcome, t0: float) -> None:
        o.ended_at = now_iso()
        o.duration_seconds = round(time.perf_counter() - t0, 4)
        self._record(o, o.status)
        # The task instance keeps the last try; the run history keeps each one that failed.
        for attempt in o.attempts:
            if attempt["status"] != SUCCESS:
                self.store.record_try(self.flow.id, self.dag_run_id, o.task_id, attempt)

    def _record(self, o: TaskOutcome, status: TaskStatus) -> None:
        record = TaskInstanceRecord.of(o, self.dag_run_id, self.flow.id, self.batch_id, status)
        self.store.record_task(record)

    def _push(self, spec: TaskSpec, result: dict[str, Any]) -> list[str]:
        if self.xcom is None or not spec.do_xcom_push:
            return []
        ident = {
            "task_id": spec.id,
            "flow_id": self.flow.id,
            "dag_run_id": self.dag_run_id,
            "batch_id": self.batch_id,
        }
        items = [{**ident, "key": "return_value", "value": result}]
        items += [
            {**ident, "key": k, "value": v}
            for k, v in result.items()
            if v is not None and k != "return_value"
        ]
        self.xcom.push_many(items)
        return [str(i["key"]) for i in items]

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
                {"counts": result.counts(), "duration_seconds": result.duration_seconds},
            )
        self.reporter.run_finished(result)


def _attempt(try_number: int, status: str, started_at: str, error: str | None) -> dict[str, Any]:
    """One try of a task, as the run history and the results file keep it."""
    return {
        "try_number": try_number,
        "status": str(status),
        "started_at": started_at,
        "ended_at": now_iso(),
        "error": error,
    }


class _Watchdog:
    """Interrupts a try once its timeout has passed, and again until the try ends.

    A single interrupt can fall between two statements (while a connection opens, or
    before the statement starts), where the driver ignores it; repeating it every
    ``REPEAT`` seconds makes sure the statement that then runs is stopped too.
    """

    REPEAT = 0.25

    def __init__(self, seconds: float, interrupt: Callable[[], None]) -> None:
        self._done = threading.Event()
        self._interrupt = interrupt
        self._thread = threading.Thread(target=self._watch, args=(seconds,), daemon=True)
        self._thread.start()

    def _watch(self, seconds: float) -> None:
        if self._done.wait(seconds):
            return
        while True:
            self._interrupt()
            if self._done.wait(self.REPEAT):
                return

    def stop(self) -> None:
        self._done.set()

    @staticmethod
    def on(event: threading.Event, interrupt: Callable[[], None], done: threading.Event) -> None:
        """Until ``done``: once ``event`` is set, call ``interrupt`` every ``REPEAT`` s."""

        def watch() -> None:
            while not done.wait(0.1):
                if event.is_set():
                    interrupt()
                    done.wait(_Watchdog.REPEAT)

        threading.Thread(target=watch, daemon=True, name="qarion-stop").start()


class _Progress:
    """A task's progress callback: passes rows so far on to the reporter, once a second.

    Rows per second count from the first report of the try (its first batch).
    """

    EVERY = 1.0

    def __init__(self, reporter: Reporter, task_id: str) -> None:
        self.reporter = reporter
        self.task_id = task_id
        self.started = time.monotonic()
        self.last = self.started

    def __call__(self, rows: int | None, fraction: float | None) -> None:
        now = time.monotonic()
        if now - self.last < self.EVERY:
            return
        self.last = now
        rate = None if rows is None else rows / max(now - self.started, 1e-6)
        self.reporter.task_progress(self.task_id, rows, fraction, rate)
