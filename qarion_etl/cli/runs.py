"""``runs list`` and ``runs show``: run history from the metadata database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import typer

from qarion_etl.cli import complete, output
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
    flow: str = typer.Option(
        None,
        "--flow",
        metavar="FLOW",
        help="Only runs of this flow id.",
        autocompletion=complete.flows,
    ),
    status: str = typer.Option(
        None,
        "--status",
        metavar="STATUS",
        help="Only runs in this status: success, failed, running, interrupted, abandoned.",
    ),
    limit: int = typer.Option(
        20, "--limit", metavar="N", min=1, help="How many runs, newest first."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List recent runs, newest first, with their duration and tasks by status.

    Example: qarion-etl runs list --flow data_pipeline --status failed
    """
    from qarion_etl.errors import UsageError, did_you_mean
    from qarion_etl.run.model import RunStatus

    known = [str(s) for s in RunStatus]
    if status is not None and status not in known:
        raise UsageError(
            f"--status {status!r}: not a run status{did_you_mean(status, known)} "
            f"(known: {', '.join(known)})"
        )
    store = _store(ctx)
    runs = store.list_runs(flow, limit, status=status)
    counts = store.task_counts(runs)
    more = store.count_runs(flow, status) - len(runs) if len(runs) == limit else 0
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
                    "duration_seconds": r.duration_seconds,
                    "tasks": counts.get((r.flow_id, r.dag_run_id), {}),
                }
                for r in runs
            ]
        )
        return
    if not runs:
        output.info("No runs yet." if not (flow or status) else "No runs match.")
        return
    rows = [
        (
            r.dag_run_id,
            r.flow_id,
            str(r.batch_id),
            r.status,
            r.started_at[:19].replace("T", " "),
            _duration(r.duration_seconds),
            _counts(counts.get((r.flow_id, r.dag_run_id), {})),
        )
        for r in runs
    ]
    header = ("RUN", "FLOW", "BATCH", "STATUS", "STARTED (UTC)", "DURATION", "TASKS")
    output.emit(_table(header, rows))
    if more > 0:
        output.info(f"{more:,} more (--limit {limit + more} shows them, --flow/--status narrow)")


def _duration(seconds: float | None) -> str:
    from qarion_etl.report.html import format_seconds

    return format_seconds(seconds) or "-"


def _counts(by_status: dict[str, int]) -> str:
    order = ["success", "failed", "skipped", "kept", "interrupted", "running", "not_run"]
    keys = sorted(by_status, key=lambda k: order.index(k) if k in order else len(order))
    return " ".join(f"{by_status[k]} {k.replace('_', ' ')}" for k in keys)


@app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: str = typer.Argument(
        ...,
        metavar="RUN_ID",
        help="The dag_run_id, or 'latest' for the newest run.",
        autocompletion=complete.runs,
    ),
    flow: str = typer.Option(
        None,
        "--flow",
        metavar="FLOW",
        help="The run's flow (when several flows have a run with this id).",
        autocompletion=complete.flows,
    ),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show one run: its task instances, their durations and every try.

    Example: qarion-etl runs show latest --flow data_pipeline
    """
    from qarion_etl.report.data import seconds_between
    from qarion_etl.run.history import all_tries

    store = _store(ctx)
    run = store.find_run(run_id, flow)
    tis = store.task_instances(run.flow_id, run.dag_run_id)
    kept = store.tries(run.flow_id, run.dag_run_id)
    attempts = {t.task_id: all_tries(t, kept.get(t.task_id, [])) for t in tis}
    # Errors are scrubbed when a run records them; a history written by an older version
    # is scrubbed here, as the report and the UI do.
    scrub = get_project(ctx).scrub
    errors = {t.task_id: scrub(t.error) if t.error else None for t in tis}
    attempts = {
        task: [replace(a, error=scrub(a.error) if a.error else a.error) for a in tries]
        for task, tries in attempts.items()
    }
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
                        "duration_seconds": seconds_between(t.started_at, t.ended_at),
                        "error": errors[t.task_id],
                        "attempts": [a.as_dict() for a in attempts[t.task_id]],
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
            _duration(seconds_between(t.started_at, t.ended_at)),
            "" if t.rows is None else f"{t.rows:,}",
            (errors[t.task_id] or "").splitlines()[0][:80] if errors[t.task_id] else "",
        )
        for t in tis
    ]
    output.emit(_table(("TASK", "STATUS", "TRIES", "DURATION", "ROWS", "ERROR"), rows))
    earlier = [
        (t.task_id, a) for t in tis for a in attempts[t.task_id] if a.try_number != t.try_number
    ]
    if earlier:
        output.emit("\nearlier tries:")
        for task_id, a in earlier:
            took = _duration(seconds_between(a.started_at, a.ended_at))
            first = (a.error or "").splitlines()[0][:100] if a.error else ""
            output.emit(
                f"  {task_id} try {a.try_number} {a.status} in {took}"
                + (f": {first}" if first else "")
            )


def _table(header: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
        for row in (header, *rows)
    ]
    return "\n".join(lines)
