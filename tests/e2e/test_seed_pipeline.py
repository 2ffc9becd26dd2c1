"""The seed page's complete example, run through the CLI on every engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import unique_name
from tests.runkit import (
    SEED_FLOW,
    drop_namespace,
    orders_mean,
    query,
    run_cli,
    seed_project,
    table,
    table_names,
    xcom,
)


@pytest.fixture
def namespace(engine_url: str):  # type: ignore[no-untyped-def]
    ns = unique_name("ns")
    yield ns
    drop_namespace(engine_url, ns)


def test_seed_pipeline_end_to_end(tmp_path: Path, engine_url: str, namespace: str) -> None:
    project = seed_project(tmp_path, namespace, engine_url)
    result = run_cli(project, str(project / "flows" / "data_pipeline.toml"), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "success"
    assert [t["status"] for t in summary["tasks"]] == ["success"] * 3

    mean, above = orders_mean(project / "data" / "orders.csv")
    pulled = xcom(project, "calculate_stats", key="avg_value")
    assert pulled == pytest.approx(mean, rel=1e-12)
    stats = xcom(project, "calculate_stats", dag_run_id=summary["dag_run_id"])
    assert stats["total_count"] == 300 and stats["rows_written"] == 1

    landing = table(engine_url, namespace, "orders_landing")
    high = table(engine_url, namespace, "high_value_orders")
    assert query(engine_url, f"SELECT COUNT(*), MIN(batch_id), MAX(batch_id) FROM {landing}") == [
        (300, summary["batch_id"], summary["batch_id"])
    ]
    assert query(engine_url, f"SELECT COUNT(*) FROM {high}")[0][0] == above
    assert query(engine_url, f"SELECT COUNT(*) FROM {high} WHERE value <= {mean!r}")[0][0] == 0
    # Only the three datasets are left: no staging tables.
    assert table_names(engine_url, namespace) == [
        "high_value_orders",
        "orders_landing",
        "orders_stats",
    ]

    # A second run replaces the tables (FULL_REFRESH) and gets the next batch id.
    again = run_cli(project, "data_pipeline", "--json")
    assert again.exit_code == 0, again.output
    second = json.loads(again.stdout)
    assert second["batch_id"] == summary["batch_id"] + 1
    assert query(engine_url, f"SELECT COUNT(*), MIN(batch_id) FROM {landing}") == [
        (300, second["batch_id"])
    ]


PERCENT_FILTER = "WHERE value > {{ xcom_pull('calculate_stats', key='avg_value') }}"


def test_percent_signs_in_task_sql(tmp_path: Path, engine_url: str, namespace: str) -> None:
    """``%`` in a task's SQL (modulo, LIKE patterns) reaches every engine as written; on
    PostgreSQL and MariaDB it once went through the driver's placeholder formatting."""
    flow = SEED_FLOW.replace(PERCENT_FILTER, f"{PERCENT_FILTER}\nAND id % 2 = 1 AND 'a%' LIKE 'a%'")
    assert flow != SEED_FLOW
    project = seed_project(tmp_path, namespace, engine_url, flow_text=flow)
    result = run_cli(project, "data_pipeline", "--json")
    assert result.exit_code == 0, result.output
    mean, _ = orders_mean(project / "data" / "orders.csv")
    rows = [
        line.split(",") for line in (project / "data" / "orders.csv").read_text().splitlines()[1:]
    ]
    odd_above = sum(1 for i, v in rows if int(i) % 2 == 1 and float(v) > mean)
    assert 0 < odd_above
    high = table(engine_url, namespace, "high_value_orders")
    assert query(engine_url, f"SELECT COUNT(*) FROM {high}")[0][0] == odd_above
