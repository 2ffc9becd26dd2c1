"""What a picture of a run shows, read from the run history, the run folder and XCom.

``run_view`` gathers one run: its row, every task instance with every try, the SQL each
task ran (``.qarion/runs/<flow>/<run>/<task>.sql``, with the task's own statement found
in it), the run's log, its XComs in the light form the backend's ``orm_deserialize_value``
gives (never a full value) and its graph. A run is drawn from the plan it recorded when
it started (``run.plans``: its tasks, edges, types, config and settings as run); only a
run from before plans were kept is drawn from the flow file as it is now, and the page
says so. ``flow_view`` is the same for a flow without a run. Everything that reaches a
page is text with the project's secrets masked.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qarion_etl.errors import clip
from qarion_etl.report import sqlfile
from qarion_etl.report.checks import checks_of, run_results
from qarion_etl.report.flowfiles import flow_of
from qarion_etl.run.history import all_tries
from qarion_etl.run.logs import run_folder, sql_file
from qarion_etl.run.plans import SETTINGS, default_settings, plain, plan_of

if TYPE_CHECKING:
    from qarion_etl.project import Project
    from qarion_etl.run.history import RunStore, TaskInstanceRecord
    from qarion_etl.run.model import TryRecord

#: The SQL kept per task on a page (the rest of a longer file is cut, with a note).
SQL_LIMIT = 64_000
#: The run log kept on a page: its start and its end (the middle of a longer one is cut).
LOG_LIMIT = 80_000
#: The light form of one XCom on a page.
PREVIEW_LIMIT = 500
#: XComs listed for one run (``qarion-etl xcom list --run`` lists them all).
XCOM_LIMIT = 1_000
#: Exit code of ``qarion-etl run`` by run status.
EXIT_CODES = {"success": 0, "failed": 1, "interrupted": 130}
#: Where a run's picture comes from.
FROM_PLAN, FROM_FILE = "plan", "file"


@dataclass
class TryView:
    try_number: int
    status: str
    started_at: str | None
    ended_at: str | None
    error: str | None


@dataclass
class TaskView:
    task_id: str
    type: str = ""
    status: str = "not_run"
    tries: int = 0
    started_at: str | None = None
    ended_at: str | None = None
    rows: int | None = None
    xcom_keys: list[str] = field(default_factory=list)
    error: str | None = None
    #: The task's SQL file, whole (cut at ``SQL_LIMIT``), and where it is.
    sql: str | None = None
    sql_path: str | None = None
    #: The task's own statement in it, rendered (``sqlfile.user_statement``).
    statement: sqlfile.Statement | None = None
    statements: int = 0
    attempts: list[TryView] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    #: The task's settings (``retries``, ``timeout_seconds`` …) that are not the defaults.
    settings: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    #: ``view``, ``incremental`` …; ``None`` for the default (a table) and non-models.
    materialized: str | None = None
    #: Declared columns: ``name``, ``schema_type``, ``required``, ``description``.
    columns: list[dict[str, Any]] = field(default_factory=list)
    #: The columns are the ones the run inferred from the file, not declared ones.
    columns_inferred: bool = False
    reads: str | None = None
    writes: str | None = None
    #: The results of the task's data checks in the run (``report.checks``), if it has any.
    checks: list[dict[str, Any]] | None = None

    @property
    def duration_seconds(self) -> float | None:
        return seconds_between(self.started_at, self.ended_at)

    @property
    def template(self) -> str | None:
        """The ``sql`` of the task's config, as written."""
        sql = self.config.get("sql")
        return sql if isinstance(sql, str) else None


@dataclass
class XComView:
    task_id: str
    key: str
    value_type: str
    size: int
    preview: str
    created_at: str


@dataclass
class RunView:
    """One run (or, with ``dag_run_id`` ``None``, a flow without one) as pages show it."""

    flow_id: str
    dag_run_id: str | None
    batch_id: int | None
    status: str
    started_at: str | None
    ended_at: str | None
    tasks: list[TaskView]
    #: ``(upstream, downstream, reason)``; reason ``dataset`` for a dataset edge.
    edges: list[tuple[str, str, str]]
    #: The run's XComs; ``None`` when they were not read (a page links to them instead).
    xcoms: list[XComView] | None = field(default_factory=list)
    #: The run has more XComs than ``xcoms`` holds.
    more_xcoms: bool = False
    flow_path: str | None = None
    #: Why the graph has no edges (the flow file no longer loads), if so.
    graph_note: str | None = None
    #: ``plan`` (what the run recorded when it started) or ``file`` (the flow file now).
    drawn_from: str = FROM_FILE
    #: The run's log (its start and end when long) and where it is.
    log: str | None = None
    log_path: str | None = None

    @property
    def duration_seconds(self) -> float | None:
        return seconds_between(self.started_at, self.ended_at)

    @property
    def exit_code(self) -> int | None:
        return EXIT_CODES.get(self.status)

    @property
    def failed(self) -> list[TaskView]:
        """The tasks that failed (or were interrupted), in graph order."""
        return [t for t in self.tasks if t.status in ("failed", "interrupted") and t.error]

    def only(self, task_ids: set[str]) -> None:
        """Keep ``task_ids`` (and the edges between them) only."""
        self.tasks = [t for t in self.tasks if t.task_id in task_ids]
        self.edges = [e for e in self.edges if e[0] in task_ids and e[1] in task_ids]

    def task(self, task_id: str) -> TaskView | None:
        return next((t for t in self.tasks if t.task_id == task_id), None)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tasks:
            out[t.status] = out.get(t.status, 0) + 1
        return out


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return (moment(end) - moment(start)).total_seconds()
    except ValueError:
        return None


@lru_cache(maxsize=16384)
def moment(text: str) -> dt.datetime:
    """A recorded time (ISO 8601; without a zone it is UTC)."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass
class _Shape:
    """A run's tasks in order with what was written for each, its edges, where it comes from."""

    order: list[str]
    tasks: dict[str, dict[str, Any]]
    edges: list[tuple[str, str, str]]
    path: str | None
    source: str
    note: str | None = None


def _from_plan(plan: dict[str, Any]) -> _Shape:
    tasks = {str(t["id"]): t for t in plan.get("tasks", []) if isinstance(t, dict) and "id" in t}
    edges = [
        (str(e[0]), str(e[1]), str(e[2]))
        for e in plan.get("edges", [])
        if isinstance(e, list) and len(e) == 3 and e[0] in tasks and e[1] in tasks
    ]
    return _Shape(list(tasks), tasks, edges, plan.get("path"), FROM_PLAN)


def _from_file(project: Project, flow_id: str) -> _Shape:
    spec, graph, note = flow_of(project, flow_id)
    if spec is None or graph is None:
        return _Shape([], {}, [], None, FROM_FILE, note)
    shape = _from_plan(plan_of(spec, graph, index=project.models()))
    shape.source = FROM_FILE
    return shape


def run_view(
    project: Project,
    run_id: str,
    flow: str | None = None,
    *,
    xcom_limit: int | None = XCOM_LIMIT,
    store: RunStore | None = None,
) -> RunView:
    """Run ``run_id`` of the project's history (``latest`` for the newest).

    Args:
        xcom_limit: how many of the run's XComs to list (``None``: none; the page links to
            the XCom browser instead). ``RunView.more_xcoms`` says when there are more.
    """
    store = store or project.run_store()
    run = store.find_run(run_id, flow)
    plan = store.run_plan(run.flow_id, run.dag_run_id)
    shape = _from_plan(plan) if plan else _from_file(project, run.flow_id)
    instances = {t.task_id: t for t in store.task_instances(run.flow_id, run.dag_run_id)}
    kept = store.tries(run.flow_id, run.dag_run_id)
    folder = run_folder(project.config.state_dir, run.flow_id, run.dag_run_id)
    order = shape.order + [t for t in instances if t not in shape.tasks]
    tasks = [
        _task_view(
            project, shape.tasks.get(tid), instances.get(tid), kept.get(tid, []), folder, tid
        )
        for tid in order
    ]
    results = run_results(project, run.flow_id, run.dag_run_id)  # read once for every task
    for view in tasks:
        entry = results.get(view.task_id)
        view.checks = checks_of(project, entry)
        _add_inferred(view, entry)
    note = shape.note
    if shape.source == FROM_FILE and note is None:
        note = "This run started before runs recorded their plan: it is drawn from the flow file as it is now."
    view_ = RunView(
        flow_id=run.flow_id,
        dag_run_id=run.dag_run_id,
        batch_id=run.batch_id,
        status=run.status,
        started_at=run.started_at,
        ended_at=run.ended_at,
        tasks=tasks,
        edges=shape.edges,
        flow_path=shape.path,
        graph_note=note,
        drawn_from=shape.source,
    )
    log = folder / "run.log"
    if log.is_file():
        view_.log_path = shown(project, log)
        view_.log = project.scrub(_read_log(log, _root_prefix(project)))
    if xcom_limit is None:
        view_.xcoms = None
    else:
        view_.xcoms = run_xcoms(project, run.flow_id, run.dag_run_id, xcom_limit + 1)
        view_.more_xcoms = len(view_.xcoms) > xcom_limit
        del view_.xcoms[xcom_limit:]
    return view_


def task_view(project: Project, store: RunStore, flow_id: str, task_id: str) -> TaskView | None:
    """``task_id`` as the newest run of ``flow_id`` that has it planned or ran it had it."""
    for run in store.list_runs(flow_id, limit=20):
        plan = store.run_plan(flow_id, run.dag_run_id)
        planned = _from_plan(plan).tasks.get(task_id) if plan else None
        ti = next(
            (t for t in store.task_instances(flow_id, run.dag_run_id) if t.task_id == task_id),
            None,
        )
        if planned is None and ti is None:
            continue
        folder = run_folder(project.config.state_dir, flow_id, run.dag_run_id)
        tries = store.tries(flow_id, run.dag_run_id).get(task_id, [])
        view = _task_view(project, planned, ti, tries, folder, task_id)
        view.checks = checks_of(project, run_results(project, flow_id, run.dag_run_id).get(task_id))
        return view
    return None


def _task_view(
    project: Project,
    planned: dict[str, Any] | None,
    ti: TaskInstanceRecord | None,
    kept: list[TryRecord],
    folder: Path,
    tid: str,
) -> TaskView:
    """One task of a run: as planned, as it went (``ti`` and the ``kept`` tries), its SQL."""
    view = _task_base(project, planned, tid)
    if ti is not None:
        view.status, view.tries = ti.status, ti.try_number
        view.started_at, view.ended_at, view.rows = ti.started_at, ti.ended_at, ti.rows
        view.xcom_keys = list(ti.xcom_keys)
        view.error = project.scrub(ti.error) if ti.error else None
        view.attempts = [
            TryView(
                a.try_number,
                a.status,
                a.started_at,
                a.ended_at,
                project.scrub(a.error) if a.error else None,
            )
            for a in all_tries(ti, kept)
        ]
    _add_sql(project, view, folder, tid)
    return view


def _add_inferred(view: TaskView, entry: dict[str, Any] | None) -> None:
    """The columns an ingestion without declared ones inferred in the run (its ``entry``
    of the results file)."""
    from qarion_etl.run.schemas import inferred_of

    if view.type != "ingestion" or view.columns or entry is None:
        return
    found = inferred_of(entry)
    if found:
        view.columns = [
            {"name": c.get("name"), "schema_type": c.get("schema_type")}
            for c in found if isinstance(c, dict)
        ]  # fmt: skip
        view.columns_inferred = True


def flow_view(project: Project, ref: str) -> RunView:
    """A flow without a run: its tasks (``not_run``), their config and graph."""
    spec, graph = project.validate(ref)
    shape = _from_plan(plan_of(spec, graph, index=project.models()))
    return RunView(
        flow_id=spec.id,
        dag_run_id=None,
        batch_id=None,
        status="not_run",
        started_at=None,
        ended_at=None,
        tasks=[_task_base(project, shape.tasks[tid], tid) for tid in shape.order],
        edges=shape.edges,
        flow_path=spec.shown_path,
    )


def run_xcoms(
    project: Project, flow_id: str, dag_run_id: str, limit: int = XCOM_LIMIT
) -> list[XComView]:
    """The run's XComs in their light form (no full value is read), at most ``limit``."""
    if not project.config.xcom.enabled:
        return []
    service = project.xcom_service(flow_id)
    try:
        entries = service.list(flow_id=flow_id, dag_run_id=dag_run_id, limit=limit)
    finally:
        service.close()
    return [
        XComView(
            e.task_id,
            e.key,
            e.value_type,
            e.size,
            clip(scrub_preview(project, str(e.preview)), PREVIEW_LIMIT),
            e.created_at.isoformat(),
        )
        for e in entries
    ]


def scrub_preview(project: Project, text: str) -> str:
    """A value's light form (one line) with the project's secrets masked, a secret that the
    preview cut short (``"tok-27…"``) included."""
    text = project.scrub(" ".join(text.split()))
    body = text.removesuffix("…")
    if body == text:
        return text
    for secret in project.secrets():
        for k in range(min(len(secret), len(body)) - 1, 2, -1):
            if body.endswith(secret[:k]):
                return body[:-k] + "***…"
    return text


def _task_base(project: Project, planned: dict[str, Any] | None, tid: str) -> TaskView:
    view = TaskView(tid)
    if planned is not None:
        view.type = str(planned.get("type") or "")
        config = planned.get("config")
        view.config = plain(config, project.scrub) if isinstance(config, dict) else {}
        settings = planned.get("settings")
        if isinstance(settings, dict):
            usual = default_settings()
            view.settings = {
                k: settings[k] for k in SETTINGS if k in settings and settings[k] != usual[k]
            }
        description = planned.get("description")
        view.description = project.scrub(description) if isinstance(description, str) else None
        materialized = planned.get("materialized")
        view.materialized = materialized if materialized not in (None, "table") else None
        columns = planned.get("columns")
        view.columns = (
            [c for c in columns if isinstance(c, dict)] if isinstance(columns, list) else []
        )
        reads = planned.get("reads")
        shown = ", ".join(map(str, reads)) if isinstance(reads, list) and reads else None
        view.reads = shown or planned.get("source_dataset_id") or None
        view.writes = planned.get("target_dataset_id") or None
    return view


@lru_cache(maxsize=65536)
def _sql_name(task_id: str) -> str:
    return sql_file(Path(), task_id).name


#: A SQL file read back, by its path and version (mtime, size): the pages of a finished run
#: come again and again (a run in progress is polled every second).
_SQL: dict[tuple[str, int, int], tuple[str, int, sqlfile.Statement | None]] = {}


def _add_sql(project: Project, view: TaskView, folder: Path, task_id: str) -> None:
    """The task's SQL file (already masked when written), cut at ``SQL_LIMIT``."""
    path = os.path.join(folder, _sql_name(task_id))
    try:
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
        if key not in _SQL:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read(SQL_LIMIT + 1)
            if len(text) > SQL_LIMIT:
                text = (
                    text[:SQL_LIMIT]
                    + f"\n-- … cut here; the whole file is {shown(project, path)}\n"
                )
            tries = sqlfile.parse(text)
            if len(_SQL) > 8192:
                _SQL.clear()
            _SQL[key] = (text, sum(len(t.statements) for t in tries), sqlfile.user_statement(tries))
    except OSError:
        return
    view.sql, view.statements, statement = _SQL[key]
    view.sql_path = shown(project, path)
    if view.type != "ingestion":
        view.statement = statement


def _root_prefix(project: Project) -> str:
    return str(project.config.root).rstrip("/") + "/"


def shown(project: Project, path: Path | str) -> str:
    """``path`` relative to the project's folder when it is inside it."""
    text, root = str(path), _root_prefix(project)
    return text[len(root) :] if text.startswith(root) else text


def _read_log(path: Path, root: str) -> str:
    """``run.log`` with paths shown relative to the project; the middle of a long one cut."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return ""
    text = text.replace(root, "")
    if len(text) <= LOG_LIMIT:
        return text
    head = text[: LOG_LIMIT // 4].rpartition("\n")[0]
    tail = text[-(LOG_LIMIT - len(head)) :].partition("\n")[2]
    left = text.count("\n") - head.count("\n") - tail.count("\n")
    return (
        f"{head}\n… {left:,} lines not shown here: the whole log is in the run's folder …\n{tail}"
    )
