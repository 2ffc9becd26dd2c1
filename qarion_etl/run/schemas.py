"""The columns of each task as people read them: declared in the flow, or inferred by a run.

An ingestion's columns are its own ``columns``, else the flow's ``[input].columns``
(``declared``); with neither, the types its newest successful run inferred from the file
(``inferred``, read from that run's results file), or none before the first run. A
transformation's columns are the ones its ``columns`` documents. ``ls``, the report, the
UI and ``graph --format html`` all show them through ``task_columns``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qarion_etl.definitions.flow import Flow, TaskSpec
from qarion_etl.run.logs import file_name

#: The newest results files of a flow looked into for a task's inferred columns.
_RESULTS_LOOKED_AT = 50


@dataclass(frozen=True, slots=True)
class TaskColumns:
    """A task's columns (``name``, ``schema_type``, ``required``, ``description``), and
    where they come from: ``declared``, ``inferred`` or ``None`` (not known yet)."""

    columns: list[dict[str, Any]]
    source: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "columns_source": self.source}


def task_columns(flow: Flow, task: TaskSpec, state_dir: Path | None = None) -> TaskColumns:
    """``task``'s columns: declared, else (ingestions) inferred by the newest run in ``state_dir``."""
    if task.type == "ingestion":
        declared = flow.input_for(task).columns
    else:
        declared = task.columns or ()
    if declared:
        shown = [
            {
                "name": c.name,
                "schema_type": c.schema_type if task.type == "ingestion" else None,
                "required": c.required,
                "description": c.description,
            }
            for c in declared
        ]
        return TaskColumns(shown, "declared")
    if task.type != "ingestion" or state_dir is None:
        return TaskColumns([], None)
    inferred = last_inferred(state_dir, flow.id, task.id)
    if inferred is None:
        return TaskColumns([], None)
    return TaskColumns(
        [
            {"name": str(c.get("name")), "schema_type": c.get("schema_type"), "required": False,
             "description": None}
            for c in inferred if isinstance(c, dict)
        ],
        "inferred",
    )  # fmt: skip


def last_inferred(state_dir: Path, flow_id: str, task_id: str) -> list[Any] | None:
    """The ``inferred_columns`` of ``task_id``'s result in the newest results file that has
    them (``.qarion/runs/<flow>/*.json``); ``None`` when no run has inferred them."""
    folder = state_dir / "runs" / file_name(flow_id)
    try:
        files = sorted(folder.glob("*.json"), key=_mtime, reverse=True)[:_RESULTS_LOOKED_AT]
    except OSError:
        return None
    for path in files:
        found = _inferred_in(path, task_id)
        if found is not None:
            return found
    return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _inferred_in(path: Path, task_id: str) -> list[Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    tasks = doc.get("tasks") if isinstance(doc, dict) else None
    for task in tasks if isinstance(tasks, list) else []:
        if isinstance(task, dict) and task.get("task_id") == task_id:
            return inferred_of(task)
    return None


def inferred_of(entry: dict[str, Any]) -> list[Any] | None:
    """The ``inferred_columns`` of one task's entry of a results file, if it succeeded."""
    result = entry.get("result")
    if entry.get("status") == "success" and isinstance(result, dict):
        inferred = result.get("inferred_columns")
        if isinstance(inferred, list):
            return inferred
    return None
