"""``ref()``: which task of which flow writes the dataset a template names.

``task_refs`` reads a task's SQL without rendering it (``templates.find_refs``).
``ModelIndex`` knows every flow of a project and resolves a call: ``ref('orders')`` looks
in the task's own flow first, then for the one task of the project whose target is
``orders``; ``ref('shop', 'orders')`` looks in the flow ``shop``. ``ref_edges`` gives the
edges a flow's refs add to its own task graph, ``ref_problems`` what ``validate`` reports,
and ``flow_edges`` / ``flow_cycle`` the project-wide graph of flows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from qarion_etl.definitions.flow import Flow, TaskSpec
from qarion_etl.definitions.macros import Macros
from qarion_etl.definitions.templates import RefCall, find_refs, is_plain, parse_template
from qarion_etl.errors import Problem, did_you_mean

EPHEMERAL = "ephemeral"


@lru_cache(maxsize=512)
def _refs_in(sql: str) -> tuple[RefCall, ...]:
    if is_plain(sql) or "ref" not in sql:
        return ()
    import jinja2

    try:
        return tuple(find_refs(parse_template(sql)))
    except jinja2.TemplateSyntaxError:
        return ()  # template_problems reports it


def task_refs(task: TaskSpec) -> tuple[RefCall, ...]:
    """The ``ref()`` calls of ``task``'s ``config.sql`` (none when it has no SQL)."""
    sql = task.config.get("sql")
    return _refs_in(sql) if isinstance(sql, str) else ()


def check_refs(task: TaskSpec) -> tuple[RefCall, ...]:
    """The datasets ``task``'s checks read: a ``relationships`` check's ``to``, and each
    ``ref()`` in an ``expression`` check's SQL (lines are the check's)."""
    calls: list[RefCall] = []
    for check in task.checks:
        line = check.line or 0
        if check.to_dataset is not None:
            calls.append(RefCall(check.to_flow, check.to_dataset, line))
        if check.sql is not None:
            calls += (RefCall(c.flow_id, c.dataset, line) for c in _refs_in(check.sql))
    return tuple(calls)


@lru_cache(maxsize=512)
def _calls_in(sql: str) -> tuple[tuple[str, int], ...]:
    """``(name, line)`` of each call of a plain name in ``sql`` (macros among them)."""
    if is_plain(sql) or "(" not in sql:
        return ()
    import jinja2
    from jinja2 import nodes

    try:
        tree = parse_template(sql)
    except jinja2.TemplateSyntaxError:
        return ()
    return tuple(
        (c.node.name, c.lineno) for c in tree.find_all(nodes.Call) if isinstance(c.node, nodes.Name)
    )


def macro_refs(task: TaskSpec, macros: Macros) -> tuple[RefCall, ...]:
    """The ``ref()`` calls with constant names inside the macros ``task``'s SQL calls
    (and the macros they call), at the line of the call."""
    sql = task.config.get("sql")
    if not isinstance(sql, str) or not macros.files:
        return ()
    names = macros.names
    return tuple(
        RefCall(flow_id, dataset, line)
        for name, line in _calls_in(sql)
        if name in names
        for flow_id, dataset in macros.refs_of(name)
    )


def all_refs(task: TaskSpec, macros: Macros | None = None) -> tuple[RefCall, ...]:
    """Every dataset ``task`` reads by name: its SQL's ``ref()`` calls, its checks', and
    those of the macros it calls (with ``macros``)."""
    found = task_refs(task) + check_refs(task) if task.checks else task_refs(task)
    return found + macro_refs(task, macros) if macros is not None else found


def macro_ref_edges(flow: Flow, macros: Macros) -> Iterator[tuple[str, str]]:
    """``(writer, reader)`` for the refs of ``flow``'s tasks inside the macros they call
    to datasets of ``flow`` (the edges ``ref_edges`` cannot see without the macros)."""
    writer = {t.target_dataset_id: t.id for t in flow.tasks if t.target_dataset_id}
    for task in flow.tasks:
        for call in macro_refs(task, macros):
            if call.flow_id not in (None, flow.id) or call.dataset not in writer:
                continue
            upstream = writer[call.dataset]
            if upstream != task.id:
                yield upstream, task.id


def ref_edges(flow: Flow) -> Iterator[tuple[str, str]]:
    """``(writer, reader)`` for each ref of a task (its SQL or its checks) to a dataset
    another task of ``flow`` writes: the reader runs after the writer."""
    writer = {t.target_dataset_id: t.id for t in flow.tasks if t.target_dataset_id}
    for task in flow.tasks:
        for call in all_refs(task):
            if call.flow_id not in (None, flow.id) or call.dataset not in writer:
                continue
            upstream = writer[call.dataset]
            if upstream != task.id:
                yield upstream, task.id


@dataclass(frozen=True, slots=True)
class Resolved:
    """The task a ``ref()`` names, and its flow."""

    flow: Flow
    task: TaskSpec

    @property
    def dataset(self) -> str:
        return str(self.task.target_dataset_id)

    @property
    def ephemeral(self) -> bool:
        return self.task.materialized == EPHEMERAL


class RefError(Exception):
    """A ``ref()`` that names no dataset, or more than one."""


class ModelIndex:
    """The flows of a project, the task that writes each of their datasets, its macros."""

    def __init__(self, flows: Iterable[Flow] = (), macros: Macros | None = None) -> None:
        self.flows: dict[str, Flow] = {}
        self.macros = macros or Macros()
        #: The file stems of flows that do not load (a ref to one says so).
        self.broken: set[str] = set()
        self._writers: dict[str, list[Resolved]] | None = None
        self._edges: dict[tuple[str, str], list[str]] | None = None
        for flow in flows:
            self.add(flow)

    def add(self, flow: Flow) -> None:
        """Know ``flow`` (replacing a flow of the same id)."""
        self.flows[flow.id] = flow
        self._writers = self._edges = None

    def with_flow(self, flow: Flow) -> ModelIndex:
        """This index if it holds ``flow`` (same file), else a copy that does."""
        known = self.flows.get(flow.id)
        if known is not None and known.path.resolve() == flow.path.resolve():
            return self
        copy = ModelIndex([*self.flows.values(), flow], self.macros)
        copy.broken = self.broken - {flow.path.stem}
        return copy

    def writers(self, dataset: str) -> list[Resolved]:
        """Every task of the project whose target is ``dataset``, by flow id."""
        if self._writers is None:
            self._writers = {}
            for _, f in sorted(self.flows.items()):
                for t in f.tasks:
                    if t.target_dataset_id:
                        self._writers.setdefault(t.target_dataset_id, []).append(Resolved(f, t))
        return list(self._writers.get(dataset, ()))

    def resolve(self, flow: Flow, flow_id: str | None, dataset: str) -> Resolved:
        """What ``ref(dataset)`` or ``ref(flow_id, dataset)`` in a task of ``flow`` names."""
        if flow_id is not None:
            other = flow if flow_id == flow.id else self.flows.get(flow_id)
            if other is None and flow_id in self.broken:
                raise RefError(f"flow '{flow_id}' does not load: validate it first")
            if other is None:
                raise RefError(f"no flow '{flow_id}'{did_you_mean(flow_id, self.flows)}")
            return self._in_flow(other, dataset)
        own = [t for t in flow.tasks if t.target_dataset_id == dataset]
        if own:
            return Resolved(flow, own[0])
        found = [r for r in self.writers(dataset) if r.flow.id != flow.id]
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(r.flow.id for r in found)
            raise RefError(
                f"dataset '{dataset}' is written in several flows ({names}): "
                f"name one, as ref('{found[0].flow.id}', '{dataset}')"
            )
        known = {
            t.target_dataset_id
            for f in (flow, *self.flows.values())
            for t in f.tasks
            if t.target_dataset_id
        }
        unread = (
            f" (flows that do not load: {', '.join(sorted(self.broken))})" if self.broken else ""
        )
        raise RefError(f"no task writes dataset '{dataset}'{did_you_mean(dataset, known)}{unread}")

    @staticmethod
    def _in_flow(flow: Flow, dataset: str) -> Resolved:
        for task in flow.tasks:
            if task.target_dataset_id == dataset:
                return Resolved(flow, task)
        known = [t.target_dataset_id for t in flow.tasks if t.target_dataset_id]
        raise RefError(
            f"flow '{flow.id}' writes no dataset '{dataset}'{did_you_mean(dataset, known)}"
        )

    def reads(self, flow: Flow, task: TaskSpec) -> list[Resolved]:
        """The datasets ``task`` reads through ``ref()`` in its SQL or its checks (those
        that resolve), in order."""
        out: dict[tuple[str, str], Resolved] = {}
        for call in all_refs(task, self.macros):
            if call.dataset is None:
                continue
            try:
                found = self.resolve(flow, call.flow_id, call.dataset)
            except RefError:
                continue
            out.setdefault((found.flow.id, found.task.id), found)
        return list(out.values())

    def flow_edges(self) -> dict[tuple[str, str], list[str]]:
        """``{(upstream flow, downstream flow): [datasets]}`` from every cross-flow ref."""
        if self._edges is not None:
            return self._edges
        edges: dict[tuple[str, str], list[str]] = {}
        for flow in self.flows.values():
            for task in flow.tasks:
                for found in self.reads(flow, task):
                    if found.flow.id != flow.id:
                        names = edges.setdefault((found.flow.id, flow.id), [])
                        if found.dataset not in names:
                            names.append(found.dataset)
        self._edges = edges
        return edges

    def upstream_flows(self, flow_id: str) -> set[str]:
        """Every flow whose datasets ``flow_id`` reads, directly or through other flows."""
        parents: dict[str, set[str]] = {}
        for up, down in self.flow_edges():
            parents.setdefault(down, set()).add(up)
        seen: set[str] = set()
        todo = [flow_id]
        while todo:
            for up in parents.get(todo.pop(), ()):
                if up not in seen and up != flow_id:
                    seen.add(up)
                    todo.append(up)
        return seen

    def flow_cycle(self) -> list[tuple[str, str, list[str]]] | None:
        """A cycle of flows as ``[(upstream, downstream, datasets), …]``, or ``None``."""
        edges = self.flow_edges()
        children: dict[str, list[str]] = {}
        for up, down in sorted(edges):
            children.setdefault(up, []).append(down)
        done: set[str] = set()
        for start in sorted(children):
            if start in done:
                continue
            path, on_path = [start], {start}
            pending = [iter(children.get(start, []))]
            while pending:  # depth first, without recursion (long chains of flows)
                child = next(pending[-1], None)
                if child is None:
                    done.add(path[-1])
                    on_path.discard(path.pop())
                    pending.pop()
                elif child in on_path:
                    cycle = [*path[path.index(child) :], child]
                    return [(a, b, edges[(a, b)]) for a, b in zip(cycle, cycle[1:], strict=False)]
                elif child not in done:
                    path.append(child)
                    on_path.add(child)
                    pending.append(iter(children.get(child, [])))
        return None


def ref_problems(flow: Flow, index: ModelIndex, only: Iterable[str] | None = None) -> list[Problem]:
    """Refs that name no dataset, several, or the task's own; ephemeral tasks without a target."""
    problems: list[Problem] = []
    wanted = set(only) if only is not None else None
    for task in flow.tasks:
        if wanted is not None and task.id not in wanted:
            continue
        if task.materialized == EPHEMERAL and not task.target_dataset_id:
            problems.append(
                Problem(
                    "an ephemeral task needs 'target_dataset_id' (the name other tasks ref)",
                    task.line_of("materialized"),
                    task.id,
                )
            )
        for call in task_refs(task):
            line = flow.sql_line(task, call.lineno)
            if call.dataset is None:
                problems.append(
                    Problem(
                        "ref() takes one or two quoted names: ref('dataset') or "
                        "ref('flow_id', 'dataset')",
                        line,
                        task.id,
                    )
                )
                continue
            try:
                found = index.resolve(flow, call.flow_id, call.dataset)
            except RefError as exc:
                problems.append(Problem(f"{call.shown}: {exc}", line, task.id))
                continue
            if found.flow.id == flow.id and found.task.id == task.id:
                problems.append(
                    Problem(
                        f"{call.shown} is this task's own target: use {{{{ target_dataset }}}}",
                        line,
                        task.id,
                    )
                )
    return problems


def cycle_problem(index: ModelIndex, flow: Flow | None = None) -> Problem | None:
    """The cycle of flows (through ``flow`` when given), named flow by flow with datasets."""
    cycle = index.flow_cycle()
    if cycle is None or (flow is not None and all(flow.id not in (a, b) for a, b, _ in cycle)):
        return None
    steps = [f"{a} -> {b} (reads {', '.join(ds)})" for a, b, ds in cycle]
    return Problem("flows read each other's datasets in a cycle: " + "; ".join(steps))


def read_names(flow: Flow, task: TaskSpec, index: ModelIndex | None = None) -> list[str]:
    """The datasets ``task`` reads: its ``source_dataset_id``, then each ``ref()`` by name
    (in its SQL, its checks and, with ``index``, the macros it calls).

    A dataset of another flow is named ``flow.dataset`` (``ref('shop', 'orders')``, or with
    ``index`` a one-name ref that resolves to another flow).
    """
    names = [task.source_dataset_id] if task.source_dataset_id else []
    for call in all_refs(task, index.macros if index is not None else None):
        if call.dataset is None:
            continue
        owner = call.flow_id
        if owner is None and index is not None:
            try:
                owner = index.resolve(flow, None, call.dataset).flow.id
            except RefError:
                owner = None
        name = call.dataset if owner in (None, flow.id) else f"{owner}.{call.dataset}"
        if name not in names:
            names.append(name)
    return names
