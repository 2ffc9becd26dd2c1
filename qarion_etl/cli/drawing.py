"""A flow's task graph drawn as text, mermaid, dot or JSON (``qarion-etl graph``).

Dependency edges are solid, dataset edges (a task reads what another writes, as its
``source_dataset_id`` or through ``ref()``) dashed.
A ``Drawing`` says what to draw: ``only`` the selected tasks (``--select``), each task's
status in a run (``--run``: mermaid ``classDef``, dot ``fillcolor``), and with
``datasets`` the datasets as nodes of their own between writer and readers. Imported by
the ``graph`` command only, so ``--help`` does not load the flow models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from qarion_etl.definitions.dag import topological_order
from qarion_etl.definitions.flow import Flow
from qarion_etl.definitions.graph import TaskGraph
from qarion_etl.definitions.refs import ModelIndex, read_names
from qarion_etl.report.colours import COLOURS

#: Edge reasons that are a dataset between two tasks (drawn dashed, or through the dataset).
DATASET_REASONS = ("dataset", "ref")


@dataclass
class Drawing:
    graph: TaskGraph
    flow: Flow
    only: set[str] | None = None
    statuses: dict[str, str] = field(default_factory=dict)
    datasets: bool = False
    #: The project's flows: a one-name ``ref()`` to another flow is drawn as ``flow.dataset``.
    index: ModelIndex | None = None

    @property
    def tasks(self) -> list[str]:
        order = topological_order(self.graph, self.flow)
        return [t for t in order if self.only is None or t in self.only]

    def edges(self) -> list[tuple[str, str, str]]:
        shown = set(self.tasks)
        return [
            (a, b, str(data.get("reason", "dependency")))
            for a, b, data in self.graph.edges(data=True)
            if a in shown
            and b in shown
            and not (self.datasets and data.get("reason") in DATASET_REASONS)
        ]

    def dataset_links(self) -> list[tuple[str, str, str]]:
        """``(task, dataset, "writes"|"reads")`` of the shown tasks, with ``datasets``."""
        if not self.datasets:
            return []
        links = []
        for tid in self.tasks:
            spec = self.flow.task(tid)
            for name in read_names(self.flow, spec, self.index):
                links.append((tid, name, "reads"))
            if spec.target_dataset_id:
                links.append((tid, spec.target_dataset_id, "writes"))
        return links


def render_text(d: Drawing) -> str:
    flow = d.flow
    lines = [f"{flow.id} ({len(d.tasks)} of {len(flow.tasks)} tasks, namespace {flow.namespace})"]
    if d.only is None:
        lines[0] = f"{flow.id} ({len(flow.tasks)} tasks, namespace {flow.namespace})"
    shown = set(d.tasks)
    for tid in d.tasks:
        spec = flow.task(tid)
        ups = sorted((u for u in d.graph.predecessors(tid) if u in shown), key=flow.task_ids.index)
        io = []
        reads = read_names(flow, spec, d.index)
        if reads:
            io.append(f"reads {', '.join(reads)}")
        if spec.target_dataset_id:
            io.append(f"writes {spec.target_dataset_id}")
        after = f"  <- {', '.join(ups)}" if ups else ""
        status = f" ({d.statuses[tid]})" if tid in d.statuses else ""
        lines.append(f"  {tid} [{spec.type}]{status} {'; '.join(io)}{after}".rstrip())
    return "\n".join(lines)


def render_mermaid(d: Drawing) -> str:
    lines = ["flowchart LR"]
    for tid in d.tasks:
        lines.append(f'    {node_name(tid)}["{tid} ({d.flow.task(tid).type})"]')
    for name in sorted({ds for _, ds, _ in d.dataset_links()}):
        lines.append(f'    {dataset_name(name)}[("{name}")]')
    for a, b, reason in d.edges():
        arrow = "-.->" if reason in DATASET_REASONS else "-->"
        lines.append(f"    {node_name(a)} {arrow} {node_name(b)}")
    for tid, ds, how in d.dataset_links():
        a, b = (
            (node_name(tid), dataset_name(ds))
            if how == "writes"
            else (dataset_name(ds), node_name(tid))
        )
        lines.append(f"    {a} -.-> {b}")
    used = sorted({s for t, s in d.statuses.items() if t in set(d.tasks)})
    for status in used:
        fill, stroke = COLOURS.get(status, COLOURS["not_run"])
        lines.append(f"    classDef {status} fill:{fill},stroke:{stroke}")
    for tid in d.tasks:
        if tid in d.statuses:
            lines.append(f"    class {node_name(tid)} {d.statuses[tid]}")
    return "\n".join(lines)


def render_dot(d: Drawing) -> str:
    lines = [f'digraph "{d.flow.id}" {{', "  rankdir=LR;"]
    for tid in d.tasks:
        style = ""
        if tid in d.statuses:
            fill, stroke = COLOURS.get(d.statuses[tid], COLOURS["not_run"])
            style = f', style=filled, fillcolor="{fill}", color="{stroke}"'
        lines.append(f'  "{tid}" [label="{tid}\\n{d.flow.task(tid).type}"{style}];')
    for name in sorted({ds for _, ds, _ in d.dataset_links()}):
        lines.append(f'  "dataset:{name}" [label="{name}", shape=cylinder];')
    for a, b, reason in d.edges():
        style = " [style=dashed]" if reason in DATASET_REASONS else ""
        lines.append(f'  "{a}" -> "{b}"{style};')
    for tid, ds, how in d.dataset_links():
        a, b = (tid, f"dataset:{ds}") if how == "writes" else (f"dataset:{ds}", tid)
        lines.append(f'  "{a}" -> "{b}" [style=dashed];')
    lines.append("}")
    return "\n".join(lines)


def render_json(d: Drawing) -> str:
    nodes = []
    for tid in d.tasks:
        spec = d.flow.task(tid)
        node = {
            "id": tid,
            "type": spec.type,
            "reads": spec.source_dataset_id,
            "writes": spec.target_dataset_id,
            "refs": read_names(d.flow, spec, d.index)[1 if spec.source_dataset_id else 0 :],
        }
        if d.statuses:
            node["status"] = d.statuses.get(tid, "not_run")
        nodes.append(node)
    doc = {
        "flow_id": d.flow.id,
        "nodes": nodes,
        "edges": [{"from": a, "to": b, "reason": r} for a, b, r in d.edges()],
    }
    if d.datasets:
        doc["datasets"] = sorted({ds for _, ds, _ in d.dataset_links()})
        doc["dataset_edges"] = [
            {"task": t, "dataset": ds, "how": how} for t, ds, how in d.dataset_links()
        ]
    return json.dumps(doc, indent=2)


RENDERERS = {"text": render_text, "mermaid": render_mermaid, "dot": render_dot, "json": render_json}


def node_name(task_id: str) -> str:
    """The mermaid node name of a task."""
    return "t_" + "".join(c if c.isalnum() else "_" for c in task_id)


def dataset_name(dataset_id: str) -> str:
    """The mermaid node name of a dataset."""
    return "d_" + "".join(c if c.isalnum() else "_" for c in dataset_id)
