"""``QarionTaskOperator``: the Airflow operator that runs one task of a flow, in-process."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator


class QarionTaskOperator(BaseOperator):
    """Run task ``flow_task_id`` of the flow file ``flow_path`` of the project in ``project_dir``.

    The task runs inside this Airflow task's process through the library: Airflow's run id
    is the run's ``dag_run_id``, and the task's result is the operator's return value
    (Airflow's ``return_value`` XCom) as well as the project's own XComs. A DAG run
    triggered with the conf ``{"full_refresh": true}`` rebuilds incremental models, as
    ``qarion-etl run --full-refresh`` does.
    """

    ui_color = "#dbe9f6"

    def __init__(
        self, *, project_dir: str, flow_path: str, flow_task_id: str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.project_dir = project_dir
        self.flow_path = flow_path
        self.flow_task_id = flow_task_id

    def execute(self, context: Any) -> Any:
        # The library loads here, in the task's process, not when the DAG file is parsed.
        from qarion_etl.airflow.runtime import run_task

        return run_task(
            self.project_dir,
            self.flow_path,
            self.flow_task_id,
            run_id=str(context["run_id"]),
            try_number=int(getattr(context["ti"], "try_number", 1) or 1),
            full_refresh=full_refresh_of(context),
        )


def full_refresh_of(context: Any) -> bool:
    """Whether the DAG run's conf asks for a full refresh (``{"full_refresh": true}``)."""
    conf = getattr(context.get("dag_run"), "conf", None)
    return isinstance(conf, dict) and conf.get("full_refresh") is True
