"""Each run keeps its plan (tasks, edges, types, config and settings as run) in the
metadata database, on every engine; the first plan of a run stays.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from qarion_etl.db_service import DatabaseService
from qarion_etl.project import Project
from qarion_etl.run.history import RunStore
from qarion_etl.run.plans import plan_of
from tests.conftest import DATABASES, database_url, unique_name
from tests.helpers import cli, make_project, write_flow

FLOW = """\
id = "plan"
namespace = "plan"

[[tasks]]
id = "a"
type = "transformation"
target_dataset_id = "x"
retries = 2
[tasks.config]
sql = "SELECT 1 AS v -- {secret}"

[[tasks]]
id = "b"
type = "transformation"
source_dataset_id = "x"
dependencies = ["a"]
timeout_seconds = 30
[tasks.config]
sql = "SELECT * FROM {{{{ source_dataset }}}}"

[[tasks]]
id = "c"
type = "transformation"
dependencies = ["a"]
[tasks.config]
sql = "SELECT 2"
"""


def _plan(tmp_path: Path, secret: str = "plain") -> dict:  # type: ignore[type-arg]
    project = make_project(tmp_path / "p", example=False)
    write_flow(project, "plan", FLOW.format(secret=secret))
    with Project.load(project / "qarion-etl.toml") as p:
        flow, graph = p.validate("plan")
        return plan_of(flow, graph, lambda text: text.replace(secret, "***"))


@pytest.mark.parametrize("kind", DATABASES)
def test_a_plan_is_kept_once_per_run_on_every_metadata_engine(tmp_path: Path, kind: str) -> None:
    db = DatabaseService(database_url(kind, tmp_path))
    store = RunStore(db, unique_name("plans"))
    try:
        plan = _plan(tmp_path)
        big = {**plan, "tasks": plan["tasks"] * 400}  # about 200 KB: beyond MariaDB's TEXT
        assert store.run_plan("plan", "r1") is None
        assert store.save_plan("plan", "r1", plan) is True
        assert store.save_plan("plan", "r2", big) is True
        changed = {**plan, "tasks": plan["tasks"][:1]}
        assert store.save_plan("plan", "r1", changed) is False  # the first plan stays
        assert store.run_plan("plan", "r1") == plan
        assert store.run_plan("plan", "r2") == big
        assert store.run_plan("other", "r1") is None
    finally:
        store.drop_tables()
        db.close()


def test_the_plan_holds_tasks_edges_types_config_and_settings(tmp_path: Path) -> None:
    plan = _plan(tmp_path, secret="s3cr3t-value")
    assert [t["id"] for t in plan["tasks"]] == ["a", "b", "c"]
    a = plan["tasks"][0]
    assert a["type"] == "transformation" and a["settings"]["retries"] == 2
    assert a["config"]["sql"] == "SELECT 1 AS v -- ***"
    assert plan["tasks"][1]["settings"]["timeout_seconds"] == 30
    # b depends on a twice (listed, and by reading x): one edge, the listed kind
    assert sorted(map(tuple, plan["edges"])) == [("a", "b", "dependency"), ("a", "c", "dependency")]
    assert plan["tasks"][1]["source_dataset_id"] == "x" and plan["path"].endswith("plan.toml")


def test_concurrent_writers_of_one_run_leave_one_plan(tmp_path: Path) -> None:
    db = DatabaseService(database_url("sqlite", tmp_path))
    store = RunStore(db, "qarion")
    store.create_tables()
    plan = _plan(tmp_path)
    stored: list[bool] = []
    barrier = threading.Barrier(6)

    def write(i: int) -> None:
        barrier.wait()
        stored.append(RunStore(db, "qarion").save_plan("plan", "r", {**plan, "writer": i}))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stored.count(True) == 1
    kept = store.run_plan("plan", "r")
    assert kept is not None and kept["writer"] in range(6)
    db.close()


def test_a_run_records_its_plan_when_it_starts(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", example=False)
    write_flow(project, "plan", FLOW.format(secret="x"))
    done = cli("run", "plan", "--run-id", "r1", project=project)
    assert done.exit_code == 0, done.output
    write_flow(project, "plan", FLOW.format(secret="x").replace("retries = 2", "retries = 5"))
    again = cli("run", "plan", "--run-id", "r2", project=project)
    assert again.exit_code == 0, again.output
    with Project.load(project / "qarion-etl.toml") as p:
        store = p.run_store()
        first, second = store.run_plan("plan", "r1"), store.run_plan("plan", "r2")
    assert first is not None and second is not None
    assert first["tasks"][0]["settings"]["retries"] == 2
    assert second["tasks"][0]["settings"]["retries"] == 5
