"""No edge of a drawn graph passes through a box it does not join.

The SVG is parsed back as a browser would read it: each node's ``<rect>``, each edge's
``<path d>`` (moves, lines and cubic curves, the curves sampled finely), and every piece
of every edge is checked against every box other than the edge's own two. Random DAGs
come from hypothesis; the seed example's edge that skips a layer is checked by name.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from qarion_etl.report.data import RunView, TaskView
from qarion_etl.report.svg import graph_svg
from tests.helpers import cli, make_project

SVG = "{http://www.w3.org/2000/svg}"
Rect = tuple[float, float, float, float]  # x0, y0, x1, y1


def boxes_and_edges(svg: str) -> tuple[dict[str, Rect], list[tuple[str, str, str]]]:
    root = ET.fromstring(svg)
    boxes: dict[str, Rect] = {}
    for g in root.iter(f"{SVG}g"):
        if "node" in g.get("class", "").split():
            r = g.find(f"{SVG}rect")
            assert r is not None
            x, y = float(r.get("x", 0)), float(r.get("y", 0))
            boxes[g.get("data-task", "")] = (
                x,
                y,
                x + float(r.get("width", 0)),
                y + float(r.get("height", 0)),
            )
    edges = [
        (p.get("data-from", ""), p.get("data-to", ""), p.get("d", ""))
        for p in root.iter(f"{SVG}path")
        if "edge" in p.get("class", "").split()
    ]
    return boxes, edges


def polyline(d: str, steps: int = 24) -> list[tuple[float, float]]:
    """The points of a path of ``M``, ``L`` and ``C`` commands (absolute), curves sampled."""
    tokens = re.findall(r"[MLC]|-?\d+(?:\.\d+)?", d)
    points: list[tuple[float, float]] = []
    i = 0
    while i < len(tokens):
        cmd = tokens[i]
        i += 1
        if cmd in "ML":
            points.append((float(tokens[i]), float(tokens[i + 1])))
            i += 2
        elif cmd == "C":
            (x0, y0) = points[-1]
            x1, y1, x2, y2, x3, y3 = map(float, tokens[i : i + 6])
            i += 6
            for k in range(1, steps + 1):
                t = k / steps
                a, b, c, e = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
                points.append(
                    (a * x0 + b * x1 + c * x2 + e * x3, a * y0 + b * y1 + c * y2 + e * y3)
                )
        else:  # pragma: no cover - the drawing uses no other command
            raise AssertionError(f"unexpected path command {cmd!r} in {d!r}")
    return points


def crosses(p: tuple[float, float], q: tuple[float, float], box: Rect, margin: float = 1.0) -> bool:
    """Whether the segment ``p``–``q`` enters ``box`` shrunk by ``margin`` (Liang–Barsky)."""
    x0, y0, x1, y1 = box[0] + margin, box[1] + margin, box[2] - margin, box[3] - margin
    dx, dy = q[0] - p[0], q[1] - p[1]
    lo, hi = 0.0, 1.0
    for step, room in ((-dx, p[0] - x0), (dx, x1 - p[0]), (-dy, p[1] - y0), (dy, y1 - p[1])):
        if step == 0:
            if room < 0:
                return False
            continue
        t = room / step
        if step < 0:
            lo = max(lo, t)
        else:
            hi = min(hi, t)
        if lo > hi:
            return False
    return True


def edge_hits(svg: str) -> list[tuple[str, str, str]]:
    """``(from, to, box crossed)`` for every edge piece inside a box it does not join."""
    boxes, edges = boxes_and_edges(svg)
    hits = []
    for a, b, d in edges:
        points = polyline(d)
        for tid, box in boxes.items():
            if tid in (a, b):
                continue
            if any(crosses(p, q, box) for p, q in zip(points, points[1:], strict=False)):
                hits.append((a, b, tid))
    return hits


def view_of(n: int, edges: set[tuple[int, int]], datasets: set[tuple[int, int]]) -> RunView:
    tasks = [TaskView(f"t{i}", type="transformation", status="success") for i in range(n)]
    drawn = [
        (f"t{a}", f"t{b}", "dataset" if (a, b) in datasets else "dependency")
        for a, b in sorted(edges)
    ]
    return RunView("f", "r", 1, "success", None, None, tasks, drawn)


@st.composite
def dags(draw: st.DrawFn) -> tuple[int, set[tuple[int, int]], set[tuple[int, int]]]:
    n = draw(st.integers(1, 24))
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
    density = draw(st.sampled_from([0.05, 0.15, 0.35, 0.7]))
    edges = (
        {p for p in pairs if draw(st.floats(0, 1)) < density}
        if len(pairs) < 120
        else set(draw(st.lists(st.sampled_from(pairs), max_size=90)) if pairs else [])
    )
    datasets = {e for e in edges if draw(st.booleans())}
    return n, edges, datasets


@settings(max_examples=60, deadline=None)
@given(dags())
def test_no_edge_passes_through_a_box_it_does_not_join(dag: tuple[int, set, set]) -> None:  # type: ignore[type-arg]
    n, edges, datasets = dag
    svg = graph_svg(view_of(n, edges, datasets))
    boxes, drawn = boxes_and_edges(svg)
    assert len(boxes) == n and len(drawn) == len(edges)
    assert {(a, b) for a, b, _ in drawn} == {(f"t{a}", f"t{b}") for a, b in edges}
    assert edge_hits(svg) == []
    # every edge leaves its upstream box on its right side and ends on the left of its downstream box
    for a, b, d in drawn:
        points = polyline(d)
        assert abs(points[0][0] - boxes[a][2]) < 0.11 and abs(points[-1][0] - boxes[b][0]) < 0.11
    # no two boxes overlap
    placed = list(boxes.values())
    for i, p in enumerate(placed):
        for q in placed[i + 1 :]:
            assert p[2] <= q[0] or q[2] <= p[0] or p[3] <= q[1] or q[3] <= p[1]


def test_the_check_sees_an_edge_drawn_through_a_box() -> None:
    box = (100.0, 0.0, 200.0, 40.0)
    assert crosses((50.0, 20.0), (250.0, 20.0), box)
    assert not crosses((50.0, 60.0), (250.0, 60.0), box)
    assert not crosses((50.0, 20.0), (99.0, 20.0), box)
    straight = (
        '<svg xmlns="http://www.w3.org/2000/svg">'
        '<g class="node" data-task="a"><rect x="0" y="0" width="50" height="30"/></g>'
        '<g class="node" data-task="b"><rect x="100" y="0" width="50" height="30"/></g>'
        '<g class="node" data-task="c"><rect x="200" y="0" width="50" height="30"/></g>'
        '<path class="edge" data-from="a" data-to="c" d="M50,15 C100,15 150,15 200,15"/></svg>'
    )
    assert edge_hits(straight) == [("a", "c", "b")]


def test_the_seed_examples_dataset_edge_goes_around_the_task_between(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    done = cli("graph", "data_pipeline", "--format", "svg", project=project)
    assert done.exit_code == 0, done.output
    boxes, edges = boxes_and_edges(done.stdout)
    assert ("ingest_orders", "filter_high_value") in {(a, b) for a, b, _ in edges}
    assert set(boxes) == {"ingest_orders", "calculate_stats", "filter_high_value"}
    assert edge_hits(done.stdout) == []
