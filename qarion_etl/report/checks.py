"""The data check results of a run's tasks, as the report and the UI show them.

They are read from the run's results file (``.qarion/runs/<flow>/<run>.json``), which keeps
them for failed tasks too (a failed task pushes nothing to XCom). Every text in them is
masked again with the project's secrets before it reaches a page.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from qarion_etl.run.logs import results_file

if TYPE_CHECKING:
    from qarion_etl.project import Project


def _scrubbed(project: Project, value: Any) -> Any:
    if isinstance(value, str):
        return project.scrub(value)
    if isinstance(value, dict):
        return {project.scrub(str(k)): _scrubbed(project, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(project, v) for v in value]
    return value


def run_results(project: Project, flow_id: str, dag_run_id: str) -> dict[str, dict[str, Any]]:
    """The entries of the run's results file by task id (``{}`` when it cannot be read)."""
    path = results_file(project.config.state_dir, flow_id, dag_run_id)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    tasks = doc.get("tasks") if isinstance(doc, dict) else None
    return {
        str(t.get("task_id")): t for t in (tasks if isinstance(tasks, list) else [])
        if isinstance(t, dict)
    }  # fmt: skip


def checks_of(project: Project, entry: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """The check results in one task's entry of the results file, masked; ``None`` if none."""
    checks = entry.get("checks") if entry is not None else None
    return _scrubbed(project, checks) if isinstance(checks, list) and checks else None
