"""The tries of one task: ``TaskTries.run`` tries a task until it succeeds or may not go on.

Each try records the task instance as ``running`` under its try number (the fence: a
record of an older try can no longer replace it), clears the values an earlier try of the
task may have left in this run, executes the task (unless an earlier try already did the
work and only its push failed), pushes the result to XCom and writes its ``TryRecord``
the moment it ends, so a crash later loses no try. A try that fails with an error another
try can mend waits ``retry_delay_seconds`` (doubled each time with exponential backoff)
and tries again, up to ``retries`` more times.

Where other processes may run tries of the same task (an orchestrator retries a task whose
worker it lost, while the old try may still be running), every write is fenced: before it
publishes a dataset and before it pushes its values, a try checks that no newer try of the
task has started, and refuses with ``Superseded`` if one has.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qarion_etl.definitions.flow import MAX_RETRY_DELAY
from qarion_etl.errors import (
    CheckFailed,
    Interrupted,
    StoreUnavailable,
    Superseded,
    shown_path,
)
from qarion_etl.run.model import TaskOutcome, TaskStatus, TryRecord, error_text, now_iso
from qarion_etl.tasks import get_task_class

if TYPE_CHECKING:
    from pathlib import Path

    from qarion_etl.definitions.flow import Flow, TaskSpec
    from qarion_etl.run.history import RunStore
    from qarion_etl.run.logs import TrySql
    from qarion_etl.run.reporting import Reporter
    from qarion_etl.tasks.base import TaskContext
    from qarion_etl.xcom import XComService


@dataclass(frozen=True)
class TryPlan:
    """What the tries of one task need to know of their run."""

    flow: Flow
    spec: TaskSpec
    dag_run_id: str
    batch_id: int
    #: The try number of this execution's first try.
    first_try: int
    #: Extra tries this process makes after a failure (0 when an orchestrator retries).
    retries: int
    #: Values of the task may already be in this run (resumed, rejoined, retried elsewhere):
    #: clear them before the first try too.
    clear_first: bool
    #: Other processes may run tries of this task: check the fence before every write.
    fenced: bool
    fail_fast: bool
    #: Masks the configuration's secrets in a text.
    scrub: Callable[[str], str] = lambda text: text


class TaskTries:
    """The try loop of one task of a run (see the module docstring)."""

    def __init__(
        self,
        plan: TryPlan,
        ctx: TaskContext,
        *,
        store: RunStore,
        xcom: XComService | None,
        reporter: Reporter,
        sql_file: Callable[[int], TrySql],
        record: Callable[[TaskOutcome, TaskStatus], None],
    ) -> None:
        self.plan = plan
        self.ctx = ctx
        self.store = store
        self.xcom = xcom
        self.reporter = reporter
        self.sql_file = sql_file
        self.record = record
        self.result: dict[str, Any] | None = None  # the work's result, once it is done
        self.try_number = plan.first_try
        self.statements_ran = False  # whether the last try ran any statement
        self.sql_path: Path | None = None  # the SQL file of the last try
        if plan.fenced:
            ctx.fence = self.check_fence

    # --- the loop ------------------------------------------------------------------------
    def run(self, o: TaskOutcome, started: float) -> TaskOutcome:
        """Try the task; returns ``o`` settled (success, failed or interrupted)."""
        plan = self.plan
        for attempt in range(1, plan.retries + 2):
            self.try_number = o.tries = plan.first_try + attempt - 1
            began = now_iso()
            self.record(o, TaskStatus.RUNNING)  # the fence: from here older tries are refused
            self.reporter.task_started(plan.spec.id, o.tries)
            error = self._one_try(o, attempt, started)
            if error is None:
                self._end_try(o, TaskStatus.SUCCESS, began)
                return self._close(o, TaskStatus.SUCCESS, started)
            if isinstance(error, (Interrupted, KeyboardInterrupt)) or (
                self.ctx.cancel.is_set() and not plan.fail_fast
            ):
                o.error, o.exception = "interrupted", None
                self._end_try(o, TaskStatus.INTERRUPTED, began)
                self._close(o, TaskStatus.INTERRUPTED, started)
                if isinstance(error, KeyboardInterrupt):
                    raise error
                return o
            self._failed(o, error)
            self._end_try(o, TaskStatus.FAILED, began)
            if o.not_retried is not None or attempt > plan.retries or self.ctx.cancel.is_set():
                break
            delay = retry_delay(plan.spec, attempt)
            self.reporter.task_retrying(plan.spec.id, o.tries, o.error or "", delay)
            if self.ctx.cancel.wait(delay):
                break
        self._clear_quietly()  # a failed task keeps no value of any of its tries
        return self._close(o, TaskStatus.FAILED, started)

    def _one_try(self, o: TaskOutcome, attempt: int, started: float) -> BaseException | None:
        """Run one try; returns the error it ended with (``None``: it succeeded)."""
        plan, ctx = self.plan, self.ctx
        sql = self.sql_file(o.tries)
        o.sql_path = str(sql.path)
        self.sql_path = sql.path
        timer = None
        if plan.spec.timeout_seconds:
            ctx.deadline = time.monotonic() + plan.spec.timeout_seconds
            timer = Watchdog(plan.spec.timeout_seconds, ctx.interrupt)
        earlier = attempt > 1 or plan.clear_first  # values of an earlier try may exist
        try:
            if plan.fenced:
                self.check_fence()
            if earlier:
                self._clear()
            ctx.check_cancel()
            if self.result is None:
                with ctx.db.statements.recording(sql):
                    work = get_task_class(plan.spec.type)(plan.spec).execute(ctx)
                self.result = self._full_result(work, started)
            # The work is done (and written); a failed push is retried on its own, so a
            # store outage never makes an INCREMENTAL task append its batch twice.
            o.xcom_keys = self._push(self.result)
            o.status, o.result = TaskStatus.SUCCESS, self.result
            o.checks = self.result.get("checks") or None
            o.rows = work_rows(self.result)
            o.error, o.exit_code, o.exception, o.not_retried = None, None, None, None
            return None
        except (Interrupted, KeyboardInterrupt) as exc:
            return exc
        except Exception as exc:  # a task failure of any kind
            o.exception = exc
            o.checks = exc.results if isinstance(exc, CheckFailed) else None
            return exc
        finally:
            self.statements_ran = sql.statements > 0
            sql.close()
            if timer is not None:
                timer.stop()

    def _failed(self, o: TaskOutcome, exc: BaseException) -> None:
        """Fill in ``o``'s error, exit code and retry verdict from a failed try."""
        from qarion_etl.run.retry import not_retried  # only when a try failed

        plan, spec = self.plan, self.plan.spec
        # Scrubbed once, here: every output of the run shows this text.
        error = plan.scrub(error_text(exc))
        if self.result is not None:
            error = f"pushing the result to XCom failed: {error}"
        o.exit_code = exc.exit_code if isinstance(exc, StoreUnavailable) else None
        if self.ctx.timed_out():
            # The driver's own words for it ("Interrupted!") say less than this.
            line = plan.flow.config_line(spec, "timeout_seconds")
            where = f"{plan.flow.shown_path}:{line}: " if line else ""
            error = (
                f"{where}task '{spec.id}': timed out after {spec.timeout_seconds:g}s"
                " (timeout_seconds)"
            )
        if self.statements_ran and self.sql_path is not None:
            error += f"\n  SQL that ran: {shown_path(self.sql_path)}"
        why = o.not_retried = not_retried(exc, spec)
        if why is not None and o.tries < plan.first_try + plan.retries:
            error += f"\n  not retried: {why}"
        o.error = error

    def _end_try(self, o: TaskOutcome, status: TaskStatus, began: str) -> None:
        """Write the try's record now, whatever happens to the run later."""
        attempt = TryRecord(o.tries, str(status), began, now_iso(), o.error)
        o.attempts.append(attempt)
        self.store.record_try(self.plan.flow.id, self.plan.dag_run_id, o.task_id, attempt)

    def _close(self, o: TaskOutcome, status: TaskStatus, started: float) -> TaskOutcome:
        o.status = status
        o.ended_at = now_iso()
        o.duration_seconds = round(time.perf_counter() - started, 4)
        self.record(o, status)
        return o

    # --- values --------------------------------------------------------------------------
    def check_fence(self) -> None:
        """Refuse to write when a newer try of the task has started (``Superseded``)."""
        plan = self.plan
        current = self.store.current_try(plan.flow.id, plan.dag_run_id, plan.spec.id)
        if current is not None and current > self.try_number:
            raise Superseded(plan.spec.id, self.try_number, current)

    def _clear(self) -> None:
        """Remove every value of the task in this run, whatever batch it carries (a value
        pushed into the run by hand has none: the run implies its batch)."""
        if self.xcom is not None:
            plan = self.plan
            self.xcom.clear(flow_id=plan.flow.id, task_id=plan.spec.id, dag_run_id=plan.dag_run_id)

    def _clear_quietly(self) -> None:
        try:
            if self.plan.fenced:
                self.check_fence()  # a newer try owns the values now
            self._clear()
        except Exception:  # the store is down: the next try or a resume clears them
            pass

    def _push(self, result: dict[str, Any]) -> list[str]:
        plan = self.plan
        if self.xcom is None or not plan.spec.do_xcom_push:
            return []
        if plan.fenced:
            self.check_fence()
        ident = {
            "task_id": plan.spec.id,
            "flow_id": plan.flow.id,
            "dag_run_id": plan.dag_run_id,
            "batch_id": plan.batch_id,
        }
        items = [{**ident, "key": "return_value", "value": result}]
        items += [
            {**ident, "key": k, "value": v}
            for k, v in result.items()
            if v is not None and k != "return_value"
        ]
        self.xcom.push_many(items)
        return [str(i["key"]) for i in items]

    def _full_result(self, result: dict[str, Any], started: float) -> dict[str, Any]:
        # The task already keeps its own fields over same-named result columns.
        return {
            **result,
            "status": TaskStatus.SUCCESS,
            "batch_id": self.plan.batch_id,
            "duration_seconds": round(time.perf_counter() - started, 4),
        }


def work_rows(result: dict[str, Any]) -> int | None:
    """The rows a task's result says it loaded or wrote."""
    rows = result.get("rows_loaded", result.get("rows_written"))
    return rows if isinstance(rows, int) else None


def retry_delay(spec: TaskSpec, attempt: int) -> float:
    """Seconds to wait after failed try ``attempt`` (at most ``MAX_RETRY_DELAY``)."""
    if not spec.retry_exponential_backoff:
        return min(spec.retry_delay_seconds, MAX_RETRY_DELAY)
    if attempt > 64:  # 2**64 times any delay is past the cap
        return MAX_RETRY_DELAY if spec.retry_delay_seconds > 0 else 0.0
    return min(spec.retry_delay_seconds * 2.0 ** (attempt - 1), MAX_RETRY_DELAY)


class Watchdog:
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
                    done.wait(Watchdog.REPEAT)

        threading.Thread(target=watch, daemon=True, name="qarion-stop").start()


class Progress:
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
