"""``ls``: the flows, tasks and datasets of a project, narrowed by a selection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from qarion_etl.cli import complete, output
from qarion_etl.cli.state import get_project
from qarion_etl.errors import QarionError, UsageError, did_you_mean

if TYPE_CHECKING:
    from qarion_etl.definitions.flow import Flow, TaskSpec
    from qarion_etl.project import Project

RESOURCE_TYPES = ("task", "dataset", "flow", "column")


def ls(
    ctx: typer.Context,
    flow: str = typer.Argument(
        None,
        metavar="[FLOW]",
        help="One flow (default: every flow).",
        autocompletion=complete.flows,
    ),
    select: list[str] = typer.Option(
        None,
        "--select",
        "-s",
        metavar="SELECTOR",
        help="Only these tasks (the grammar of run --select).",
        autocompletion=complete.tasks,
    ),
    exclude: list[str] = typer.Option(
        None, "--exclude", metavar="SELECTOR", help="Leave these tasks out."
    ),
    resource_type: str = typer.Option(
        "task",
        "--resource-type",
        metavar="task|dataset|flow|column",
        help="What to list (column: each task's declared or inferred columns).",
    ),
    fmt: str = typer.Option("text", "--output", "-o", metavar="text|json", help="text or json."),
) -> None:
    """List the tasks (or datasets, or flows) of the project, one per line.

    Tasks print as FLOW.TASK, datasets as NAMESPACE.DATASET, columns as FLOW.TASK.COLUMN
    with their type, whether declared or inferred (by the last run), and description.
    Example: qarion-etl ls --select calculate_stats+ --resource-type dataset
    """
    if resource_type not in RESOURCE_TYPES:
        raise UsageError(f"--resource-type {resource_type!r}: use {', '.join(RESOURCE_TYPES)}")
    if fmt not in ("text", "json"):
        raise UsageError(f"--output {fmt!r}: use text or json")
    rows = _rows(get_project(ctx), flow, list(select or []), list(exclude or []), resource_type)
    if fmt == "json":
        output.emit_json(rows)
        return
    if resource_type == "column":
        _emit_columns(rows)
        return
    for row in rows:
        output.emit(row["name"])


def _emit_columns(rows: list[dict[str, Any]]) -> None:
    """One column a line: name, type, declared or inferred, description (aligned)."""
    cells = [
        (r["name"], r["schema_type"] or "-", r["source"], r["description"] or "") for r in rows
    ]
    widths = [max((len(c[i]) for c in cells), default=0) for i in range(3)]
    for cell in cells:
        line = "  ".join(text.ljust(width) for text, width in zip(cell, widths, strict=False))
        output.emit(f"{line}  {cell[3]}".rstrip())


def _rows(
    project: Project, flow: str | None, select: list[str], exclude: list[str], kind: str
) -> list[dict[str, Any]]:
    from qarion_etl.run.selection import select_tasks

    refs = [flow] if flow else [str(p) for p in project.flow_paths()]
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    missed: list[QarionError] = []
    task_ids: list[str] = []
    across = _across(project, refs, select, exclude) if not flow else None
    for ref in refs:
        spec, graph = project.validate(ref)
        task_ids.extend(spec.task_ids)
        if across is not None:
            chosen = across.get(ref, [])
            if not chosen:
                continue
        else:
            try:
                chosen = select_tasks(graph, spec.task_ids, select, exclude, flow=spec)
            except QarionError as exc:
                if flow or not select:
                    raise
                missed.append(exc)
                continue  # with several flows, a selection names tasks of some of them
        if kind == "flow":
            out.append({"name": spec.id, "path": spec.shown_path, "tasks": len(chosen)})
            continue
        for tid in chosen:
            task = spec.task(tid)
            if kind == "task":
                out.append(_task_row(project, spec, task, sorted(graph.predecessors(tid))))
                continue
            if kind == "column":
                out.extend(_column_rows(project, spec, task))
                continue
            for namespace, dataset, owner, how in _datasets_of(project, spec, tid):
                name = f"{namespace}.{dataset}"
                if name not in seen:
                    seen.add(name)
                    out.append(
                        {"name": name, "namespace": namespace, "dataset": dataset,
                         "flow_id": owner, "writer": None, "readers": []}
                    )  # fmt: skip
                row = next(r for r in out if r["name"] == name)
                if how == "writer":
                    row["writer"] = f"{spec.id}.{tid}"
                else:
                    row["readers"].append(f"{spec.id}.{tid}")
    if select and not out and not flow:
        if len(missed) == 1 and len(refs) == 1:
            raise missed[0]  # one flow: run's own message, with its "did you mean"
        raise UsageError(
            f"--select {' '.join(select)}: no task of any flow matches{_suggest(select, task_ids)}"
        )
    return out


def _across(
    project: Project, refs: list[str], select: list[str], exclude: list[str]
) -> dict[str, list[str]] | None:
    """The selection over every flow as one graph (``+x`` reaches into upstream flows).

    ``None`` without a selection, or when it matches nothing: the per-flow pass words that.
    """
    from qarion_etl.run.across import select_across
    from qarion_etl.run.model import RunRequest

    if not (select or exclude) or len(refs) < 2:
        return None
    try:
        return select_across(project, refs, RunRequest(select=select, exclude=exclude))
    except QarionError:
        return None


def _datasets_of(project: Project, flow: Flow, task_id: str) -> list[tuple[str, str, str, str]]:
    """``(namespace, dataset, flow id, "writer"|"reader")`` for what one task writes and reads.

    The datasets it reads through ``ref()`` are in the namespace of the flow that writes them.
    """
    task = flow.task(task_id)
    out = []
    if task.target_dataset_id:
        out.append((flow.namespace, task.target_dataset_id, flow.id, "writer"))
    if task.source_dataset_id:
        out.append((flow.namespace, task.source_dataset_id, flow.id, "reader"))
    for found in project.models().reads(flow, task):
        out.append((found.flow.namespace, found.dataset, found.flow.id, "reader"))
    return out


def _task_row(project: Project, flow: Flow, task: TaskSpec, deps: list[str]) -> dict[str, Any]:
    from qarion_etl.run.schemas import task_columns

    columns = task_columns(flow, task, project.config.state_dir)
    return {
        "name": f"{flow.id}.{task.id}",
        "flow_id": flow.id,
        "task_id": task.id,
        "type": task.type,
        "reads": task.source_dataset_id,
        "refs": [f"{r.flow.id}.{r.dataset}" for r in project.models().reads(flow, task)],
        "writes": task.target_dataset_id,
        "dependencies": deps,
        "description": _scrubbed(project, task.description),
        "materialized": task.materialized if task.type == "transformation" else None,
        "columns": [
            {**c, "description": _scrubbed(project, c["description"])} for c in columns.columns
        ],
        "columns_source": columns.source,
        "checks": [
            {"name": c.name, "type": c.type, "column": c.column, "severity": c.severity}
            for c in task.checks
        ],
    }


def _column_rows(project: Project, flow: Flow, task: TaskSpec) -> list[dict[str, Any]]:
    from qarion_etl.run.schemas import task_columns

    columns = task_columns(flow, task, project.config.state_dir)
    return [
        {
            "name": f"{flow.id}.{task.id}.{c['name']}",
            "flow_id": flow.id,
            "task_id": task.id,
            "column": c["name"],
            "schema_type": c["schema_type"],
            "required": c["required"],
            "description": _scrubbed(project, c["description"]),
            "source": columns.source,
        }
        for c in columns.columns
    ]


def _scrubbed(project: Project, text: str | None) -> str | None:
    """A description with the project's secrets masked."""
    return None if text is None else project.scrub(text)


def _suggest(select: list[str], task_ids: list[str]) -> str:
    """A "did you mean" for the first plain task name of ``select`` that no flow has."""
    from qarion_etl.run.selection import parse_criterion

    for value in select:
        for text in value.replace(",", " ").split():
            criterion = parse_criterion(text)
            name = criterion.value
            if criterion.method is None and name not in task_ids and not set(name) & set("*?["):
                return did_you_mean(name, task_ids)
    return ""


def register(app: typer.Typer) -> None:
    app.command("ls")(ls)
