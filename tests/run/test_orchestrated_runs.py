"""Runs driven by an orchestrator: one task per process, all joining one run.

This is what Airflow does with a DAG run: its first tasks start at the same moment on
different workers, each running one task with ``RunOptions(run_id=…, task=…,
orchestrated=True)``. Whichever process comes first records the run; the others join it,
so the run has one record and one batch id, and its status is settled from its task
instances as they finish.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from qarion_etl.db_service import DatabaseService
from qarion_etl.project import Project
from qarion_etl.run.history import RunStore
from qarion_etl.run.reporting import NullReporter
from qarion_etl.runner import FlowRunner, RunOptions
from tests.conftest import unique_name
from tests.runkit import make_project, write_flow

WIDTH = 6


def _flow(ns: str) -> str:
    tasks = "".join(
        f'\n[[tasks]]\nid = "t{i}"\ntype = "transformation"\n[tasks.config]\nsql = "SELECT {i} AS x"\n'
        for i in range(WIDTH)
    )
    return f'id = "wide"\nnamespace = "{ns}"\n{tasks}'


def _one_task(
    config: str, run_id: str, task: str, barrier: Any, out: Any
) -> None:  # in a child process
    project = Project.load(Path(config))
    barrier.wait()
    result = FlowRunner(project, NullReporter()).run(
        project.config.root / "flows" / "wide.toml",
        RunOptions(run_id=run_id, task=task, orchestrated=True),
    )
    out.put((task, result.batch_id, str(result.tasks[0].status)))
    project.close()


def test_tasks_starting_at_once_in_many_processes_share_one_run_and_batch(
    tmp_path: Path, metadata_url: str
) -> None:
    ns = unique_name("orch")
    engine = f"sqlite:///{tmp_path / 'w.db'}" if metadata_url.startswith("sqlite") else metadata_url
    project = make_project(
        tmp_path / "p", engine_url=engine, metadata_url=metadata_url, namespace=ns
    )
    write_flow(project, "wide", _flow(ns))
    config = str(project / "qarion-etl.toml")
    ctx = multiprocessing.get_context("spawn")
    try:
        for round_ in range(3):
            run_id = f"r{round_}"
            barrier, out = ctx.Barrier(WIDTH), ctx.Queue()
            procs = [
                ctx.Process(target=_one_task, args=(config, run_id, f"t{i}", barrier, out))
                for i in range(WIDTH)
            ]
            for p in procs:
                p.start()
            for p in procs:
                p.join(120)
                assert p.exitcode == 0
            done = sorted(out.get(timeout=5) for _ in range(WIDTH))
            assert [d[2] for d in done] == ["success"] * WIDTH
            assert len({d[1] for d in done}) == 1, done  # one batch id for the run

            p = Project.load(project / "qarion-etl.toml")
            try:
                store = p.run_store()
                runs = [
                    r for r in store.list_runs() if r.flow_id == "wide" and r.dag_run_id == run_id
                ]
                assert len(runs) == 1 and runs[0].batch_id == done[0][1]
                assert str(runs[0].status) == "success" and runs[0].ended_at
                tis = store.task_instances("wide", run_id)
                assert sorted(t.task_id for t in tis) == [f"t{i}" for i in range(WIDTH)]
                assert {t.batch_id for t in tis} == {runs[0].batch_id}
            finally:
                p.close()
        batches = sorted(r.batch_id for r in _runs(project))
        assert len(set(batches)) == 3  # three DAG runs, three batches
        assert batches == [1, 2, 3]  # consecutive: a process that lost the race drew none
    finally:
        with DatabaseService(metadata_url) as db:
            RunStore(db, ns).drop_tables()
            with db.begin() as conn:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {db.quote(ns + '_xcom')}")


def _runs(project: Path) -> list[Any]:
    p = Project.load(project / "qarion-etl.toml")
    try:
        return [r for r in p.run_store().list_runs() if r.flow_id == "wide"]
    finally:
        p.close()
