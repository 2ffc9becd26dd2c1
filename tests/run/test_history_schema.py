"""Run history keyed by (flow, run), and the move of a database from the first layout.

Airflow's run ids are per DAG: two flows scheduled for one moment share a run id, so a run
is identified by its flow and its id. A metadata database written by the first layout
(runs keyed by the run id alone) is moved on first use, every row kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qarion_etl.db.schema import Column, TableSpec
from qarion_etl.db_service import DatabaseService
from qarion_etl.errors import UsageError
from qarion_etl.run.history import RunStore, TaskInstanceRecord
from tests.conftest import DATABASES, database_url, unique_name


def _first_layout(ns: str) -> list[TableSpec]:
    ident = "str:250"
    return [
        TableSpec(
            f"{ns}_runs",
            (
                Column("dag_run_id", ident, primary_key=True),
                Column("flow_id", ident, nullable=False),
                Column("batch_id", "bigint", nullable=False),
                Column("status", "str:20", nullable=False),
                Column("started_at", "str:40", nullable=False),
                Column("ended_at", "str:40"),
                Column("summary", "text"),
            ),
            indexes=((f"ix_{ns}_runs_flow_id", ("flow_id",)),),
        ),
        TableSpec(
            f"{ns}_task_instances",
            (
                Column("dag_run_id", ident, primary_key=True),
                Column("task_id", ident, primary_key=True),
                Column("flow_id", ident, nullable=False),
                Column("batch_id", "bigint", nullable=False),
                Column("status", "str:20", nullable=False),
                Column("try_number", "int", nullable=False),
                Column("started_at", "str:40"),
                Column("ended_at", "str:40"),
                Column("rows", "bigint"),
                Column("error", "text"),
                Column("xcom_keys", "text"),
            ),
        ),
    ]


@pytest.mark.parametrize("kind", DATABASES)
def test_a_first_layout_database_is_moved_keeping_every_row(tmp_path: Path, kind: str) -> None:
    db = DatabaseService(database_url(kind, tmp_path))
    ns = unique_name("hist")
    old = _first_layout(ns)
    db.create_tables(old)
    with db.begin() as conn:
        conn.exec_driver_sql(
            db.sql(f"INSERT INTO {db.quote(ns + '_runs')} VALUES (?, ?, ?, ?, ?, ?, ?)"),
            ("old-run", "flow_a", 4, "success", "2026-01-01T00:00:00", "2026-01-01T00:01:00", None),
        )
        conn.exec_driver_sql(
            db.sql(
                f"INSERT INTO {db.quote(ns + '_task_instances')} "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            ("old-run", "t", "flow_a", 4, "success", 1, "a", "b", 7, None, '["k"]'),
        )
    store = RunStore(db, ns)
    try:
        run = store.get_run("old-run")
        assert run is not None and (run.flow_id, run.batch_id, run.status) == (
            "flow_a",
            4,
            "success",
        )
        (ti,) = store.task_instances("flow_a", "old-run")
        assert (ti.task_id, ti.rows, ti.xcom_keys) == ("t", 7, ["k"])
        with db.connect() as conn:
            assert db.primary_key(conn, f"{ns}_runs") == ["flow_id", "dag_run_id"]
            assert db.primary_key(conn, f"{ns}_task_instances") == [
                "flow_id",
                "dag_run_id",
                "task_id",
            ]
            assert not db.has_table(conn, f"{ns}_runs_v1")

        # The same run id in another flow is another run, recorded beside it.
        batch = store.allocate_batch_id("flow_b")
        store.start_run("old-run", "flow_b", batch, "2026-01-02T00:00:00")
        store.record_task(
            TaskInstanceRecord(
                "old-run", "t", "flow_b", batch, "failed", 1, "c", "d", None, "x", []
            )
        )
        assert store.get_run("old-run", "flow_b").status == "running"  # type: ignore[union-attr]
        assert [t.status for t in store.task_instances("flow_a", "old-run")] == ["success"]
        with pytest.raises(UsageError, match="exists in several flows \\(flow_a, flow_b\\)"):
            store.get_run("old-run")
    finally:
        store.drop_tables()
        db.close()
