"""The task graph of a flow, with an edge from each task to the tasks that need it.

Edges come from ``dependencies`` and from datasets: a task that reads a dataset another
task of the flow writes (as ``source_dataset_id`` or through ``ref()``) runs after that
writer. ``graph_problems`` lists what makes a flow
unrunnable. ``task_graph`` returns the checked graph as a light ``TaskGraph`` (what the
runner uses: no networkx import on the hot path); ``build_dag`` returns it as a
``networkx.DiGraph``.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from qarion_etl.definitions.flow import Flow
from qarion_etl.definitions.graph import TaskGraph
from qarion_etl.definitions.refs import ref_edges
from qarion_etl.errors import FlowValidationError, Problem, did_you_mean

if TYPE_CHECKING:
    import networkx as nx


def graph_problems(flow: Flow) -> list[Problem]:
    """Duplicate ids, unknown dependencies, two writers of one dataset, cycles."""
    problems: list[Problem] = []
    ids = flow.task_ids
    for task_id, n in Counter(ids).items():
        if n > 1:
            lines = [t.line for t in flow.tasks if t.id == task_id]
            problems.append(
                Problem(
                    f"duplicate task id '{task_id}' (defined {n} times, lines {', '.join(map(str, lines))})",
                    lines[-1],
                    task_id,
                )
            )
    known = set(ids)
    for task in flow.tasks:
        for dep in task.dependencies:
            if dep not in known:
                problems.append(
                    Problem(
                        f"unknown dependency '{dep}'{did_you_mean(dep, known)}",
                        task.line_of("dependencies"),
                        task.id,
                    )
                )
            elif dep == task.id:
                problems.append(
                    Problem("a task cannot depend on itself", task.line_of("dependencies"), task.id)
                )
    writers: dict[str, list[str]] = {}
    for task in flow.tasks:
        if task.target_dataset_id:
            writers.setdefault(task.target_dataset_id, []).append(task.id)
    for dataset, tasks in writers.items():
        if len(tasks) > 1:
            problems.append(
                Problem(
                    f"dataset '{dataset}' is written by several tasks: {', '.join(tasks)}",
                    flow.task(tasks[1]).line_of("target_dataset_id"),
                    tasks[1],
                )
            )
    if not problems:
        path = _graph(flow).find_cycle()
        if path:
            first = flow.task(path[0])
            problems.append(Problem(f"dependency cycle: {' -> '.join(path)}", first.line, first.id))
    return problems


def _graph(flow: Flow) -> TaskGraph:
    graph = TaskGraph()
    for task in flow.tasks:
        graph.add_node(task.id, spec=task)
    writer = {t.target_dataset_id: t.id for t in flow.tasks if t.target_dataset_id}
    for task in flow.tasks:
        for dep in task.dependencies:
            if dep in graph:
                graph.add_edge(dep, task.id, reason="dependency")
        src = task.source_dataset_id
        if (
            src
            and src in writer
            and writer[src] != task.id
            and not graph.has_edge(writer[src], task.id)
        ):
            graph.add_edge(writer[src], task.id, reason="dataset")
    for upstream, task_id in ref_edges(flow):
        if not graph.has_edge(upstream, task_id):
            graph.add_edge(upstream, task_id, reason="ref")
    return graph


def task_graph(flow: Flow) -> TaskGraph:
    """The flow's checked graph; raises ``FlowValidationError`` listing every graph problem."""
    problems = graph_problems(flow)
    if problems:
        raise FlowValidationError(flow.shown_path, problems)
    return _graph(flow)


def build_dag(flow: Flow) -> nx.DiGraph:
    """The flow's DAG as a ``networkx.DiGraph`` (nodes carry ``spec``, edges ``reason``)."""
    return task_graph(flow).to_networkx()


def topological_order(graph: TaskGraph | nx.DiGraph, flow: Flow) -> list[str]:
    """Tasks in dependency order, ties broken by their order in the file."""
    position = {tid: i for i, tid in enumerate(flow.task_ids)}
    if isinstance(graph, TaskGraph):
        return graph.topological_order(key=position.__getitem__)
    import networkx as nx

    return list(nx.lexicographical_topological_sort(graph, key=lambda n: position[n]))
