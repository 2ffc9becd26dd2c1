"""``airflow dags test`` of the seed example, through ``dags_from_project`` in a dags folder.

The DAG run is a run of the project like any other: the same datasets and XComs as a local
``qarion-etl run``, listed by ``runs list``/``runs show`` under Airflow's run id, answered
by ``xcom get --run <Airflow run id>``; Airflow's own XCom holds each task's result.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.airflow.conftest import Airflow
from tests.conftest import PG_URL, require_service, unique_name
from tests.helpers import cli, make_project, write_flow
from tests.runkit import drop_namespace, orders_mean, query, seed_project, table

pytestmark = pytest.mark.airflow

DAG_FILE = """
from qarion_etl.airflow import dags_from_project

dags_from_project({project!r})
"""


def _run_id(project: Path) -> str:
    runs = json.loads(cli("runs", "list", "--json", project=project).stdout)
    assert len(runs) == 1, runs
    return str(runs[0]["dag_run_id"])


def test_dags_test_of_the_seed_equals_a_local_run(airflow: Airflow, tmp_path: Path) -> None:
    local = seed_project(tmp_path / "local", "production")
    assert cli("run", "data_pipeline", project=local).exit_code == 0
    project = seed_project(tmp_path / "proj", "production")
    airflow.dag_file("qarion", DAG_FILE.format(project=str(project)))

    done = airflow.run("dags", "test", "data_pipeline")
    assert "state=success" in done.stdout + done.stderr

    run_id = _run_id(project)
    assert run_id.startswith("manual__")
    shown = json.loads(cli("runs", "show", run_id, "--json", project=project).stdout)
    assert shown["status"] == "success" and shown["flow_id"] == "data_pipeline"
    assert [t["status"] for t in shown["tasks"]] == ["success"] * 3
    got = cli("xcom", "get", "calculate_stats", "--key", "avg_value", "--flow", "data_pipeline",
              "--run", run_id, project=project)  # fmt: skip
    mean, above = orders_mean(project / "data" / "orders.csv")
    assert got.exit_code == 0 and float(got.stdout) == pytest.approx(mean, rel=1e-12)

    for p in (local, project):
        url = f"duckdb:///{p / 'warehouse.duckdb'}"
        high = table(url, "production", "high_value_orders")
        assert query(url, f"SELECT COUNT(*) FROM {high}") == [(above,)]
    local_rows = query(
        f"duckdb:///{local / 'warehouse.duckdb'}",
        "SELECT id, value FROM production.high_value_orders ORDER BY id",
    )
    dag_rows = query(
        f"duckdb:///{project / 'warehouse.duckdb'}",
        "SELECT id, value FROM production.high_value_orders ORDER BY id",
    )
    assert local_rows == dag_rows

    returned = airflow.airflow_xcom("data_pipeline", run_id, "calculate_stats")
    assert returned["avg_value"] == pytest.approx(mean, rel=1e-12)
    assert returned["total_count"] == 300 and returned["status"] == "success"


@pytest.mark.postgres
def test_airflow_connections_as_warehouse_url_and_s3_credentials(
    airflow: Airflow, tmp_path: Path, s3_bucket: str, s3_env: str
) -> None:
    """``${airflow_conn:…}`` names the warehouse (a postgres connection) and the S3 XCom
    store's credentials (an aws connection); neither is written in the project."""
    require_service("postgres")
    ns = unique_name("afconn")
    project = make_project(tmp_path / "proj")
    flow = (project / "flows" / "data_pipeline.toml").read_text()
    (project / "flows" / "data_pipeline.toml").write_text(
        flow.replace('namespace = "production"', f'namespace = "{ns}"')
    )
    (project / "qarion-etl.toml").write_text(
        f"""
[engine]
url = "${{airflow_conn:qarion_warehouse}}"

[metadata]
url = "sqlite:///{project / ".qarion" / "metadata.db"}"

[credentials]
xcom_s3 = "${{airflow_conn:qarion_s3}}"

[xcom]
backend = "s3"

[xcom.backend_config]
bucket = "{s3_bucket}"
endpoint_url = "{s3_env}"
credentials = "${{credential:xcom_s3}}"
"""
    )
    # PostgreSQL here trusts local users, so the password is only there to be kept secret.
    pg = PG_URL.replace("postgresql+psycopg://postgres@", "postgres://postgres:Pw-never-shown-7@")
    airflow.env["AIRFLOW_CONN_QARION_WAREHOUSE"] = pg
    airflow.env["AIRFLOW_CONN_QARION_S3"] = "aws://testing:testing@/?region_name=us-east-1"
    airflow.dag_file("qarion", DAG_FILE.format(project=str(project)))
    try:
        done = airflow.run("dags", "test", "data_pipeline")
        logs = "".join(p.read_text(errors="replace") for p in airflow.logs())
        assert "Pw-never-shown-7" not in done.stdout + done.stderr + logs
        high = query(PG_URL, f'SELECT COUNT(*) FROM "{ns}"."high_value_orders"')
        assert high == [(orders_mean(project / "data" / "orders.csv")[1],)]
        import boto3

        keys = boto3.client("s3", endpoint_url=s3_env, region_name="us-east-1").list_objects_v2(
            Bucket=s3_bucket
        )
        assert any("calculate_stats" in o["Key"] for o in keys.get("Contents", []))
    finally:
        drop_namespace(PG_URL, ns)


def test_a_failed_task_and_a_missing_connection_show_our_error_in_the_task_log(
    airflow: Airflow, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "proj")
    write_flow(
        project,
        "broken_sql",
        """
        id = "broken_sql"
        namespace = "production"

        [[tasks]]
        id = "bad"
        type = "transformation"
        target_dataset_id = "nothing"
        [tasks.config]
        sql = "SELECT * FROM no_such_table"
        """,
    )
    airflow.dag_file("qarion", DAG_FILE.format(project=str(project)))
    done = airflow.run("dags", "test", "broken_sql", check=False)
    out = done.stdout + done.stderr + "".join(p.read_text(errors="replace") for p in airflow.logs())
    assert "state=failed" in out.replace("DagRunState.FAILED", "failed")
    assert "qarion-etl: task bad failed:" in out and "no_such_table" in out
    shown = json.loads(cli("runs", "list", "--json", project=project).stdout)
    assert [r["status"] for r in shown] == ["failed"]

    # The warehouse names an Airflow connection that does not exist: the DAGs still parse
    # (parsing resolves no connection); the task fails for good, naming the connection.
    config = project / "qarion-etl.toml"
    config.write_text(
        re.sub(r'url = "duckdb:[^"]*"', 'url = "${airflow_conn:no_such_conn}"', config.read_text())
    )
    # With retries to spare: a configuration error is not retried.
    flow = project / "flows" / "data_pipeline.toml"
    flow.write_text(
        flow.read_text().replace(
            'type = "ingestion"', 'type = "ingestion"\nretries = 2\nretry_delay_seconds = 1', 1
        )
    )
    done = airflow.run("dags", "test", "data_pipeline", check=False)
    out = done.stdout + done.stderr + "".join(p.read_text(errors="replace") for p in airflow.logs())
    assert "Airflow connection 'no_such_conn' not found" in out
    assert "state=failed" in out.replace("DagRunState.FAILED", "failed")
    tries = airflow.python(
        """
        import json
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        with create_session() as s:
            ti = s.query(TaskInstance).filter_by(dag_id="data_pipeline", task_id="ingest_orders").one()
            print(json.dumps([str(ti.state), ti.try_number, ti.max_tries]))
        """
    )
    assert tries == ["failed", 1, 2], tries


def _fan_out(flow_id: str, parts: int) -> str:
    tasks = [
        '[[tasks]]\nid = "root"\ntype = "transformation"\n[tasks.config]\nsql = "SELECT 1 AS n"\n'
    ]
    for i in range(parts):
        tasks.append(
            f'[[tasks]]\nid = "part_{i}"\ntype = "transformation"\ndependencies = ["root"]\n'
            f"[tasks.config]\nsql = \"SELECT {i} AS part, '{flow_id}' AS flow\"\n"
        )
    deps = ", ".join(f'"part_{i}"' for i in range(parts))
    tasks.append(
        f'[[tasks]]\nid = "join"\ntype = "transformation"\ndependencies = [{deps}]\n'
        '[tasks.config]\nsql = "SELECT 1 AS joined"\n'
    )
    return f'id = "{flow_id}"\nnamespace = "{flow_id}"\n\n' + "\n".join(tasks)


def test_the_results_file_of_a_fan_out_holds_every_task(airflow: Airflow, tmp_path: Path) -> None:
    """Each Airflow task of a run writes the run's results file: every one merges its entry
    in, so the file of an 8-part fan-out holds all ten tasks (it once held the last one)."""
    from qarion_etl.run.logs import results_file, run_folder

    project = make_project(tmp_path / "proj", example=False)
    write_flow(project, "fan_a", _fan_out("fan_a", 8))
    airflow.dag_file("qarion", DAG_FILE.format(project=str(project)))
    done = airflow.run("dags", "test", "fan_a")
    assert "state=success" in done.stdout + done.stderr
    run_id = _run_id(project)
    state = project / ".qarion"
    doc = json.loads(results_file(state, "fan_a", run_id).read_text())
    assert doc["flow_id"] == "fan_a" and doc["status"] == "success"
    assert sorted(t["task_id"] for t in doc["tasks"]) == sorted(
        ["root", "join", *(f"part_{i}" for i in range(8))]
    )
    assert doc["counts"] == {"success": 10}
    assert all(t["status"] == "success" and t["attempts"] for t in doc["tasks"])
    folder = run_folder(state, "fan_a", run_id)
    assert sorted(p.name for p in folder.glob("*.sql")) == sorted(
        ["root.sql", "join.sql", *(f"part_{i}.sql" for i in range(8))]
    )
