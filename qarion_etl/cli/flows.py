"""``validate`` and ``graph``: offline checks of flow files, and drawings of their graphs."""

from __future__ import annotations

import typer

from qarion_etl.cli import output
from qarion_etl.cli.state import get_project
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
    from qarion_etl.cli.drawing import render_dot, render_mermaid, render_text  # not for --help

    renderers = {"text": render_text, "mermaid": render_mermaid, "dot": render_dot}
    if fmt not in renderers:
        raise UsageError(f"unknown --format '{fmt}' (use text, mermaid or dot)")
    spec, graph_ = get_project(ctx).validate(flow)
    output.emit(renderers[fmt](graph_, spec))


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(graph)
