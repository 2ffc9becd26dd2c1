"""Choosing the tasks of a run (``--select``, ``--exclude``, ``--selector``).

The grammar is dbt's node selection. One criterion is::

    [@][N]+?[METHOD:]VALUE[+[N]]

- ``calc`` is a task; ``calc*`` every task whose id matches (``fnmatch``, case-sensitive).
- ``tag:nightly`` the tasks with that tag (a flow's ``tags`` apply to all its tasks),
  ``type:ingestion`` the tasks of that type, ``dataset:orders`` the task that writes the
  dataset and the tasks that read it (as ``source_dataset_id`` or through ``ref()``). Their values may be wildcards too (``tag:night*``).
- ``+x`` adds the ancestors of what ``x`` matches, ``x+`` its descendants; ``2+x`` and
  ``x+1`` stop at that depth (``1+x``: ``x`` and its direct upstream tasks). ``@x`` is
  ``x``, its descendants and every ancestor of those (what a rebuild of ``x`` needs).

A comma intersects criteria (``tag:nightly,type:ingestion``); a space, or a repeated
option, unites them. ``--exclude`` takes the same grammar and removes its union from the
selection; ``--selector NAME`` adds the union of ``[selectors] NAME`` of
``qarion-etl.toml``. A criterion that matches nothing is a ``SelectionError`` with a "did you
mean". Every criterion is a linear scan plus one breadth-first walk, so a 1,000-task flow
is selected in a few milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, TypeVar

from qarion_etl.definitions.refs import task_refs
from qarion_etl.errors import SelectionError, clip, did_you_mean

if TYPE_CHECKING:
    from qarion_etl.definitions.flow import Flow, TaskSpec
    from qarion_etl.definitions.graph import TaskGraph

#: The ``METHOD:`` prefixes of a criterion (none: a task id).
METHODS = ("tag", "type", "dataset")

_PARENTS = re.compile(r"(\d*)\+")
_CHILDREN = re.compile(r"\+(\d*)$")
_WILDCARDS = frozenset("*?[")
#: A node of a graph a selection walks: a task id, or (flow id, task id) across flows.
N = TypeVar("N", str, tuple[str, str])


@dataclass(frozen=True, slots=True)
class Criterion:
    """One parsed criterion, such as ``2+tag:nightly+``."""

    raw: str
    #: ``tag``, ``type``, ``dataset``, or ``None`` for a task id.
    method: str | None
    value: str
    #: ``+`` before: ancestors up to ``parents_depth`` (``None``: all of them).
    parents: bool = False
    parents_depth: int | None = None
    #: ``+`` after: descendants up to ``children_depth`` (``None``: all of them).
    children: bool = False
    children_depth: int | None = None
    #: ``@`` before: the matched tasks, their descendants and all their ancestors.
    childrens_parents: bool = False


def parse_criterion(text: str, option: str = "--select") -> Criterion:
    """Parse one criterion; ``option`` names where it came from in error messages."""

    def fail(why: str) -> SelectionError:
        return SelectionError(f"{_where(option, text)}: {why}")

    rest = text
    at = rest.startswith("@")
    if at:
        rest = rest[1:]
    parents = children = None
    if m := _PARENTS.match(rest):
        parents, rest = m.group(1), rest[m.end() :]
    if m := _CHILDREN.search(rest):
        children, rest = m.group(1), rest[: m.start()]
    if at and children is not None:
        raise fail("'@' and a '+' after the name cannot be used together")
    method: str | None = None
    if ":" in rest:
        method, rest = rest.split(":", 1)
        if method not in METHODS:
            raise fail(
                f"unknown selector method '{clip(method)}'{did_you_mean(method, METHODS)}"
                f" (known: {', '.join(METHODS)}, or a task id)"
            )
    if not rest:
        raise fail(f"nothing after '{method}:'" if method else "no task name")
    return Criterion(
        raw=text,
        method=method,
        value=rest,
        parents=parents is not None,
        parents_depth=_depth(parents),
        children=children is not None,
        children_depth=_depth(children),
        childrens_parents=at,
    )


def _depth(digits: str | None) -> int | None:
    """``"2"`` is 2; no digits, or more steps than any flow has tasks, is ``None`` (all)."""
    return int(digits) if digits and len(digits) <= 9 else None


class _Index:
    """What criteria match against: the task ids, and each tag, type and dataset's tasks."""

    def __init__(self, graph: TaskGraph, flow: Flow | None) -> None:
        self.graph = graph
        self.ids = list(graph)
        self.by: dict[str, dict[str, set[str]]] = {m: {} for m in METHODS}
        for task_id, spec in _specs(graph, flow):
            for tag in spec.tags:
                self.by["tag"].setdefault(tag, set()).add(task_id)
            self.by["type"].setdefault(spec.type, set()).add(task_id)
            read = [c.dataset for c in task_refs(spec)]
            for dataset in (spec.target_dataset_id, spec.source_dataset_id, *read):
                if dataset:
                    self.by["dataset"].setdefault(dataset, set()).add(task_id)

    def match(self, c: Criterion, option: str) -> set[str]:
        """The tasks ``c`` names before ``+``/``@`` apply; a ``SelectionError`` when none."""
        wild = not _WILDCARDS.isdisjoint(c.value)
        if c.method is None:
            if wild:
                found = {t for t in self.ids if fnmatchcase(t, c.value)}
            else:
                found = {c.value} if c.value in self.graph else set()
            if not found:
                raise SelectionError(
                    f"{_where(option, c.raw)}: "
                    + (
                        f"no task matches '{clip(c.value)}' in this flow"
                        if wild
                        else f"no task '{clip(c.value)}' in this flow"
                        f"{did_you_mean(c.value, self.ids)}"
                    )
                )
            return found
        table = self.by[c.method]
        if wild:
            found = set().union(*(ts for v, ts in table.items() if fnmatchcase(v, c.value)))
        else:
            found = set(table.get(c.value, ()))
        if not found:
            what = {
                "tag": ("has tag", "has a tag matching"),
                "type": ("of type", "of a type matching"),
                "dataset": ("writes or reads dataset", "writes or reads a dataset matching"),
            }[c.method][wild]
            hint = "" if wild else did_you_mean(c.value, table)
            raise SelectionError(
                f"{_where(option, c.raw)}: no task {what} '{clip(c.value)}' in this flow{hint}"
            )
        return found

    def evaluate(self, c: Criterion, option: str) -> set[str]:
        """The tasks of one criterion, with its ancestors and descendants."""
        found = self.match(c, option)
        graph = self.graph
        chosen = set(found)
        if c.childrens_parents:
            below = _walk(found, graph.successors, None)
            return below | _walk(below, graph.predecessors, None)
        if c.parents:
            chosen |= _walk(found, graph.predecessors, c.parents_depth)
        if c.children:
            chosen |= _walk(found, graph.successors, c.children_depth)
        return chosen

    def expression(self, text: str, option: str) -> set[str]:
        """The tasks of ``a,b,…``: the intersection of its criteria."""
        parts = text.split(",")
        if not all(parts):
            raise SelectionError(f"{_where(option, text)}: an empty criterion around ','")
        result: set[str] | None = None
        for part in parts:  # every criterion is checked, even once the result is empty
            tasks = self.evaluate(parse_criterion(part, option), option)
            result = tasks if result is None else result & tasks
        return result or set()


def _where(option: str, text: str) -> str:
    """``--select calc``, or ``--selector nightly (calc)`` for a criterion of a named selector."""
    if option.startswith("--selector "):
        return f"{option} ({clip(text)})"
    return f"{option} {clip(text)}"


def _specs(graph: TaskGraph, flow: Flow | None) -> Iterator[tuple[str, TaskSpec]]:
    """Each task with its ``TaskSpec``: from ``flow``, else from the graph's ``spec`` data."""
    if flow is not None:
        yield from ((t.id, t) for t in flow.tasks if t.id in graph)
        return
    # ``dag.task_graph`` stores each task's spec on its node.
    for task_id in graph:
        spec = graph.node_data(task_id).get("spec")
        if spec is not None:
            yield task_id, spec


def _walk(start: Iterable[N], step: Callable[[N], Iterable[N]], depth: int | None) -> set[N]:
    """``start`` and every task ``depth`` steps or fewer away along ``step`` (None: any)."""
    seen = set(start)
    frontier = list(seen)
    level = 0
    while frontier and (depth is None or level < depth):
        following: list[N] = []
        for node in frontier:
            for other in step(node):
                if other not in seen:
                    seen.add(other)
                    following.append(other)
        frontier = following
        level += 1
    return seen


def _expressions(values: Iterable[str]) -> list[str]:
    return [part for value in values for part in value.split()]


def expand(
    graph: TaskGraph,
    selectors: Iterable[str],
    option: str = "--select",
    *,
    flow: Flow | None = None,
) -> set[str]:
    """The union of the tasks of ``selectors`` (each value: expressions separated by spaces)."""
    index = _Index(graph, flow)
    chosen: set[str] = set()
    for text in _expressions(selectors):
        chosen |= index.expression(text, option)
    return chosen


def resolve_selector(name: str, selectors: Mapping[str, Sequence[str]]) -> list[str]:
    """The values of ``[selectors] NAME``; a ``SelectionError`` (with a "did you mean") if none."""
    if name not in selectors:
        known = f" (known: {', '.join(sorted(selectors))})" if selectors else ""
        raise SelectionError(
            f"--selector {clip(name)}: no selector '{clip(name)}' in [selectors] of the "
            f"configuration{did_you_mean(name, selectors)}{known}"
        )
    return list(selectors[name])


def select_tasks(
    graph: TaskGraph,
    order: Sequence[str],
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    *,
    flow: Flow | None = None,
    selector: str | None = None,
    selectors: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """The selected tasks, in ``order``.

    Args:
        graph: the flow's task graph (its nodes carry ``spec``, as ``dag.task_graph`` builds).
        order: every task, in the order to return them.
        select: ``--select`` values; none (or only blanks) selects every task.
        exclude: ``--exclude`` values, removed from the selection.
        flow: the flow, for tags, types and datasets (default: the graph's node data).
        selector: ``--selector NAME``, united with ``select``.
        selectors: the ``[selectors]`` table of the configuration.

    Returns:
        The task ids to run; a ``UsageError`` when a criterion matches nothing or the
        selection is empty.
    """
    index = _Index(graph, flow)
    groups: list[tuple[str, list[str]]] = [("--select", _expressions(select))]
    if selector is not None:
        groups.append(
            (
                f"--selector {clip(selector)}",
                _expressions(resolve_selector(selector, selectors or {})),
            )
        )
    chosen: set[str] = set()
    for option, texts in groups:
        for text in texts:
            chosen |= index.expression(text, option)
    if not any(texts for _, texts in groups):
        chosen = set(order)
    for text in _expressions(exclude):
        chosen -= index.expression(text, "--exclude")
    if not chosen:
        raise SelectionError("the selection is empty: no task to run")
    return [t for t in order if t in chosen]
