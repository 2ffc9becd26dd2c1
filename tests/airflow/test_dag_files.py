"""What ``dags_from_project`` and ``flow_task_group`` build, as Airflow's own DagBag loads it.

The DAG files are parsed by Airflow in a subprocess (``DagBag``), with the network and
subprocesses forbidden: parsing connects to nothing and runs no ``qarion-etl``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.airflow.conftest import Airflow
from tests.helpers import make_project, write_flow

pytestmark = pytest.mark.airflow

#: Loads the dags folder the way the dag processor does, with connections and subprocesses
#: refused, and prints what Airflow got.
DAGBAG = """
import json, socket, subprocess
from airflow.dag_processing.dagbag import DagBag
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args)[:80])
    raise OSError("parsing must not connect or run a subprocess")
socket.socket.connect = refuse
subprocess.Popen.__init__ = refuse
bag = DagBag()
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "attempts": attempts, "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "tags": sorted(dag.tags), "doc_md": dag.doc_md, "schedule": str(dag.schedule),
        "tasks": {t.task_id: {
            "upstream": sorted(t.upstream_task_ids), "retries": t.retries,
            "retry_delay": t.retry_delay.total_seconds(),
            "backoff": t.retry_exponential_backoff,
            "timeout": t.execution_timeout.total_seconds() if t.execution_timeout else None,
            "pool": t.pool, "doc_md": t.doc_md, "type": type(t).__name__,
        } for t in dag.tasks},
    }
print(json.dumps(out))
"""

FLOW = """
id = "fan"
name = "Fan out"
description = "One load, two sums, one join."
namespace = "fan_ns"

[[tasks]]
id = "load"
name = "Load orders"
type = "ingestion"
target_dataset_id = "orders"
retries = 2
retry_delay_seconds = 30
retry_exponential_backoff = true
timeout_seconds = 600
[tasks.config]
path = "data/orders.csv"
format = "csv"

[[tasks]]
id = "small"
type = "transformation"
source_dataset_id = "orders"
target_dataset_id = "small"
[tasks.config]
sql = "SELECT * FROM {{ source_dataset }} WHERE value < 100"

[[tasks]]
id = "big"
type = "transformation"
source_dataset_id = "orders"
target_dataset_id = "big"
[tasks.config]
sql = "SELECT * FROM {{ source_dataset }} WHERE value >= 100"

[[tasks]]
id = "report"
type = "transformation"
dependencies = ["small", "big"]
[tasks.config]
sql = "SELECT {{ xcom_pull('small', key='rows_written') }} AS s"
"""


def test_one_dag_per_flow_with_our_tasks_edges_and_settings(
    airflow: Airflow, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "proj")
    write_flow(project, "fan", FLOW)
    airflow.dag_file(
        "qarion",
        f"""
        import datetime as dt
        from qarion_etl.airflow import dags_from_project

        dags_from_project(
            {str(project)!r},
            dag_id_prefix="qe_",
            schedule="@daily",
            start_date=dt.datetime(2024, 1, 1),
            tags=["team-a"],
            flows={{"fan": {{"schedule": "@hourly"}}}},
        )
        """,
    )
    bag = airflow.python(DAGBAG)
    assert bag["errors"] == {} and bag["attempts"] == []
    assert sorted(bag["dags"]) == ["qe_data_pipeline", "qe_fan"]
    fan = bag["dags"]["qe_fan"]
    assert fan["tags"] == ["fan_ns", "qarion-etl", "team-a"]
    assert "Fan out" in fan["doc_md"] and "One load, two sums" in fan["doc_md"]
    assert "hour" in fan["schedule"].lower() or "@hourly" in fan["schedule"]
    assert (
        "@daily" in bag["dags"]["qe_data_pipeline"]["schedule"]
        or "day" in bag["dags"]["qe_data_pipeline"]["schedule"].lower()
    )
    tasks = fan["tasks"]
    assert sorted(tasks) == ["big", "load", "report", "small"]
    # dependencies, and the dataset edges: small and big read what load writes
    assert tasks["small"]["upstream"] == ["load"] and tasks["big"]["upstream"] == ["load"]
    assert tasks["report"]["upstream"] == ["big", "small"]
    load = tasks["load"]
    assert (load["retries"], load["retry_delay"], load["backoff"], load["timeout"]) == (
        2,
        30.0,
        2.0,
        600.0,
    )
    assert tasks["small"]["retries"] == 0 and tasks["small"]["timeout"] is None
    assert "Load orders" in load["doc_md"] and "writes `orders`" in load["doc_md"]
    assert load["type"] == "QarionTaskOperator"
    # A DuckDB warehouse takes one writer at a time: every task shares its pool.
    assert {t["pool"] for t in tasks.values()} == {next(iter(tasks.values()))["pool"]}
    assert load["pool"].startswith("qarion_warehouse_duckdb_")
    # Parsing created no database or run state in the project.
    assert not (project / "warehouse.duckdb").exists() and not (project / ".qarion").exists()


def test_a_flow_that_does_not_validate_is_an_import_error_and_the_others_load(
    airflow: Airflow, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "proj")
    write_flow(
        project,
        "broken",
        """
        id = "broken"
        [[tasks]]
        id = "report"
        type = "transformation"
        dependencies = ["laod"]
        [tasks.config]
        sql = "SELECT 1 AS x"
        """,
    )
    airflow.dag_file(
        "qarion",
        f"""
        from qarion_etl.airflow import dags_from_project
        dags_from_project({str(project)!r})
        """,
    )
    bag = airflow.python(DAGBAG)
    assert sorted(bag["dags"]) == ["data_pipeline"]
    [(path, error)] = bag["errors"].items()
    assert path.endswith("qarion.py")
    assert "InvalidFlows: flows/broken.toml:6: task 'report': unknown dependency 'laod'" in error

    airflow.run("dags", "reserialize")
    listed = airflow.run("dags", "list-import-errors", "-o", "json", check=False)  # exit 1: errors
    errors = json.loads([ln for ln in listed.stdout.splitlines() if ln.startswith("[{")][-1])
    assert any("unknown dependency 'laod'" in e["error"] for e in errors)
    assert "data_pipeline" in airflow.run("dags", "list", "-o", "json").stdout


def test_a_flow_inside_a_dag_of_your_own(airflow: Airflow, tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    airflow.dag_file(
        "mine",
        f"""
        import datetime as dt
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator
        from qarion_etl.airflow import flow_task_group

        with DAG("mine", schedule=None, start_date=dt.datetime(2024, 1, 1)):
            start = EmptyOperator(task_id="start")
            group = flow_task_group({str(project)!r}, "data_pipeline")
            start >> group
        """,
    )
    bag = airflow.python(DAGBAG)
    assert bag["errors"] == {}
    tasks = bag["dags"]["mine"]["tasks"]
    assert sorted(tasks) == [
        "data_pipeline.calculate_stats",
        "data_pipeline.filter_high_value",
        "data_pipeline.ingest_orders",
        "start",
    ]
    assert tasks["data_pipeline.ingest_orders"]["upstream"] == ["start"]
    assert tasks["data_pipeline.filter_high_value"]["upstream"] == [  # a dependency and a dataset
        "data_pipeline.calculate_stats",
        "data_pipeline.ingest_orders",
    ]
    done = airflow.run("dags", "test", "mine")
    assert "state=success" in done.stdout + done.stderr


def test_pools_helper_prints_and_creates_the_pool(airflow: Airflow, tmp_path: Path) -> None:
    import subprocess
    import sys

    project = make_project(tmp_path / "proj")
    shown = subprocess.run(
        [sys.executable, "-m", "qarion_etl.airflow", "pools", str(project)],
        env=airflow.env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert shown.stdout.startswith("airflow pools set qarion_warehouse_duckdb_")
    subprocess.run(
        [sys.executable, "-m", "qarion_etl.airflow", "pools", str(project), "--create"],
        env=airflow.env, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    pools = airflow.run("pools", "list", "-o", "json").stdout
    assert shown.stdout.split()[3] in pools


def test_a_warm_parse_reads_one_cached_plan_and_no_planner(tmp_path: Path) -> None:
    """While no file changed, parsing imports nothing of the planner; a change is seen."""
    import subprocess
    import sys

    from qarion_etl.airflow import plan as plan_module
    from qarion_etl.definitions.config import CONFIG_FILE

    assert plan_module.CONFIG_FILE == CONFIG_FILE
    project = make_project(tmp_path / "p")
    cache = tmp_path / "cache"
    code = (
        "import sys\n"
        "from qarion_etl.airflow.plan import plan_project\n"
        f"p = plan_project({str(project)!r})\n"
        "heavy = sorted(m for m in ('qarion_etl.definitions.config', 'qarion_etl.project',"
        " 'tomli', 'jinja2', 'qarion_etl.run.runner') if m in sys.modules)\n"
        "print([f.flow_id for f in p.flows], p.problems, heavy)\n"
    )

    def parse() -> str:
        env = {**os.environ, "QARION_ETL_AIRFLOW_CACHE": str(cache)}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    cold = parse()
    assert cold.startswith("['data_pipeline'] []") and "qarion_etl.definitions.config" in cold
    assert parse() == "['data_pipeline'] [] []"  # warm: the planner is not imported
    write_flow(
        project,
        "other",
        'id = "other"\n[[tasks]]\nid = "t"\ntype = "transformation"\n[tasks.config]\nsql = "SELECT 1 AS x"\n',
    )
    assert parse().startswith("['data_pipeline', 'other'] []")  # a new file is seen
    (project / "flows" / "other.toml").write_text('id = "other"\n[[tasks]]\nid = "t"\n')
    changed = parse()
    assert changed.startswith("['data_pipeline'] [") and "other.toml" in changed
    (project / "flows" / "other.toml").unlink()
    assert parse().startswith("['data_pipeline'] []")  # a removed file is seen
    assert parse() == "['data_pipeline'] [] []"


def test_a_cache_folder_others_may_write_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan planted in a cache folder other users can write is ignored, and not written to."""
    from qarion_etl.airflow import plan as plan_module

    cache = tmp_path / "cache"
    monkeypatch.setenv(plan_module.CACHE_ENV, str(cache))
    store = plan_module._Cache()
    store.put("k", {"v": 1})
    assert store.get("k") == {"v": 1}
    assert cache.stat().st_mode & 0o777 == 0o700
    cache.chmod(0o777)  # as a folder another user made first in the shared /tmp would be
    assert store.get("k") is None
    store.put("k2", {"v": 2})
    assert not (cache / "k2.json").exists()


def test_a_server_warehouse_takes_no_pool(tmp_path: Path) -> None:
    from qarion_etl.airflow.plan import project_pools

    project = make_project(tmp_path / "p", engine_url="postgresql+psycopg://u@127.0.0.1:5432/db")
    assert project_pools(project) == []
    duck = make_project(tmp_path / "d")
    (pool,) = project_pools(duck)
    assert pool.slots == 1 and "warehouse.duckdb" in pool.description
