"""``qarion-etl ui``: a local, read-only web app over the run history and the XCom store.

Pages (all ``GET``; nothing is ever written):

- ``/``: runs, newest first, filtered by flow and status, with their tasks by status;
- ``/runs/<flow>/<run>``: the report of a run (``report.html``), which looks again every
  second while the run goes on (``/api/runs/<flow>/<run>`` gives its state);
- ``/flows/<flow>``: the grid of its last runs × tasks, then its last run (graph, tasks,
  SQL, config); a flow of ``flows_dir`` that has not run shows its file;
- ``/tasks/<flow>/<task>``: one task across runs: its durations, outcomes and errors, and
  the task as its last run had it;
- ``/xcoms``: the filters of ``xcom list`` over light entries (the backend's
  ``orm_deserialize_value``, never a full value); ``/xcoms/value`` loads one full value
  when it is at most ``VALUE_LIMIT`` bytes.

Every answer goes through ``security.Guard`` (only its own host; the security headers).
Starlette runs sync endpoints on a thread pool; one lock keeps the project's database
connections to one request at a time, which a local viewer never notices.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from qarion_etl.errors import QarionError, UsageError
from qarion_etl.report.data import run_view, scrub_preview, seconds_between
from qarion_etl.report.flowfiles import flow_ids
from qarion_etl.report.html import environment, render_report
from qarion_etl.run.model import RunStatus

if TYPE_CHECKING:
    from qarion_etl.project import Project

#: The largest XCom value the browser loads in full (bytes as stored).
VALUE_LIMIT = 256_000
#: XComs listed on a run's page (the XCom browser has them all).
RUN_XCOMS = 300
#: Rows on one page of the runs list and the XCom browser.
PAGE_ROWS = 200
NAV = [("Runs", "/"), ("XComs", "/xcoms")]


class Viewer:
    """The project's history and XCom store, as the pages read them."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.lock = threading.Lock()
        self.store = project.run_store()
        self._xcom: Any = None

    @property
    def xcom(self) -> Any:
        if self._xcom is None:
            self._xcom = self.project.xcom_service()
        return self._xcom

    def close(self) -> None:
        if self._xcom is not None:
            self._xcom.close()
        self.project.close()


def _page(template: str, **context: Any) -> HTMLResponse:
    context.setdefault("nav", NAV)
    html = environment().get_template(template).render(served=True, **context)
    return HTMLResponse(html)


def _href(*parts: str) -> str:
    """A path of the UI from its parts, each quoted (``/``, ``#`` and ``?`` included)."""
    return "".join(f"/{quote(p, safe='')}" for p in parts)


def _viewer(request: Request) -> Viewer:
    viewer: Viewer = request.app.state.viewer
    return viewer


def _known(exc: QarionError) -> HTTPException:
    return HTTPException(404 if isinstance(exc, UsageError) else 500, str(exc).splitlines()[0])


def runs_page(request: Request) -> HTMLResponse:
    v = _viewer(request)
    flow = request.query_params.get("flow") or None
    status = request.query_params.get("status") or None
    with v.lock:
        runs = v.store.list_runs(flow, limit=PAGE_ROWS + 1, status=status)
        more = v.store.count_runs(flow, status) - PAGE_ROWS if len(runs) > PAGE_ROWS else 0
        counts = v.store.task_counts(runs[:PAGE_ROWS])
        flow_files = flow_ids(v.project)
    shown = [
        {
            "dag_run_id": r.dag_run_id,
            "flow_id": r.flow_id,
            "batch_id": r.batch_id,
            "status": r.status,
            "started_at": r.started_at,
            "duration": seconds_between(r.started_at, r.ended_at),
            "counts": counts.get((r.flow_id, r.dag_run_id), {}),
        }
        for r in runs[:PAGE_ROWS]
    ]
    return _page(
        "ui_runs.html.j2",
        title="Runs",
        project_name=v.project.config.project.name,
        runs=shown,
        more=more,
        flow=flow,
        status=status,
        flows=sorted({*flow_files, *(r.flow_id for r in runs), *([flow] if flow else [])}),
        statuses=[str(s) for s in RunStatus if s != RunStatus.DRY_RUN],
        flow_files=flow_files,
    )


def _state(store: Any, flow: str, run_id: str) -> tuple[Any, dict[str, str], str]:
    """A run, its tasks' statuses and a stamp that changes whenever either changes."""
    run = store.find_run(run_id, flow)
    tis = sorted(store.task_instances(run.flow_id, run.dag_run_id), key=lambda t: t.task_id)
    stamp = json.dumps(
        [run.status, run.ended_at, [(t.task_id, t.status, t.try_number) for t in tis]]
    )
    return run, {t.task_id: t.status for t in tis}, stamp


def run_page(request: Request) -> HTMLResponse:
    v = _viewer(request)
    flow, run_id = request.path_params["flow"], request.path_params["run"]
    try:
        with v.lock:
            view = run_view(v.project, run_id, flow, xcom_limit=RUN_XCOMS, store=v.store)
            stamp = _state(v.store, view.flow_id, str(view.dag_run_id))[2]
    except QarionError as exc:
        raise _known(exc) from exc
    live = None
    if view.status == "running":
        live = f"/api/runs/{quote(flow, safe='')}/{quote(str(view.dag_run_id), safe='')}"
    html = render_report(
        view,
        served=True,
        nav=[*NAV, (f"Flow {view.flow_id}", _href("flows", view.flow_id))],
        live=live,
        stamp=stamp,
        task_links=_href("tasks", view.flow_id),
    )
    return HTMLResponse(html)


def run_state(request: Request) -> JSONResponse:
    v = _viewer(request)
    flow, run_id = request.path_params["flow"], request.path_params["run"]
    try:
        with v.lock:
            run, tasks, stamp = _state(v.store, flow, run_id)
    except QarionError as exc:
        raise _known(exc) from exc
    return JSONResponse({"status": run.status, "tasks": tasks, "stamp": stamp})


def flow_page(request: Request) -> HTMLResponse:
    """The flow's grid of runs × tasks, and its last run (graph, tasks, SQL, config)."""
    from qarion_etl.report.data import flow_view
    from qarion_etl.report.flowfiles import project_flows
    from qarion_etl.report.trends import GRID_RUNS, flow_grid, grid_html

    v = _viewer(request)
    flow = request.path_params["flow"]
    runs = _count(request, "runs", GRID_RUNS, 1, PAGE_ROWS)
    try:
        with v.lock:
            newest = v.store.list_runs(flow, limit=1)
            files = project_flows(v.project)
            if newest:
                view = run_view(
                    v.project, newest[0].dag_run_id, flow, xcom_limit=None, store=v.store
                )
                grid = flow_grid(v.store, flow, runs)
            elif flow in files:
                view, grid = flow_view(v.project, str(files[flow])), None
            else:
                raise HTTPException(404, "no such flow in this project")
    except QarionError as exc:
        raise _known(exc) from exc
    nav = [*NAV]
    if view.dag_run_id:
        nav.append((f"Last run {view.dag_run_id}", _href("runs", flow, view.dag_run_id)))
    html = render_report(
        view,
        served=True,
        nav=nav,
        task_links=_href("tasks", view.flow_id),
        run_label="last run",
        grid=None if grid is None else Markup(grid_html(grid)),
        grid_runs=0 if grid is None else len(grid.runs),
    )
    return HTMLResponse(html)


def _count(request: Request, name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter, kept within ``low`` … ``high``."""
    try:
        return max(low, min(high, int(request.query_params.get(name, default))))
    except ValueError:
        return default


def task_page(request: Request) -> HTMLResponse:
    """One task across runs: its durations, each run's outcome, and its last config and SQL."""
    from qarion_etl.report.data import task_view
    from qarion_etl.report.svg import duration_svg
    from qarion_etl.report.trends import task_points

    v = _viewer(request)
    flow, task = request.path_params["flow"], request.path_params["task"]
    with v.lock:
        rows = v.store.task_history(flow, task, limit=PAGE_ROWS)
        points = task_points(v.store, flow, task, _count(request, "runs", 50, 1, PAGE_ROWS))
        last = task_view(v.project, v.store, flow, task)
    shown = [
        {
            "dag_run_id": t.dag_run_id,
            "batch_id": t.batch_id,
            "status": t.status,
            "try_number": t.try_number,
            "started_at": t.started_at,
            "duration": seconds_between(t.started_at, t.ended_at),
            "rows": t.rows,
            "error": v.project.scrub(t.error) if t.error else None,
        }
        for t in rows
    ]
    chart = duration_svg(
        points,
        what=f"durations of task {task} over its last runs",
        href=lambda run: _href("runs", flow, run) + f"#task={quote(task, safe='')}",
    )
    return _page(
        "ui_task.html.j2",
        nav=[*NAV, (f"Flow {flow}", _href("flows", flow))],
        title=f"{flow} · task {task}",
        project_name=v.project.config.project.name,
        rows=shown,
        flow_id=flow,
        task_id=task,
        chart=chart,
        task=last,
    )


def _filters(request: Request) -> dict[str, str | None]:
    return {k: (request.query_params.get(k) or None) for k in ("flow", "task", "run", "key")}


def _entries(v: Viewer, f: dict[str, str | None], limit: int) -> list[Any]:
    return list(
        v.xcom.list(
            flow_id=f["flow"], task_id=f["task"], dag_run_id=f["run"], key=f["key"], limit=limit
        )
    )


def xcoms_page(request: Request) -> HTMLResponse:
    v = _viewer(request)
    f = _filters(request)
    if not v.project.config.xcom.enabled:
        entries: list[Any] = []
    else:
        with v.lock:
            entries = _entries(v, f, PAGE_ROWS + 1)
    shown = [
        {**e.to_dict(), "preview": scrub_preview(v.project, str(e.preview))[:500]}
        for e in entries[:PAGE_ROWS]
    ]
    return _page(
        "ui_xcoms.html.j2",
        title="XComs",
        project_name=v.project.config.project.name,
        entries=shown,
        more=len(entries) > PAGE_ROWS,
        filters=f,
    )


def xcom_value_page(request: Request) -> HTMLResponse:
    """One full value, read only when it is small enough (the listing says its size)."""
    v = _viewer(request)
    f = _filters(request)
    if not (f["flow"] and f["run"] and f["task"] and f["key"]):
        raise HTTPException(400, "flow, run, task and key are needed")
    with v.lock:
        found = _entries(v, f, 1)
        if not found:
            raise HTTPException(404, "no such XCom")
        entry = found[0]
        refused = None
        value = None
        if entry.size > VALUE_LIMIT:
            refused = (
                f"{entry.size:,} bytes: larger than the {VALUE_LIMIT:,} bytes the browser loads; "
                "read it with qarion-etl xcom get."
            )
        else:
            full = v.xcom.get(
                entry.task_id, entry.key, dag_run_id=entry.dag_run_id, flow_id=entry.flow_id
            )
            text = full if isinstance(full, str) else json.dumps(full, indent=2, default=str)
            value = v.project.scrub(text)
    shown = {**entry.to_dict(), "preview": scrub_preview(v.project, str(entry.preview))}
    return _page(
        "ui_value.html.j2",
        title=f"XCom {entry.task_id}.{entry.key}",
        project_name=v.project.config.project.name,
        entry=shown,
        value=value,
        refused=refused,
    )


def _timed(endpoint: Any) -> Any:
    """``endpoint``, answering with its server time in ``Server-Timing``."""

    def wrapped(request: Request) -> Response:
        start = time.perf_counter()
        response: Response = endpoint(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.1f}"
        return response

    return wrapped


def create_app(project: Project, *, hosts: frozenset[str]) -> Starlette:
    """The web app over ``project`` (its metadata database and XCom store).

    Args:
        hosts: the ``Host`` header values it answers (``security.allowed_hosts``).
    """
    from starlette.middleware import Middleware

    from qarion_etl.report.html import assets, source_hash
    from qarion_etl.ui.security import Guard, server_policy

    css, script = assets()
    policy = server_policy([source_hash(script)], [source_hash(css)])
    routes = [
        Route("/", _timed(runs_page)),
        Route("/runs/{flow}/{run:path}", _timed(run_page)),
        Route("/api/runs/{flow}/{run:path}", _timed(run_state)),
        Route("/flows/{flow}", _timed(flow_page)),
        Route("/tasks/{flow}/{task}", _timed(task_page)),
        Route("/xcoms", _timed(xcoms_page)),
        Route("/xcoms/value", _timed(xcom_value_page)),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, hosts=hosts, policy=policy, scrub=project.scrub)],
    )
    app.state.viewer = Viewer(project)
    return app


__all__ = ["VALUE_LIMIT", "create_app"]
