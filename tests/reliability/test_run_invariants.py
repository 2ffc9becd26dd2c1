"""What every run must hold, whatever failed, retried, was interrupted or resumed (design §11).

Hypothesis draws a flow (a random DAG of transformations, each writing a table of its own
size), then a sequence of invocations: a run, then resumes. Each invocation gets a random
plan of faults per task and try, injected where the task does its work: fail before
writing, fail after publishing, Ctrl-C, a store outage while pushing the result. After
each invocation the run must be consistent:

1. its exit code, its recorded status, its results file and its task statuses agree;
2. every task that succeeded has exactly the values of its own last try, and a task that
   did not succeed has no value in the run;
3. every dataset is either the old one or complete, and no staging table is left;
4. (orchestrated) a try superseded by a newer one left nothing behind.

Runs on the database (SQLite), local-file and S3 (moto's server) XCom stores. The budget is
``QARION_PROPERTY_EXAMPLES`` examples per store (20 by default).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qarion_etl.errors import StoreUnavailable
from qarion_etl.run import tries
from qarion_etl.tasks import get_task_class
from qarion_etl.tasks.base import BaseTask, TaskContext
from qarion_etl.xcom import XComService
from tests.conftest import unique_name
from tests.helpers import cli, make_project, write_flow
from tests.runkit import query, results_file

BUDGET = int(os.environ.get("QARION_PROPERTY_EXAMPLES", "20"))
PROPERTY = settings(
    max_examples=BUDGET,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FAULTS = ["ok", "ok", "ok", "fail", "fail_after_publish", "interrupt", "push_outage"]
STORES = [
    pytest.param("database", id="database"),
    pytest.param("local_file", id="local_file"),
    pytest.param("s3", id="s3", marks=pytest.mark.s3),
]


@st.composite
def flows(draw: st.DrawFn) -> dict[str, Any]:
    """A DAG of 2–5 transformations: ``t{i}`` may depend on any earlier task."""
    n = draw(st.integers(2, 5))
    tasks = []
    for i in range(n):
        deps = draw(st.lists(st.sampled_from(range(i)), unique=True, max_size=2)) if i else []
        tasks.append(
            {
                "id": f"t{i}",
                "deps": [f"t{d}" for d in deps],
                "rows": draw(st.integers(1, 40)),
                "retries": draw(st.integers(0, 2)),
            }
        )
    return {"tasks": tasks}


def flow_toml(flow: dict[str, Any]) -> str:
    parts = ['id = "prop"\nnamespace = "prop"\n']
    for i, t in enumerate(flow["tasks"]):
        deps = ", ".join(f'"{d}"' for d in t["deps"])
        parts.append(
            f'[[tasks]]\nid = "{t["id"]}"\ntype = "transformation"\n'
            f'target_dataset_id = "out_{i}"\ndependencies = [{deps}]\n'
            f'retries = {t["retries"]}\nretry_delay_seconds = 0\nretry_on = "any"\n'
            f'[tasks.config]\nsql = "SELECT range AS n, {i} AS task_no, '
            f"'{{{{ dag_run_id }}}}' AS run FROM range({t['rows']})\"\n"
        )
    return "\n".join(parts)


class Faults:
    """The faults of one invocation: for each task, one fault per execution of its work."""

    def __init__(self, plan: dict[str, list[str]]) -> None:
        self.plan = {t: list(f) for t, f in plan.items()}
        self.outage: set[str] = set()  # tasks whose next push finds the store down

    def next(self, task_id: str) -> str:
        queue = self.plan.get(task_id) or []
        return queue.pop(0) if queue else "ok"


def faulty_task_class(faults: Faults) -> type[BaseTask]:
    class Faulty(BaseTask):
        def execute(self, ctx: TaskContext) -> dict[str, Any]:
            fault = faults.next(self.spec.id)
            if fault == "fail":
                raise RuntimeError("injected: the work failed")
            if fault == "interrupt":
                raise KeyboardInterrupt
            result = get_task_class(self.spec.type)(self.spec).execute(ctx)
            if fault == "fail_after_publish":
                raise RuntimeError("injected: failed after the dataset was published")
            if fault == "push_outage":
                faults.outage.add(self.spec.id)
            return result

    return Faulty


@pytest.fixture
def store_config(request: pytest.FixtureRequest) -> Iterator[Any]:
    def config(kind: str) -> str:
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

    yield config


def invoke(project: Path, faults: Faults, *args: str) -> Any:
    """``qarion-etl run …`` in process, with ``faults`` injected."""
    original_push = XComService.push_many

    def push_many(self: XComService, items: Any) -> int:
        items = list(items)
        task = items[0]["task_id"] if items else None
        if task in faults.outage:
            faults.outage.discard(task)
            raise StoreUnavailable("injected: the XCom store is down")
        return original_push(self, items)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tries, "get_task_class", lambda name: faulty_task_class(faults))
        patch.setattr(XComService, "push_many", push_many)
        return cli("run", *args, "--json", project=project)


def check_invariants(project: Path, flow: dict[str, Any], run_id: str, exit_code: int) -> None:
    shown = json.loads(cli("runs", "show", run_id, "--json", project=project).stdout)
    status = shown["status"]
    tis = {t["task_id"]: t for t in shown["tasks"]}
    # 1. exit code, recorded status, results file and task statuses agree.
    # (3: a task's last try failed because a store was unreachable)
    assert {0: "success", 1: "failed", 3: "failed", 130: "interrupted"}[exit_code] == status
    assert results_file(project, run_id)["status"] == status
    statuses = {t["status"] for t in tis.values()}
    if status == "success":
        assert len(tis) == len(flow["tasks"]) and statuses == {"success"}, shown
    else:
        assert statuses - {"success"}, shown
        assert "running" not in statuses, shown
    # 2. each succeeded task has exactly its own last try's values; the others none.
    listed = json.loads(
        cli("xcom", "list", "--flow", "prop", "--run", run_id, "--json", project=project).stdout
    )
    by_task: dict[str, set[str]] = {}
    for entry in listed:
        by_task.setdefault(entry["task_id"], set()).add(entry["key"])
    for i, task in enumerate(flow["tasks"]):
        tid, ti = task["id"], tis.get(task["id"])
        if ti is None or ti["status"] != "success":
            assert tid not in by_task, (tid, ti and ti["status"], by_task.get(tid))
            continue
        assert by_task.get(tid) == set(ti["xcom_keys"]), (tid, by_task.get(tid), ti)
        got = cli("xcom", "get", tid, "--flow", "prop", "--run", run_id, project=project)
        value = json.loads(got.stdout)
        assert value["rows_written"] == task["rows"] and value["target_dataset"] == f"out_{i}"
        assert task["rows"] > 1 or value["task_no"] == i, value  # one row: its columns too
        assert value["batch_id"] == shown["batch_id"]
    # 3. every dataset is old or complete; no staging table is left.
    url = f"duckdb:///{project / 'w.duckdb'}"
    tables = {r[0] for r in query(url, "SELECT table_name FROM duckdb_tables()")}
    assert not [t for t in tables if t.startswith("_qtmp_")], tables
    for i, task in enumerate(flow["tasks"]):
        ti = tis.get(task["id"])
        if f"out_{i}" not in tables:
            assert ti is None or ti["status"] != "success", (task["id"], tables)
            continue
        rows = query(url, f'SELECT COUNT(*), MIN(task_no), MAX(task_no) FROM prop."out_{i}"')
        assert rows == [(task["rows"], i, i)], (task["id"], rows)


@pytest.mark.parametrize("kind", STORES)
@PROPERTY
@given(flow=flows(), data=st.data())
def test_runs_and_resumes_keep_the_invariants(
    tmp_path_factory: pytest.TempPathFactory,
    store_config: Any,
    kind: str,
    flow: dict[str, Any],
    data: st.DataObject,
) -> None:
    root = tmp_path_factory.mktemp("prop")
    config = (
        f'[engine]\nurl = "duckdb:///{root / "w.duckdb"}"\n'
        f'[metadata]\nurl = "sqlite:///{root / ".qarion" / "m.db"}"\n'
    )
    project = make_project(root, config=config + store_config(kind), example=False)
    write_flow(project, "prop", flow_toml(flow))
    task_ids = [t["id"] for t in flow["tasks"]]
    fault_plans = st.fixed_dictionaries(
        {t: st.lists(st.sampled_from(FAULTS), max_size=3) for t in task_ids}
    )
    run_id = "r1"
    args: tuple[str, ...] = ("prop", "--run-id", run_id, "--max-workers", "2")
    for _ in range(data.draw(st.integers(1, 3), label="invocations")):
        faults = Faults(data.draw(fault_plans, label="faults"))
        done = invoke(project, faults, *args)
        assert done.exit_code in (0, 1, 3, 130), done.output
        assert "internal error" not in done.stderr, done.stderr
        check_invariants(project, flow, run_id, done.exit_code)
        if done.exit_code == 0:
            break
        args = ("prop", "--resume", run_id, "--max-workers", "2")


def orchestrated_try(
    project: Path, faults: Faults, run_id: str, task: str, try_number: int, *, superseded: bool
) -> str:
    """One try of ``task`` as an Airflow worker runs it; returns the outcome's status.

    With ``superseded``, the orchestrator starts try ``try_number + 1`` while this one works
    (it lost the worker), just before this try would publish its dataset.
    """
    from qarion_etl.project import Project
    from qarion_etl.run.history import TaskInstanceRecord
    from qarion_etl.runner import FlowRunner, RunOptions

    original_push = XComService.push_many

    def push_many(self: XComService, items: Any) -> int:
        items = list(items)
        if items and items[0]["task_id"] in faults.outage:
            faults.outage.discard(items[0]["task_id"])
            raise StoreUnavailable("injected: the XCom store is down")
        return original_push(self, items)

    original_publish = TaskContext.before_publish

    def before_publish(ctx: TaskContext) -> None:
        with Project.load(project / "qarion-etl.toml") as p:
            record = TaskInstanceRecord(
                run_id, task, "prop", 1, "running", try_number + 1, None, None, None, None, []
            )
            p.run_store().record_task(record)
        original_publish(ctx)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tries, "get_task_class", lambda name: faulty_task_class(faults))
        patch.setattr(XComService, "push_many", push_many)
        if superseded:
            patch.setattr(TaskContext, "before_publish", before_publish)
        with Project.load(project / "qarion-etl.toml") as p:
            options = RunOptions(run_id=run_id, task=task, orchestrated=True, try_number=try_number)
            try:
                result = FlowRunner(p).run("prop", options)
            except KeyboardInterrupt:
                return "interrupted"
    outcome = result.tasks[0]
    if superseded:
        assert outcome.status == "failed" and "superseded" in (outcome.error or ""), outcome
    return str(outcome.status)


@pytest.mark.parametrize("kind", STORES)
@PROPERTY
@given(flow=flows(), data=st.data())
def test_orchestrated_tries_keep_the_invariants(
    tmp_path_factory: pytest.TempPathFactory,
    store_config: Any,
    kind: str,
    flow: dict[str, Any],
    data: st.DataObject,
) -> None:
    """One try per call, as Airflow runs them; a try may be superseded by the next one while
    it works (its worker was lost), and then must write nothing."""
    root = tmp_path_factory.mktemp("orch")
    config = (
        f'[engine]\nurl = "duckdb:///{root / "w.duckdb"}"\n'
        f'[metadata]\nurl = "sqlite:///{root / ".qarion" / "m.db"}"\n'
    )
    project = make_project(root, config=config + store_config(kind), example=False)
    write_flow(project, "prop", flow_toml(flow))
    run_id, done_ok = "scheduled__2026-12-06T00:00:00+00:00", set()
    for task in flow["tasks"]:
        if not set(task["deps"]) <= done_ok:
            continue  # upstream failed: the orchestrator never starts it
        try_number = 1
        while try_number <= task["retries"] + 1:
            fault = data.draw(st.sampled_from([*FAULTS, "superseded"]), label=task["id"])
            superseded = fault == "superseded"
            faults = Faults({task["id"]: ["ok" if superseded else fault]})
            status = orchestrated_try(
                project, faults, run_id, task["id"], try_number, superseded=superseded
            )
            if status == "success":
                done_ok.add(task["id"])
                break
            try_number += 1
    shown = json.loads(cli("runs", "show", run_id, "--json", project=project).stdout)
    tis = {t["task_id"]: t for t in shown["tasks"]}
    for i, task in enumerate(flow["tasks"]):
        ti = tis.get(task["id"])
        listed = json.loads(cli("xcom", "list", "--flow", "prop", "--run", run_id, "--task",
                                task["id"], "--json", project=project).stdout)  # fmt: skip
        if task["id"] not in done_ok:
            assert ti is None or ti["status"] != "success", ti
            assert listed == [], (task["id"], ti and ti["status"], listed)
            continue
        assert ti is not None and ti["status"] == "success", ti
        assert {e["key"] for e in listed} == set(ti["xcom_keys"]), (listed, ti)
        url = f"duckdb:///{project / 'w.duckdb'}"
        rows = query(url, f'SELECT COUNT(*), MIN(task_no), MAX(task_no) FROM prop."out_{i}"')
        assert rows == [(task["rows"], i, i)], (task["id"], rows)
    statuses = {t["status"] for t in tis.values()}
    expected = "success" if done_ok == {t["id"] for t in flow["tasks"]} else None
    if expected:
        assert shown["status"] == "success", shown
    elif "failed" in statuses or "interrupted" in statuses:
        assert shown["status"] == "failed", shown
