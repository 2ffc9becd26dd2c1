"""What a run reports while it goes: the ``Reporter`` protocol and two small reporters.

The library never prints: ``FlowRunner`` calls a ``Reporter`` (sqlmesh's ``Console``
habit). The CLI passes a rich, plain-text or JSON reporter from ``cli/console.py``;
library users and tests get ``NullReporter``. ``SerialReporter`` wraps any reporter so
that worker threads never interleave its output.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from qarion_etl.run.model import RunResult, TaskOutcome


class Reporter(Protocol):
    """Receives the events of a run, in order."""

    def run_started(
        self, flow_id: str, dag_run_id: str, batch_id: int, task_ids: list[str]
    ) -> None:
        """The run is about to execute ``task_ids`` (in topological order)."""

    def task_started(self, task_id: str, try_number: int) -> None:
        """A try of ``task_id`` started."""

    def task_retrying(self, task_id: str, try_number: int, error: str, delay: float) -> None:
        """Try ``try_number`` failed with ``error``; the next one starts after ``delay`` s."""

    def task_progress(
        self, task_id: str, rows: int | None, fraction: float | None, rows_per_second: float | None
    ) -> None:
        """A long task got on: ``rows`` so far, ``fraction`` of its input read (if known)."""

    def task_finished(self, outcome: TaskOutcome, index: int, total: int) -> None:
        """``outcome`` is final; it is the ``index``-th of ``total`` to finish."""

    def run_finished(self, result: RunResult) -> None:
        """The run is over (any status)."""

    def event(self, record: dict[str, Any]) -> None:
        """Every event of the run as a structured record (``run.logs``), statements included."""


class NullReporter:
    """A reporter that ignores everything."""

    def run_started(
        self, flow_id: str, dag_run_id: str, batch_id: int, task_ids: list[str]
    ) -> None:
        pass

    def task_started(self, task_id: str, try_number: int) -> None:
        pass

    def task_retrying(self, task_id: str, try_number: int, error: str, delay: float) -> None:
        pass

    def task_progress(
        self, task_id: str, rows: int | None, fraction: float | None, rows_per_second: float | None
    ) -> None:
        pass

    def task_finished(self, outcome: TaskOutcome, index: int, total: int) -> None:
        pass

    def run_finished(self, result: RunResult) -> None:
        pass

    def event(self, record: dict[str, Any]) -> None:
        pass


class SerialReporter:
    """Calls the reporter under a lock, so worker threads never interleave output."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self.lock = threading.Lock()

    def run_started(
        self, flow_id: str, dag_run_id: str, batch_id: int, task_ids: list[str]
    ) -> None:
        with self.lock:
            self.inner.run_started(flow_id, dag_run_id, batch_id, task_ids)

    def task_started(self, task_id: str, try_number: int) -> None:
        with self.lock:
            self.inner.task_started(task_id, try_number)

    def task_retrying(self, task_id: str, try_number: int, error: str, delay: float) -> None:
        with self.lock:
            self.inner.task_retrying(task_id, try_number, error, delay)

    def task_progress(
        self, task_id: str, rows: int | None, fraction: float | None, rows_per_second: float | None
    ) -> None:
        with self.lock:
            self.inner.task_progress(task_id, rows, fraction, rows_per_second)

    def task_finished(self, outcome: TaskOutcome, index: int, total: int) -> None:
        with self.lock:
            self.inner.task_finished(outcome, index, total)

    def run_finished(self, result: RunResult) -> None:
        with self.lock:
            self.inner.run_finished(result)

    def event(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.inner.event(record)


def progress_text(rows: int | None, fraction: float | None, rows_per_second: float | None) -> str:
    """``1,234,567 rows, 25% of the file, 120,000 rows/s``.

    The engine that reads a file itself (DuckDB) tells only the share of it read so far.
    """
    parts = []
    if rows is not None:
        parts.append(f"{rows:,} row{'s' if rows != 1 else ''}")
    if fraction is not None:
        parts.append(f"{fraction:.0%} of the file")
    if rows_per_second is not None:
        parts.append(f"{rows_per_second:,.0f} rows/s")
    return ", ".join(parts) or "working"
