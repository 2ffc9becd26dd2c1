"""Airflow with a real executor: each task its own process, ours beside a hand-written DAG.

A fan-out of 40 task instances (one root, 38 parts, one join) on PostgreSQL, as a flow
through ``dags_from_project`` and as a DAG written by hand with ``@task`` functions that run
the same SQL through psycopg. Airflow's own services run on free ports of 127.0.0.1 (API
server, DAG processor, scheduler with the LocalExecutor); the two DAGs are triggered in
turn, twice each, and the figure is the median task duration as Airflow records it (each
task instance's start to end: the process that parses the DAG file and runs the task).
Target: 1.3x or less.

Run: ``python -m benchmarks airflow_executor`` (needs ``.[airflow]`` and PostgreSQL).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.common import child_env, header, ratio_line

AIRFLOW = Path(sys.executable).with_name("airflow")
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PARTS = 38
RUNS = int(os.environ.get("BENCH_RUNS", "2"))

HAND_DAG = """
import psycopg
from airflow.sdk import dag, task

DSN = {dsn!r}
NS = {ns!r}


def sql(statement, fetch=False):
    with psycopg.connect(DSN, autocommit=True) as conn:
        cur = conn.execute(statement)
        return cur.fetchone() if fetch else None


@task(task_id="root")
def root():
    sql(f"CREATE SCHEMA IF NOT EXISTS {{NS}}")
    sql(f"DROP TABLE IF EXISTS {{NS}}.root")
    sql(f"CREATE TABLE {{NS}}.root AS SELECT g AS id, g * 0.5 AS value FROM generate_series(1, 1000) g")
    return {{"rows": 1000}}


def part(i):
    @task(task_id=f"part_{{i}}")
    def run():
        sql(f"DROP TABLE IF EXISTS {{NS}}.part_{{i}}")
        sql(f"CREATE TABLE {{NS}}.part_{{i}} AS SELECT COUNT(*) AS n, SUM(value) AS total "
            f"FROM {{NS}}.root WHERE id % {parts} = {{i}}")
        n, total = sql(f"SELECT n, total FROM {{NS}}.part_{{i}}", fetch=True)
        return {{"n": n, "total": float(total)}}

    return run


@task(task_id="join")
def join():
    return {{"parts": sql(f"SELECT COUNT(*) FROM pg_tables WHERE schemaname = '{{NS}}'", fetch=True)[0]}}


@dag(dag_id="fan_hand", schedule=None)
def fan_hand():
    first, last = root(), join()
    for i in range({parts}):
        first >> part(i)() >> last


fan_hand()
"""


def qarion_flow(ns: str) -> str:
    parts = [
        f'id = "fan_ours"\nnamespace = "{ns}"\n\n[[tasks]]\nid = "root"\ntype = "transformation"\n'
        'target_dataset_id = "root"\n[tasks.config]\n'
        'sql = "SELECT g AS id, g * 0.5 AS value FROM generate_series(1, 1000) g"\n'
    ]
    for i in range(PARTS):
        parts.append(
            f'[[tasks]]\nid = "part_{i}"\ntype = "transformation"\nsource_dataset_id = "root"\n'
            f'target_dataset_id = "part_{i}"\n[tasks.config]\n'
            f'sql = "SELECT COUNT(*) AS n, SUM(value) AS total FROM {{{{ source_dataset }}}} '
            f'WHERE id % {PARTS} = {i}"\n'
        )
    deps = ", ".join(f'"part_{i}"' for i in range(PARTS))
    parts.append(
        f'[[tasks]]\nid = "join"\ntype = "transformation"\ndependencies = [{deps}]\n'
        f"[tasks.config]\nsql = \"SELECT COUNT(*) AS parts FROM pg_tables WHERE schemaname = '{ns}'\"\n"
    )
    return "\n".join(parts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def airflow_env(home: Path) -> dict[str, str]:
    port = _free_port()
    env = {
        **child_env(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "QARION_ETL_AIRFLOW_CACHE": str(home / "parse-cache"),
        "PATH": f"{AIRFLOW.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("QARION_ETL_CONFIG", None)
    return env


def airflow(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(AIRFLOW), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"airflow {' '.join(args)} failed:\n{(done.stdout + done.stderr)[-3000:]}"
        )
    return done.stdout


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(1)
    raise RuntimeError(f"timed out waiting for {what}")


DURATIONS = """
import json, sys
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session
with create_session() as s:
    rows = s.query(TaskInstance).filter_by(dag_id=sys.argv[1], run_id=sys.argv[2]).all()
    print(json.dumps([[t.state, (t.end_date - t.start_date).total_seconds() if t.end_date and t.start_date else None] for t in rows]))
"""


def run_state(env: dict[str, str], dag: str, run_id: str) -> list[list[object]]:
    done = subprocess.run(
        [sys.executable, "-c", DURATIONS, dag, run_id], env=env, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else []


def fan_out(work: Path) -> None:
    header(f"Airflow, LocalExecutor: {PARTS + 2} task instances of a fan-out on PostgreSQL")
    home = work / "airflow"
    (home / "dags").mkdir(parents=True)
    env = airflow_env(home)
    airflow(env, "db", "migrate", timeout=600)
    ns_ours, ns_hand = f"bench_ours_{os.getpid()}", f"bench_hand_{os.getpid()}"
    project = work / "project"
    (project / "flows").mkdir(parents=True)
    (project / "qarion-etl.toml").write_text(
        f'[engine]\nurl = "{PG_URL}"\n[metadata]\nurl = "{PG_URL}"\nnamespace = "{ns_ours}_meta"\n'
    )
    (project / "flows" / "fan_ours.toml").write_text(qarion_flow(ns_ours))
    (home / "dags" / "ours.py").write_text(
        f"from qarion_etl.airflow import dags_from_project\ndags_from_project({str(project)!r})\n"
    )
    dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    (home / "dags" / "hand.py").write_text(HAND_DAG.format(dsn=dsn, ns=ns_hand, parts=PARTS))
    a = shlex.quote(str(AIRFLOW))
    log = (home / "services.log").open("w")
    services = subprocess.Popen(
        ["bash", "-c", f"{a} api-server & {a} dag-processor & {a} scheduler --skip-serve-logs & wait"],
        env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        health = f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}/api/v2/monitor/health"

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(health, timeout=2) as r:
                    doc = json.load(r)
                return all(
                    doc.get(p, {}).get("status") == "healthy"
                    for p in ("scheduler", "dag_processor")
                )
            except OSError:
                return False

        wait_for(healthy, 240, "the Airflow services")
        for dag in ("fan_ours", "fan_hand"):
            wait_for(
                lambda d=dag: d in airflow(env, "dags", "list", "-o", "json"), 180, f"{dag} parsed"
            )
            airflow(env, "dags", "unpause", dag)
        durations: dict[str, list[float]] = {"fan_ours": [], "fan_hand": []}
        for n in range(RUNS):  # in turn, so both see the same machine
            for dag in ("fan_ours", "fan_hand"):
                run_id = f"bench_{n}"
                airflow(env, "dags", "trigger", dag, "--run-id", run_id)

                def finished(d: str = dag, r: str = run_id) -> list[list[object]] | None:
                    rows = run_state(env, d, r)
                    done = len(rows) == PARTS + 2 and all(
                        s in ("success", "failed") for s, _ in rows
                    )
                    return rows if done else None

                rows = wait_for(finished, 600, f"{dag} {run_id}")
                if any(s != "success" for s, _ in rows):
                    raise RuntimeError(f"{dag} {run_id}: not every task succeeded: {rows}")
                durations[dag] += [float(d) for _, d in rows if d is not None]
        ours, hand = (
            statistics.median(durations["fan_ours"]),
            statistics.median(durations["fan_hand"]),
        )
        print(ratio_line("median task duration (Airflow's start to end)", ours, hand, 1.3))
        print(f"{'':<48} {len(durations['fan_ours'])} task instances each, {RUNS} runs, in turn")
    finally:
        os.killpg(services.pid, signal.SIGTERM)
        try:
            services.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(services.pid, signal.SIGKILL)
            services.wait()
        log.close()
        _drop(ns_ours, ns_hand)


def _drop(*schemas: str) -> None:
    try:
        import psycopg

        dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn:
            for ns in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{ns}" CASCADE')
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE %s", (f"{schemas[0]}_meta%",)
            ).fetchall():
                conn.execute(f'DROP TABLE IF EXISTS "{row[0]}" CASCADE')
    except Exception as exc:  # the figures are printed already
        print(f"(could not clean up the benchmark schemas: {exc})")


def main() -> None:
    if not AIRFLOW.exists():
        print("\n== Airflow executor == skipped: Apache Airflow is not installed")
        return
    work = Path(tempfile.mkdtemp(prefix="qarion-bench-executor-"))
    try:
        fan_out(work)
    finally:
        if os.environ.get("BENCH_KEEP"):  # the task logs, to see where a task's time goes
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
