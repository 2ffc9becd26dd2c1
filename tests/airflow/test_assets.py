"""A ``ref()`` across flows on Airflow: the writer's outlet is the reader DAG's schedule.

The DAG file is loaded by Airflow's own ``DagBag`` in a subprocess, as in
``test_dag_files.py``; no scheduler runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.airflow.conftest import Airflow
from tests.helpers import make_project, write_flow

pytestmark = pytest.mark.airflow

DAGBAG = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag()
def names(assets):
    return sorted(getattr(a, "name", str(a)) for a in assets or [])
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "schedule": str(dag.schedule),
        "timetable": type(dag.timetable).__name__,
        "assets": sorted(a.uri for a in dag.schedule) if isinstance(dag.schedule, list) else [],
        "tasks": {t.task_id: {"inlets": names(t.inlets), "outlets": names(t.outlets),
                              "upstream": sorted(t.upstream_task_ids)} for t in dag.tasks},
    }
print(json.dumps(out))
"""

SEED = """
id = "seed"
namespace = "seed_ns"
[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "raw_orders"
[tasks.config]
path = "data/orders.csv"
format = "csv"
"""

MART = """
id = "mart"
namespace = "mart_ns"
[[tasks]]
id = "stg"
type = "transformation"
target_dataset_id = "stg_orders"
materialized = "ephemeral"
[tasks.config]
sql = "SELECT * FROM {{ ref('raw_orders') }}"

[[tasks]]
id = "total"
type = "transformation"
target_dataset_id = "totals"
[tasks.config]
sql = "SELECT COUNT(*) AS n FROM {{ ref('stg_orders') }} s JOIN {{ ref('seed', 'raw_orders') }} r ON 1 = 1"
"""

MART_SCHEDULED = MART.replace('namespace = "mart_ns"', 'namespace = "mart2_ns"').replace(
    'id = "mart"', 'id = "mart2"'
)


def test_a_cross_flow_ref_is_an_asset_that_schedules_the_reader(
    airflow: Airflow, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "proj", example=False)
    write_flow(project, "seed", SEED)
    write_flow(project, "mart", MART)
    write_flow(project, "mart2", MART_SCHEDULED)
    airflow.dag_file(
        "qarion",
        f"""
        from qarion_etl.airflow import dags_from_project

        dags_from_project({str(project)!r}, flows={{"mart2": {{"schedule": "@daily"}}}})
        """,
    )
    bag = airflow.python(DAGBAG)
    assert bag["errors"] == {}
    seed, mart, mart2 = (bag["dags"][d] for d in ("seed", "mart", "mart2"))
    # The writer declares the table as its outlet; the readers declare it as an inlet.
    assert seed["tasks"]["load"]["outlets"] == ["seed.raw_orders"]
    assert mart["tasks"]["stg"]["inlets"] == ["seed.raw_orders"]
    assert mart["tasks"]["total"]["inlets"] == ["seed.raw_orders"]
    # The ephemeral task is upstream of its reader inside the flow, and is no asset.
    assert mart["tasks"]["total"]["upstream"] == ["stg"]
    assert mart["tasks"]["stg"]["outlets"] == []
    # A DAG without its own schedule runs when the asset it reads is updated.
    assert mart["assets"] == ["qarion-etl://seed_ns/raw_orders"]
    assert mart["timetable"] == "AssetTriggeredTimetable"
    assert seed["assets"] == []
    # A DAG with a schedule of its own keeps it, and still declares what it reads.
    assert mart2["assets"] == [] and "daily" in mart2["schedule"].lower()
    assert mart2["tasks"]["total"]["inlets"] == ["seed.raw_orders"]
