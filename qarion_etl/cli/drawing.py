"""A flow's task graph drawn as text, mermaid or dot source (``qarion-etl graph``).

Dependency edges are solid, dataset edges (a task reads what another writes) dashed.
Imported by the ``graph`` command only, so ``--help`` does not load the flow models.
"""

from __future__ import annotations

from qarion_etl.definitions.dag import topological_order
from qarion_etl.definitions.flow import Flow
from qarion_etl.definitions.graph import TaskGraph


def render_text(graph: TaskGraph, flow: Flow) -> str:
    lines = [f"{flow.id} ({len(flow.tasks)} tasks, namespace {flow.namespace})"]
    for tid in topological_order(graph, flow):
        spec = flow.task(tid)
        ups = sorted(graph.predecessors(tid), key=flow.task_ids.index)
        io = []
        if spec.source_dataset_id:
            io.append(f"reads {spec.source_dataset_id}")
        if spec.target_dataset_id:
            io.append(f"writes {spec.target_dataset_id}")
        after = f"  <- {', '.join(ups)}" if ups else ""
        lines.append(f"  {tid} [{spec.type}] {'; '.join(io)}{after}")
    return "\n".join(lines)


def render_mermaid(graph: TaskGraph, flow: Flow) -> str:
    lines = ["flowchart LR"]
    for tid in topological_order(graph, flow):
        lines.append(f'    {node_name(tid)}["{tid} ({flow.task(tid).type})"]')
    for a, b, data in graph.edges(data=True):
        arrow = "-.->" if data.get("reason") == "dataset" else "-->"
        lines.append(f"    {node_name(a)} {arrow} {node_name(b)}")
    return "\n".join(lines)


def render_dot(graph: TaskGraph, flow: Flow) -> str:
    lines = [f'digraph "{flow.id}" {{', "  rankdir=LR;"]
    for tid in topological_order(graph, flow):
        lines.append(f'  "{tid}" [label="{tid}\\n{flow.task(tid).type}"];')
    for a, b, data in graph.edges(data=True):
        style = " [style=dashed]" if data.get("reason") == "dataset" else ""
        lines.append(f'  "{a}" -> "{b}"{style};')
    lines.append("}")
    return "\n".join(lines)


def node_name(task_id: str) -> str:
    """The mermaid node name of a task."""
    return "t_" + "".join(c if c.isalnum() else "_" for c in task_id)
