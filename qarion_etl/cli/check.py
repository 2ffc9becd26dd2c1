"""``check``: run a flow's data checks against its published datasets (``run.check_runs``)."""

from __future__ import annotations

import typer

from qarion_etl.cli import complete, output
from qarion_etl.cli.checks_view import check_lines
from qarion_etl.cli.state import get_project, get_state


def check(
    ctx: typer.Context,
    flow: str = typer.Argument(
        ..., metavar="FLOW", help="Flow file or flow id.", autocompletion=complete.flows
    ),
    select: list[str] = typer.Option(
        None,
        "--select",
        "-s",
        metavar="SELECTOR",
        autocompletion=complete.tasks,
        help="Tasks whose checks to run (the grammar of run --select).",
    ),
    exclude: list[str] = typer.Option(
        None,
        "--exclude",
        metavar="SELECTOR",
        autocompletion=complete.tasks,
        help="Tasks to leave out (same syntax as --select).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
) -> None:
    """Run the data checks ([[tasks.checks]]) of a flow against its published datasets.

    Exits 1 when a check of severity error fails, 0 otherwise.

    Example: qarion-etl check shop --select load
    """
    from qarion_etl.run.check_runs import check_flow

    get_state(ctx).json_stdout = json_out
    project = get_project(ctx)
    report = check_flow(project, flow, select or [], exclude or [])
    if json_out:
        output.emit_json(report.as_dict())
    if not report.tasks:
        output.info(f"{report.flow_id}: no checks in the selected tasks")
    for task in report.tasks:
        output.info(f"{task.task_id} -> {task.dataset}")
        if task.error is not None:
            output.info(f"  ERROR {task.error}")
        for line in check_lines(task.checks):
            output.info(f"  {line}")
    failed = [t.task_id for t in report.tasks if t.failed]
    if failed:
        output.error(f"checks failed in {', '.join(failed)}")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``check`` to the root app."""
    app.command()(check)
