"""``validate`` and ``graph``: offline checks of flow files, and the graph's text forms."""

from __future__ import annotations

import typer

from qarion_etl.cli import output
from qarion_etl.cli.state import get_project
from qarion_etl.definitions.dag import topological_order
from qarion_etl.definitions.flow import Flow
from qarion_etl.definitions.graph import TaskGraph
from qarion_etl.errors import UsageError


def validate(
    ctx: typer.Context,
    flows: list[str] = typer.Argument(
        None, metavar="[FLOW]...", help="Flow files or ids (default: every flow in flows_dir)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Check flows offline: schema, DAG, SQL templates and xcom_pull targets."""
    project = get_project(ctx)
    results = project.validate_all(flows or None)
    failed = [err for _, err in results if err is not None]
    if json_out:
        output.emit_json(
            {
                "valid": not failed,
                "flows": [
                    {
                        "path": path,
                        "valid": err is None,
                        "problems": []
                        if err is None
                        else [
                            {"line": p.line, "task": p.task_id, "message": p.message}
                            for p in err.problems
                        ],
                    }
                    for path, err in results
                ],
            }
        )
    else:
        for path, err in results:
            if err is None:
                output.success(f"OK    {path}")
            else:
                output.info(f"FAIL  {path}")
                for problem in err.problems:
                    output.error(problem.format(err.path))
        total = len(results)
        output.info(f"{total - len(failed)} of {total} flow{'s' if total != 1 else ''} valid")
    if failed:
        raise typer.Exit(2)


def graph(
    ctx: typer.Context,
    flow: str = typer.Argument(..., metavar="FLOW", help="Flow file or id."),
    fmt: str = typer.Option(
        "text", "--format", "-f", metavar="FORMAT", help="text, mermaid or dot."
    ),
) -> None:
    """Draw a flow's task graph (dependencies and dataset edges)."""
    renderers = {"text": render_text, "mermaid": render_mermaid, "dot": render_dot}
    if fmt not in renderers:
        raise UsageError(f"unknown --format '{fmt}' (use text, mermaid or dot)")
    spec, graph_ = get_project(ctx).validate(flow)
    output.emit(renderers[fmt](graph_, spec))


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
        lines.append(f'    {_node(tid)}["{tid} ({flow.task(tid).type})"]')
    for a, b, data in graph.edges(data=True):
        arrow = "-.->" if data.get("reason") == "dataset" else "-->"
        lines.append(f"    {_node(a)} {arrow} {_node(b)}")
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


def _node(task_id: str) -> str:
    return "t_" + "".join(c if c.isalnum() else "_" for c in task_id)


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(graph)
