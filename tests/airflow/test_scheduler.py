"""A real Airflow scheduler (LocalExecutor, beside its API server) running flows in parallel.

A fan-out flow (one ingestion, eight transformations at once, one join that pulls their
XComs) runs on PostgreSQL (warehouse and metadata) with a task that fails once and
passes on its retry, and on a DuckDB warehouse with parallelism 4, whose tasks share one
Airflow pool. The tasks run in separate processes; datasets and XComs equal a local run's;
the retried task leaves no stale XCom; DuckDB never reports its file locked. While they
run, nothing of Airflow listens beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.conftest import AIRFLOW, Airflow
from tests.conftest import PG_URL, require_service, unique_name
from tests.helpers import cli, make_project, write_flow
from tests.runkit import drop_namespace, query
from tests.sockets import assert_loopback_only

pytestmark = [pytest.mark.airflow, pytest.mark.postgres]

PARTS = 8


def fan_flow(flow_id: str, ns: str, *, sleep: str = "", flaky: bool = False) -> str:
    parts = []
    for i in range(PARTS):
        parts.append(
            f"""
[[tasks]]
id = "part_{i}"
type = "transformation"
source_dataset_id = "orders"
target_dataset_id = "part_{i}"
[tasks.config]
sql = "SELECT COUNT(*) AS n, SUM(value) AS total FROM {{{{ source_dataset }}}}{sleep} WHERE id % {PARTS} = {i}"
"""
        )
    pulls = " + ".join(f"{{{{ xcom_pull('part_{i}', key='n') }}}}" for i in range(PARTS))
    unions = " UNION ALL ".join(f'SELECT n FROM "{ns}"."part_{i}"' for i in range(PARTS))
    flaky_task = (
        f"""
[[tasks]]
id = "flaky"
type = "transformation"
dependencies = ["load"]
retries = 1
retry_delay_seconds = 8
retry_on = "any"  # a missing table is no transient error: retry it all the same
[tasks.config]
sql = 'SELECT COUNT(*) AS opened FROM "{ns}"."gate"'
"""
        if flaky
        else ""
    )
    return f"""
id = "{flow_id}"
namespace = "{ns}"

[input]
primary_key = ["id"]
columns = [{{name = "id", schema_type = "integer", required = true}}, {{name = "value", schema_type = "float"}}]

[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "orders"
[tasks.config]
path = "data/orders.csv"
format = "csv"
{"".join(parts)}
[[tasks]]
id = "join"
type = "transformation"
target_dataset_id = "joined"
dependencies = [{", ".join(f'"part_{i}"' for i in range(PARTS))}]
[tasks.config]
sql = '''SELECT ({pulls}) AS pulled, (SELECT SUM(n) FROM ({unions}) u) AS counted'''
{flaky_task}"""


def _project(root: Path, flow_id: str, ns: str, engine: str, metadata: str, **flow: Any) -> Path:
    project = make_project(root, engine_url=engine, metadata_url=metadata, namespace=ns)
    (project / "flows" / "data_pipeline.toml").unlink()
    write_flow(project, flow_id, fan_flow(flow_id, ns, **flow))
    return project


class Services:
    """Airflow's API server, DAG processor, triggerer and scheduler (LocalExecutor), as the
    README starts them: free ports of 127.0.0.1, no log servers, one session of their own."""

    def __init__(self, airflow: Airflow, log: Path) -> None:
        env = {
            **airflow.env,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "12",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        }
        self.airflow = airflow
        self.out = log.open("w")
        a = shlex.quote(str(AIRFLOW))
        self.proc = subprocess.Popen(
            ["bash", "-c", f"{a} api-server & {a} dag-processor & {a} triggerer --skip-serve-logs "
             f"& {a} scheduler --skip-serve-logs & wait"],
            env=env,
            cwd=airflow.home,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.health = f"http://127.0.0.1:{airflow.api_port}/api/v2/monitor/health"

    def wait_healthy(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the Airflow services exited"
            try:
                with urllib.request.urlopen(self.health, timeout=2) as r:
                    doc = json.load(r)
                if all(
                    doc.get(p, {}).get("status") == "healthy"
                    for p in ("scheduler", "dag_processor", "triggerer")
                ):
                    return
            except OSError:
                pass
            time.sleep(2)
        raise AssertionError("the Airflow services did not become healthy")

    def assert_loopback_only(self) -> None:
        """Every socket the services (and their task processes) listen on is 127.0.0.1's."""
        assert_loopback_only(self.proc.pid, expect_port=self.airflow.api_port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.out.close()


@pytest.fixture
def services(airflow: Airflow, tmp_path: Path) -> Iterator[Services]:
    server = Services(airflow, tmp_path / "services.log")
    try:
        yield server
    finally:
        server.stop()


def _run_state(project: Path, flow: str, run_id: str) -> dict[str, Any] | None:
    shown = cli("runs", "show", run_id, "--flow", flow, "--json", project=project)
    return json.loads(shown.stdout) if shown.exit_code == 0 else None


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_fan_out_under_a_local_executor(
    airflow: Airflow, services: Services, tmp_path: Path
) -> None:
    require_service("postgres")
    pg_ns, duck_ns, local_ns = unique_name("afpg"), unique_name("afdk"), unique_name("aflocal")
    duck_meta = f"sqlite:///{tmp_path / 'duck' / '.qarion' / 'metadata.db'}"
    pg_project = _project(
        tmp_path / "pg",
        "fan_pg",
        pg_ns,
        PG_URL,
        PG_URL,
        sleep=" CROSS JOIN (SELECT pg_sleep(1)) s",
        flaky=True,
    )
    duck_project = _project(
        tmp_path / "duck",
        "fan_duck",
        duck_ns,
        f"duckdb:///{tmp_path / 'duck' / 'w.duckdb'}",
        duck_meta,
    )
    local = _project(
        tmp_path / "local",
        "fan_pg",
        local_ns,
        PG_URL,
        PG_URL,
        sleep=" CROSS JOIN (SELECT pg_sleep(0)) s",
    )
    for name, project in (("pg", pg_project), ("duck", duck_project)):
        airflow.dag_file(
            name,
            f"from qarion_etl.airflow import dags_from_project\ndags_from_project({str(project)!r})\n",
        )
    subprocess.run(
        [sys.executable, "-m", "qarion_etl.airflow", "pools", str(duck_project), "--create"],
        env=airflow.env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        services.wait_healthy()
        services.assert_loopback_only()
        for dag in ("fan_pg", "fan_duck"):
            _wait(
                lambda dag=dag: (
                    dag in airflow.run("dags", "list", "-o", "json", check=False).stdout
                ),
                120,
                f"{dag} parsed",
            )
            airflow.run("dags", "unpause", dag)
        airflow.run("pools", "set", "default_pool", "4", "parallelism 4 for the DuckDB run")
        airflow.run("dags", "trigger", "fan_pg", "--run-id", "r_pg")
        airflow.run("dags", "trigger", "fan_duck", "--run-id", "r_duck")

        # The gate table is missing at first: 'flaky' fails its first try. Before Airflow
        # retries it, a stale value of that try is planted; the retry must clear it.
        def first_try_failed() -> bool:
            state = _run_state(pg_project, "fan_pg", "r_pg")
            return bool(state) and any(
                t["task_id"] == "flaky" and t["status"] == "failed" for t in state["tasks"]
            )

        _wait(first_try_failed, 180, "the first try of 'flaky' to fail")
        services.assert_loopback_only()  # task processes running too
        pushed = cli("xcom", "push", "flaky", "stale", "--key", "leftover", "--flow", "fan_pg", "--run", "r_pg",
                     project=pg_project)  # fmt: skip
        assert pushed.exit_code == 0
        query_sql = f'CREATE TABLE "{pg_ns}"."gate" (x INTEGER)'
        from qarion_etl.db_service import DatabaseService

        with DatabaseService(PG_URL) as db, db.begin() as conn:
            conn.exec_driver_sql(query_sql)

        pg_state = _wait(
            lambda: (
                (s := _run_state(pg_project, "fan_pg", "r_pg")) and s["status"] == "success" and s
            ),
            240,
            "the PostgreSQL run to succeed",
        )
        duck_state = _wait(
            lambda: (
                (s := _run_state(duck_project, "fan_duck", "r_duck"))
                and s["status"] in ("success", "failed")
                and s
            ),
            240,
            "the DuckDB run to finish",
        )
        assert duck_state["status"] == "success", duck_state
        assert not any("lock" in (t["error"] or "").lower() for t in duck_state["tasks"])

        flaky = next(t for t in pg_state["tasks"] if t["task_id"] == "flaky")
        assert flaky["tries"] == 2 and flaky["status"] == "success"
        stale = cli(
            "xcom",
            "get",
            "flaky",
            "--key",
            "leftover",
            "--flow",
            "fan_pg",
            "--run",
            "r_pg",
            project=pg_project,
        )
        assert stale.exit_code == 1, "the retry cleared the failed try's XComs"

        # Separate processes, and the eight parts overlapping in time.
        tis = airflow.python(
            """
            import json
            from airflow.models.taskinstance import TaskInstance
            from airflow.utils.session import create_session
            with create_session() as s:
                rows = s.query(TaskInstance).filter_by(dag_id="fan_pg", run_id="r_pg").all()
                print(json.dumps([[t.task_id, t.hostname, t.pid, t.start_date.timestamp(), t.end_date.timestamp()] for t in rows]))
            """
        )
        assert len({pid for _, _, pid, _, _ in tis}) > 1, tis
        parts = sorted((s, e) for tid, _, _, s, e in tis if tid.startswith("part_"))
        assert any(b[0] < a[1] for a, b in zip(parts, parts[1:], strict=False)), (
            "parts ran one after another"
        )

        # The same flow run locally gives the same datasets and XComs.
        assert cli("run", "fan_pg", "--run-id", "local", project=local).exit_code == 0
        for i in range(PARTS):
            dist = query(PG_URL, f'SELECT n, total FROM "{pg_ns}"."part_{i}"')
            here = query(PG_URL, f'SELECT n, total FROM "{local_ns}"."part_{i}"')
            assert dist == here
        assert query(PG_URL, f'SELECT pulled, counted FROM "{pg_ns}"."joined"') == query(
            PG_URL, f'SELECT pulled, counted FROM "{local_ns}"."joined"'
        )
        for key in ("pulled", "counted"):
            a = cli(
                "xcom",
                "get",
                "join",
                "--key",
                key,
                "--flow",
                "fan_pg",
                "--run",
                "r_pg",
                project=pg_project,
            )
            b = cli(
                "xcom",
                "get",
                "join",
                "--key",
                key,
                "--flow",
                "fan_pg",
                "--run",
                "local",
                project=local,
            )
            assert a.stdout == b.stdout and a.exit_code == 0
    finally:
        for ns in (pg_ns, local_ns):
            drop_namespace(PG_URL, ns)
        from qarion_etl.db_service import DatabaseService
        from qarion_etl.run.history import RunStore

        for ns in (pg_ns, local_ns):
            with DatabaseService(PG_URL) as db:
                RunStore(db, ns).drop_tables()
                with db.begin() as conn:
                    conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{ns}_xcom"')
