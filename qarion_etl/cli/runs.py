"""``runs list`` and ``runs show``: run history from the metadata database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer

from qarion_etl.cli import output
from qarion_etl.cli.state import get_project

if TYPE_CHECKING:
    from qarion_etl.run.history import RunStore

app = typer.Typer(
    help="Past runs and their task instances.", no_args_is_help=True, rich_markup_mode=None
)


def _store(ctx: typer.Context) -> RunStore:
    return get_project(ctx).run_store()


@app.command("list")
def list_runs(
    ctx: typer.Context,
    flow: str = typer.Option(None, "--flow", help="Only runs of this flow id."),
    limit: int = typer.Option(20, "--limit", min=1, help="How many runs, newest first."),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List recent runs, newest first."""
    runs = _store(ctx).list_runs(flow, limit)
    if json_out:
        output.emit_json(
            [
                {
                    "dag_run_id": r.dag_run_id,
                    "flow_id": r.flow_id,
                    "batch_id": r.batch_id,
                    "status": r.status,
                    "started_at": r.started_at,
                    "ended_at": r.ended_at,
                }
                for r in runs
            ]
        )
        return
    if not runs:
        output.info("No runs yet.")
        return
    rows = [
        (r.dag_run_id, r.flow_id, str(r.batch_id), r.status, r.started_at[:19].replace("T", " "))
        for r in runs
    ]
    output.emit(_table(("RUN", "FLOW", "BATCH", "STATUS", "STARTED (UTC)"), rows))


@app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: str = typer.Argument(
        ..., metavar="RUN_ID", help="The dag_run_id, or 'latest' for the newest run."
    ),
    flow: str = typer.Option(
        None, "--flow", help="The run's flow (when several flows have a run with this id)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show one run and its task instances."""
    from qarion_etl.errors import UsageError, clip
    from qarion_etl.run.history import all_tries

    store = _store(ctx)
    if run_id == "latest":
        newest = store.list_runs(flow, limit=1)
        if not newest:
            raise UsageError("no runs yet" + (f" of flow '{clip(flow)}'" if flow else ""))
        run_id, flow = newest[0].dag_run_id, newest[0].flow_id
    run = store.get_run(run_id, flow)
    if run is None:
        raise UsageError(f"no run {clip(run_id)!r} (see qarion-etl runs list)")
    tis = store.task_instances(run.flow_id, run_id)
    kept = store.tries(run.flow_id, run_id)
    attempts = {t.task_id: all_tries(t, kept.get(t.task_id, [])) for t in tis}
    if json_out:
        output.emit_json(
            {
                "dag_run_id": run.dag_run_id,
                "flow_id": run.flow_id,
                "batch_id": run.batch_id,
                "status": run.status,
                "started_at": run.started_at,
                "ended_at": run.ended_at,
                "tasks": [
                    {
                        "task_id": t.task_id,
                        "status": t.status,
                        "tries": t.try_number,
                        "started_at": t.started_at,
                        "ended_at": t.ended_at,
                        "rows": t.rows,
                        "xcom_keys": t.xcom_keys,
                        "error": t.error,
                        "attempts": attempts[t.task_id],
                    }
                    for t in tis
                ],
            }
        )
        return
    output.emit(
        f"run {run.dag_run_id}\nflow {run.flow_id}  batch {run.batch_id}  status {run.status}\n"
        f"started {run.started_at}  ended {run.ended_at or '-'}\n"
    )
    rows = [
        (
            t.task_id,
            t.status,
            str(t.try_number),
            "" if t.rows is None else str(t.rows),
            (t.error or "").splitlines()[0][:80] if t.error else "",
        )
        for t in tis
    ]
    output.emit(_table(("TASK", "STATUS", "TRIES", "ROWS", "ERROR"), rows))
    failed = [
        (t.task_id, a)
        for t in tis
        for a in attempts[t.task_id]
        if a["status"] != "success" and a["try_number"] != t.try_number
    ]
    if failed:
        output.emit("\nearlier tries:")
        for task_id, a in failed:
            first = (a["error"] or a["status"]).splitlines()[0][:100]
            output.emit(f"  {task_id} try {a['try_number']} {a['status']}: {first}")


def _table(header: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
        for row in (header, *rows)
    ]
    return "\n".join(lines)
