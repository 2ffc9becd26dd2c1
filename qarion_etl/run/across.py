"""Several flows as one graph: the order flows run in, and a selection that spans them.

Edges between flows come from ``ref()`` (``definitions.refs``): a task that reads a dataset
another flow writes runs after that flow's writer. ``flow_waits`` says, for each flow of a
multi-flow run, which of the others must finish first (also through flows not in the run).
``select_across`` evaluates ``--select``/``--exclude``/``--selector`` over the tasks of all
the flows at once, so ``+orders`` reaches the tasks of upstream flows that write what
``orders`` reads, and ``seed_load+`` the tasks of downstream flows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from qarion_etl.definitions.refs import ModelIndex
from qarion_etl.errors import QarionError, SelectionError, clip
from qarion_etl.run.selection import (
    Criterion,
    _expressions,
    _Index,
    _walk,
    parse_criterion,
    resolve_selector,
)

if TYPE_CHECKING:
    from qarion_etl.definitions.flow import Flow
    from qarion_etl.definitions.graph import TaskGraph
    from qarion_etl.project import Project
    from qarion_etl.run.model import RunRequest

Node = tuple[str, str]  # (flow id, task id)


def flow_ids_of(project: Project, refs: Sequence[str]) -> dict[str, str]:
    """``{ref: flow id}`` for each flow ref that loads (the others run, and fail, alone)."""
    ids: dict[str, str] = {}
    for ref in refs:
        try:
            ids[ref] = project.load_flow(ref).id
        except QarionError:
            continue
    return ids


def flow_waits(project: Project, refs: Sequence[str]) -> dict[str, list[str]]:
    """``{ref: [refs that must finish first]}``: the upstream flows of each, among ``refs``.

    Empty when the flows read each other in a cycle (validation refuses them then).
    """
    index = project.models()
    ids = flow_ids_of(project, refs)
    if index.flow_cycle() is not None:
        return {ref: [] for ref in refs}
    by_id = {flow_id: ref for ref, flow_id in ids.items()}
    waits: dict[str, list[str]] = {}
    for ref in refs:
        upstream = index.upstream_flows(ids[ref]) if ref in ids else set()
        waits[ref] = [by_id[f] for f in sorted(upstream) if f in by_id and by_id[f] != ref]
    return waits


class _Across:
    """The tasks of several flows, with their own edges and those ``ref()`` adds between them."""

    def __init__(self, index: ModelIndex, flows: Iterable[tuple[Flow, TaskGraph]]) -> None:
        self.flows = {flow.id: (flow, graph) for flow, graph in flows}
        self.indexes = {fid: _Index(graph, flow) for fid, (flow, graph) in self.flows.items()}
        self.up: dict[Node, set[Node]] = {}
        self.down: dict[Node, set[Node]] = {}
        for fid, (_, graph) in self.flows.items():
            for task_id in graph:
                node = (fid, task_id)
                self.up[node] = {(fid, p) for p in graph.predecessors(task_id)}
                self.down[node] = {(fid, s) for s in graph.successors(task_id)}
        for fid, (flow, _) in self.flows.items():
            for spec in flow.tasks:
                for found in index.reads(flow, spec):
                    writer = (found.flow.id, found.task.id)
                    if found.flow.id != fid and found.flow.id in self.flows:
                        self.up[(fid, spec.id)].add(writer)
                        self.down[writer].add((fid, spec.id))

    def match(self, c: Criterion, option: str) -> set[Node]:
        found: set[Node] = set()
        first: SelectionError | None = None
        for fid, idx in self.indexes.items():
            try:
                found |= {(fid, t) for t in idx.match(c, option)}
            except SelectionError as exc:
                first = first or exc
        if not found:
            names = ", ".join(sorted(self.flows))
            why = str(first).replace(" in this flow", f" in flows {names}") if first else ""
            raise SelectionError(why or f"{option} {clip(c.raw)}: matches no task")
        return found

    def evaluate(self, c: Criterion, option: str) -> set[Node]:
        found = self.match(c, option)
        parents, children = self.up.__getitem__, self.down.__getitem__
        if c.childrens_parents:
            below = _walk(found, children, None)
            return below | _walk(below, parents, None)
        chosen = set(found)
        if c.parents:
            chosen |= _walk(found, parents, c.parents_depth)
        if c.children:
            chosen |= _walk(found, children, c.children_depth)
        return chosen

    def expression(self, text: str, option: str) -> set[Node]:
        result: set[Node] | None = None
        for part in text.split(","):
            if not part:
                raise SelectionError(f"{option} {clip(text)}: an empty criterion around ','")
            nodes = self.evaluate(parse_criterion(part, option), option)
            result = nodes if result is None else result & nodes
        return result or set()


def select_across(
    project: Project, refs: Sequence[str], request: RunRequest
) -> dict[str, list[str]]:
    """``{ref: [task ids]}``: the request's selection over the flows ``refs`` as one graph.

    A flow of which nothing is selected is left out. A flow that does not validate is kept
    with every task (its run reports why it cannot run).
    """
    index = project.models()
    loaded: dict[str, tuple[Flow, TaskGraph]] = {}
    for ref in refs:
        try:
            loaded[ref] = project.validate(ref)
        except QarionError:
            continue
    across = _Across(index, loaded.values())
    groups = [("--select", _expressions(request.select))]
    if request.selector is not None:
        values = resolve_selector(request.selector, project.config.selectors)
        groups.append((f"--selector {clip(request.selector)}", _expressions(values)))
    chosen: set[Node] = set()
    for option, texts in groups:
        for text in texts:
            chosen |= across.expression(text, option)
    if not any(texts for _, texts in groups):
        chosen = set(across.up)
    for text in _expressions(request.exclude):
        chosen -= across.expression(text, "--exclude")
    if not chosen:
        raise SelectionError("the selection is empty: no task to run")
    out: dict[str, list[str]] = {ref: [] for ref in refs if ref not in loaded}
    for ref, (flow, _) in loaded.items():
        tasks = [t for t in flow.task_ids if (flow.id, t) in chosen]
        if tasks:
            out[ref] = tasks
    return out
