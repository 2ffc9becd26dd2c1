"""``run FLOW FLOW …`` and ``run --all``: several flows at once, one summary, one exit code.

The library runs them (``run.many.run_flows``: the flows share ``--max-workers`` task
slots); this module gives each flow's run a reporter that shows its task lines as
``flow.task``, turns Ctrl-C and SIGTERM into the stop that ends every flow, prints the
summary (or the ``--json`` document) and exits with the gravest flow's exit code.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import typer

from qarion_etl.cli import output
from qarion_etl.cli.wording import cli_message
from qarion_etl.errors import QarionError

if TYPE_CHECKING:
    from qarion_etl.project import Project
    from qarion_etl.run.model import RunRequest, RunResult, TaskOutcome
    from qarion_etl.run.reporting import Reporter


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
        from dataclasses import replace

        self.inner.task_finished(replace(outcome, task_id=self._id(outcome.task_id)), index, total)

    def run_finished(self, result: RunResult) -> None:
        self.inner.run_finished(result)

    def event(self, record: dict[str, Any]) -> None:
        self.inner.event(record)


def run_many(
    project: Project,
    refs: list[str],
    request: RunRequest,
    *,
    json_out: bool,
    log_format: str,
    verbosity: int,
) -> None:
    """Run the flows ``refs`` at once; raises ``typer.Exit`` with the gravest exit code."""
    from qarion_etl.cli.console import EventReporter, PlainReporter
    from qarion_etl.run.many import run_flows
    from qarion_etl.run.reporting import SerialReporter

    kind = EventReporter if log_format == "json" else PlainReporter

    def reporter_for(ref: str) -> Reporter:
        return _Prefixed(SerialReporter(kind(verbosity=verbosity)), ref)

    def said(ref: str, exc: QarionError) -> None:
        output.error(project.scrub(f"{ref}: {cli_message(exc)}"))

    stop = threading.Event()
    # Ctrl-C and SIGTERM only set the stop while the flows run: a KeyboardInterrupt could
    # land anywhere in this thread and leave while the flows still record their runs.
    previous = _on_signals(lambda *_: stop.set())
    try:
        done = run_flows(
            project, refs, request, reporter_for=reporter_for, stop=stop, on_error=said
        )
    finally:
        _on_signals(previous)
    code = done.exit_code
    if json_out:
        output.emit_json(
            {
                "status": "success" if code == 0 else "interrupted" if code == 130 else "failed",
                "exit_code": code,
                "duration_seconds": done.duration_seconds,
                "flows": [done.results[r].as_dict() for r in refs if r in done.results],
                "errors": [
                    {
                        "flow": r,
                        "error": project.scrub(cli_message(done.errors[r])),
                        "exit_code": done.errors[r].exit_code,
                    }
                    for r in refs
                    if r in done.errors
                ],
            }
        )
    elif log_format != "json":
        ok = sum(1 for r in refs if done.code(r) == 0)
        output.info(
            f"{len(refs)} flows: {ok} succeeded, {len(refs) - ok} did not, in "
            f"{done.duration_seconds:.2f}s" + ("" if code == 0 else f" (exit {code})")
        )
    if code:
        if not json_out and log_format != "json":
            # As one flow's run does: the last line says what failed, -q or not.
            failed = [
                _failure(r, done.results.get(r), done.errors.get(r)) for r in refs if done.code(r)
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
