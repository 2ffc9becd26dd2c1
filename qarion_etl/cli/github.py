"""GitHub Actions: error annotations and a Markdown run summary (``GITHUB_ACTIONS=true``).

Under GitHub Actions every validation problem and every task error is also printed as an
``::error file=…,line=…::…`` workflow command, so it shows on the line of the flow file
in the pull request, and each run appends a summary (a table of its tasks, the error, a
mermaid graph coloured by status) to the file ``$GITHUB_STEP_SUMMARY`` names.

Both escape what comes from data for their format (``qarion_etl.escaping``): a message
cannot end its workflow command or start another, and the summary shows ids and errors
in code spans and fenced blocks they cannot close, so data adds no heading, link or HTML.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from qarion_etl.cli.checks_view import check_line
from qarion_etl.escaping import md_code, md_fence, workflow_data, workflow_property

if TYPE_CHECKING:
    from qarion_etl.definitions.flow import Flow
    from qarion_etl.definitions.graph import TaskGraph
    from qarion_etl.run.model import RunResult


def enabled() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def annotate(
    message: str,
    *,
    path: str | None = None,
    line: int | None = None,
    title: str = "qarion-etl",
    stream: Any = None,
    level: str = "error",
) -> None:
    """Print one ``::error`` (or ``level``) workflow command (on stdout, where the runner
    reads them)."""
    props = [f"title={workflow_property(title)}"]
    if path:
        props.insert(0, f"file={workflow_property(path)}")
        if line:
            props.insert(1, f"line={line}")
    out = stream or sys.stdout
    print(f"::{level} {','.join(props)}::{workflow_data(message)}", file=out, flush=True)


def annotate_error(exc: Any, stream: Any = None) -> None:
    """Annotate a ``QarionError``: each problem of a flow that does not validate, else it."""
    problems = getattr(exc, "problems", None)
    if problems:
        for p in problems:
            where = f"task '{p.task_id}': " if p.task_id else ""
            annotate(f"{where}{p.message}", path=exc.path, line=p.line, stream=stream)
        return
    annotate(getattr(exc, "message", str(exc)), path=exc.path, line=exc.line, stream=stream)


def annotate_failures(result: RunResult, flow: Flow, stream: Any = None) -> None:
    """One annotation per failed task: where its error points, else the task's line; and a
    warning per warned data check, on the check's line."""
    for o in result.tasks:
        for check in o.checks or []:
            if check.get("status") == "warn" and o.task_id in flow.task_ids:
                lines = {c.name: c.line for c in flow.task(o.task_id).checks}
                annotate(
                    check_line(check),
                    path=flow.shown_path,
                    line=lines.get(check["name"]),
                    title=f"qarion-etl: task {o.task_id}",
                    stream=stream,
                    level="warning",
                )
        if o.status != "failed" or not o.error:
            continue
        exc = o.exception
        path = getattr(exc, "path", None)
        line = getattr(exc, "line", None)
        message = o.error
        if path and str(path).endswith(".toml"):
            message = message.removeprefix(f"{path}:{line}: " if line else f"{path}: ")
        else:
            path, line = flow.shown_path, flow.task(o.task_id).line
        title = f"qarion-etl: task {o.task_id}"
        annotate(message, path=path, line=line, title=title, stream=stream)


def summary_markdown(result: RunResult, flow: Flow, graph: TaskGraph) -> str:
    """The run as Markdown: a headline, a table of tasks, the first error, a mermaid graph."""
    from qarion_etl.cli.drawing import Drawing, render_mermaid

    icon = "✅" if result.ok else "❌"
    lines = [
        f"### {icon} qarion-etl: {md_code(result.flow_id)} {str(result.status).upper()}",
        "",
        f"Run {md_code(result.dag_run_id)}, batch {result.batch_id}, "
        f"{result.duration_seconds or 0:.2f}s.",
        "",
        "| task | status | duration | rows |",
        "|---|---|---:|---:|",
    ]
    for o in result.tasks:
        duration = "" if o.duration_seconds is None else f"{o.duration_seconds:.2f}s"
        rows = "" if o.rows is None else f"{o.rows:,}"
        lines.append(f"| {md_code(o.task_id, in_table=True)} | {o.status} | {duration} | {rows} |")
    failed = result.first_failure()
    if failed is not None and failed.error:
        lines += ["", f"**{md_code(failed.task_id)} failed:**", "", md_fence(failed.error)]
    status = {o.task_id: str(o.status) for o in result.tasks}
    mermaid = render_mermaid(Drawing(graph, flow, statuses=status)).splitlines()
    lines += ["", "```mermaid", *mermaid, "```", ""]
    return "\n".join(lines)


def write_summary(result: RunResult, flow: Flow, graph: TaskGraph) -> None:
    """Append the run's summary to ``$GITHUB_STEP_SUMMARY`` (nothing when it is not set)."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(summary_markdown(result, flow, graph) + "\n")
    except OSError as exc:
        print(f"warning: cannot write GITHUB_STEP_SUMMARY ({target}): {exc}", file=sys.stderr)
