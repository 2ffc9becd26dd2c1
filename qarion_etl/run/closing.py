"""How a run ends: its status decided in one place, its records, results file and report.

``run_status`` is the one place a run's status is decided, from how it ended and its
tasks. ``close_run`` records the tasks that never ran, writes the results file (merged with
the other tasks' entries when an orchestrator drives the run), records the run's end
(settled from every task's record when its tasks run in many processes) and tells the
reporter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qarion_etl.run.history import write_results
from qarion_etl.run.logs import results_file
from qarion_etl.run.model import RunResult, RunStatus, TaskOutcome, TaskStatus, now_iso

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from qarion_etl.run.drivers import Driver
    from qarion_etl.run.history import RunStore
    from qarion_etl.run.reporting import Reporter


def run_status(
    outcomes: dict[str, TaskOutcome], error: BaseException | None, driver: Driver, fail_fast: bool
) -> RunStatus:
    """The run's status, from how it ended (``error``) and its tasks' outcomes."""
    if isinstance(error, KeyboardInterrupt):
        return RunStatus.INTERRUPTED
    if error is not None:
        return RunStatus.FAILED
    if driver.stop is not None and driver.stop.is_set() and not fail_fast:
        return RunStatus.INTERRUPTED  # stopped from outside (``run --all`` was stopped)
    if all(o.status in (TaskStatus.SUCCESS, TaskStatus.KEPT) for o in outcomes.values()):
        return RunStatus.SUCCESS
    return RunStatus.FAILED


def close_run(
    result: RunResult,
    *,
    store: RunStore,
    driver: Driver,
    state_dir: Path,
    task_ids: list[str],
    worked_before: float,
    record: Callable[[TaskOutcome, TaskStatus], None],
    reporter: Reporter,
) -> None:
    """Record the end of the run ``result`` describes, write its results file, report it."""
    for o in result.tasks:
        if o.status in (TaskStatus.SKIPPED, TaskStatus.NOT_RUN):
            o.ended_at = o.ended_at or now_iso()
            record(o, o.status)
    path = results_file(state_dir, result.flow_id, result.dag_run_id)
    if driver.settles_run():  # one task of many processes: the run is settled from all
        settled = store.settle_run(result.flow_id, result.dag_run_id, task_ids)
        result.results_path = write_results(result, path, merge=settled)
    else:
        result.results_path = write_results(result, path)
        worked = round(worked_before + (result.duration_seconds or 0.0), 4)
        store.finish_run(
            result.flow_id,
            result.dag_run_id,
            result.status,
            result.ended_at or now_iso(),
            {"counts": result.counts(), "duration_seconds": worked},
        )
    reporter.run_finished(result)
