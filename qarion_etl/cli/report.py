"""``report``: one self-contained HTML page of a run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from qarion_etl.cli import complete, output
from qarion_etl.cli.state import get_project

if TYPE_CHECKING:
    from qarion_etl.project import Project


def report(
    ctx: typer.Context,
    run_id: str = typer.Argument(
        "latest",
        metavar="[RUN_ID]",
        help="The dag_run_id, or 'latest' (the default).",
        autocompletion=complete.runs,
    ),
    out: Path = typer.Option(
        None,
        "--output",
        "-o",
        metavar="FILE",
        help="Where to write it (default: .qarion/runs/<flow>/<run id>/report.html).",
    ),
    flow: str = typer.Option(
        None, "--flow", metavar="FLOW", help="The run's flow (for 'latest', or a shared run id)."
    ),
) -> None:
    """Write one HTML file of a run: graph, timeline, tasks, SQL, errors and XComs.

    The file is self-contained (it makes no network request when opened), so a CI job can
    keep it as an artifact. Example: qarion-etl report latest -o run.html
    """
    path = write_run_report(get_project(ctx), run_id, flow, out)
    output.emit(str(path))


def write_run_report(
    project: Project, run_id: str, flow: str | None = None, out: Path | None = None
) -> Path:
    """Write the report of run ``run_id``; returns its path."""
    from qarion_etl.report.data import run_view
    from qarion_etl.report.html import write_report
    from qarion_etl.run.logs import run_folder

    view = run_view(project, run_id, flow)
    assert view.dag_run_id is not None
    path = (
        out or run_folder(project.config.state_dir, view.flow_id, view.dag_run_id) / "report.html"
    )
    try:
        return write_report(view, path)
    except (OSError, ValueError) as exc:
        from qarion_etl.errors import UsageError

        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"cannot write the report to {path}: {reason}") from None


def register(app: typer.Typer) -> None:
    app.command()(report)
