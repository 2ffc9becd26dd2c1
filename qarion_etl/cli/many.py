"""``run FLOW FLOW …`` and ``run --all``: several flows at once, one summary, one exit code.

Each flow runs as it would alone (its own run id, batch, history and results file), on a
thread of its own; the tasks of all of them share ``--max-workers`` slots, so the machine
runs no more tasks at once than asked. Task lines carry their flow (``flow.task``). A
flow that does not load or validate is reported and the others go on. Ctrl-C (or
SIGTERM) stops every flow: running tasks are interrupted, the rest is not started, and
each run is recorded ``interrupted``.

The exit code is the gravest of the flows': 130 interrupted, 3 a store unreachable, 2 a
flow that does not validate, 1 a failed task, 0 when every flow succeeded.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import typer

from qarion_etl.cli import output
from qarion_etl.cli.wording import cli_message
from qarion_etl.errors import QarionError

if TYPE_CHECKING:
    from qarion_etl.project import Project
    from qarion_etl.run.model import RunOptions, RunResult, TaskOutcome
    from qarion_etl.run.reporting import Reporter

#: Gravity of an exit code: the gravest wins.
_GRAVITY = {130: 4, 3: 3, 2: 2, 1: 1, 0: 0}


class _Prefixed:
    """A reporter for one of several flows: task ids shown as ``flow.task``."""

    def __init__(self, inner: Reporter, flow_id: str) -> None:
        self.inner = inner
        self.flow_id = flow_id

    def _id(self, task_id: str) -> str:
        return f"{self.flow_id}.{task_id}"

    def run_started(
        self, flow_id: str, dag_run_id: str, batch_id: int, task_ids: list[str]
    ) -> None:
        self.flow_id = flow_id
        self.inner.run_started(flow_id, dag_run_id, batch_id, [self._id(t) for t in task_ids])

    def task_started(self, task_id: str, try_number: int) -> None:
        self.inner.task_started(self._id(task_id), try_number)

    def task_retrying(self, task_id: str, try_number: int, error: str, delay: float) -> None:
        self.inner.task_retrying(self._id(task_id), try_number, error, delay)

    def task_progress(
        self, task_id: str, rows: int | None, fraction: float | None, rows_per_second: float | None
    ) -> None:
        self.inner.task_progress(self._id(task_id), rows, fraction, rows_per_second)

    def task_finished(self, outcome: TaskOutcome, index: int, total: int) -> None:
        self.inner.task_finished(
            dataclasses.replace(outcome, task_id=self._id(outcome.task_id)), index, total
        )

    def run_finished(self, result: RunResult) -> None:
        self.inner.run_finished(result)

    def event(self, record: dict[str, Any]) -> None:
        self.inner.event(record)


def run_many(
    project: Project,
    refs: list[str],
    options: RunOptions,
    *,
    json_out: bool,
    log_format: str,
    verbosity: int,
) -> None:
    """Run the flows ``refs`` at once; raises ``typer.Exit`` with the gravest exit code."""
    from qarion_etl.cli.console import EventReporter, PlainReporter
    from qarion_etl.run.reporting import SerialReporter
    from qarion_etl.run.runner import FlowRunner

    slots = threading.BoundedSemaphore(options.max_workers or os.cpu_count() or 1)
    stop = threading.Event()
    opts = dataclasses.replace(options, task_slots=slots, stop=stop)
    results: dict[str, RunResult] = {}
    errors: dict[str, QarionError] = {}
    lock = threading.Lock()

    def one(ref: str) -> None:
        kind = EventReporter if log_format == "json" else PlainReporter
        reporter = _Prefixed(SerialReporter(kind(verbosity=verbosity)), ref)
        try:
            result = FlowRunner(project, reporter).run(ref, opts)
        except QarionError as exc:
            with lock:
                errors[ref] = exc
            output.error(project.scrub(f"{ref}: {cli_message(exc)}"))
            return
        except BaseException as exc:  # a bug, or Ctrl-C reaching this thread: not lost
            with lock:
                errors[ref] = QarionError(f"{type(exc).__name__}: {exc}")
                errors[ref].exit_code = 130 if isinstance(exc, KeyboardInterrupt) else 1
            output.error(project.scrub(f"{ref}: {type(exc).__name__}: {exc}"))
            return
        with lock:
            results[ref] = result

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(ref,), name=f"flow-{ref}") for ref in refs]
    # Ctrl-C and SIGTERM only set the stop while the flows run: a KeyboardInterrupt could
    # land anywhere in this thread and leave while the flows still record their runs.
    previous = _on_signals(lambda *_: stop.set())
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        _on_signals(previous)
    interrupted = stop.is_set()
    took = time.perf_counter() - started
    codes = [_code(results.get(ref), errors.get(ref)) for ref in refs]
    code = max(codes, key=lambda c: _GRAVITY.get(c, 1))
    if interrupted:
        code = 130
    if json_out:
        output.emit_json(
            {
                "status": "success" if code == 0 else "interrupted" if code == 130 else "failed",
                "exit_code": code,
                "duration_seconds": round(took, 4),
                "flows": [results[r].as_dict() for r in refs if r in results],
                "errors": [
                    {
                        "flow": r,
                        "error": project.scrub(cli_message(errors[r])),
                        "exit_code": errors[r].exit_code,
                    }
                    for r in refs
                    if r in errors
                ],
            }
        )
    elif log_format != "json":
        ok = sum(1 for c in codes if c == 0)
        output.info(
            f"{len(refs)} flows: {ok} succeeded, {len(refs) - ok} did not, in {took:.2f}s"
            + ("" if code == 0 else f" (exit {code})")
        )
    if code:
        if not json_out and log_format != "json":
            # As one flow's run does: the last line says what failed, -q or not.
            failed = [
                _failure(ref, results.get(ref), errors.get(ref))
                for ref, c in zip(refs, codes, strict=True)
                if c
            ]
            output.error(project.scrub("; ".join(failed) or "interrupted"))
        raise typer.Exit(code)


def _on_signals(handler: Any) -> Any:
    """Handle SIGINT and SIGTERM with ``handler`` (in the main thread); the previous ones."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return None
    if handler is None:
        return None
    if isinstance(handler, tuple):
        signal.signal(signal.SIGINT, handler[0])
        signal.signal(signal.SIGTERM, handler[1])
        return None
    return signal.signal(signal.SIGINT, handler), signal.signal(signal.SIGTERM, handler)


def _failure(ref: str, result: RunResult | None, error: QarionError | None) -> str:
    """One flow's failure in a line: the flow and what went wrong first."""
    if error is not None:
        return f"{ref}: {cli_message(error).splitlines()[0]}"
    failed = result.first_failure() if result is not None else None
    if failed is None:
        return f"{ref}: {result.status if result is not None else 'failed'}"
    first = (failed.error or str(failed.status)).splitlines()[0]
    return (
        f"{ref}: {first}"
        if f"task '{failed.task_id}'" in first
        else (f"{ref}: task '{failed.task_id}': {first}")
    )


def _code(result: RunResult | None, error: QarionError | None) -> int:
    if error is not None:
        return error.exit_code
    if result is None:  # the flow's thread ended without a word: count it failed
        return 1
    if result.ok:
        return 0
    if str(result.status) == "interrupted":
        return 130
    failed = result.first_failure()
    return (failed.exit_code if failed is not None else None) or 1
