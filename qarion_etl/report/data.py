"""What a picture of a run shows, read from the run history, the run folder and XCom.

``run_view`` gathers one run: its row, every task instance with every try, the SQL each
task ran (``.qarion/runs/<flow>/<run>/<task>.sql``), its XComs in the light form the backend's
``orm_deserialize_value`` gives (never a full value) and the flow's graph when the flow
file still loads. ``flow_view`` is the same for a flow without a run. Everything that
reaches a page is text with the project's secrets masked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qarion_etl.errors import QarionError, clip
from qarion_etl.run.history import all_tries
from qarion_etl.run.logs import run_folder, sql_file

if TYPE_CHECKING:
    from qarion_etl.definitions.flow import Flow
    from qarion_etl.definitions.graph import TaskGraph
    from qarion_etl.project import Project
    from qarion_etl.run.history import RunStore

#: The SQL kept per task on a page (the rest of a longer file is cut, with a note).
SQL_LIMIT = 64_000
#: The light form of one XCom on a page.
PREVIEW_LIMIT = 500
#: XComs listed for one run.
XCOM_LIMIT = 2_000
#: Exit code of ``qarion-etl run`` by run status.
EXIT_CODES = {"success": 0, "failed": 1, "interrupted": 130}


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
    sql: str | None = None
    sql_path: str | None = None
    attempts: list[TryView] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_seconds(self) -> float | None:
        return seconds_between(self.started_at, self.ended_at)


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
    xcoms: list[XComView] = field(default_factory=list)
    flow_path: str | None = None
    #: Why the graph has no edges (the flow file no longer loads), if so.
    graph_note: str | None = None

    @property
    def duration_seconds(self) -> float | None:
        return seconds_between(self.started_at, self.ended_at)

    @property
    def exit_code(self) -> int | None:
        return EXIT_CODES.get(self.status)

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


def moment(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def run_view(
    project: Project,
    run_id: str,
    flow: str | None = None,
    *,
    with_xcoms: bool = True,
    store: RunStore | None = None,
) -> RunView:
    """Run ``run_id`` of the project's history (``latest`` for the newest)."""
    store = store or project.run_store()
    run = store.find_run(run_id, flow)
    spec, graph, note = _flow_of(project, run.flow_id)
    instances = {t.task_id: t for t in store.task_instances(run.flow_id, run.dag_run_id)}
    kept = store.tries(run.flow_id, run.dag_run_id)
    folder = run_folder(project.config.state_dir, run.flow_id, run.dag_run_id)
    order = _order(spec, graph, list(instances))
    ids = frozenset(spec.task_ids) if spec is not None else frozenset()
    tasks = []
    for tid in order:
        view = _task_base(project, spec, tid, ids)
        ti = instances.get(tid)
        if ti is not None:
            view.status, view.tries = ti.status, ti.try_number
            view.started_at, view.ended_at, view.rows = ti.started_at, ti.ended_at, ti.rows
            view.xcom_keys = list(ti.xcom_keys)
            view.error = project.scrub(ti.error) if ti.error else None
            view.attempts = [
                TryView(
                    int(a["try_number"]),
                    str(a["status"]),
                    a["started_at"],
                    a["ended_at"],
                    project.scrub(a["error"]) if a["error"] else None,
                )
                for a in all_tries(ti, kept.get(tid, []))
            ]
        sql_path = sql_file(folder, tid)
        if sql_path.is_file():
            view.sql_path = str(sql_path)
            view.sql = _read_sql(sql_path)
        tasks.append(view)
    view_ = RunView(
        flow_id=run.flow_id,
        dag_run_id=run.dag_run_id,
        batch_id=run.batch_id,
        status=run.status,
        started_at=run.started_at,
        ended_at=run.ended_at,
        tasks=tasks,
        edges=_edges(graph, order),
        flow_path=None if spec is None else spec.shown_path,
        graph_note=note,
    )
    if with_xcoms:
        view_.xcoms = run_xcoms(project, run.flow_id, run.dag_run_id)
    return view_


def flow_view(project: Project, ref: str) -> RunView:
    """A flow without a run: its tasks (``not_run``), their config and graph."""
    spec, graph = project.validate(ref)
    order = _order(spec, graph, [])
    return RunView(
        flow_id=spec.id,
        dag_run_id=None,
        batch_id=None,
        status="not_run",
        started_at=None,
        ended_at=None,
        tasks=[_task_base(project, spec, tid, frozenset(order)) for tid in order],
        edges=_edges(graph, order),
        flow_path=spec.shown_path,
    )


def run_xcoms(project: Project, flow_id: str, dag_run_id: str) -> list[XComView]:
    """The run's XComs in their light form (no full value is read)."""
    if not project.config.xcom.enabled:
        return []
    service = project.xcom_service(flow_id)
    try:
        entries = service.list(flow_id=flow_id, dag_run_id=dag_run_id, limit=XCOM_LIMIT)
    finally:
        service.close()
    return [
        XComView(
            e.task_id,
            e.key,
            e.value_type,
            e.size,
            clip(project.scrub(" ".join(str(e.preview).split())), PREVIEW_LIMIT),
            e.created_at.isoformat(),
        )
        for e in entries
    ]


#: Validated flows by file and version (path, mtime, size): pages of one flow come often.
_FLOWS: dict[tuple[str, int, int], tuple[Flow, TaskGraph]] = {}
#: The flow id of each flow file, by file and version.
_IDS: dict[tuple[str, int, int], str] = {}


def _version(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path), stat.st_mtime_ns, stat.st_size)


def project_flows(project: Project) -> dict[str, Path]:
    """The flow files of the project's ``flows_dir``, by flow id and by file stem.

    The pages draw only these: a name that is not one of them (a path, a file that is not
    a flow) is not looked up anywhere else.
    """
    out: dict[str, Path] = {}
    for path in project.flow_paths():
        try:
            key = _version(path)
            if key not in _IDS:
                if len(_IDS) > 1024:
                    _IDS.clear()
                _IDS[key] = project.load_flow(path).id
            out.setdefault(_IDS[key], path)
        except (QarionError, OSError):
            pass
        out.setdefault(path.stem, path)
    return out


def _flow_of(project: Project, flow_id: str) -> tuple[Flow | None, TaskGraph | None, str | None]:
    """The flow ``flow_id`` of ``flows_dir`` as its file says today, validated."""
    path = project_flows(project).get(flow_id)
    if path is None:
        return None, None, f"the project has no flow file of '{clip(flow_id)}' now"
    try:
        key = _version(path)
        if key not in _FLOWS:
            if len(_FLOWS) > 64:
                _FLOWS.clear()
            _FLOWS[key] = project.validate(path)
        spec, graph = _FLOWS[key]
    except (QarionError, OSError) as exc:
        return None, None, f"the flow file does not load now: {str(exc).splitlines()[0]}"
    return spec, graph, None


def _order(spec: Flow | None, graph: TaskGraph | None, seen: list[str]) -> list[str]:
    """The flow's tasks in graph order, then tasks of the run the flow no longer has."""
    order = graph.topological_order() if graph is not None else []
    if spec is not None and not order:
        order = list(spec.task_ids)
    return order + [t for t in seen if t not in order]


def _edges(graph: TaskGraph | None, order: list[str]) -> list[tuple[str, str, str]]:
    if graph is None:
        return []
    known = set(order)
    return [
        (a, b, str(data.get("reason", "dependency")))
        for a, b, data in graph.edges(data=True)
        if a in known and b in known
    ]


def _task_base(project: Project, spec: Flow | None, tid: str, ids: frozenset[str]) -> TaskView:
    view = TaskView(tid)
    if spec is not None and tid in ids:
        task = spec.task(tid)
        view.type = task.type
        view.config = _scrubbed(project, dict(task.config))
    return view


def _scrubbed(project: Project, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrubbed(project, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(project, v) for v in value]
    if isinstance(value, str):
        return project.scrub(value)
    return value


def _read_sql(path: Path) -> str:
    """A task's SQL file (already masked when written), cut at ``SQL_LIMIT``."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            text = fh.read(SQL_LIMIT + 1)
    except OSError:
        return ""
    if len(text) > SQL_LIMIT:
        text = text[:SQL_LIMIT] + f"\n-- … cut here; the whole file is {path}\n"
    return text
