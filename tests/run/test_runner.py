"""The runner as a library: concurrency, batch ids, run records and cross-flow pulls."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from qarion_etl.db_service import DatabaseService
from qarion_etl.project import Project
from qarion_etl.run.history import RunStore
from qarion_etl.run.model import TaskOutcome
from qarion_etl.run.reporting import NullReporter
from qarion_etl.runner import FlowRunner, RunOptions
from tests.conftest import unique_name
from tests.runkit import drop_namespace, make_project, query, table, write_flow

FAN_OUT = """
id = "fan"
namespace = "{ns}"
[[tasks]]
id = "root"
type = "transformation"
target_dataset_id = "root_t"
[tasks.config]
sql = "SELECT 10 AS n"
{branches}
[[tasks]]
id = "join"
type = "transformation"
target_dataset_id = "joined"
dependencies = [{deps}]
[tasks.config]
sql = "SELECT {sums} AS total"
"""


def _fan_flow(ns: str, width: int = 6) -> str:
    branches = "".join(
        f'[[tasks]]\nid = "b{i}"\ntype = "transformation"\ntarget_dataset_id = "b{i}_t"\ndependencies = ["root"]\n'
        f"[tasks.config]\nsql = \"SELECT {{{{ xcom_pull('root', key='n') }}}} + {i} AS n\"\n"
        for i in range(width)
    )
    deps = ", ".join(f'"b{i}"' for i in range(width))
    sums = " + ".join(f"{{{{ xcom_pull('b{i}', key='n') }}}}" for i in range(width))
    return FAN_OUT.format(ns=ns, branches=branches, deps=deps, sums=sums)


class Recorder(NullReporter):
    def __init__(self) -> None:
        self.threads: set[str] = set()
        self.finished: list[str] = []

    def task_started(self, task_id: str, try_number: int) -> None:
        self.threads.add(threading.current_thread().name)

    def task_finished(self, outcome: TaskOutcome, index: int, total: int) -> None:
        self.finished.append(outcome.task_id)


@pytest.mark.parametrize("engine", ["duckdb", "sqlite"])
def test_independent_tasks_run_concurrently(tmp_path: Path, engine: str) -> None:
    url = f"{engine}:///{tmp_path / ('w.' + engine)}"
    project = make_project(tmp_path, engine_url=url, example=False)
    ns = unique_name("fan")
    write_flow(project, "fan", _fan_flow(ns))
    recorder = Recorder()
    with Project.load(project / "qarion-etl.toml") as p:
        result = FlowRunner(p, recorder).run("fan", RunOptions(max_workers=4))
    assert result.ok, [t.error for t in result.tasks]
    assert len(recorder.threads) > 1
    assert recorder.finished[0] == "root" and recorder.finished[-1] == "join"
    assert query(url, f"SELECT total FROM {table(url, ns, 'joined')}") == [
        (6 * 10 + sum(range(6)),)
    ]
    drop_namespace(url, ns)


def test_batch_ids_are_distinct_under_concurrency(tmp_path: Path, metadata_url: str) -> None:
    ns = unique_name("meta")
    db = DatabaseService(metadata_url)
    store = RunStore(db, ns)
    store.create_tables()
    got: list[int] = []
    lock = threading.Lock()

    def allocate() -> None:
        for _ in range(5):
            value = store.allocate_batch_id("flow_a")
            with lock:
                got.append(value)

    threads = [threading.Thread(target=allocate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sorted(got) == list(range(1, 21))
        assert store.allocate_batch_id("flow_a", requested=100) == 100
        assert store.allocate_batch_id("flow_a") == 101
        assert store.allocate_batch_id("flow_b") == 1
    finally:
        store.drop_tables()
        db.close()


def test_run_records_and_pull_from_another_flow(tmp_path: Path) -> None:
    project = make_project(tmp_path, example=False)
    write_flow(
        project,
        "producer",
        """
        id = "producer"
        namespace = "prod_ns"
        [[tasks]]
        id = "make"
        type = "transformation"
        [tasks.config]
        sql = "SELECT 'x''y' AS label, 3 AS n"
    """,
    )
    write_flow(
        project,
        "consumer",
        """
        id = "consumer"
        namespace = "cons_ns"
        [[tasks]]
        id = "use"
        type = "transformation"
        target_dataset_id = "used"
        [tasks.config]
        sql = "SELECT {{ xcom_pull('make', key='label', flow_id='producer') | sql_literal }} AS label, {{ ti.xcom_pull('make', key='n', flow_id='producer') }} AS n"
    """,
    )
    with Project.load(project / "qarion-etl.toml") as p:
        produced = FlowRunner(p).run("producer", RunOptions(run_id="p1"))
        consumed = FlowRunner(p).run("consumer", RunOptions(run_id="c1"))
        store = RunStore(p.metadata_db(), p.config.metadata.namespace)
        assert [r.dag_run_id for r in store.list_runs()] == ["c1", "p1"]
        assert store.get_run("p1").status == "success"  # type: ignore[union-attr]
        assert [ti.status for ti in store.task_instances("consumer", "c1")] == ["success"]
        url = p.config.engine.url
    assert produced.ok and consumed.ok, consumed.tasks[0].error
    assert query(url, f"SELECT label, n FROM {table(url, 'cons_ns', 'used')}") == [("x'y", 3)]


def test_render_without_any_store(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    with Project.load(project / "qarion-etl.toml") as p:
        sql = FlowRunner(p).render("data_pipeline", "calculate_stats")
        assert '"production"."orders_landing"' in sql
        sql = FlowRunner(p).render(
            "data_pipeline", "filter_high_value", given={("calculate_stats", "avg_value"): 2.5}
        )
        assert "value > 2.5" in sql
    assert not (project / ".qarion").exists()
