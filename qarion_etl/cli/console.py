"""Run output: the reporters of ``qarion-etl run`` (rich only for the live view).

- ``RichReporter``: a live task table on a terminal (rows, share of the file read and rows
  per second of a long load), then the errors and a summary line.
- ``PlainReporter``: one "N of M task … OK in 0.12s" line per task (not a terminal, or
  ``NO_COLOR``), a progress line at most every 10 s of a long task, then a summary line.
- ``EventReporter`` (``--log-format json``): one JSON object per event on stderr instead
  of the human view.

``-q`` shows only errors and the summary, ``-v`` also every statement with its timing.
After a failed or interrupted run a line gives the command that resumes it. Everything
human goes to stderr; stdout carries only the ``--json`` summary. Text from data (errors,
statements) is shown with its control characters escaped (``output.shown``); JSON events
escape them as JSON does.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from qarion_etl.cli import output
from qarion_etl.cli.checks_view import check_lines
from qarion_etl.cli.output import shown
from qarion_etl.escaping import json_visible
from qarion_etl.run.model import RunResult, TaskOutcome, TaskStatus
from qarion_etl.run.reporting import progress_text

SUCCESS, FAILED, SKIPPED = TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.SKIPPED
KEPT, INTERRUPTED, NOT_RUN = TaskStatus.KEPT, TaskStatus.INTERRUPTED, TaskStatus.NOT_RUN

_LABEL: dict[str, str] = {
    SUCCESS: "OK",
    FAILED: "FAILED",
    SKIPPED: "SKIPPED",
    KEPT: "KEPT",
    INTERRUPTED: "INTERRUPTED",
    NOT_RUN: "NOT RUN",
}
_COLOR: dict[str, str] = {
    SUCCESS: "32",
    FAILED: "31",
    SKIPPED: "33",
    KEPT: "36",
    INTERRUPTED: "35",
    NOT_RUN: "33",
}


def _use_color() -> bool:
    return not os.environ.get("NO_COLOR") and sys.stderr.isatty()


def _paint(text: str, status: str) -> str:
    return f"\x1b[{_COLOR.get(status, '0')}m{text}\x1b[0m" if _use_color() else text


def _detail(o: TaskOutcome) -> str:
    parts = []
    if o.duration_seconds is not None and o.status in (SUCCESS, FAILED, INTERRUPTED):
        parts.append(f"in {o.duration_seconds:.2f}s")
    if o.rows is not None and o.status == SUCCESS:
        rejected = _rejected([o])
        parts.append(f"({o.rows:,} row{'s' if o.rows != 1 else ''}{rejected and ', '}{rejected})")
    if o.status == SUCCESS and (o.result or {}).get("materialized") == "ephemeral":
        parts.append("(ephemeral: no table, inlined where ref'd)")
    if o.tries > 1:
        parts.append(f"after {o.tries} tries")
    return " ".join(parts)


def summary_line(result: RunResult) -> str:
    counts = result.counts()
    order = [SUCCESS, KEPT, FAILED, SKIPPED, INTERRUPTED, NOT_RUN]
    text = ", ".join(f"{counts[s]} {_LABEL[s].lower()}" for s in order if counts.get(s))
    rejected = _rejected(result.tasks)
    return (
        f"Run {result.dag_run_id} (batch {result.batch_id}) {result.status.upper()}: {text} "
        f"in {result.duration_seconds or 0:.2f}s{rejected and '; '}{rejected}"
    )


def _rejected(outcomes: list[TaskOutcome]) -> str:
    """``3 bad rows in orders__rejects``, ``2 bad rows skipped``: the rows loads set aside."""
    into: dict[str, int] = {}
    for o in outcomes:
        n = (o.result or {}).get("rows_rejected")
        if isinstance(n, int) and n > 0:
            where = (o.result or {}).get("rejects_dataset") or ""
            into[where] = into.get(where, 0) + n
    return ", ".join(
        f"{n:,} bad row{'s' if n != 1 else ''} {f'in {where}' if where else 'skipped'}"
        for where, n in into.items()
    )


def next_hint(result: RunResult) -> str | None:
    """The commands that look further into a finished run."""
    if result.dry_run or result.status == "running":
        return None
    run = _shell_word(result.dag_run_id)
    commands = [f"qarion-etl report {run}", f"qarion-etl runs show {run}"]
    if result.ok:
        commands.append(f"qarion-etl xcom list --run {run}")
    return "Next:\n" + "\n".join(f"  {c}" for c in commands)


def _shell_word(text: str) -> str:
    import shlex

    return shlex.quote(text)


def resume_hint(result: RunResult) -> str | None:
    """The command that resumes a failed or interrupted run."""
    if result.ok or result.dry_run or result.status == "running":
        return None
    flow, run = _shell_word(result.flow_id), _shell_word(result.dag_run_id)
    return f"Resume with: qarion-etl run {flow} --resume {run}"


def statement_line(record: dict[str, Any]) -> str:
    """``-v``: ``    task: 0.012s CREATE TABLE …`` for one statement event."""
    seconds = record.get("duration_seconds", 0.0)
    failed = " FAILED" if record.get("error") else ""
    return f"    {record.get('task_id', '')}: {seconds:.3f}s{failed} {_one_line(record['sql'])}"


def _one_line(sql: str, limit: int = 300) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PlainReporter:
    """Line-per-event output on stderr.

    Args:
        verbosity: ``-1`` errors and the summary only (``-q``), ``1`` also every statement
            with its timing (``-v``).
        summary_json: also print the run summary as one JSON document on stdout (``--json``).
    """

    PROGRESS_EVERY = 10.0  # seconds between progress lines of one task
    #: Whether its last lines already show the failed tasks' errors (the final "Error:"
    #: line of a run then stays out). Plain lines in a CI log end with it.
    prints_errors_last = False

    def __init__(self, stream: Any = None, verbosity: int = 0, summary_json: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.width = 30
        self.verbosity = verbosity
        self.summary_json = summary_json
        self._last_progress: dict[str, float] = {}

    def _out(self, text: str, painted: tuple[str, str] | None = None, after: str = "") -> None:
        """One line: ``text``, then ``painted`` (text, status) in its status's colour, then ``after``."""
        line = shown(text)
        if painted is not None:
            line += _paint(shown(painted[0]), painted[1]) + shown(after)
        self._write(line)

    def _write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def run_started(
        self, flow_id: str, dag_run_id: str, batch_id: int, task_ids: list[str]
    ) -> None:
        self.width = max([len(t) for t in task_ids] + [10]) + 2
        n = len(task_ids)
        if self.verbosity >= 0:
            self._out(
                f"Running {flow_id}: {n} task{'s' if n != 1 else ''} (run {dag_run_id}, batch {batch_id})"
            )

    def task_started(self, task_id: str, try_number: int) -> None:
        self._last_progress[task_id] = time.monotonic()

    def task_retrying(self, task_id: str, try_number: int, error: str, delay: float) -> None:
        if self.verbosity >= 0:
            self._out(
                f"  retrying {task_id} (try {try_number} failed: {error.splitlines()[0]}) in {delay:g}s"
            )

    def task_progress(
        self, task_id: str, rows: int | None, fraction: float | None, rows_per_second: float | None
    ) -> None:
        now = time.monotonic()
        if self.verbosity < 0 or now - self._last_progress.get(task_id, 0.0) < self.PROGRESS_EVERY:
            return
        self._last_progress[task_id] = now
        self._out(f"  {task_id}: {progress_text(rows, fraction, rows_per_second)}")

    def task_finished(self, outcome: TaskOutcome, index: int, total: int) -> None:
        failed = outcome.status == FAILED
        if self.verbosity < 0 and not failed:
            return
        name = f"{outcome.task_id} ".ljust(self.width, ".")
        label = _LABEL.get(outcome.status, outcome.status.upper())
        detail = _detail(outcome)
        self._out(
            f"{index} of {total} {name} ",
            (label, outcome.status),
            f" {detail}" if detail else "",
        )
        if failed and outcome.error:
            for line in outcome.error.splitlines():
                self._out(f"    {line}".rstrip())
        for line in check_lines(outcome.checks, failed=False):
            self._out(f"    {line}")

    def event(self, record: dict[str, Any]) -> None:
        if self.verbosity > 0 and record["event"] == "statement":
            self._out(statement_line(record))

    def run_finished(self, result: RunResult) -> None:
        self._out("", (summary_line(result), SUCCESS if result.ok else FAILED))
        if result.results_path:
            self._out(f"Results: {result.results_path}")
        hint = resume_hint(result)
        if hint:
            self._out(hint)
        further = next_hint(result)
        if further and self.verbosity >= 0:
            self._out(further)
        self._summary(result)

    def _summary(self, result: RunResult) -> None:
        if self.summary_json:
            output.emit_json(result.as_dict())
            sys.stdout.flush()


class EventReporter(PlainReporter):
    """``--log-format json``: every event of the run as one JSON object per line on stderr.

    Statements (``event: statement``) only with ``-v``; with ``-q`` only errors and the
    end of the run.
    """

    def run_started(
        self, flow_id: str, dag_run_id: str, batch_id: int, task_ids: list[str]
    ) -> None:
        pass

    def task_retrying(self, task_id: str, try_number: int, error: str, delay: float) -> None:
        pass

    def task_progress(
        self, task_id: str, rows: int | None, fraction: float | None, rows_per_second: float | None
    ) -> None:
        pass

    def task_finished(self, outcome: TaskOutcome, index: int, total: int) -> None:
        pass

    def event(self, record: dict[str, Any]) -> None:
        name = record["event"]
        if name == "statement" and self.verbosity <= 0:
            return
        if self.verbosity < 0 and record["level"] not in ("error", "warning") and name != "run_end":
            return
        self._write(json_visible(json.dumps(record, default=str, ensure_ascii=False)))

    def run_finished(self, result: RunResult) -> None:
        self._summary(result)


class RichReporter(PlainReporter):
    """A live table of task states on a terminal."""

    #: The last lines it prints are the failed tasks' errors: nothing repeats them.
    prints_errors_last = True

    def __init__(self, verbosity: int = 0, summary_json: bool = False) -> None:
        super().__init__(verbosity=verbosity, summary_json=summary_json)
        from rich.console import Console

        self.console = Console(stderr=True)
        self.states: dict[str, tuple[str, str]] = {}
        self.started: dict[str, float] = {}
        self.progress: dict[str, str] = {}
        self.live: Any = None
        self.total = 0
        self.done = 0

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        table.add_column("task")
        table.add_column("state")
        table.add_column("time / rows", justify="right")
        styles = {
            SUCCESS: "green",
            FAILED: "red",
            SKIPPED: "yellow",
            KEPT: "cyan",
            TaskStatus.RUNNING: "blue",
            INTERRUPTED: "magenta",
            "queued": "dim",
            NOT_RUN: "yellow",
        }
        for tid, (state, detail) in self.states.items():
            if state == TaskStatus.RUNNING:
                detail = f"{time.perf_counter() - self.started.get(tid, time.perf_counter()):.1f}s"
                if tid in self.progress:
                    detail += f"  {self.progress[tid]}"
            table.add_row(tid, f"[{styles.get(state, 'white')}]{state}[/]", detail)
        table.caption = f"{self.done} of {self.total} done"
        return table

    def run_started(
        self, flow_id: str, dag_run_id: str, batch_id: int, task_ids: list[str]
    ) -> None:
        from rich.live import Live
        from rich.markup import escape

        self.console.print(
            f"[bold]Running {escape(flow_id)}[/] (run {escape(dag_run_id)}, batch {batch_id})"
        )
        self.total = len(task_ids)
        self.states = {t: ("queued", "") for t in task_ids}
        self.live = Live(
            get_renderable=self._table, console=self.console, refresh_per_second=8, transient=False
        )
        self.live.start()

    def task_started(self, task_id: str, try_number: int) -> None:
        self.started.setdefault(task_id, time.perf_counter())
        self.states[task_id] = (TaskStatus.RUNNING, f"try {try_number}" if try_number > 1 else "")

    def task_retrying(self, task_id: str, try_number: int, error: str, delay: float) -> None:
        self.states[task_id] = ("retrying", shown(error.splitlines()[0][:60]))

    def task_progress(
        self, task_id: str, rows: int | None, fraction: float | None, rows_per_second: float | None
    ) -> None:
        self.progress[task_id] = progress_text(rows, fraction, rows_per_second)

    def task_finished(self, outcome: TaskOutcome, index: int, total: int) -> None:
        self.done = index
        self.progress.pop(outcome.task_id, None)
        self.states[outcome.task_id] = (outcome.status, _detail(outcome))

    def event(self, record: dict[str, Any]) -> None:
        if self.verbosity > 0 and record["event"] == "statement":
            self.console.print(shown(statement_line(record)), markup=False, highlight=False)

    def run_finished(self, result: RunResult) -> None:
        from rich.markup import escape

        # The last frame shows how every task ended (an interrupted one too).
        for o in result.tasks:
            if o.task_id in self.states:
                self.states[o.task_id] = (o.status, _detail(o))
        if self.live is not None:
            self.live.refresh()
            self.live.stop()
        for o in result.tasks:
            for line in check_lines(o.checks, failed=False)[:-1]:
                self.console.print(
                    f"[yellow]{escape(o.task_id)}[/]: {escape(shown(line))}", highlight=False
                )
            if o.status == FAILED and o.error:
                self.console.print(
                    f"[red]{escape(o.task_id)}[/]: {escape(shown(o.error))}", highlight=False
                )
        self.console.print(
            summary_line(result),
            style="green" if result.ok else "red",
            highlight=False,
            markup=False,
        )
        if result.results_path:
            self.console.print(f"Results: {result.results_path}", highlight=False, markup=False)
        hint = resume_hint(result)
        if hint:
            self.console.print(hint, highlight=False, markup=False)
        further = next_hint(result)
        if further and self.verbosity >= 0:
            self.console.print(further, highlight=False, markup=False, style="dim")
        self._summary(result)


def make_reporter(
    json_out: bool = False, *, log_format: str = "text", verbosity: int = 0
) -> PlainReporter:
    """The reporter for this terminal: JSON events, the rich live view, or plain lines."""
    if log_format == "json":
        return EventReporter(verbosity=verbosity, summary_json=json_out)
    if (
        verbosity >= 0
        and sys.stderr.isatty()
        and not os.environ.get("NO_COLOR")
        and os.environ.get("TERM") != "dumb"
    ):
        return RichReporter(verbosity=verbosity, summary_json=json_out)
    return PlainReporter(verbosity=verbosity, summary_json=json_out)
