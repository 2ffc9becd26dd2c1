"""``run`` and ``render``: parse options, call ``FlowRunner``, hand the result to a reporter."""

from __future__ import annotations

import os
from typing import Any

import typer

from qarion_etl.cli import complete, output
from qarion_etl.cli.state import get_project, get_state


def run(
    ctx: typer.Context,
    flows: list[str] = typer.Argument(
        None,
        metavar="FLOW...",
        help="Flow files or ids; several run at once, sharing --max-workers.",
        autocompletion=complete.flows,
    ),
    all_flows: bool = typer.Option(
        False, "--all", help="Run every flow of flows_dir at once (one summary, one exit code)."
    ),
    select: list[str] = typer.Option(
        None,
        "--select",
        "-s",
        metavar="SELECTOR",
        autocompletion=complete.tasks,
        help=(
            "Tasks to run, in dbt's grammar: task, calc*, tag:T, type:T, dataset:D; +x (with"
            " ancestors), x+ (with descendants), 2+x / x+1 (to that depth), @x; a space or a"
            " repeated --select is a union, a comma an intersection."
        ),
    ),
    exclude: list[str] = typer.Option(
        None,
        "--exclude",
        metavar="SELECTOR",
        help="Tasks to leave out (same syntax as --select).",
        autocompletion=complete.tasks,
    ),
    selector: str = typer.Option(
        None,
        "--selector",
        metavar="NAME",
        help="A named selection from [selectors] of qarion-etl.toml (united with --select).",
    ),
    run_id: str = typer.Option(
        None, "--run-id", metavar="RUN_ID", help="The dag_run_id of this run (default: generated)."
    ),
    batch_id: int = typer.Option(
        None, "--batch-id", metavar="N", help="The batch id (default: next in the flow's sequence)."
    ),
    var: list[str] = typer.Option(
        None,
        "--var",
        metavar="NAME=VALUE",
        help="Template variable NAME=VALUE (JSON values parsed); repeatable.",
    ),
    vars_file: str = typer.Option(
        None, "--vars-file", metavar="FILE", help="JSON or TOML file of template variables."
    ),
    resume: str = typer.Option(
        None,
        "--resume",
        metavar="RUN_ID",
        help="Re-run only the tasks of RUN_ID that did not succeed.",
    ),
    task: str = typer.Option(
        None,
        "--task",
        metavar="TASK",
        help="Run this one task inside the run given by --run-id.",
        autocompletion=complete.tasks,
    ),
    max_workers: int = typer.Option(
        None, "--max-workers", metavar="N", min=1, help="Tasks run at once (default: CPU cores)."
    ),
    fail_fast: bool = typer.Option(
        False, "--fail-fast", help="Stop the run at the first failed task."
    ),
    full_refresh: bool = typer.Option(
        False, "--full-refresh", help="Treat INCREMENTAL tasks as FULL_REFRESH."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Validate and list the tasks that would run."
    ),
    junit_xml: str = typer.Option(
        None, "--junit-xml", metavar="FILE", help="Also write a JUnit XML report to this file."
    ),
    html_report: bool = typer.Option(
        False,
        "--report",
        help="Also write the run's HTML report (.qarion/runs/<flow>/<run id>/report.html).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON on stdout."),
    log_format: str = typer.Option(
        "text",
        "--log-format",
        metavar="text|json",
        help="json: one JSON object per event on stderr instead of the human view.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and the summary."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also every statement with its timing."
    ),
) -> None:
    """Run a flow: ingest, transform and push results to XCom, in dependency order.

    Every run writes .qarion/runs/<flow>/<run id>/run.log and, per task, the SQL each try ran
    (<task>.sql). --resume latest resumes the newest run of the flow.
    Example: qarion-etl run data_pipeline --select "tag:nightly,type:ingestion" --report
    """
    from qarion_etl.cli.console import make_reporter
    from qarion_etl.cli.params import load_vars_file, parse_pairs
    from qarion_etl.errors import TaskFailed, UsageError
    from qarion_etl.run.model import RunRequest, TaskStatus
    from qarion_etl.run.runner import FlowRunner

    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format {log_format!r}: use text or json")
    if quiet and verbose:
        raise UsageError("--quiet and --verbose cannot be used together")
    variables = load_vars_file(vars_file) if vars_file else {}
    variables.update(parse_pairs(var or [], "--var"))
    options = RunRequest(
        select=list(select or []),
        exclude=list(exclude or []),
        selector=selector,
        run_id=run_id,
        batch_id=batch_id,
        variables=variables,
        resume=resume,
        task=task,
        max_workers=max_workers,
        fail_fast=fail_fast,
        full_refresh=full_refresh,
        dry_run=dry_run,
    )
    project = get_project(ctx)
    get_state(ctx).json_stdout = json_out
    verbosity = -1 if quiet else 1 if verbose else 0
    refs = _flow_refs(project, list(flows or []), all_flows)
    if len(refs) > 1:
        if resume or task or junit_xml or html_report:
            raise UsageError("--resume, --task, --junit-xml and --report take one flow")
        from qarion_etl.cli.many import run_many

        run_many(
            project, refs, options, json_out=json_out, log_format=log_format, verbosity=verbosity
        )
        return
    flow = refs[0]
    reporter = make_reporter(json_out, log_format=log_format, verbosity=verbosity)
    result = FlowRunner(project, reporter).run(flow, options)
    if dry_run:
        if json_out:
            output.emit_json(result.as_dict())
        else:
            output.info(f"Would run {len(result.tasks)} task(s) of {result.flow_id}:")
            for outcome in result.tasks:
                output.info(f"  {outcome.task_id}")
        return
    if junit_xml:
        from qarion_etl.cli.junit import write_junit

        write_junit(result, junit_xml)
    if html_report:
        from qarion_etl.cli.report import write_run_report

        path = write_run_report(project, result.dag_run_id, result.flow_id)
        if not json_out and log_format != "json":
            output.info(f"Report: {path}")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        import sys

        from qarion_etl.cli import github

        spec, graph = project.validate(flow)
        github.annotate_failures(result, spec, stream=sys.stderr if json_out else sys.stdout)
        github.write_summary(result, spec, graph)
    failed = result.first_failure()
    if failed is not None and failed.exception is not None and get_state(ctx).debug:
        import traceback

        # The task's own traceback, down to the driver's exception it was raised from.
        output.info(project.scrub("".join(traceback.format_exception(failed.exception))))
    if failed is not None:
        exit_code = failed.exit_code or TaskFailed.exit_code  # 3: a store was unreachable
        if log_format == "json" or reporter.prints_errors_last:
            # The events said it all (as JSON), or the live view ended with the error: on
            # a terminal the error is printed once.
            raise typer.Exit(exit_code)
        # The whole error is above, under the task; the last line names it again.
        error = TaskFailed(failed.task_id, (failed.error or "failed").splitlines()[0])
        error.exit_code = exit_code
        raise error
    if not result.ok:
        raise TaskFailed(
            next((t.task_id for t in result.tasks if t.status != TaskStatus.SUCCESS), "?"),
            result.status,
        )


def _flow_refs(project: Any, flows: list[str], all_flows: bool) -> list[str]:
    """The flows to run: those named, or with ``--all`` every flow file of flows_dir."""
    from qarion_etl.errors import UsageError

    if all_flows:
        if flows:
            raise UsageError("name flows or give --all, not both")
        found = [str(p) for p in project.flow_paths()]
        if not found:
            raise UsageError(f"--all: no flow files in {project.config.flows_dir}")
        return found
    if not flows:
        raise UsageError("name the flow to run (a file or an id), or give --all")
    return list(dict.fromkeys(flows))


def render(
    ctx: typer.Context,
    flow: str = typer.Argument(..., metavar="FLOW", help="Flow file or flow id."),
    task: str = typer.Argument(
        ...,
        metavar="TASK",
        help="The transformation task whose SQL to render.",
        autocompletion=complete.tasks,
    ),
    xcom: list[str] = typer.Option(
        None,
        "--xcom",
        metavar="TASK.KEY=VALUE",
        help="A pulled value TASK.KEY=VALUE (no store is read for it); repeatable.",
    ),
    var: list[str] = typer.Option(
        None, "--var", metavar="NAME=VALUE", help="Template variable NAME=VALUE; repeatable."
    ),
    vars_file: str = typer.Option(
        None, "--vars-file", metavar="FILE", help="JSON or TOML file of template variables."
    ),
    batch_id: int = typer.Option(
        None, "--batch-id", metavar="N", help="batch_id in the template (default 0)."
    ),
    run_id: str = typer.Option(
        None,
        "--run-id",
        metavar="RUN_ID",
        help="dag_run_id in the template ('latest': the flow's newest); pulls read that run.",
    ),
) -> None:
    """Print a task's rendered SQL without running anything.

    Example: qarion-etl render data_pipeline filter_high_value --xcom calculate_stats.avg_value=250
    """
    from qarion_etl.cli.params import load_vars_file, parse_pairs, parse_xcom_values
    from qarion_etl.errors import QarionError, TemplateError
    from qarion_etl.run.runner import FlowRunner

    variables = load_vars_file(vars_file) if vars_file else {}
    variables.update(parse_pairs(var or [], "--var"))
    project = get_project(ctx)
    if run_id == "latest":
        run_id = project.run_store().find_run("latest", project.load_flow(flow).id).dag_run_id
    try:
        sql = FlowRunner(project).render(
            flow,
            task,
            given=parse_xcom_values(xcom or []),
            variables=variables,
            batch_id=batch_id,
            dag_run_id=run_id,
        )
    except TemplateError as exc:
        exc.task_id = exc.task_id or task
        raise
    except QarionError:
        raise
    output.emit(project.scrub(sql))


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``render`` to the root app."""
    app.command()(run)
    app.command()(render)
