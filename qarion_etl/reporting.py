"""What a run reports while it goes, and what it returns at the end.

The library never prints: ``FlowRunner`` calls a ``Reporter`` (sqlmesh's ``Console``
habit). The CLI passes a rich, plain-text or JSON reporter from ``cli/console.py``;
library users and tests get ``NullReporter``. ``TaskOutcome`` and ``RunResult`` are plain
data so they serialise straight into ``.qarion/runs/<dag_run_id>.json``.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

#: Final states of a task instance.
SUCCESS = "success"
FAILED = "failed"
SKIPPED = "skipped"  # an upstream task failed
NOT_RUN = "not_run"  # the run stopped first (--fail-fast, Ctrl-C)
KEPT = "kept"  # succeeded in the resumed run and kept as it was
INTERRUPTED = "interrupted"


@dataclass
class TaskOutcome:
    """The outcome of one task of a run."""

    task_id: str
    status: str = NOT_RUN
    tries: int = 0
    started_at: str | None = None
    ended_at: str | None = None
    duration_seconds: float | None = None
    rows: int | None = None
    xcom_keys: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: str | None = None
    exit_code: int | None = None  # 3 when the last try failed because a store was unreachable

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    """The outcome of one ``qarion-etl run``."""

    flow_id: str
    dag_run_id: str
    batch_id: int
    status: str
    started_at: str
    ended_at: str | None = None
    duration_seconds: float | None = None
    tasks: list[TaskOutcome] = field(default_factory=list)
    results_path: str | None = None
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.status == SUCCESS

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tasks:
            out[t.status] = out.get(t.status, 0) + 1
        return out

    def first_failure(self) -> TaskOutcome | None:
        return next((t for t in self.tasks if t.status == FAILED), None)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["counts"] = self.counts()
        return data


class Reporter(Protocol):
    """Receives the events of a run, in order, from the runner's main thread."""

    def run_started(
        self, flow_id: str, dag_run_id: str, batch_id: int, task_ids: list[str]
    ) -> None:
        """The run is about to execute ``task_ids`` (in topological order)."""

    def task_started(self, task_id: str, try_number: int) -> None:
        """A try of ``task_id`` started."""

    def task_retrying(self, task_id: str, try_number: int, error: str, delay: float) -> None:
        """Try ``try_number`` failed with ``error``; the next one starts after ``delay`` s."""

    def task_finished(self, outcome: TaskOutcome, index: int, total: int) -> None:
        """``outcome`` is final; it is the ``index``-th of ``total`` to finish."""

    def run_finished(self, result: RunResult) -> None:
        """The run is over (any status)."""


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

    def task_finished(self, outcome: TaskOutcome, index: int, total: int) -> None:
        pass

    def run_finished(self, result: RunResult) -> None:
        pass


def write_results(result: RunResult, folder: Path) -> str | None:
    """Write ``<folder>/<dag_run_id>.json`` atomically; returns its path (``None`` if unwritable)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', result.dag_run_id)}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result.as_dict(), indent=2, default=str), encoding="utf-8")
        os.replace(tmp, path)
        return str(path)
    except OSError:
        return None


class SerialReporter:
    """Calls the reporter under a lock, so worker threads never interleave output."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(*args: Any) -> None:
            with self.lock:
                method(*args)

        return call
