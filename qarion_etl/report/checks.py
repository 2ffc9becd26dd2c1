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


def run_checks(project: Project, flow_id: str, dag_run_id: str) -> dict[str, list[dict[str, Any]]]:
    """``{task_id: [check result, …]}`` of the tasks of the run that have checks."""
    path = results_file(project.config.state_dir, flow_id, dag_run_id)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found: dict[str, list[dict[str, Any]]] = {}
    for task in doc.get("tasks", []) if isinstance(doc, dict) else []:
        checks = task.get("checks") if isinstance(task, dict) else None
        if isinstance(checks, list) and checks:
            found[str(task.get("task_id"))] = _scrubbed(project, checks)
    return found
