"""``validate`` and ``graph``: offline checks of flow files, and drawings of their graphs."""

from __future__ import annotations

from typing import Any

import typer

from qarion_etl.cli import complete, output
from qarion_etl.cli.state import get_project, get_state
from qarion_etl.errors import UsageError


def validate(
    ctx: typer.Context,
    flows: list[str] = typer.Argument(
        None,
        metavar="[FLOW]...",
        help="Flow files or ids (default: every flow in flows_dir).",
        autocompletion=complete.flows,
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    var: list[str] = typer.Option(
        None,
        "--var",
        metavar="NAME=VALUE",
        help="Template variable NAME=VALUE the runs will get; repeatable.",
    ),
    vars_file: str = typer.Option(
        None, "--vars-file", metavar="FILE", help="JSON or TOML file of template variables."
    ),
) -> None:
    """Check flows offline: schema, DAG, SQL templates, xcom_pull targets, input files and
    var() calls that neither a default nor --var/--vars-file sets.

    Example: qarion-etl validate flows/data_pipeline.toml --var day=2024-01-15
    """
    from qarion_etl.cli.params import load_vars_file, parse_pairs

    variables = load_vars_file(vars_file) if vars_file else {}
    variables.update(parse_pairs(var or [], "--var"))
    project = get_project(ctx)
    get_state(ctx).json_stdout = json_out
    results = project.validate_all(flows or None, variables=variables, offline=True)
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
    from qarion_etl.cli import github

    if github.enabled():
        import sys

        for err in failed:
            github.annotate_error(err, stream=sys.stderr if json_out else sys.stdout)
    if failed:
        raise typer.Exit(2)


def graph(
    ctx: typer.Context,
    flow: str = typer.Argument(
        None,
        metavar="[FLOW]",
        help="Flow file or id (none: the project's flows and the ref() edges between them).",
        autocompletion=complete.flows,
    ),
    fmt: str = typer.Option(
        "text",
        "--format",
        "-f",
        metavar="FORMAT",
        help="text, mermaid, dot, json, svg or html.",
    ),
    select: list[str] = typer.Option(
        None,
        "--select",
        "-s",
        metavar="SELECTOR",
        help="Draw only these tasks (as run --select).",
        autocompletion=complete.tasks,
    ),
    datasets: bool = typer.Option(
        False, "--datasets", help="Draw the datasets as nodes between writers and readers."
    ),
    run: str = typer.Option(
        None,
        "--run",
        metavar="RUN_ID",
        help="Colour the tasks by their status in this run ('latest').",
        autocompletion=complete.runs,
    ),
) -> None:
    """Draw a flow's task graph (dependencies and dataset edges).

    Without FLOW: the project's flows and the ref() edges between them.

    svg is the picture alone, html a self-contained page with each task's config.
    Example: qarion-etl graph data_pipeline --run latest --format mermaid
    """
    from qarion_etl.cli.drawing import RENDERERS, Drawing  # not for --help

    known = (*RENDERERS, "svg", "html")
    if fmt not in known:
        raise UsageError(f"unknown --format '{fmt}' (use {', '.join(known[:-1])} or {known[-1]})")
    project = get_project(ctx)
    if flow is None:
        from qarion_etl.cli.flowgraph import draw_flows

        if select or run or datasets:
            raise UsageError("--select, --run and --datasets draw one flow: name it")
        failed = [exc for _, exc in project.validate_all() if exc is not None]
        if failed:
            raise failed[0]  # a cycle, a bad ref: as validate says it
        output.emit(draw_flows(project.models(), fmt))
        return
    spec, graph_ = project.validate(flow)
    if fmt in ("svg", "html"):
        from qarion_etl.report.data import flow_view, run_view
        from qarion_etl.report.html import render_report
        from qarion_etl.report.svg import graph_svg

        if datasets:
            raise UsageError("--datasets draws text, mermaid, dot or json (not svg or html)")
        view = run_view(project, run, spec.id) if run else flow_view(project, flow)
        if select:
            view.only(set(_selected(graph_, spec, list(select))))
        output.emit(graph_svg(view, standalone=True) if fmt == "svg" else render_report(view))
        return
    drawing = Drawing(graph_, spec, datasets=datasets, index=project.models())
    if select:
        drawing.only = set(_selected(graph_, spec, list(select)))
    if run:
        drawing.statuses = _statuses(project, spec.id, run)
    output.emit(RENDERERS[fmt](drawing))


def _selected(graph_: Any, spec: Any, select: list[str]) -> list[str]:
    from qarion_etl.run.selection import select_tasks

    return select_tasks(graph_, spec.task_ids, select, flow=spec)


def _statuses(project: Any, flow_id: str, run_id: str) -> dict[str, str]:
    store = project.run_store()
    found = store.find_run(run_id, flow_id)
    return {t.task_id: t.status for t in store.task_instances(found.flow_id, found.dag_run_id)}


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(graph)
