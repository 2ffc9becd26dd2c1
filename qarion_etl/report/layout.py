"""Where each task of a graph is drawn: layers, order within a layer, and coordinates.

A layered drawing, as Sugiyama et al. proposed and Graphviz's ``dot`` does, left to right:

1. **Layers.** A task sits one layer right of its furthest upstream task (longest path).
2. **Dummy nodes.** An edge that skips layers gets one invisible point per layer it
   crosses, so it is routed through a free slot of each of those layers instead of being
   drawn straight under the boxes in between.
3. **Order.** Within a layer, tasks and dummy points are sorted by the mean position of
   their neighbours in the layer before (then after, and again), which removes most
   crossings.
4. **Coordinates.** Each item is placed at the mean height of its upstream neighbours,
   pushed down just enough to keep its order and a gap to the item above; columns are as
   wide as their longest label needs (up to a limit).

Every edge then runs from its upstream box to its downstream box through its dummy
points: inside a column only along a dummy's own slot, and between columns only in the
gap, where there is no box. No layout library is used.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

NODE_H = 36
DUMMY_H = 6
GAP_Y = 14
GAP_X = 64
PAD = 12
MIN_W, MAX_W = 150, 330
#: Width of one character of a task id at the graph's monospace size (12 px).
CHAR_W = 7.3
#: Sweeps of the ordering (each goes left to right, then right to left).
SWEEPS = 4

Item = Hashable  # a task id (str), or a dummy point: ("~", edge index, layer)


@dataclass
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass
class Layout:
    """The drawing's boxes (tasks), each edge's points and the picture's size."""

    boxes: dict[str, Box]
    #: For each edge ``(a, b, reason)``: the points from a's right side to b's left side.
    routes: list[tuple[str, str, str, list[tuple[float, float]]]] = field(default_factory=list)
    width: float = 0
    height: float = 0


def label_width(text: str) -> float:
    """The width a box needs for ``text`` in the graph's monospace font."""
    return min(MAX_W, max(MIN_W, 20 + CHAR_W * len(text)))


def layers_of(order: Sequence[str], edges: Sequence[tuple[str, str, str]]) -> dict[str, int]:
    """The layer of each task of ``order``: one right of its furthest upstream task.

    The tasks are taken upstream first (``order`` where the edges allow it); tasks on a
    cycle, which a validated flow never has, keep the layer their drawn upstream gives.
    """
    ups: dict[str, list[str]] = {t: [] for t in order}
    downs: dict[str, list[str]] = {t: [] for t in order}
    for a, b, _ in edges:
        if a in ups and b in ups and a != b:
            ups[b].append(a)
            downs[a].append(b)
    waiting = {t: len(set(ups[t])) for t in order}
    ready = deque(t for t in order if not waiting[t])
    topo: list[str] = []
    while ready:
        tid = ready.popleft()
        topo.append(tid)
        for d in dict.fromkeys(downs[tid]):
            waiting[d] -= 1
            if not waiting[d]:
                ready.append(d)
    placed = set(topo)
    topo += [t for t in order if t not in placed]
    depth: dict[str, int] = {}
    for tid in topo:
        depth[tid] = 1 + max((depth[u] for u in ups[tid] if u in depth), default=-1)
    return depth


def layout(
    order: Sequence[str],
    edges: Sequence[tuple[str, str, str]],
    labels: dict[str, str] | None = None,
) -> Layout:
    """Lay out the tasks ``order`` (upstream first) and ``edges`` between them."""
    depth = layers_of(order, edges)
    kept = [(a, b, r) for a, b, r in edges if a in depth and b in depth and depth[a] < depth[b]]
    columns: list[list[Item]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for tid in order:
        columns[depth[tid]].append(tid)
    ups: dict[Item, list[Item]] = {t: [] for t in order}
    downs: dict[Item, list[Item]] = {t: [] for t in order}
    chains: list[list[Item]] = []
    for i, (a, b, _) in enumerate(kept):
        chain: list[Item] = [a]
        for layer in range(depth[a] + 1, depth[b]):
            dummy = ("~", i, layer)
            columns[layer].append(dummy)
            ups[dummy], downs[dummy] = [], []
            chain.append(dummy)
        chain.append(b)
        for u, d in zip(chain, chain[1:], strict=False):
            downs[u].append(d)
            ups[d].append(u)
        chains.append(chain)
    _order(columns, ups, downs)
    widths = [
        max((label_width((labels or {}).get(str(t), str(t))) for t in col if isinstance(t, str)),
            default=MIN_W)
        for col in columns
    ]  # fmt: skip
    xs, x = [], float(PAD)
    for w in widths:
        xs.append(x)
        x += w + GAP_X
    place: dict[Item, Box] = {}
    for c, col in enumerate(columns):
        bottom: float = PAD - GAP_Y
        for item in col:
            h = NODE_H if isinstance(item, str) else DUMMY_H
            seen = [place[u].cy for u in ups[item] if u in place]
            want = sum(seen) / len(seen) - h / 2 if seen else bottom + GAP_Y
            y = max(want, bottom + GAP_Y)
            place[item] = Box(xs[c], y, widths[c], h)
            bottom = y + h
    top = min((b.y for b in place.values()), default=PAD)
    for box in place.values():
        box.y += PAD - top
    out = Layout({t: place[t] for t in order if t in place})
    for (a, b, reason), chain in zip(kept, chains, strict=True):
        first, last = place[a], place[b]
        points = [(first.x + first.w, first.cy)]
        for point in chain[1:-1]:
            through = place[point]
            points += [(through.x, through.cy), (through.x + through.w, through.cy)]
        points.append((last.x, last.cy))
        out.routes.append((a, b, reason, points))
    out.width = (xs[-1] + widths[-1] + PAD) if xs else 2 * PAD + MIN_W
    out.height = max((b.y + b.h for b in place.values()), default=NODE_H) + PAD
    return out


def _order(
    columns: list[list[Item]], ups: dict[Item, list[Item]], downs: dict[Item, list[Item]]
) -> None:
    """Sort each column by the mean position of its neighbours (barycentre sweeps)."""
    where: dict[Item, float] = {}
    for col in columns:
        for i, item in enumerate(col):
            where[item] = float(i)
    for sweep in range(SWEEPS):
        for c in range(1, len(columns)):
            _sort(columns[c], ups, where)
        if sweep < SWEEPS - 1:
            for c in range(len(columns) - 2, -1, -1):
                _sort(columns[c], downs, where)


def _sort(col: list[Item], links: dict[Item, list[Item]], where: dict[Item, float]) -> None:
    def key(item: Item) -> float:
        seen = [where[n] for n in links[item]]
        return sum(seen) / len(seen) if seen else where[item]

    col.sort(key=key)
    for i, item in enumerate(col):
        where[item] = float(i)
