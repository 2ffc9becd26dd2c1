"""``config show``, ``doctor`` and ``init``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from qarion_etl.cli import output
from qarion_etl.cli.state import get_project

config_app = typer.Typer(
    help="Inspect the resolved project configuration.", no_args_is_help=True, rich_markup_mode=None
)


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Print the resolved configuration (secrets masked) and the XCom backend class in use.

    Example: qarion-etl config show --json
    """
    from qarion_etl.diagnostics import backend_class_path

    project = get_project(ctx)
    data = project.config.to_display()
    data["xcom"]["backend_class"] = backend_class_path(project)
    if json_out:
        output.emit_json(data)
        return
    if data["config_file"] is None:
        output.info("No qarion-etl.toml found in this folder or a parent: showing the defaults.")
    output.emit(_as_toml_like(data))


def _as_toml_like(data: dict[str, Any], prefix: str = "") -> str:
    import json

    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if prefix and (scalars or not tables):
        lines.append(f"[{prefix}]")
    for key, value in scalars.items():
        lines.append(f"{key} = {json.dumps(value, default=str)}")
    for key, value in tables.items():
        sub = _as_toml_like(value, f"{prefix}.{key}" if prefix else key)
        if sub:
            lines.append("")
            lines.append(sub)
    return "\n".join(lines).strip("\n")


def doctor(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    """Connect to the warehouse engine, the metadata database and the XCom backend.

    Example: qarion-etl doctor
    """
    from qarion_etl.diagnostics import run_checks

    checks = run_checks(get_project(ctx))
    if json_out:
        output.emit_json([c.as_dict() for c in checks])
    else:
        for check in checks:
            (output.success if check.ok else output.error)(
                f"{'OK  ' if check.ok else 'FAIL'} {check.name}: {check.detail}"
            )
    failed = [c for c in checks if not c.ok]
    if failed:
        raise typer.Exit(max(c.exit_code for c in failed))


def init(
    directory: Path = typer.Argument(
        Path("."), metavar="[DIR]", help="Folder to create the project in."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
) -> None:
    """Write a working example project: config, flows/data_pipeline.toml and data/orders.csv.

    Also a .gitignore for the local state (added to, if there is one). Example: qarion-etl init my_project
    """
    from qarion_etl.scaffold import write_scaffold

    written = write_scaffold(directory, force=force)
    for path in written:
        output.info(f"created {path}")
    if directory.resolve() == Path.cwd().resolve():
        output.success("Project ready in this folder. Next: qarion-etl run data_pipeline")
        return
    import shlex

    output.success(
        f"Project ready in {directory}. "
        f"Next: cd {shlex.quote(str(directory))} && qarion-etl run data_pipeline"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
    app.command()(doctor)
    app.command()(init)
