"""Building Airflow DAGs and task groups from a project's flows (``dags_from_project``).

One DAG per flow: DAG id = flow id (with ``dag_id_prefix``), task ids = the flow's task
ids, dependencies = the flow's graph (dataset edges included). Each task's ``retries``,
``retry_delay_seconds``, ``retry_exponential_backoff`` and ``timeout_seconds`` become
Airflow's ``retries``, ``retry_delay``, ``retry_exponential_backoff`` (doubling) and
``execution_timeout``; names and descriptions become ``doc_md``; the namespace is a tag.
A ``ref()`` to another flow's dataset is an Airflow ``Asset``: the writing task declares it
in ``outlets``, the reading task in ``inlets``, and a DAG without a schedule of its own is
scheduled on the assets it reads, so it runs after the upstream DAGs wrote them.
Tasks of a SQLite or DuckDB warehouse share one Airflow pool (``plan.Pool``).

Building reads the project through ``plan.plan_project``: it connects to nothing and runs
no subprocess. A flow that does not validate becomes one Airflow import error of the DAG
file that names file, line and task, while the other flows load.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, TaskGroup

from qarion_etl.airflow.operator import QarionTaskOperator
from qarion_etl.airflow.plan import FlowPlan, ProjectPlan, TaskPlan, plan_project
from qarion_etl.errors import did_you_mean


class InvalidFlows(Exception):
    """Flows of the project that do not validate (shown as the DAG file's import error)."""


def dags_from_project(
    project_dir: str | Path,
    *,
    dag_id_prefix: str = "",
    schedule: Any = None,
    start_date: dt.datetime | None = None,
    default_args: Mapping[str, Any] | None = None,
    catchup: bool = False,
    tags: Sequence[str] = (),
    flows: Mapping[str, Mapping[str, Any]] | None = None,
    **dag_kwargs: Any,
) -> dict[str, DAG]:
    """One Airflow DAG per flow of the project in ``project_dir``.

    Args:
        project_dir: the folder holding ``qarion-etl.toml`` (or the file itself).
        dag_id_prefix: put before every flow id to make the DAG id.
        schedule, start_date, default_args, catchup, tags, **dag_kwargs: settings of every
            DAG (``schedule=None``: triggered by hand or the API).
        flows: per flow id, settings that replace the project-wide ones for that DAG
            (``{"data_pipeline": {"schedule": "@hourly"}}``).

    Returns:
        The DAGs by DAG id. They are also registered with Airflow, as DAGs defined in the
        DAG file are.
    """
    plan = plan_project(project_dir)
    overrides = dict(flows or {})
    problems = list(plan.problems)
    known = {f.flow_id for f in plan.flows}
    for name in sorted(set(overrides) - known):
        if not any(f"'{name}'" in p or f"{name}.toml" in p for p in problems):
            problems.append(
                f"dags_from_project(flows=…): no flow '{name}'{did_you_mean(name, known)}"
            )
    base: dict[str, Any] = {
        "schedule": schedule,
        "start_date": start_date,
        "default_args": dict(default_args or {}),
        "catchup": catchup,
        **dag_kwargs,
    }
    out: dict[str, DAG] = {}
    for flow in plan.flows:
        settings = {**base, **overrides.get(flow.flow_id, {})}
        if settings.get("schedule") is None and flow.inlets:
            # Runs once every table it reads from other flows was written again.
            settings["schedule"] = [_asset(a) for a in flow.inlets]
        flow_tags = [*settings.pop("tags", tags), flow.namespace, "qarion-etl"]
        dag_id = f"{dag_id_prefix}{flow.flow_id}"
        with DAG(dag_id=dag_id, doc_md=_flow_doc(flow), tags=flow_tags, **settings) as dag:
            _add_tasks(flow, plan)
        out[dag_id] = dag
    if problems:
        _invalid_flows(f"{dag_id_prefix}qarion_invalid_flows", problems)
    return out


def flow_task_group(
    project_dir: str | Path, flow: str, *, group_id: str | None = None, tooltip: str = ""
) -> TaskGroup:
    """The tasks of ``flow`` (its id) as a ``TaskGroup`` of the DAG being defined.

    Raises:
        InvalidFlows: the flow does not validate, or there is no such flow (the DAG file
            then shows it as its import error).
    """
    plan = plan_project(project_dir)
    found = next((f for f in plan.flows if f.flow_id == flow), None)
    if found is None:
        mine = [p for p in plan.problems if f"{flow}.toml" in p or f"'{flow}'" in p]
        names = [f.flow_id for f in plan.flows]
        raise InvalidFlows(
            "\n".join(mine) or f"no flow '{flow}' in {plan.root}{did_you_mean(flow, names)}"
        )
    with TaskGroup(group_id or found.flow_id, tooltip=tooltip or (found.name or "")) as group:
        _add_tasks(found, plan)
    return group


def _add_tasks(flow: FlowPlan, plan: ProjectPlan) -> None:
    ops: dict[str, QarionTaskOperator] = {}
    pool = {"pool": plan.pool.name} if plan.pool is not None else {}
    for task in flow.tasks:
        ops[task.id] = QarionTaskOperator(
            task_id=task.id,
            project_dir=str(plan.config_path),
            flow_path=flow.path,
            flow_task_id=task.id,
            retries=task.retries,
            retry_delay=dt.timedelta(seconds=task.retry_delay_seconds),
            retry_exponential_backoff=2.0 if task.retry_exponential_backoff else 0.0,
            execution_timeout=(
                dt.timedelta(seconds=task.timeout_seconds) if task.timeout_seconds else None
            ),
            doc_md=_task_doc(task),
            inlets=[_asset(a) for a in task.inlets],
            outlets=[_asset(a) for a in task.outlets],
            **pool,
        )
        for up in task.upstream:
            ops[up] >> ops[task.id]


def _asset(name_uri: tuple[str, str]) -> Asset:
    name, uri = name_uri
    return Asset(name=name, uri=uri)


def _flow_doc(flow: FlowPlan) -> str:
    lines = [f"**{flow.name or flow.flow_id}**", ""]
    if flow.description:
        lines += [flow.description, ""]
    lines.append(f"qarion-etl flow `{flow.path}`, namespace `{flow.namespace}`.")
    return "\n".join(lines)


def _task_doc(task: TaskPlan) -> str:
    lines = [f"**{task.name or task.id}** ({task.type})"]
    if task.description:
        lines += ["", task.description]
    io = [
        f"reads `{task.reads}`" if task.reads else "",
        f"writes `{task.writes}`" if task.writes else "",
    ]
    if any(io):
        lines += ["", "; ".join(i for i in io if i)]
    return "\n".join(lines)


def _invalid_flows(dag_id: str, problems: list[str]) -> None:
    """A DAG whose validation fails with ``problems``: Airflow records them as the file's
    import error and still loads the file's other DAGs."""
    message = "\n".join(problems)

    def validate(self: DAG) -> None:
        raise InvalidFlows(message)

    invalid = type("InvalidFlowsDAG", (DAG,), {"validate": validate})
    with invalid(dag_id=dag_id, schedule=None):
        pass
