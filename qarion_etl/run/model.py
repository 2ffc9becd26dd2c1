"""The plain data of a run: ``RunOptions`` in, ``TaskOutcome`` and ``RunResult`` out.

These cross every module of ``run`` and the command line, and serialise straight into
``.qarion/runs/<flow_id>/<dag_run_id>.json``. Statuses are ``StrEnum`` members, so they compare
equal to (and are stored as) their plain names.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import uuid
from dataclasses import dataclass, field, fields
from typing import Any

from qarion_etl.errors import QarionError


class TaskStatus(enum.StrEnum):
    """The state of one task instance."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"  # an upstream task failed
    NOT_RUN = "not_run"  # the run stopped first (--fail-fast, Ctrl-C)
    KEPT = "kept"  # succeeded in the resumed run and kept as it was
    INTERRUPTED = "interrupted"


class RunStatus(enum.StrEnum):
    """The state of one run."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    DRY_RUN = "dry_run"
    ABANDONED = "abandoned"  # recorded running, but its process is gone


@dataclass
class RunRequest:
    """What a run was asked to do: which flow's tasks, in which run, with what values.

    How the run is driven (alone, beside other flows, one task inside an orchestrator) is
    the ``Driver``'s (``run.drivers``), not the request's.
    """

    select: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    #: ``--selector NAME``: a ``[selectors]`` entry of the configuration, united with ``select``.
    selector: str | None = None
    run_id: str | None = None
    batch_id: int | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    resume: str | None = None
    task: str | None = None
    max_workers: int | None = None
    fail_fast: bool = False
    full_refresh: bool = False
    dry_run: bool = False


@dataclass
class RunOptions(RunRequest):
    """A ``RunRequest``, and for callers written before drivers, the orchestrator's word.

    ``RunOptions(run_id=…, task=…, orchestrated=True, try_number=n)`` is the request with
    ``Orchestrated(n)`` as its driver; new code passes ``driver=`` to ``FlowRunner.run``.
    """

    #: An orchestrator (Airflow) drives the run: ``drivers.Orchestrated(try_number)``.
    orchestrated: bool = False
    #: The orchestrator's try number of this execution of ``task`` (1 for the first).
    try_number: int = 1


@dataclass(frozen=True, slots=True)
class TryRecord:
    """One try of a task, written to the run history the moment it ends.

    The same record is kept in the tries table, the results file (``attempts``), ``runs
    show`` and the report.
    """

    try_number: int
    status: str
    started_at: str | None
    ended_at: str | None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class TaskOutcome:
    """The outcome of one task of a run."""

    task_id: str
    status: TaskStatus = TaskStatus.NOT_RUN
    tries: int = 0
    started_at: str | None = None
    ended_at: str | None = None
    duration_seconds: float | None = None
    rows: int | None = None
    xcom_keys: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: str | None = None
    exit_code: int | None = None  # 3 when the last try failed because a store was unreachable
    #: Why the last error cannot pass on another try (``run.retry``), if it cannot.
    not_retried: str | None = None
    #: ``.qarion/runs/<flow_id>/<dag_run_id>/<task_id>.sql``: the statements of every try.
    sql_path: str | None = None
    #: Every try of this execution, in order.
    attempts: list[TryRecord] = field(default_factory=list)
    #: The results of the task's data checks in its last try (``tasks.checks``), if it has any.
    checks: list[dict[str, Any]] | None = None
    #: The exception of the last failed try (for ``--debug``; not serialised).
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        data = {
            f.name: copy.deepcopy(getattr(self, f.name))
            for f in fields(self)
            if f.name not in ("exception", "attempts")
        }
        data["attempts"] = [a.as_dict() for a in self.attempts]
        return data


@dataclass
class RunResult:
    """The outcome of one ``qarion-etl run``."""

    flow_id: str
    dag_run_id: str
    batch_id: int
    status: RunStatus
    started_at: str
    ended_at: str | None = None
    duration_seconds: float | None = None
    tasks: list[TaskOutcome] = field(default_factory=list)
    results_path: str | None = None
    #: ``.qarion/runs/<flow_id>/<dag_run_id>/run.log``.
    log_path: str | None = None
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.status == RunStatus.SUCCESS

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tasks:
            out[t.status] = out.get(t.status, 0) + 1
        return out

    def first_failure(self) -> TaskOutcome | None:
        return next((t for t in self.tasks if t.status == TaskStatus.FAILED), None)

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "tasks"}
        data["tasks"] = [t.as_dict() for t in self.tasks]
        data["counts"] = self.counts()
        return data


def now_iso() -> str:
    """The current moment in UTC, ISO 8601 with microseconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def new_run_id(flow_id: str) -> str:
    """``<flow>__<UTC time>_<random>``."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{flow_id}__{stamp}_{uuid.uuid4().hex[:6]}"


def error_text(exc: BaseException) -> str:
    """What a task's error says in results: our message, or the type and text of any other."""
    if isinstance(exc, QarionError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
