"""The pictures as SVG text: the task graph coloured by status, and a timeline of tries.

The graph is laid out left to right in layers: a task sits one layer right of its
furthest upstream task, and within a layer tasks are ordered by the mean position of
their upstream tasks (one sweep, which untangles most flows). Dependency edges are solid,
dataset edges dashed. Each node is a ``<g class="node s-<status>" data-task="<id>">``
so a page's script and the browser tests can find it. No layout library is needed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from html import escape

from qarion_etl.report.colours import COLOURS
from qarion_etl.report.data import RunView, TaskView, moment

NODE_W, NODE_H = 180, 34
GAP_X, GAP_Y = 56, 14
PAD = 12
STATUSES = tuple(COLOURS)


def _colours(status: str) -> tuple[str, str]:
    return COLOURS.get(status, COLOURS["not_run"])


def layers(view: RunView) -> list[list[str]]:
    """The tasks of ``view`` in layers, left to right, each ordered to spare crossings."""
    order = [t.task_id for t in view.tasks]
    ups: dict[str, list[str]] = {t: [] for t in order}
    for a, b, _ in view.edges:
        if a in ups and b in ups:
            ups[b].append(a)
    depth: dict[str, int] = {}
    for tid in order:  # the tasks come in graph order: upstream first
        depth[tid] = 1 + max((depth[u] for u in ups[tid] if u in depth), default=-1)
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for tid in order:
        out[depth[tid]].append(tid)
    position: dict[str, float] = {}
    for layer in out:
        if position:
            index = {tid: i for i, tid in enumerate(layer)}

            def mean(tid: str, _index: dict[str, int] = index) -> float:
                seen = [position[u] for u in ups[tid] if u in position]
                return sum(seen) / len(seen) if seen else float(_index[tid])

            layer.sort(key=mean)
        for i, tid in enumerate(layer):
            position[tid] = float(i)
    return out


def graph_svg(view: RunView) -> str:
    """The task graph of ``view`` as one ``<svg>`` element."""
    columns = layers(view)
    tasks = {t.task_id: t for t in view.tasks}
    where: dict[str, tuple[int, int]] = {}
    for c, layer in enumerate(columns):
        for r, tid in enumerate(layer):
            where[tid] = (PAD + c * (NODE_W + GAP_X), PAD + r * (NODE_H + GAP_Y))
    width = PAD * 2 + max(len(columns), 1) * (NODE_W + GAP_X) - GAP_X
    height = PAD * 2 + max((len(layer) for layer in columns), default=1) * (NODE_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="task graph of {escape(view.flow_id)}">',
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#616161"/></marker></defs>',
    ]
    for a, b, reason in view.edges:
        if a not in where or b not in where:
            continue
        (ax, ay), (bx, by) = where[a], where[b]
        x1, y1, x2, y2 = ax + NODE_W, ay + NODE_H // 2, bx, by + NODE_H // 2
        bend = max((x2 - x1) // 2, 20)
        dash = ' stroke-dasharray="5,4"' if reason == "dataset" else ""
        parts.append(
            f'<path class="edge {escape(reason)}" data-from="{escape(a)}" data-to="{escape(b)}" '
            f'd="M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}" fill="none" '
            f'stroke="#616161" stroke-width="1.3"{dash} marker-end="url(#arrow)"/>'
        )
    for tid, (x, y) in where.items():
        parts.append(_node(tasks[tid], x, y))
    parts.append("</svg>")
    return "".join(parts)


def _node(task: TaskView, x: int, y: int) -> str:
    fill, stroke = _colours(task.status)
    label = task.task_id if len(task.task_id) <= 24 else task.task_id[:23] + "…"
    sub = f"{task.type} · {task.status.replace('_', ' ')}" if task.type else task.status
    tip = f"{task.task_id}: {task.status}" + (f", {task.tries} tries" if task.tries > 1 else "")
    return (
        f'<g class="node s-{escape(task.status)}" data-task="{escape(task.task_id)}" '
        f'data-status="{escape(task.status)}" tabindex="0"><title>{escape(tip)}</title>'
        f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="1.6"/>'
        f'<text x="{x + 10}" y="{y + 15}" font-size="12" font-weight="600">{escape(label)}</text>'
        f'<text x="{x + 10}" y="{y + 28}" font-size="10" fill="#555">{escape(sub)}</text></g>'
    )


ROW_H, LABEL_W, CHART_W = 18, 200, 760


def timeline_svg(view: RunView) -> str:
    """Every try of every task on one time axis: concurrency and retries at a glance."""
    bars: list[tuple[int, str, float, float, str]] = []  # row, task, start, end, status
    times = []
    rows: Sequence[TaskView] = [t for t in view.tasks if t.attempts]
    for r, task in enumerate(rows):
        for a in task.attempts:
            if not a.started_at:
                continue
            start = moment(a.started_at).timestamp()
            if a.ended_at:
                end = moment(a.ended_at).timestamp()
            else:  # still going: up to now
                end = time.time() if a.status in ("running", "retrying") else start
            times += [start, end]
            bars.append((r, task.task_id, start, end, a.status))
    if not bars:
        return '<p class="empty">No task has run yet.</p>'
    t0, t1 = min(times), max(times)
    span = max(t1 - t0, 1e-3)
    height = PAD * 2 + len(rows) * ROW_H + 16
    width = LABEL_W + CHART_W + PAD * 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="timeline">'
    ]
    for i in range(5):
        x = LABEL_W + PAD + CHART_W * i / 4
        parts.append(
            f'<line x1="{x:.1f}" y1="{PAD}" x2="{x:.1f}" y2="{height - 16}" stroke="#e0e0e0"/>'
            f'<text x="{x:.1f}" y="{height - 4}" font-size="10" text-anchor="middle">'
            f"{_tick(span * i / 4, span)}</text>"
        )
    for r, task in enumerate(rows):
        y = PAD + r * ROW_H
        parts.append(
            f'<text x="{PAD}" y="{y + 13}" font-size="11">{escape(task.task_id[:30])}</text>'
        )
    for r, tid, start, end, status in bars:
        fill, stroke = _colours(status)
        x = LABEL_W + PAD + CHART_W * (start - t0) / span
        w = max(CHART_W * (end - start) / span, 2.0)
        parts.append(
            f'<rect class="try s-{escape(status)}" data-task="{escape(tid)}" x="{x:.1f}" '
            f'y="{PAD + r * ROW_H + 3}" width="{w:.1f}" height="{ROW_H - 6}" fill="{fill}" '
            f'stroke="{stroke}"><title>{escape(tid)}: {escape(status)}, {end - start:.3f}s'
            "</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _tick(value: float, span: float) -> str:
    if span < 0.02:
        return f"{value * 1000:.1f} ms"
    if span < 2:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s" if span < 120 else f"{value / 60:.1f} min"
