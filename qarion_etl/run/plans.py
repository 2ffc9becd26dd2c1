"""What a run set out to execute: its flow's tasks, edges, types and settings, as run.

``plan_of`` turns a validated flow into a plain JSON document; ``RunStore.save_plan``
keeps it in the metadata database when the run is first recorded, so a picture of an old
run shows the tasks and the config that run had, even after the flow file changed. A
plan is masked with the project's secrets before it is stored.

The document (``version`` 1)::

    {"version": 1, "flow_id": …, "path": …, "name": …, "description": …, "namespace": …,
     "tasks": [{"id", "type", "name", "description", "source_dataset_id",
                "target_dataset_id", "reads", "dependencies", "tags", "properties", "config",
                "settings": {"retries", "retry_delay_seconds", "retry_exponential_backoff",
                             "retry_on", "do_xcom_push", "timeout_seconds"},
                "materialized", "columns": [{"name", "schema_type", "required",
                                             "description"}, …]}, …],
     "edges": [[upstream, downstream, "dependency" | "dataset" | "ref"], …]}

Tasks come in the graph's order (upstream first).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from qarion_etl.definitions.refs import ModelIndex, read_names

if TYPE_CHECKING:
    from qarion_etl.definitions.flow import Flow, TaskSpec
    from qarion_etl.definitions.graph import TaskGraph

PLAN_VERSION = 1
#: A task's settings a plan keeps beside its config.
SETTINGS = (
    "retries",
    "retry_delay_seconds",
    "retry_exponential_backoff",
    "retry_on",
    "do_xcom_push",
    "timeout_seconds",
)


@cache
def default_settings() -> dict[str, Any]:
    """The value each of ``SETTINGS`` has when a flow file does not set it."""
    from dataclasses import fields

    from qarion_etl.definitions.flow import TaskSpec

    return {f.name: f.default for f in fields(TaskSpec) if f.name in SETTINGS}


def plan_of(
    flow: Flow,
    graph: TaskGraph,
    scrub: Callable[[str], str] = lambda text: text,
    index: ModelIndex | None = None,
) -> dict[str, Any]:
    """The plan of ``flow`` (validated into ``graph``), every text passed through ``scrub``.

    With ``index`` (the project's flows), a dataset of another flow read through a one-name
    ``ref()`` is named ``flow.dataset`` in ``reads``.
    """
    order = graph.topological_order() or list(flow.task_ids)
    known = set(order)
    tasks = []
    for tid in order:
        task = flow.task(tid)
        tasks.append(
            {
                "id": task.id,
                "type": task.type,
                "name": task.name,
                "description": task.description,
                "source_dataset_id": task.source_dataset_id,
                "target_dataset_id": task.target_dataset_id,
                "reads": read_names(flow, task, index),
                "dependencies": list(task.dependencies),
                "tags": list(task.tags),
                "properties": plain(task.properties, scrub),
                "config": plain(task.config, scrub),
                "settings": {name: getattr(task, name) for name in SETTINGS},
                "materialized": task.materialized,
                "columns": _columns(flow, task, scrub),
            }
        )
    return {
        "version": PLAN_VERSION,
        "flow_id": flow.id,
        "path": flow.shown_path,
        "name": flow.name,
        "description": flow.description,
        "namespace": flow.namespace,
        "tasks": tasks,
        "edges": [
            [a, b, str(data.get("reason", "dependency"))]
            for a, b, data in graph.edges(data=True)
            if a in known and b in known
        ],
    }


def _columns(flow: Flow, task: TaskSpec, scrub: Callable[[str], str]) -> list[dict[str, Any]]:
    """The task's declared columns (an ingestion's own or its flow's ``[input]``; the ones a
    transformation documents), descriptions passed through ``scrub``."""
    ingestion = task.type == "ingestion"
    columns = flow.input_for(task).columns if ingestion else task.columns or ()
    return [
        {
            "name": c.name,
            "schema_type": c.schema_type if ingestion else None,
            "required": c.required,
            "description": None if c.description is None else scrub(c.description),
        }
        for c in columns
    ]


def plain(value: Any, scrub: Callable[[str], str] = lambda text: text) -> Any:
    """``value`` as JSON-ready data (mappings, lists, text, numbers), texts ``scrub``-bed."""
    if isinstance(value, Mapping):
        return {str(k): plain(v, scrub) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, scrub) for v in value]
    if isinstance(value, str):
        return scrub(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return scrub(str(value))
