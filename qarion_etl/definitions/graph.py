"""A small directed graph of task ids, for validation and scheduling.

``import networkx`` costs about a quarter of a second (it loads every algorithm), which is
half of the whole start-up budget of ``qarion-etl run``. Flows need only a handful of
operations, so the runner and ``validate`` use this class; ``TaskGraph.to_networkx()`` (and
``qarion_etl.dag.build_dag``) give the same graph as a ``networkx.DiGraph`` for everything else.
The method names follow networkx, so code reads the same with either.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import networkx as nx


class TaskGraph:
    """Nodes in insertion order; edges carry a small attribute dict."""

    def __init__(self) -> None:
        self._succ: dict[str, dict[str, dict[str, Any]]] = {}
        self._pred: dict[str, dict[str, dict[str, Any]]] = {}
        self._node_data: dict[str, dict[str, Any]] = {}

    # --- building --------------------------------------------------------------------
    def add_node(self, node: str, **data: Any) -> None:
        if node not in self._succ:
            self._succ[node] = {}
            self._pred[node] = {}
            self._node_data[node] = {}
        self._node_data[node].update(data)

    def add_edge(self, a: str, b: str, **data: Any) -> None:
        self.add_node(a)
        self.add_node(b)
        self._succ[a][b] = data
        self._pred[b][a] = data

    # --- reading ---------------------------------------------------------------------
    def __contains__(self, node: object) -> bool:
        return node in self._succ

    def __iter__(self) -> Iterator[str]:
        return iter(self._succ)

    def __len__(self) -> int:
        return len(self._succ)

    @property
    def nodes(self) -> list[str]:
        return list(self._succ)

    def node_data(self, node: str) -> dict[str, Any]:
        """The attributes ``add_node`` gave ``node`` (networkx: ``graph.nodes[node]``)."""
        return self._node_data.get(node, {})

    def has_edge(self, a: str, b: str) -> bool:
        return b in self._succ.get(a, {})

    def predecessors(self, node: str) -> Iterator[str]:
        return iter(self._pred[node])

    def successors(self, node: str) -> Iterator[str]:
        return iter(self._succ[node])

    def edges(self, data: bool = False) -> list[Any]:
        if data:
            return [(a, b, d) for a, nbrs in self._succ.items() for b, d in nbrs.items()]
        return [(a, b) for a, nbrs in self._succ.items() for b in nbrs]

    def _reach(self, node: str, links: dict[str, dict[str, dict[str, Any]]]) -> set[str]:
        seen: set[str] = set()
        stack = list(links[node])
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(links[current])
        return seen

    def ancestors(self, node: str) -> set[str]:
        """Every task that ``node`` transitively depends on."""
        return self._reach(node, self._pred)

    def descendants(self, node: str) -> set[str]:
        """Every task that transitively depends on ``node``."""
        return self._reach(node, self._succ)

    def find_cycle(self) -> list[str]:
        """One cycle as ``[a, b, …, a]``, or ``[]`` when the graph is acyclic."""
        white, grey, black = 0, 1, 2
        colour = dict.fromkeys(self._succ, white)
        parent: dict[str, str] = {}
        for start in self._succ:
            if colour[start] != white:
                continue
            stack = [(start, iter(self._succ[start]))]
            colour[start] = grey
            while stack:
                node, children = stack[-1]
                for child in children:
                    if colour[child] == white:
                        colour[child] = grey
                        parent[child] = node
                        stack.append((child, iter(self._succ[child])))
                        break
                    if colour[child] == grey:
                        path = [node]
                        while path[-1] != child:
                            path.append(parent[path[-1]])
                        path.reverse()
                        return [*path, child]
                else:
                    colour[node] = black
                    stack.pop()
        return []

    def topological_order(self, key: Callable[[str], Any] | None = None) -> list[str]:
        """Nodes so that every edge points forward; ties broken by ``key`` (default: insertion)."""
        position = {n: i for i, n in enumerate(self._succ)}
        sort_key = key or position.__getitem__
        indegree = {n: len(p) for n, p in self._pred.items()}
        heap = [(sort_key(n), position[n], n) for n, d in indegree.items() if d == 0]
        heapq.heapify(heap)
        order: list[str] = []
        while heap:
            _, _, node = heapq.heappop(heap)
            order.append(node)
            for child in self._succ[node]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    heapq.heappush(heap, (sort_key(child), position[child], child))
        if len(order) != len(self._succ):
            raise ValueError("the graph has a cycle")
        return order

    def to_networkx(self) -> nx.DiGraph:
        """The same graph as a ``networkx.DiGraph`` (node and edge attributes kept)."""
        import networkx as nx

        graph = nx.DiGraph()
        for node, data in self._node_data.items():
            graph.add_node(node, **data)
        for a, b, data in self.edges(data=True):
            graph.add_edge(a, b, **data)
        return graph
