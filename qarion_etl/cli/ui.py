"""``ui``: the local, read-only web UI over run history and XComs."""

from __future__ import annotations

import typer

from qarion_etl.cli import output
from qarion_etl.cli.state import get_project


def ui(
    ctx: typer.Context,
    port: int = typer.Option(
        8765, "--port", metavar="PORT", min=0, max=65535, help="The port to listen on."
    ),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        metavar="HOST",
        help="The address to bind (default: this machine only).",
    ),
    allow_host: list[str] = typer.Option(
        [],
        "--allow-host",
        metavar="NAME",
        help="Also answer requests for this host name (NAME or NAME:PORT; repeatable), "
        "for example behind a reverse proxy. Other names get 400.",
    ),
) -> None:
    """Browse runs, flows, task history and XComs in a web browser (read-only).

    Example: qarion-etl ui --port 8765, then open http://127.0.0.1:8765/
    """
    from qarion_etl.ui import LOCAL_HOSTS, listen, require_extra, serve

    require_extra()
    project = get_project(ctx)
    listener = listen(host, port)
    if host not in LOCAL_HOSTS:
        output.warn(
            f"binding {host}: anyone who can reach it sees your runs, SQL and XComs "
            "(there is no login)"
        )
    output.info(f"qarion-etl ui on {listener.url} (Ctrl-C stops it)")
    try:
        serve(project, listener, allow_host)
    except KeyboardInterrupt:  # how it is meant to stop: no error, exit 0
        output.info("qarion-etl ui stopped")


def register(app: typer.Typer) -> None:
    app.command()(ui)
