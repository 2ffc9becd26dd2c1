"""Run output: the reporters of ``qarion-etl run`` (rich only for the live view).

- ``RichReporter``: a live task table on a terminal, then a summary table.
- ``PlainReporter``: one "N of M task … OK in 0.12s" line per task (not a terminal, or
  ``NO_COLOR``), then a summary line.
- ``JsonReporter``: plain lines on stderr and one JSON document on stdout at the end.

Everything human goes to stderr; stdout carries only ``--json`` documents.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from qarion_etl.run.model import RunResult, TaskOutcome, TaskStatus

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
        parts.append(f"({o.rows} row{'s' if o.rows != 1 else ''})")
    if o.tries > 1:
        parts.append(f"after {o.tries} tries")
    return " ".join(parts)


def summary_line(result: RunResult) -> str:
    counts = result.counts()
    order = [SUCCESS, KEPT, FAILED, SKIPPED, INTERRUPTED, NOT_RUN]
    text = ", ".join(f"{counts[s]} {_LABEL[s].lower()}" for s in order if counts.get(s))
    return (
        f"Run {result.dag_run_id} (batch {result.batch_id}) {result.status.upper()}: {text} "
        f"in {result.duration_seconds or 0:.2f}s"
    )


class PlainReporter:
    """Line-per-event output on stderr."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.width = 30

    def _out(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def run_started(
        self, flow_id: str, dag_run_id: str, batch_id: int, task_ids: list[str]
    ) -> None:
        self.width = max([len(t) for t in task_ids] + [10]) + 2
        n = len(task_ids)
        self._out(
            f"Running {flow_id}: {n} task{'s' if n != 1 else ''} (run {dag_run_id}, batch {batch_id})"
        )

    def task_started(self, task_id: str, try_number: int) -> None:
        pass

    def task_retrying(self, task_id: str, try_number: int, error: str, delay: float) -> None:
        self._out(
            f"  retrying {task_id} (try {try_number} failed: {error.splitlines()[0]}) in {delay:g}s"
        )

    def task_finished(self, outcome: TaskOutcome, index: int, total: int) -> None:
        name = f"{outcome.task_id} ".ljust(self.width, ".")
        label = _paint(_LABEL.get(outcome.status, outcome.status.upper()), outcome.status)
        self._out(f"{index} of {total} {name} {label} {_detail(outcome)}".rstrip())
        if outcome.status == FAILED and outcome.error:
            for line in outcome.error.splitlines():
                self._out(f"    {line}")

    def run_finished(self, result: RunResult) -> None:
        self._out(_paint(summary_line(result), SUCCESS if result.ok else FAILED))
        if result.results_path:
            self._out(f"Results: {result.results_path}")


class JsonReporter(PlainReporter):
    """Plain lines on stderr, and the run summary as one JSON document on stdout."""

    def run_finished(self, result: RunResult) -> None:
        super().run_finished(result)
        sys.stdout.write(json.dumps(result.as_dict(), indent=2, default=str) + "\n")
        sys.stdout.flush()


class RichReporter(PlainReporter):
    """A live table of task states on a terminal."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console

        self.console = Console(stderr=True)
        self.states: dict[str, tuple[str, str]] = {}
        self.started: dict[str, float] = {}
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
            table.add_row(tid, f"[{styles.get(state, 'white')}]{state}[/]", detail)
        table.caption = f"{self.done} of {self.total} done"
        return table

    def run_started(
        self, flow_id: str, dag_run_id: str, batch_id: int, task_ids: list[str]
    ) -> None:
        from rich.live import Live

        self.console.print(f"[bold]Running {flow_id}[/] (run {dag_run_id}, batch {batch_id})")
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
        self.states[task_id] = ("retrying", error.splitlines()[0][:60])

    def task_finished(self, outcome: TaskOutcome, index: int, total: int) -> None:
        self.done = index
        self.states[outcome.task_id] = (outcome.status, _detail(outcome))

    def run_finished(self, result: RunResult) -> None:
        if self.live is not None:
            self.live.stop()
        for o in result.tasks:
            if o.status == FAILED and o.error:
                self.console.print(f"[red]{o.task_id}[/]: {o.error}", markup=True, highlight=False)
        self.console.print(
            summary_line(result), style="green" if result.ok else "red", highlight=False
        )
        if result.results_path:
            self.console.print(f"Results: {result.results_path}", highlight=False)


def make_reporter(json_out: bool = False) -> PlainReporter:
    """The reporter for this terminal: JSON, rich live view, or plain lines."""
    if json_out:
        return JsonReporter()
    if sys.stderr.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb":
        return RichReporter()
    return PlainReporter()
