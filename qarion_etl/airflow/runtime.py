"""Running one task of a flow inside an Airflow task (what ``QarionTaskOperator`` does).

The task runs through the library, in this process: ``FlowRunner.run`` with
``RunRequest(run_id=<Airflow's run id>, task=<task>)`` and the ``Orchestrated(try_number)``
driver. So the run is a
run like any other in ``qarion-etl runs list/show`` (started by whichever task comes
first, with one batch id, and settled from its task instances after each task), the task's
XComs of this run are cleared before every Airflow try, ``xcom_pull`` reads the project's
store, and Airflow's own retries replace the runner's. The project (configuration and
database connections) is kept for the life of the process, so ``airflow dags test``, which
runs every task in one process, connects once.

An error that no retry can mend (the flow or the configuration is wrong) fails the task
for good (``AirflowFailException``); any other failure is an ``AirflowException`` that
Airflow retries by the task's ``retries``. The task log gets the run's progress lines and
the one-line error; secrets from the configuration are masked there by Airflow.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from qarion_etl.airflow.plan import config_path_of
from qarion_etl.errors import ConfigError, FlowValidationError, UsageError
from qarion_etl.project import Project
from qarion_etl.run.drivers import Orchestrated
from qarion_etl.run.model import RunRequest, RunResult, TaskOutcome, TaskStatus
from qarion_etl.run.reporting import progress_text
from qarion_etl.run.runner import FlowRunner

log = logging.getLogger("qarion_etl.airflow")

_PROJECTS: dict[Path, tuple[float, Project]] = {}


def project(project_dir: str | Path) -> Project:
    """The project in ``project_dir``, loaded once per process (again if its config changes)."""
    cfg = config_path_of(project_dir)
    mtime = cfg.stat().st_mtime if cfg.exists() else 0.0
    cached = _PROJECTS.get(cfg)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    if cached is not None:
        cached[1].close()
    loaded = Project.load(cfg)
    _mask(loaded)
    _PROJECTS[cfg] = (mtime, loaded)
    return loaded


def _mask(p: Project) -> None:
    """Tell Airflow's log masker every secret of the configuration."""
    from airflow.sdk.log import mask_secret

    found = p.secrets()
    for secret in found:
        mask_secret(secret)


def run_task(
    project_dir: str | Path,
    flow_path: str,
    task_id: str,
    *,
    run_id: str,
    try_number: int = 1,
    full_refresh: bool = False,
) -> dict[str, Any] | None:
    """Run ``task_id`` of the flow at ``flow_path`` (relative to the project) in run ``run_id``.

    ``full_refresh`` rebuilds an incremental model (``run --full-refresh``).

    Returns:
        The task's result (Airflow pushes it as ``return_value``).

    Raises:
        AirflowFailException: the flow, the configuration or the call is wrong (no retry).
        AirflowException: the task failed (Airflow retries it by its ``retries``).
    """
    request = RunRequest(run_id=run_id, task=task_id, full_refresh=full_refresh)
    try:
        p = project(project_dir)
        result = FlowRunner(p, _LogReporter()).run(
            p.config.root / flow_path, request, driver=Orchestrated(try_number)
        )
    except (ConfigError, FlowValidationError, UsageError) as exc:
        raise AirflowFailException(str(exc)) from None
    outcome = result.tasks[0]
    if outcome.status != TaskStatus.SUCCESS:
        message = f"task '{task_id}' {outcome.status}: {outcome.error}"
        if outcome.not_retried:  # Airflow's retries cannot mend it either
            raise AirflowFailException(f"{message}\n  not retried: {outcome.not_retried}")
        raise AirflowException(message)
    return outcome.result


class _LogReporter:
    """The run's progress as lines of the Airflow task log."""

    def run_started(
        self, flow_id: str, dag_run_id: str, batch_id: int, task_ids: list[str]
    ) -> None:
        log.info("qarion-etl: flow %s, run %s, batch %s", flow_id, dag_run_id, batch_id)

    def task_started(self, task_id: str, try_number: int) -> None:
        log.info("qarion-etl: task %s started (try %s)", task_id, try_number)

    def task_retrying(self, task_id: str, try_number: int, error: str, delay: float) -> None:
        log.warning("qarion-etl: task %s try %s failed: %s", task_id, try_number, error)

    def task_finished(self, outcome: TaskOutcome, index: int, total: int) -> None:
        if outcome.status == TaskStatus.SUCCESS:
            rows = (
                ""
                if outcome.rows is None
                else f" ({outcome.rows} row{'' if outcome.rows == 1 else 's'})"
            )
            log.info(
                "qarion-etl: task %s succeeded in %.2fs%s",
                outcome.task_id,
                outcome.duration_seconds or 0,
                rows,
            )
        else:
            log.error("qarion-etl: task %s %s: %s", outcome.task_id, outcome.status, outcome.error)

    def task_progress(
        self, task_id: str, rows: int | None, fraction: float | None, rows_per_second: float | None
    ) -> None:
        log.info("qarion-etl: task %s: %s", task_id, progress_text(rows, fraction, rows_per_second))

    def run_finished(self, result: RunResult) -> None:
        log.info("qarion-etl: results in %s, log in %s", result.results_path, result.log_path)

    def event(self, record: dict[str, Any]) -> None:
        pass
