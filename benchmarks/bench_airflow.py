"""Flows on Apache Airflow beside DAGs written by hand for Airflow (needs ``.[airflow]``).

1. Per-task overhead: a flow of 50 trivial SQL tasks (a chain, on a DuckDB warehouse)
   under ``airflow dags test``, beside the same DAG written by hand with ``@task``
   functions that run the same SQL through ``duckdb`` and return the row. Both are whole
   ``airflow dags test`` processes in one Airflow home; the ratio is of their wall times,
   and the line below it gives the difference per task. Target: 1.3x or less.
2. DAG-file parse time: a project of 100 flows of 50 tasks, read by
   ``dags_from_project`` into Airflow's ``DagBag`` (what the DAG processor does), beside
   a hand-written DAG file declaring the same 100 DAGs of 5,000 ``EmptyOperator``s with the
   same dependencies. Both are timed in one process after Airflow is imported, alternating,
   median of 5; the first (cold) parse, which validates every flow and fills the parse
   cache, is printed on its own. Target: 1.5x or less, and under 1 s.

Run: ``python -m benchmarks airflow``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import child_env, header, ratio_line

AIRFLOW = Path(sys.executable).with_name("airflow")
TASKS = 50
FLOWS = 100

CONFIG = """\
[project]
name = "bench"
flows_dir = "flows"

[engine]
url = "duckdb:///{root}/warehouse.duckdb"

[metadata]
url = "sqlite:///{root}/.qarion/metadata.db"
namespace = "bench"

[xcom]
enabled = true
backend = "database"
"""

HAND_DAG = """
import duckdb
from airflow.sdk import dag, task

WAREHOUSE = {warehouse!r}


def make(i):
    @task(task_id=f"t{{i}}")
    def run():
        con = duckdb.connect(WAREHOUSE)
        try:
            row = con.execute(f"SELECT {{i}} AS x").fetchone()
        finally:
            con.close()
        return {{"x": row[0]}}

    return run


@dag(dag_id="hand_chain", schedule=None)
def hand_chain():
    previous = None
    for i in range({tasks}):
        current = make(i)()
        if previous is not None:
            previous >> current
        previous = current


hand_chain()
"""

EMPTY_DAGS = """
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

for f in range({flows}):
    with DAG(dag_id=f"flow_{{f}}", schedule=None, tags=["bench"]):
        previous = None
        for i in range({tasks}):
            current = EmptyOperator(task_id=f"t{{i}}")
            if previous is not None:
                previous >> current
            previous = current
"""


def chain_flow(flow_id: str, tasks: int) -> str:
    parts = [f'id = "{flow_id}"\nnamespace = "bench"\n']
    for i in range(tasks):
        deps = f'dependencies = ["t{i - 1}"]\n' if i else ""
        parts.append(
            f'[[tasks]]\nid = "t{i}"\ntype = "transformation"\n{deps}'
            f'[tasks.config]\nsql = "SELECT {i} AS x"\n'
        )
    return "\n".join(parts)


def make_project(root: Path, flows: int, tasks: int, prefix: str) -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "qarion-etl.toml").write_text(CONFIG.format(root=root))
    for f in range(flows):
        name = f"{prefix}{f}" if flows > 1 else prefix
        (root / "flows" / f"{name}.toml").write_text(chain_flow(name, tasks))
    return root


def airflow_env(home: Path) -> dict[str, str]:
    env = {
        **child_env(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "QARION_ETL_AIRFLOW_CACHE": str(home / "parse-cache"),
        "PATH": f"{AIRFLOW.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("QARION_ETL_CONFIG", None)
    return env


def dags_test(env: dict[str, str], dag_id: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [str(AIRFLOW), "dags", "test", dag_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or "state=success" not in (done.stdout + done.stderr).replace(
        "state=DagRunState.SUCCESS", "state=success"
    ):
        tail = (done.stdout + done.stderr)[-3000:]
        raise RuntimeError(f"airflow dags test {dag_id} did not succeed:\n{tail}")
    return elapsed


def per_task_overhead(work: Path) -> None:
    header(f"Airflow: a {TASKS}-task flow under `airflow dags test` beside @task + duckdb")
    home = work / "airflow"
    (home / "dags").mkdir(parents=True)
    env = airflow_env(home)
    subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, check=True, capture_output=True)
    project = make_project(work / "chain", 1, TASKS, "chain")
    (home / "dags" / "ours.py").write_text(
        f"from qarion_etl.airflow import dags_from_project\ndags_from_project({str(project)!r})\n"
    )
    (home / "dags" / "hand.py").write_text(
        HAND_DAG.format(warehouse=str(work / "hand.duckdb"), tasks=TASKS)
    )
    ours, hand = [], []
    for _ in range(3):  # alternating, so both see the same machine
        ours.append(dags_test(env, "chain"))
        hand.append(dags_test(env, "hand_chain"))
    o, h = sorted(ours)[1], sorted(hand)[1]
    print(ratio_line(f"dags test, {TASKS} tasks (median of 3)", o, h, 1.3))
    print(f"{'':<48} difference per task {(o - h) / TASKS * 1000:6.1f} ms")


PARSE = """
import json, statistics, sys, time
from airflow.dag_processing.dagbag import DagBag

def parse(path):
    start = time.perf_counter()
    bag = DagBag(path, collect_dags=False)
    bag.collect_dags(path, only_if_updated=False, safe_mode=False)
    elapsed = time.perf_counter() - start
    assert not bag.import_errors, bag.import_errors
    assert len(bag.dags) == {flows} and sum(len(d.tasks) for d in bag.dags.values()) == {total}
    return elapsed

ours, hand = sys.argv[1], sys.argv[2]
cold = parse(ours)
times = {{"ours": [], "hand": []}}
for _ in range(5):
    times["ours"].append(parse(ours))
    times["hand"].append(parse(hand))
print(json.dumps({{"cold": cold, **{{k: statistics.median(v) for k, v in times.items()}}}}))
"""


def parse_time(work: Path) -> None:
    header(f"Airflow: parsing {FLOWS} flows x {TASKS} tasks beside {FLOWS * TASKS} EmptyOperators")
    home = work / "parse-home"
    (home / "dags").mkdir(parents=True)
    env = airflow_env(home)
    project = make_project(work / "many", FLOWS, TASKS, "flow_")
    ours = work / "ours_dags.py"
    ours.write_text(
        f"from qarion_etl.airflow import dags_from_project\ndags_from_project({str(project)!r})\n"
    )
    hand = work / "hand_dags.py"
    hand.write_text(EMPTY_DAGS.format(flows=FLOWS, tasks=TASKS))
    code = PARSE.format(flows=FLOWS, total=FLOWS * TASKS)
    done = subprocess.run(
        [sys.executable, "-c", code, str(ours), str(hand)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"parse benchmark failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(ratio_line("DagBag of the DAG file (median of 5)", figures["ours"], figures["hand"], 1.5))
    verdict = "met" if figures["ours"] < 1.0 else "MISSED"
    print(f"{'':<48} ours {figures['ours']:9.3f} s  target < 1 s: {verdict}")
    print(f"{'first parse (validates, fills the cache)':<48} ours {figures['cold']:9.3f} s")


def main() -> None:
    if not AIRFLOW.exists():
        print(
            "\n== Airflow == skipped: Apache Airflow is not installed (pip install -e '.[airflow]')"
        )
        return
    work = Path(tempfile.mkdtemp(prefix="qarion-bench-airflow-"))
    try:
        per_task_overhead(work)
        parse_time(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
