"""``qarion-etl xcom list | get | push | clear``: inspect and manage XCom values.

Commands parse their arguments and call ``XComService``; ``get`` prints only the value,
so a CI step can capture it. rich is imported by ``list`` alone.
"""

from __future__ import annotations

import base64
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

import typer

from qarion_etl.cli import complete, output
from qarion_etl.cli.state import get_project, run_id_of
from qarion_etl.errors import UsageError, clip
from qarion_etl.jsontext import TooDeep, loads

app = typer.Typer(
    help="Inspect and manage XCom values (list, get, push, clear).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

#: ``XComValueType``'s names, written out so that ``--help`` does not import the XCom
#: package (a test keeps the two equal).
_TYPES = ("json", "string", "integer", "float", "boolean", "binary")

TABLE_LIMIT = 50

FLOW = typer.Option(None, "--flow", metavar="FLOW", help="Flow id.", autocompletion=complete.flows)
RUN = typer.Option(
    None,
    "--run",
    metavar="RUN_ID",
    help="dag_run_id, or 'latest' for the newest run (of --flow).",
    autocompletion=complete.runs,
)
BATCH = typer.Option(None, "--batch", metavar="N", help="Batch id.")


def parse_value(
    text: str, value_type: str | None, *, task_id: str | None = None, key: str | None = None
) -> Any:
    """VALUE of ``xcom push``: JSON when it parses (else a string), or as ``--type`` says.

    Raises:
        UsageError: VALUE cannot be read as the forced type (naming task and key).
    """
    from qarion_etl.xcom.values import XComValueType  # only when a value is pushed

    try:
        if value_type is None:
            try:
                return loads(text)
            except TooDeep:
                raise
            except ValueError:
                return text
        return XComValueType(value_type.lower()).from_text(text)
    except TooDeep as exc:
        raise UsageError(f"VALUE: {exc}", task_id=task_id, key=key) from None
    except ValueError as exc:
        raise UsageError(f"VALUE {exc}", task_id=task_id, key=key) from None


def render_value(value: Any, raw: bool) -> str | bytes:
    """What ``xcom get`` prints: JSON, or the bare string/bytes with ``--raw``."""
    if raw and isinstance(value, str):
        return value + "\n"
    if raw and isinstance(value, bytes):
        return value
    if isinstance(value, bytes):
        value = base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return ("NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")) + "\n"
    return json.dumps(value, ensure_ascii=False) + "\n"


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


@app.command("list")
def list_values(
    ctx: typer.Context,
    flow: str = FLOW,
    task: str = typer.Option(
        None, "--task", metavar="TASK", help="Task id.", autocompletion=complete.tasks
    ),
    run: str = RUN,
    batch: int = BATCH,
    key: str = typer.Option(
        None, "--key", metavar="KEY", help="XCom key.", autocompletion=complete.keys
    ),
    limit: int = typer.Option(
        None,
        "--limit",
        metavar="N",
        min=1,
        help=f"At most this many values, newest first (table default {TABLE_LIMIT}; --json: all).",
    ),
    every: bool = typer.Option(False, "--all", help="Every matching value in the table too."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List XCom values, newest first, in their light form (never the full value).

    Example: qarion-etl xcom list --flow data_pipeline --task calculate_stats
    """
    project = get_project(ctx)
    service = project.xcom_service()
    filters: dict[str, Any] = {
        "flow_id": flow,
        "task_id": task,
        "dag_run_id": run_id_of(ctx, run, flow),
        "batch_id": batch,
        "key": key,
    }
    if limit is None and not json_out and not every:
        limit = TABLE_LIMIT
    # One more than shown tells whether anything was left out; only then are they counted.
    entries = service.list(**filters, limit=None if limit is None else limit + 1)
    more = limit is not None and len(entries) > limit
    entries = entries[:limit] if more else entries
    if json_out:
        docs = [e.to_dict() for e in entries]
        for doc in docs:  # the light form, secrets masked as the UI masks them
            if isinstance(doc["preview"], str):
                doc["preview"] = project.scrub(doc["preview"])
        output.emit_json(docs)
        return
    if not entries:
        output.info("No XCom values match.")
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    header = ("FLOW", "RUN", "BATCH", "TASK", "KEY", "TYPE", "SIZE", "CREATED (UTC)", "PREVIEW")
    rows = [
        (
            e.flow_id,
            e.dag_run_id or "-",
            "-" if e.batch_id is None else str(e.batch_id),
            e.task_id,
            e.key,
            e.value_type,
            f"{e.size:,}",
            e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            # The light form on one line, secrets masked as the UI masks them.
            clip(project.scrub(" ".join(str(e.preview).split())), 80),
        )
        for e in entries
    ]
    # On a terminal the table fits the window; in a pipe or a CI log nothing is cut.
    console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 1000)
    keep = fit_columns(header, rows, console.width)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for i in keep:
        name = header[i]
        fixed = None if name == "PREVIEW" else min(40, max(len(name), *(len(r[i]) for r in rows)))
        table.add_column(
            name,
            overflow="ellipsis",
            no_wrap=True,
            min_width=fixed if name != "PREVIEW" else PREVIEW_MIN,
            justify="right" if name in ("BATCH", "SIZE") else "left",
        )
    for row in rows:
        # Data: never rich markup, its control characters shown.
        table.add_row(*(Text(output.shown(row[i])) for i in keep))
    console.print(table)
    if more:
        total = service.count(**filters)
        output.info(f"{len(entries):,} of {total:,} shown: --limit N or --all")


#: The narrowest PREVIEW column a table keeps; other columns go first to make room.
PREVIEW_MIN = 24
#: The columns a narrow terminal drops first, in order (PREVIEW, TASK and KEY always stay).
DROP_ORDER = ("CREATED (UTC)", "BATCH", "TYPE", "SIZE", "FLOW", "RUN")


def fit_columns(header: tuple[str, ...], rows: Sequence[tuple[str, ...]], width: int) -> list[int]:
    """The columns of ``header`` (by index) that fit ``width`` with ``PREVIEW_MIN`` for PREVIEW."""
    sizes = {
        name: min(40, max(len(name), *(len(r[i]) for r in rows))) for i, name in enumerate(header)
    }
    sizes["PREVIEW"] = PREVIEW_MIN
    shown = list(header)

    def needed() -> int:
        return sum(sizes[n] for n in shown) + (len(shown) - 1)

    for name in DROP_ORDER:
        if needed() <= width:
            break
        if name in shown:
            shown.remove(name)
    return [header.index(n) for n in shown]


@app.command("get")
def get_value(
    ctx: typer.Context,
    task: str = typer.Argument(
        ..., metavar="TASK", help="The task that pushed the value.", autocompletion=complete.tasks
    ),
    key: str = typer.Option(
        "return_value", "--key", metavar="KEY", help="XCom key.", autocompletion=complete.keys
    ),
    flow: str = FLOW,
    run: str = RUN,
    batch: int = BATCH,
    raw: bool = typer.Option(
        False, "--raw", help="Print strings and bytes as they are, not as JSON."
    ),
) -> None:
    """Print one value (JSON) on stdout; exit 1 when nothing matches. The newest match wins.

    Example: qarion-etl xcom get calculate_stats --key avg_value --flow data_pipeline
    """
    value = (
        get_project(ctx)
        .xcom_service()
        .get(task, key=key, batch_id=batch, dag_run_id=run_id_of(ctx, run, flow), flow_id=flow)
    )
    text = render_value(value, raw)
    if isinstance(text, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(text)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(text)


@app.command("push")
def push_value(
    ctx: typer.Context,
    task: str = typer.Argument(
        ..., metavar="TASK", help="Task id to push as.", autocompletion=complete.tasks
    ),
    value: str = typer.Argument(
        ..., metavar="VALUE", help="The value: JSON when it parses, else a string."
    ),
    key: str = typer.Option(
        "return_value", "--key", metavar="KEY", help="XCom key.", autocompletion=complete.keys
    ),
    value_type: str = typer.Option(
        None, "--type", metavar="TYPE", help=f"Force a type: {', '.join(_TYPES)}."
    ),
    flow: str = typer.Option(
        None, "--flow", metavar="FLOW", help="Flow id (required).", autocompletion=complete.flows
    ),
    run: str = RUN,
    batch: int = BATCH,
) -> None:
    """Push one value, replacing an earlier push with the same identity.

    Example: qarion-etl xcom push calculate_stats 250.5 --key avg_value --flow data_pipeline
    """
    if not flow:
        raise UsageError("xcom push needs --flow (the flow the value belongs to)")
    if value_type is not None and value_type.lower() not in _TYPES:
        raise UsageError(f"--type must be one of {', '.join(_TYPES)}, not {value_type!r}")
    parsed = parse_value(value, value_type, task_id=task, key=key)
    service = get_project(ctx).xcom_service(flow_id=flow)
    service.push(
        task,
        parsed,
        key=key,
        value_type=value_type.lower() if value_type else None,
        batch_id=batch,
        dag_run_id=run_id_of(ctx, run, flow),
    )
    where = "".join(f" {n} {v!r}" for n, v in (("run", run), ("batch", batch)) if v is not None)
    output.info(f"Pushed task '{task}' key '{key}' to flow '{flow}'{where}.")


@app.command("clear")
def clear_values(
    ctx: typer.Context,
    flow: str = FLOW,
    task: str = typer.Option(
        None, "--task", metavar="TASK", help="Task id.", autocompletion=complete.tasks
    ),
    run: str = RUN,
    batch: int = BATCH,
    key: str = typer.Option(
        None, "--key", metavar="KEY", help="XCom key.", autocompletion=complete.keys
    ),
    older_than: str = typer.Option(
        None,
        "--older-than",
        metavar="AGE",
        help="Only values older than this age: 30d, 12h, 15m, 2w.",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before removing every value."),
) -> None:
    """Remove XCom values and report how many were removed.

    Example: qarion-etl xcom clear --flow data_pipeline --older-than 30d --yes
    """
    from qarion_etl.cli.params import parse_age

    age = parse_age(older_than) if older_than is not None else None
    unscoped = all(v is None for v in (flow, task, run, batch, key, age))
    if unscoped and not yes:
        if not _interactive():
            raise UsageError(
                "refusing to clear every XCom value of every flow without --yes "
                "(or narrow it with --flow, --task, --run, --batch, --key or --older-than)"
            )
        if not typer.confirm("Remove every XCom value of every flow?", default=False, err=True):
            output.info("Nothing removed.")
            raise typer.Exit(1)
    service = get_project(ctx).xcom_service()
    removed = service.clear(
        flow_id=flow,
        task_id=task,
        dag_run_id=run_id_of(ctx, run, flow),
        batch_id=batch,
        key=key,
        older_than=age,
    )
    output.info(f"Removed {removed} XCom value{'' if removed == 1 else 's'}.")
