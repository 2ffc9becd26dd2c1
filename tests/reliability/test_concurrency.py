"""Concurrency: two runs of one flow at once, readers beside a writer, a busy DuckDB file."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import unique_name
from tests.helpers import make_project, write_flow
from tests.reliability import procs
from tests.runkit import drop_namespace, orders_mean

MANY_TASKS = 40


def _flow(namespace: str, slow_sql: str = "1") -> str:
    """The seed pipeline plus a slow statement in calculate_stats, in its own namespace."""
    return procs.seed_flow(
        "twice",
        namespace,
        f'"SELECT COUNT(*) * {slow_sql} AS total_count, AVG(value) AS avg_value, '
        '{{ batch_id }} AS seen_batch FROM {{ source_dataset }}"',
    )


def _project(tmp_path: Path, metadata_url: str, engine_url: str, namespace: str) -> Path:
    project = make_project(tmp_path, engine_url=engine_url, metadata_url=metadata_url)
    config = (
        (project / "qarion-etl.toml")
        .read_text()
        .replace('namespace = "qarion"', f'namespace = "{namespace}"')
    )
    (project / "qarion-etl.toml").write_text(config)
    write_flow(project, "twice", _flow(namespace))
    return project


def _drop_metadata(url: str, namespace: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for suffix in ("xcom", "runs", "task_instances", "batches"):
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{namespace}_{suffix}"')
    finally:
        engine.dispose()


@pytest.mark.parametrize("meta", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_runs_at_once_get_their_own_ids_and_xcoms(
    tmp_path: Path, meta: str, request: Any
) -> None:
    ns = unique_name("twice")
    if meta == "postgres":
        meta_url = request.getfixturevalue("pg_url")
        request.addfinalizer(lambda: _drop_metadata(meta_url, ns))
    else:
        meta_url = f"sqlite:///{tmp_path / 'meta.db'}"
    engine_url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    project = _project(tmp_path / "p", meta_url, engine_url, ns)
    request.addfinalizer(lambda: drop_namespace(engine_url, ns))

    procs_ = [procs.start(project, "run", "twice", "--json") for _ in range(3)]
    docs = []
    for p in procs_:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err
        docs.append(json.loads(out))
    run_ids = [d["dag_run_id"] for d in docs]
    batches = [d["batch_id"] for d in docs]
    assert len(set(run_ids)) == 3
    assert sorted(batches) == [1, 2, 3]

    from qarion_etl.project import Project

    mean, _ = orders_mean(project / "data" / "orders.csv")
    rows = len((project / "data" / "orders.csv").read_text().splitlines()) - 1
    with Project.load(project / "qarion-etl.toml") as p:
        svc = p.xcom_service("twice")
        for doc in docs:
            run_id, batch = doc["dag_run_id"], doc["batch_id"]
            stats = svc.pull("calculate_stats", dag_run_id=run_id)
            assert stats["batch_id"] == batch and stats["seen_batch"] == batch
            assert stats["avg_value"] == pytest.approx(mean)
            assert svc.pull("ingest_orders", key="rows_loaded", dag_run_id=run_id) == rows
            entries = svc.list(flow_id="twice", dag_run_id=run_id, limit=None)
            assert {e.batch_id for e in entries} == {batch}
            assert len(entries) == len({(e.task_id, e.key) for e in entries})


def test_xcom_readers_beside_a_writing_run(tmp_path: Path) -> None:
    """``xcom list``/``get`` answer while a run of many tasks pushes (SQLite metadata in WAL)."""
    ns = unique_name("busy")
    project = make_project(tmp_path, example=False)
    tasks = "".join(
        f"""
[[tasks]]
id = "t{i}"
type = "transformation"
[tasks.config]
sql = "SELECT {i} AS n, 'value {i}' AS label"
"""
        for i in range(MANY_TASKS)
    )
    write_flow(project, "busy", f'id = "busy"\nnamespace = "{ns}"\n{tasks}')
    assert procs.run(project, "xcom", "push", "seed", '{"ok": 1}', "--flow", "busy").returncode == 0

    writer = procs.start(project, "run", "busy", "--max-workers", "4")
    reads = 0
    try:
        while writer.poll() is None or reads < 4:
            got = procs.run(project, "xcom", "get", "seed", "--flow", "busy")
            listed = procs.run(project, "xcom", "list", "--flow", "busy", "--json")
            for done in (got, listed):
                assert done.returncode == 0, done.stderr
                assert "locked" not in done.stderr.lower() and "Traceback" not in done.stderr
            assert json.loads(got.stdout) == {"ok": 1}
            json.loads(listed.stdout)
            reads += 1
    finally:
        out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert reads >= 4
    listed = procs.run(project, "xcom", "list", "--flow", "busy", "--key", "n", "--json")
    assert len(json.loads(listed.stdout)) == MANY_TASKS


def test_second_writer_of_a_duckdb_file_gets_in_use(tmp_path: Path) -> None:
    ns = unique_name("duck")
    project = make_project(tmp_path, example=False)
    (project / "data").mkdir()
    procs.write_orders_csv(project / "data" / "orders.csv", 200_000)
    slow = "(SELECT LEAST(1, COUNT(*)) FROM range(600000) a, range(2000) b WHERE hash(a.range * b.range) > 0)"
    write_flow(project, "twice", _flow(ns, slow))
    first = procs.start(project, "run", "twice")
    try:
        procs.wait_for(
            lambda: (
                procs.task_states(procs.metadata_url(project)).get("calculate_stats") == "running"
            ),
            first,
            what="the first run to be writing",
        )
        second = procs.run(project, "run", "twice")
        assert second.returncode == 3, second.stderr
        assert "in use by another process" in second.stderr
        assert "Traceback" not in second.stderr
        assert len(second.stderr.strip().splitlines()) <= 3
        # The refused run left no half-started run behind.
        assert [r[1] for r in procs.runs(procs.metadata_url(project))] == ["running"]
    finally:
        procs.stop(first, signal.SIGINT)
