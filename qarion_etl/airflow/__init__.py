"""Running flows on Apache Airflow 3: one DAG per flow, one Airflow task per task.

In a file of Airflow's dags folder::

    from qarion_etl.airflow import dags_from_project
    dags_from_project("/opt/analytics")   # the folder holding qarion-etl.toml

or, inside a DAG of your own, ``flow_task_group("/opt/analytics", "data_pipeline")``.
Each Airflow task runs its task in-process through the library (``runtime``), inside the
DAG run: Airflow's run id is the run's ``dag_run_id``, the XComs go to the project's own
store and the result is also the task's Airflow ``return_value``.

Importing this package does not import Airflow: the builders load ``dags`` when they are
called. (``${airflow_conn:ID}`` references are resolved by
``qarion_etl.definitions.connections``.)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import DAG, TaskGroup

    from qarion_etl.airflow.plan import Pool

__all__ = ["dags_from_project", "flow_task_group", "project_pools"]


def dags_from_project(project_dir: str | Path, **settings: Any) -> dict[str, DAG]:
    """One Airflow DAG per flow of the project; see ``qarion_etl.airflow.dags``."""
    from qarion_etl.airflow import dags  # Airflow itself loads here

    return dags.dags_from_project(project_dir, **settings)


def flow_task_group(project_dir: str | Path, flow: str, **settings: Any) -> TaskGroup:
    """The tasks of one flow as a ``TaskGroup`` of the DAG being defined."""
    from qarion_etl.airflow import dags

    return dags.flow_task_group(project_dir, flow, **settings)


def project_pools(project_dir: str | Path) -> list[Pool]:
    """The Airflow pools the project's tasks use; ``Pool.command()`` creates one."""
    from qarion_etl.airflow import plan

    return plan.project_pools(project_dir)
