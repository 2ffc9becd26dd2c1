"""The ``qarion-etl`` command: the root app, global options and the one error boundary.

Commands live in one module per group and only parse arguments and call the library.
Every ``QarionError`` is printed as one ``Error: …`` line on stderr and exits with its
``exit_code``; Ctrl-C exits 130; anything unexpected prints "internal error" and exits 1
(the traceback only with ``--debug`` or ``QARION_ETL_DEBUG=1``).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import typer
from typer.core import TyperGroup

from qarion_etl import __version__
from qarion_etl.cli import output
from qarion_etl.cli.state import get_state
from qarion_etl.cli.wording import cli_message, family
from qarion_etl.errors import QarionError, TaskFailed


def _scrub(text: str, ctx: typer.Context) -> str:
    project = getattr(ctx.obj, "_project", None)
    if project is None:  # the configuration did not load: URL credentials still go
        from qarion_etl.masking import mask_url

        return mask_url(text)
    return str(project.scrub(text))


class _Scrubbed:
    """An error's location, problems and text (without the location), secrets masked."""

    def __init__(self, exc: QarionError, ctx: typer.Context) -> None:
        self.path, self.line = exc.path, exc.line
        self.problems = getattr(exc, "problems", None)
        where = f"{exc.path}:{exc.line}: " if exc.line else f"{exc.path}: "
        text = cli_message(exc)
        self.message = _scrub(text.removeprefix(where) if exc.path else text, ctx)


def _error_document(exc: QarionError, ctx: typer.Context) -> dict[str, Any]:
    """The JSON of an error for ``--json``: message, kind, exit code, location, problems."""
    scrubbed = _Scrubbed(exc, ctx)
    doc: dict[str, Any] = {
        "error": scrubbed.message,
        "type": family(exc),
        "kind": type(exc).__name__,
        "exit_code": exc.exit_code,
        "path": exc.path,
        "line": exc.line,
        "task_id": exc.task_id,
    }
    if scrubbed.problems:
        doc["problems"] = [
            {"message": _scrub(p.message, ctx), "line": p.line, "task_id": p.task_id}
            for p in scrubbed.problems
        ]
    return {"status": "error", **doc}


#: The commands, loaded when first used: name -> (module in ``qarion_etl.cli``, what it
#: is, the first line of its help). ``--help`` lists them from here, so it imports none
#: of them; ``tests/cli/test_polish.py`` checks this table against the commands.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": ("flows", "command", "Check flows offline: schema, DAG, SQL templates, xcom_pull targets, input files and var() calls that neither a default nor --var/--vars-file sets."),
    "graph": ("flows", "command", "Draw a flow's task graph (dependencies and dataset edges)."),
    "run": ("run", "command", "Run a flow: ingest, transform and push results to XCom, in dependency order."),
    "render": ("run", "command", "Print a task's rendered SQL without running anything."),
    "check": ("check", "command", "Run the data checks ([[tasks.checks]]) of a flow against its published datasets."),
    "report": ("report", "command", "Write one HTML file of a run: graph, timeline, tasks, SQL, errors and XComs."),
    "ls": ("listing", "command", "List the tasks (or datasets, or flows) of the project, one per line."),
    "ui": ("ui", "command", "Browse runs, flows, task history and XComs in a web browser (read-only)."),
    "doctor": ("project", "command", "Connect to the warehouse engine, the metadata database and the XCom backend."),
    "init": ("project", "command", "Write a working example project: config, flows/data_pipeline.toml and data/orders.csv."),
    "xcom": ("xcom", "group", "Inspect and manage XCom values (list, get, push, clear)."),
    "runs": ("runs", "group", "Past runs and their task instances."),
    "config": ("project", "config_app", "Inspect the resolved project configuration."),
}  # fmt: skip


def load_command(name: str) -> Any:
    """The click command ``name``, its module imported now."""
    import importlib

    import typer.main

    module_name, kind, _ = COMMANDS[name]
    module = importlib.import_module(f"qarion_etl.cli.{module_name}")
    if kind in ("group", "config_app"):
        return typer.main.get_group(module.app if kind == "group" else module.config_app)
    holder = typer.Typer(rich_markup_mode=None)
    module.register(holder)
    return typer.main.get_group(holder).commands[name]


class QarionGroup(TyperGroup):
    """Turns errors into messages and exit codes for every subcommand; loads commands lazily."""

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        return list(COMMANDS)

    def get_command(self, ctx: typer.Context, name: str) -> Any:  # type: ignore[override]
        found = super().get_command(ctx, name)
        if found is None and name in COMMANDS:
            found = load_command(name)
            self.add_command(found, name)
        return found

    def format_commands(self, ctx: typer.Context, formatter: Any) -> None:  # type: ignore[override]
        from typer._click.utils import make_default_short_help  # typer's own click

        width = max(len(n) for n in COMMANDS)
        limit = (formatter.width or 80) - 6 - width
        rows = [(n, make_default_short_help(h, limit)) for n, (_, _, h) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]  # typer.Context is click's
        output.begin_command()
        try:
            return super().invoke(ctx)
        except QarionError as exc:
            state = get_state(ctx)
            if state.debug:  # the traceback shows the driver's words too: scrubbed
                import traceback

                sys.stderr.write(_scrub(traceback.format_exc(), ctx))
            output.error(_scrub(cli_message(exc), ctx))
            if state.json_stdout and not isinstance(exc, TaskFailed):
                # --json promised a document on stdout: the error is one (a failed task's
                # run has printed its summary already).
                output.emit_json(_error_document(exc, ctx))
            if not isinstance(exc, TaskFailed):  # a run annotates its failed tasks itself
                from qarion_etl.cli import github

                if github.enabled():
                    stream = sys.stderr if state.json_stdout else sys.stdout
                    github.annotate_error(_Scrubbed(exc, ctx), stream=stream)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            output.error("interrupted")
            raise typer.Exit(130) from None
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if get_state(ctx).debug:
                raise
            message = _scrub(f"internal error: {type(exc).__name__}: {exc}", ctx)
            output.error(message)
            output.info(
                "This is a bug in qarion-etl. Rerun with --debug for the traceback and report it."
            )
            if get_state(ctx).json_stdout and not output.json_written():  # the promised one
                output.emit_json({"status": "error", "error": message, "type": "InternalError",
                                  "exit_code": 1})  # fmt: skip
            raise typer.Exit(1) from None


app = typer.Typer(
    name="qarion-etl",
    cls=QarionGroup,
    help="Run ETL flows written in TOML, with XCom between tasks.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: rich costs ~70 ms of start-up
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"qarion-etl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: str = typer.Option(
        None,
        "--config",
        "-c",
        envvar="QARION_ETL_CONFIG",
        metavar="PATH",
        help="Path to qarion-etl.toml (default: nearest in this folder or a parent).",
    ),
    debug: bool = typer.Option(
        False, "--debug", envvar="QARION_ETL_DEBUG", help="Show tracebacks for errors."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Run ETL flows written in TOML, with XCom between tasks."""
    state = get_state(ctx)
    state.config_path = config
    state.debug = debug


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point.

    SIGTERM (what CI systems, ``timeout`` and container runtimes send) stops a run the way
    Ctrl-C does: running tasks abandon their writes, the run is recorded ``interrupted``
    and the command exits 130.
    """
    import signal

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    app(args=argv, prog_name="qarion-etl")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
