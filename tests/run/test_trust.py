"""A run tells the truth whatever goes wrong (design §11), case by case.

- a fault anywhere records the run ``failed``, and its exit code, ``--json``, results file
  and history agree;
- tasks that create one new schema at once (threads, processes) do not collide;
- a retry (or a resume) leaves no value of an earlier try, whatever batch it carries;
- a try that a newer try superseded cannot publish a dataset or push a value (fencing);
- each try is in the history the moment it ends, even when the process dies later.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from qarion_etl.db_service import DatabaseService
from qarion_etl.project import Project
from qarion_etl.run import tries
from qarion_etl.run.history import TaskInstanceRecord
from qarion_etl.run.logs import RunLog
from qarion_etl.run.reporting import NullReporter
from qarion_etl.runner import FlowRunner, RunOptions
from tests.conftest import PG_URL, require_service, unique_name
from tests.helpers import cli, make_project, write_flow
from tests.reliability import procs
from tests.runkit import drop_namespace, query, results_file, table

TWO_LOADS = """\
id = "two"
namespace = "{ns}"
[input]
primary_key = ["id"]
columns = [
  {{name = "id", schema_type = "integer", required = true}},
  {{name = "value", schema_type = "float", required = true}},
]
[[tasks]]
id = "a"
type = "ingestion"
target_dataset_id = "a"
[tasks.config]
path = "data/orders.csv"
format = "csv"
[[tasks]]
id = "b"
type = "ingestion"
target_dataset_id = "b"
[tasks.config]
path = "data/orders.csv"
format = "csv"
"""

ONE_TASK = """\
id = "one"
namespace = "{ns}"
[[tasks]]
id = "t"
type = "transformation"
target_dataset_id = "out"
retries = {retries}
retry_delay_seconds = {delay}
retry_on = "any"
[tasks.config]
sql = "{sql}"
"""


# --- 1. a fault records the run failed ----------------------------------------------------
def test_a_fault_inside_a_try_fails_the_task_and_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry wait raised (an OverflowError once did): the task is failed, not lost."""
    project = make_project(tmp_path / "p")
    write_flow(project, "one", ONE_TASK.format(ns="one", retries=1, delay=0, sql="SELECT nope"))

    def boom(spec: Any, attempt: int) -> float:
        raise OverflowError("timestamp out of range for platform time_t")

    monkeypatch.setattr(tries, "retry_delay", boom)
    done = cli("run", "one", "--run-id", "f1", "--json", project=project)
    assert done.exit_code == 1, done.output
    doc = json.loads(done.stdout)
    assert doc["status"] == "failed" and doc["tasks"][0]["status"] == "failed"
    assert "internal error: OverflowError" in doc["tasks"][0]["error"]
    assert results_file(project, "f1")["status"] == "failed"
    listed = json.loads(cli("runs", "list", "--json", project=project).stdout)
    assert [r["status"] for r in listed] == ["failed"]
    assert "failed" in cli("runs", "list", project=project).stdout


def test_a_fault_outside_the_tasks_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p")

    def broken(self: RunLog, outcome: Any, index: int, total: int) -> None:
        raise RuntimeError("a reporter broke")

    monkeypatch.setattr(RunLog, "task_finished", broken)
    done = cli("run", "data_pipeline", "--run-id", "f2", "--json", project=project)
    assert done.exit_code == 1
    assert "internal error: RuntimeError: a reporter broke" in done.stderr
    assert json.loads(done.stdout)["status"] == "failed"  # --json: one document, the run's
    assert results_file(project, "f2")["status"] == "failed"
    shown = json.loads(cli("runs", "show", "f2", "--json", project=project).stdout)
    assert shown["status"] == "failed"
    assert "running" not in {t["status"] for t in shown["tasks"]}


# --- 2. one new schema, created at once --------------------------------------------------
def test_first_runs_into_a_new_duckdb_schema_do_not_collide(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    write_flow(project, "two", TWO_LOADS.format(ns="two"))
    for i in range(20):
        (project / "warehouse.duckdb").unlink(missing_ok=True)
        done = cli("run", "two", "--max-workers", "2", project=project)
        assert done.exit_code == 0, (i, done.output)


@pytest.mark.postgres
def test_first_runs_into_a_new_postgres_schema_do_not_collide(tmp_path: Path) -> None:
    require_service("postgres")
    namespaces = [unique_name("race") for _ in range(10)]
    project = make_project(tmp_path / "p", engine_url=PG_URL)
    try:
        for ns in namespaces:
            write_flow(project, "two", TWO_LOADS.format(ns=ns))
            done = cli("run", "two", "--max-workers", "2", project=project)
            assert done.exit_code == 0, done.output
    finally:
        for ns in namespaces:
            drop_namespace(PG_URL, ns)


def _create(url: str, namespace: str, barrier: Any) -> None:  # in a child process
    db = DatabaseService(url)
    barrier.wait()
    threads = [threading.Thread(target=db.create_namespace, args=(namespace,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db.create_namespace(namespace)
    db.close()


@pytest.mark.postgres
def test_processes_and_threads_creating_one_schema(tmp_path: Path) -> None:
    require_service("postgres")
    ctx = multiprocessing.get_context("spawn")
    for _ in range(5):
        ns = unique_name("ns")
        barrier = ctx.Barrier(4)
        workers = [ctx.Process(target=_create, args=(PG_URL, ns, barrier)) for _ in range(4)]
        try:
            for w in workers:
                w.start()
            for w in workers:
                w.join(60)
                assert w.exitcode == 0
            found = query(PG_URL, f"SELECT COUNT(*) FROM pg_namespace WHERE nspname = '{ns}'")
            assert found == [(1,)]
        finally:
            drop_namespace(PG_URL, ns)


# --- 3. a retry and a resume keep nothing of an earlier try -------------------------------
BACKENDS = [
    pytest.param("database", id="database"),
    pytest.param("local_file", id="local_file"),
    pytest.param("s3", id="s3", marks=pytest.mark.s3),
]


def _backend_config(kind: str, request: pytest.FixtureRequest) -> str:
    if kind == "database":
        return ""
    if kind == "local_file":
        return '[xcom]\nbackend = "local_file"\nbackend_config = {base_path = "xc"}\n'
    endpoint = request.getfixturevalue("s3_env")
    bucket = request.getfixturevalue("s3_bucket")
    return (
        f'[xcom]\nbackend = "s3"\n[xcom.backend_config]\nbucket = "{bucket}"\n'
        f'endpoint_url = "{endpoint}"\nprefix = "{unique_name("p")}"\n'
    )


def _project(tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> Path:
    config = (
        f'[engine]\nurl = "duckdb:///{tmp_path / "p" / "w.duckdb"}"\n'
        f'[metadata]\nurl = "sqlite:///{tmp_path / "p" / ".qarion" / "m.db"}"\n'
    )
    return make_project(tmp_path / "p", config=config + _backend_config(kind, request))


def _task(project: Path, run_id: str, task: str, try_number: int) -> Any:
    with Project.load(project / "qarion-etl.toml") as p:
        return FlowRunner(p, NullReporter()).run(
            "data_pipeline",
            RunOptions(run_id=run_id, task=task, orchestrated=True, try_number=try_number),
        )


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_retry_clears_every_value_of_its_task_in_the_run(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    project = _project(tmp_path, kind, request)
    assert _task(project, "r1", "ingest_orders", 1).ok
    # Values of the task in this run from an earlier try, with and without a batch id.
    for extra in ((), ("--batch", "1"), ("--batch", "99")):
        pushed = cli("xcom", "push", "ingest_orders", '"stale"', "--key", f"k{len(extra)}{extra[-1:]}",
                     "--flow", "data_pipeline", "--run", "r1", *extra, project=project)  # fmt: skip
        assert pushed.exit_code == 0, pushed.output
    other = cli("xcom", "push", "ingest_orders", "1", "--key", "keep", "--flow", "data_pipeline",
                "--run", "r0", project=project)  # fmt: skip
    assert other.exit_code == 0
    assert _task(project, "r1", "ingest_orders", 2).ok
    listed = json.loads(
        cli("xcom", "list", "--flow", "data_pipeline", "--json", project=project).stdout
    )
    in_run = {e["key"] for e in listed if e["dag_run_id"] == "r1"}
    assert "stale" not in json.dumps([e for e in listed if e["dag_run_id"] == "r1"])
    assert not any(k.startswith("k") for k in in_run) and "return_value" in in_run
    assert {e["key"] for e in listed if e["dag_run_id"] == "r0"} == {"keep"}


# --- 8. fencing -----------------------------------------------------------------------------
def _supersede(project: Path, run_id: str, task: str, try_number: int) -> None:
    """What an orchestrator does when it starts a newer try: record it running."""
    with Project.load(project / "qarion-etl.toml") as p:
        store = p.run_store()
        ti = next(t for t in store.task_instances("data_pipeline", run_id) if t.task_id == task)
        store.record_task(
            TaskInstanceRecord(run_id, task, "data_pipeline", ti.batch_id, "running",
                               try_number, None, None, None, None, [])
        )  # fmt: skip


@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("moment", ["publish", "push"])
def test_an_orphaned_try_cannot_write_after_its_retry_started(
    tmp_path: Path,
    kind: str,
    moment: str,
    request: pytest.FixtureRequest,
) -> None:
    project = _project(tmp_path, kind, request)
    assert _task(project, "r1", "ingest_orders", 1).ok
    landing = table(f"duckdb:///{project / 'w.duckdb'}", "production", "orders_landing")
    before = query(f"duckdb:///{project / 'w.duckdb'}", f"SELECT COUNT(*) FROM {landing}")

    # Try 1 of calculate_stats is "orphaned": try 2 starts while it works.
    from qarion_etl.tasks.base import TaskContext

    original = TaskContext.before_publish if moment == "publish" else tries.TaskTries._push

    def late(self: Any, *args: Any) -> Any:
        _supersede(project, "r1", "calculate_stats", 2)
        return original(self, *args)

    with pytest.MonkeyPatch.context() as patch:  # not the fixture: it holds the S3 settings
        if moment == "publish":
            patch.setattr(TaskContext, "before_publish", late)
        else:
            patch.setattr(tries.TaskTries, "_push", late)
        result = _task(project, "r1", "calculate_stats", 1)
    outcome = result.tasks[0]
    assert outcome.status == "failed" and "superseded by try 2" in (outcome.error or "")
    assert outcome.not_retried
    url = f"duckdb:///{project / 'w.duckdb'}"
    assert query(url, f"SELECT COUNT(*) FROM {landing}") == before
    stats = table(url, "production", "orders_stats")
    exists = query(url, "SELECT COUNT(*) FROM duckdb_tables() WHERE table_name = 'orders_stats'")
    assert exists == [(1 if moment == "push" else 0,)], stats  # push: the publish came first
    listed = json.loads(cli("xcom", "list", "--flow", "data_pipeline", "--task", "calculate_stats",
                            "--json", project=project).stdout)  # fmt: skip
    assert listed == []
    shown = json.loads(cli("runs", "show", "r1", "--json", project=project).stdout)
    ti = next(t for t in shown["tasks"] if t["task_id"] == "calculate_stats")
    assert ti["tries"] == 2 and ti["status"] == "running"  # try 1's end did not overwrite it
    assert [a["try_number"] for a in ti["attempts"]][:1] == [1]
    assert "superseded" in (ti["attempts"][0]["error"] or "")


# --- 10. a try is recorded when it ends ----------------------------------------------------
def test_each_try_is_kept_when_the_process_dies_during_retries(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    write_flow(project, "one", ONE_TASK.format(ns="one", retries=5, delay=30, sql="SELECT nope"))
    proc = procs.start(project, "run", "one", "--run-id", "k1")
    metadata = f"sqlite:///{project / '.qarion' / 'metadata.db'}"

    def first_try_kept() -> bool:
        try:
            rows = query(metadata, "SELECT try_number FROM qarion_task_tries")
        except Exception:
            return False
        return rows == [(1,)]

    try:
        procs.wait_for(first_try_kept, proc, timeout=60, what="try 1 in the history")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    shown = json.loads(cli("runs", "show", "k1", "--json", project=project).stdout)
    attempts = shown["tasks"][0]["attempts"]
    assert attempts[0]["try_number"] == 1 and attempts[0]["status"] == "failed"
    assert "nope" in attempts[0]["error"]
    assert shown["status"] == "abandoned"


def test_every_try_of_a_retried_task_is_in_the_results_and_history(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    write_flow(project, "one", ONE_TASK.format(ns="one", retries=2, delay=0, sql="SELECT nope"))
    done = cli("run", "one", "--run-id", "t1", project=project)
    assert done.exit_code == 1
    saved = results_file(project, "t1")["tasks"][0]["attempts"]
    shown = json.loads(cli("runs", "show", "t1", "--json", project=project).stdout)
    assert [a["try_number"] for a in saved] == [1, 2, 3]
    assert shown["tasks"][0]["attempts"] == saved
    resumed = cli("run", "one", "--resume", "t1", project=project)
    assert resumed.exit_code == 1
    shown = json.loads(cli("runs", "show", "t1", "--json", project=project).stdout)
    assert [a["try_number"] for a in shown["tasks"][0]["attempts"]] == [1, 2, 3, 4, 5, 6]
