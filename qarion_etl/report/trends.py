"""A flow over its runs: the grid of runs × tasks, and a task's durations over its runs.

The grid is Airflow's grid view turned for a flow: one column per run (oldest left), one
row per task (in the newest run's plan order, then tasks only older runs had), each cell
coloured by the task's status in that run and leading to that task on the run's page;
above each column a bar shows the run's duration. ``task_points`` gives a task's last
runs for ``svg.duration_svg``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote

from qarion_etl.report.data import seconds_between
from qarion_etl.report.text import visible

if TYPE_CHECKING:
    from qarion_etl.run.history import RunRecord, RunStore

#: Runs in a flow's grid.
GRID_RUNS = 25
#: Height of the duration bar above a grid column.
BAR_H = 40


@dataclass
class Cell:
    status: str
    tries: int
    seconds: float | None


@dataclass
class Grid:
    flow_id: str
    #: Oldest first.
    runs: list[RunRecord]
    tasks: list[str]
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)

    def status(self, task_id: str, dag_run_id: str) -> str | None:
        cell = self.cells.get((task_id, dag_run_id))
        return None if cell is None else cell.status


def flow_grid(store: RunStore, flow_id: str, runs: int = GRID_RUNS) -> Grid:
    """The last ``runs`` runs of ``flow_id`` × their tasks."""
    newest_first = store.list_runs(flow_id, limit=runs)
    ids = [r.dag_run_id for r in newest_first]
    order: list[str] = []
    if newest_first:
        plan = store.run_plan(flow_id, ids[0])
        if plan:
            order = [str(t["id"]) for t in plan.get("tasks", []) if isinstance(t, dict)]
    grid = Grid(flow_id, newest_first[::-1], order)
    seen = set(order)
    by_run = {r: i for i, r in enumerate(ids)}
    for ti in sorted(store.runs_task_instances(flow_id, ids), key=lambda t: by_run[t.dag_run_id]):
        grid.cells[(ti.task_id, ti.dag_run_id)] = Cell(
            ti.status, ti.try_number, seconds_between(ti.started_at, ti.ended_at)
        )
        if ti.task_id not in seen:
            seen.add(ti.task_id)
            grid.tasks.append(ti.task_id)
    return grid


def task_points(
    store: RunStore, flow_id: str, task_id: str, limit: int
) -> list[tuple[str, str, float | None]]:
    """``(run id, status, seconds)`` of ``task_id`` in its last ``limit`` runs, oldest first."""
    rows = store.task_history(flow_id, task_id, limit=limit)
    return [(t.dag_run_id, t.status, seconds_between(t.started_at, t.ended_at)) for t in rows][::-1]


def grid_html(grid: Grid) -> str:
    """The grid as an HTML table (``table#grid``); each cell ``td[data-run][data-status]``
    in a ``tr[data-task]``, linking to ``/runs/<flow>/<run>#task=<task>``."""
    flow = quote(grid.flow_id, safe="")
    durations = [seconds_between(r.started_at, r.ended_at) for r in grid.runs]
    longest = max((d for d in durations if d is not None), default=0.0) or 1.0
    head = ['<table class="grid" id="grid"><thead><tr><th class="task"></th>']
    for run, seconds in zip(grid.runs, durations, strict=True):
        h = 2.0 if seconds is None else max(2.0, BAR_H * seconds / longest)
        tip = f"{visible(run.dag_run_id)} · {run.status}" + (
            "" if seconds is None else f" · {seconds:.2f}s"
        )
        head.append(
            f'<th class="run" data-run="{escape(visible(run.dag_run_id))}" '
            f'data-status="{escape(run.status)}"><a href="/runs/{flow}/'
            f'{quote(run.dag_run_id, safe="")}" title="{escape(tip)}">'
            f'<svg width="18" height="{BAR_H + 2}" aria-hidden="true"><rect class="s-{escape(run.status)}" '
            f'x="2" y="{BAR_H + 1 - h:.1f}" width="14" height="{h:.1f}" rx="2"/></svg></a></th>'
        )
    head.append("</tr></thead><tbody>")
    rows = []
    for task in grid.tasks:
        shown = escape(visible(task))
        link = quote(task, safe="")
        cells = [
            f'<tr data-task="{shown}"><th class="task"><a class="id" '
            f'href="/tasks/{flow}/{link}">{shown}</a></th>'
        ]
        for run in grid.runs:
            cell = grid.cells.get((task, run.dag_run_id))
            run_attr = escape(visible(run.dag_run_id))
            if cell is None:
                cells.append(f'<td class="none" data-run="{run_attr}" data-status="none"></td>')
                continue
            tip = f"{visible(task)} in {visible(run.dag_run_id)}: {cell.status.replace('_', ' ')}"
            if cell.seconds is not None:
                tip += f", {cell.seconds:.2f}s"
            if cell.tries > 1:
                tip += f", {cell.tries} tries"
            cells.append(
                f'<td class="s-{escape(cell.status)}" data-run="{run_attr}" '
                f'data-status="{escape(cell.status)}"><a href="/runs/{flow}/'
                f'{quote(run.dag_run_id, safe="")}#task={link}" title="{escape(tip)}"></a></td>'
            )
        cells.append("</tr>")
        rows.append("".join(cells))
    return "".join(head) + "".join(rows) + "</tbody></table>"
