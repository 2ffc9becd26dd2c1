"""The pictures as SVG text: the task graph coloured by status, a timeline of tries, and
durations over runs.

The graph's layout is ``layout.layout`` (layers, dummy points for edges that skip a
layer, ordered to spare crossings). Dependency edges are solid, dataset edges dashed.
Each node is a ``<g class="node s-<status>" data-task="<id>">`` with its box as the
``<rect>``, each edge a ``<path class="edge" data-from data-to>``, so a page's script and
the tests can find them. Colours and fonts come from the page's style sheet (the
``s-<status>`` classes); ``graph_svg(standalone=True)`` carries its own ``<style>``.
Every text is escaped and passed through ``text.visible``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from html import escape

from qarion_etl.report.colours import COLOURS, status_css
from qarion_etl.report.data import RunView, TaskView, moment
from qarion_etl.report.layout import CHAR_W, PAD, layout
from qarion_etl.report.text import middle_clip, visible

STATUSES = tuple(COLOURS)

#: The style a graph drawn on its own (``graph --format svg``) carries.
STANDALONE_CSS = (
    "svg{--text:#212121;--muted:#555;--edge:#616161}"
    "@media (prefers-color-scheme: dark){svg{--text:#e8eaed;--muted:#aab0b6;--edge:#9aa0a6}}"
    + status_css().replace("\n", "")
    + ".node rect{fill:var(--bg);stroke:var(--fg);stroke-width:1.6}"
    ".node .id{font:600 12px ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,monospace;"
    "fill:var(--text)}"
    ".node .sub{font:10px system-ui,sans-serif;fill:var(--muted)}"
    ".edge{fill:none;stroke:var(--edge);stroke-width:1.4}.edge.dataset,.edge.ref{stroke-dasharray:5 4}"
    "#arrow path{fill:var(--edge)}"
)


def t(text: str) -> str:
    """``text`` for SVG or HTML: hidden characters made visible, then escaped."""
    return escape(visible(text))


def graph_svg(view: RunView, *, standalone: bool = False) -> str:
    """The task graph of ``view`` as one ``<svg>`` element."""
    tasks = {task.task_id: task for task in view.tasks}
    labels = {tid: visible(tid) for tid in tasks}
    drawn = layout(list(tasks), view.edges, labels)
    w, h = round(drawn.width), round(drawn.height)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="task graph of {t(view.flow_id)}">',
    ]
    if standalone:
        parts.append(f"<style>{STANDALONE_CSS}</style>")
    parts.append(
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>'
    )
    for a, b, reason, points in drawn.routes:
        parts.append(
            f'<path class="edge {t(reason)}" data-from="{t(a)}" data-to="{t(b)}" '
            f'd="{_path(points)}" marker-end="url(#arrow)"/>'
        )
    for tid, box in drawn.boxes.items():
        parts.append(_node(tasks[tid], labels[tid], box.x, box.y, box.w, box.h))
    parts.append("</svg>")
    return "".join(parts)


def n(value: float) -> str:
    """A coordinate, to a tenth of a pixel, without a trailing ``.0``."""
    return f"{value:.1f}".removesuffix(".0")


def _path(points: list[tuple[float, float]]) -> str:
    """An edge through ``points``: curves across the gaps between columns, straight
    through a column (pairs of points at one height)."""
    (x0, y0), rest = points[0], points[1:]
    out = [f"M{n(x0)},{n(y0)}"]
    for x, y in rest:
        if y == y0 and x > x0:
            out.append(f"L{n(x)},{n(y)}")
        else:
            bend = (x - x0) / 2
            out.append(f"C{n(x0 + bend)},{n(y0)} {n(x - bend)},{n(y)} {n(x)},{n(y)}")
        x0, y0 = x, y
    return " ".join(out)


def _node(task: TaskView, label: str, x: float, y: float, w: float, h: float) -> str:
    room = max(4, int((w - 20) / CHAR_W))
    status = task.status.replace("_", " ")
    sub = f"{task.type} · {status}" if task.type else status
    tip = ""
    if len(label) > room or task.tries > 1:  # the box shows the rest
        tip = f"<title>{escape(label)}: {status}, {task.tries} tries</title>"
    return (
        f'<g class="node s-{t(task.status)}" data-task="{t(task.task_id)}" '
        f'data-status="{t(task.status)}" tabindex="0">{tip}'
        f'<rect x="{n(x)}" y="{n(y)}" width="{n(w)}" height="{n(h)}" rx="6"/>'
        f'<text class="id" x="{n(x + 10)}" y="{n(y + 16)}">{escape(middle_clip(label, room))}'
        f'</text><text class="sub" x="{n(x + 10)}" y="{n(y + 29)}">{t(sub)}</text></g>'
    )


ROW_H, CHART_W, RIGHT_PAD, AXIS_H = 18, 760, 48, 18
#: Tick steps in seconds, from a millisecond to a day.
STEPS = [k * 10.0**e for e in range(-3, 2) for k in (1, 2, 5)] + [
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
]


def ticks(span: float, most: int = 6) -> list[float]:
    """Round values from 0 to ``span`` (seconds), at most ``most`` of them."""
    step = next((s for s in STEPS if span / s <= most - 1), span / (most - 1) or 1.0)
    return [i * step for i in range(int(span / step + 1e-9) + 1)]


def seconds_label(value: float, step: float) -> str:
    """A tick's label in the unit its step reads best in."""
    if step < 1:
        return f"{value * 1000:.0f} ms"
    if step < 60:
        return f"{value:g} s"
    if step < 3600:
        return f"{value / 60:g} min"
    return f"{value / 3600:g} h"


def timeline_svg(view: RunView) -> str:
    """Every try of every task on one time axis: concurrency and retries at a glance."""
    bars: list[tuple[int, str, float, float, str]] = []  # row, task, start, end, status
    times = []
    rows: Sequence[TaskView] = [task for task in view.tasks if task.attempts]
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
    longest = max(len(visible(task.task_id)) for task in rows)
    label_w = min(260, max(110, 20 + 6.7 * longest))
    room = int((label_w - 16) / 6.7)
    height = PAD * 2 + len(rows) * ROW_H + AXIS_H
    width = label_w + CHART_W + PAD + RIGHT_PAD
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width:.0f}" '
        f'height="{height}" viewBox="0 0 {width:.0f} {height}" role="img" aria-label="timeline">'
    ]
    marks = ticks(span)
    step = marks[1] if len(marks) > 1 else span
    for value in marks:
        x = label_w + CHART_W * value / span
        parts.append(
            f'<line class="tick" x1="{x:.1f}" y1="{PAD}" x2="{x:.1f}" y2="{height - AXIS_H}"/>'
            f'<text class="tick" x="{x:.1f}" y="{height - 5}">{seconds_label(value, step)}</text>'
        )
    for r, task in enumerate(rows):
        label = visible(task.task_id)
        parts.append(
            f'<text class="label" x="{PAD}" y="{PAD + r * ROW_H + 13}">'
            f"<title>{escape(label)}</title>{escape(middle_clip(label, room))}</text>"
        )
    for r, tid, start, end, status in bars:
        x = label_w + CHART_W * (start - t0) / span
        w = max(CHART_W * (end - start) / span, 2.0)
        parts.append(
            f'<rect class="try s-{t(status)}" data-task="{t(tid)}" x="{n(x)}" '
            f'y="{PAD + r * ROW_H + 3}" width="{n(w)}" height="{ROW_H - 6}">'
            f"<title>{t(tid)}: {t(status)}, {end - start:.3f}s</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


CHART_H, AXIS_W, SLOT_MAX, SLOT_MIN = 140, 58, 28, 6


def duration_svg(
    points: Sequence[tuple[str, str, float | None]],
    *,
    what: str,
    href: Callable[[str], str] | None = None,
) -> str:
    """Bars of durations over runs, oldest left: ``points`` are ``(run id, status, seconds)``.

    A run without a duration (skipped, not run, still going) gets a stub on the base line.
    Each bar is ``<rect class="bar s-<status>" data-run data-status data-seconds>``.
    """
    if not points:
        return '<p class="empty">No runs yet.</p>'
    longest = max((s for _, _, s in points if s is not None), default=0.0) or 1e-3
    marks = ticks(longest, most=5)
    top = marks[-1] if marks[-1] >= longest else longest
    step = marks[1] if len(marks) > 1 else top
    slot = max(SLOT_MIN, min(SLOT_MAX, 720 / len(points)))
    width = AXIS_W + slot * len(points) + PAD
    height = PAD + CHART_H + AXIS_H
    base = PAD + CHART_H
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="durations" width="{width:.0f}" '
        f'height="{height}" viewBox="0 0 {width:.0f} {height}" role="img" '
        f'aria-label="{t(what)}">'
    ]
    for value in marks:
        y = base - CHART_H * value / top
        parts.append(
            f'<line class="tick" x1="{AXIS_W - 4}" y1="{y:.1f}" x2="{width - PAD:.0f}" '
            f'y2="{y:.1f}"/><text class="axis" x="{AXIS_W - 8}" y="{y + 4:.1f}">'
            f"{seconds_label(value, step)}</text>"
        )
    for i, (run_id, status, seconds) in enumerate(points):
        h = 2.0 if seconds is None else max(2.0, CHART_H * seconds / top)
        x = AXIS_W + i * slot + slot * 0.15
        shown = "" if seconds is None else f"{seconds:.6f}"
        tip = f"{visible(run_id)}: {status.replace('_', ' ')}" + (
            f", {seconds:.3f}s" if seconds is not None else ""
        )
        bar = (
            f'<rect class="bar s-{t(status)}" data-run="{t(run_id)}" data-status="{t(status)}" '
            f'data-seconds="{shown}" x="{x:.1f}" y="{base - h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{h:.1f}"><title>{escape(tip)}</title></rect>'
        )
        parts.append(f'<a href="{escape(href(run_id))}">{bar}</a>' if href else bar)
    parts.append(
        f'<line class="base" x1="{AXIS_W - 4}" y1="{base}" x2="{width - PAD:.0f}" y2="{base}"/>'
        f'<text class="axis start" x="{AXIS_W}" y="{height - 4}">oldest</text>'
        f'<text class="axis end" x="{width - PAD:.0f}" y="{height - 4}">newest</text></svg>'
    )
    return "".join(parts)
