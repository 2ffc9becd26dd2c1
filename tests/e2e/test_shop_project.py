"""The shop project (``tests/fixtures/shop``), as a dbt user would port jaffle shop: three
seed files each loaded with its own schema (one inferred), staging views and two marts
reading them through ``ref()`` across two flows, a macro, and the usual schema tests as
``[[tasks.checks]]``.

``run --all`` on a fresh warehouse must order the flows by their ``ref()`` edges, pass
every check, and build marts that equal the rows worked out in plain Python from the CSV
files, on DuckDB, SQLite, PostgreSQL and MariaDB; and again over what it published (the
seed tables are replaced under the staging views of the other flow).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from tests.conftest import unique_name
from tests.e2e import shopkit
from tests.helpers import cli
from tests.runkit import query, table, xcom

#: Types of the payments file, which its ingestion leaves to inference.
INFERRED = {"id": "integer", "order_id": "integer", "payment_method": "string", "amount": "integer"}


def _declared_checks() -> dict[tuple[str, str], int]:
    """(flow, task) -> how many ``[[tasks.checks]]`` the fixture declares."""
    out = {}
    for path in (shopkit.SHOP / "flows").glob("*.toml"):
        doc = tomllib.loads(path.read_text())
        for task in doc["tasks"]:
            if task.get("checks"):
                out[(doc["id"], task["id"])] = len(task["checks"])
    return out


def _tasks_by_flow(summary: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    flows = summary.get("flows", [summary])
    return {f["flow_id"]: {t["task_id"]: t for t in f["tasks"]} for f in flows}


def _assert_flow_order(tasks: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Every seed was loaded before any shop model started."""
    seeds_done = max(t["ended_at"] for t in tasks["seeds"].values())
    shop_start = min(t["started_at"] for t in tasks["shop"].values())
    assert seeds_done <= shop_start, (seeds_done, shop_start)


def _assert_checks_passed(project: Path, tasks: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Every declared check ran and passed, as ``--json`` and the XCom ``checks`` say."""
    for (flow, task_id), count in _declared_checks().items():
        from_json = tasks[flow][task_id]["checks"]
        from_xcom = xcom(project, task_id, key="checks", flow_id=flow)
        assert from_xcom == from_json, (flow, task_id)
        assert len(from_json) == count, (flow, task_id, from_json)
        failed = [c for c in from_json if c["status"] != "pass" or c["failing"]]
        assert not failed, (flow, task_id, failed)


def _marts(url: str, shop_ns: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    customers = table(url, shop_ns, "customers")
    orders = table(url, shop_ns, "orders")
    return (
        query(url, f"SELECT {', '.join(shopkit.CUSTOMER_COLUMNS)} FROM {customers}"),
        query(url, f"SELECT {', '.join(shopkit.ORDER_COLUMNS)} FROM {orders}"),
    )


def _run_all(project: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """``run --all --json`` succeeded with every task: the tasks by flow."""
    result = cli("run", "--all", "--json", project=project)
    assert result.exit_code == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "success"
    tasks = _tasks_by_flow(summary)
    assert {t["status"] for ts in tasks.values() for t in ts.values()} == {"success"}
    assert len(tasks["seeds"]) == 3 and len(tasks["shop"]) == 5
    _assert_flow_order(tasks)
    return tasks


def test_run_all_builds_the_marts(tmp_path: Path, engine_url: str) -> None:
    suffix = "_" + unique_name("s")
    _, shop_ns = shopkit.namespaces(suffix)
    project = shopkit.copy_shop(tmp_path / "shop", engine_url, suffix)
    try:
        tasks = _run_all(project)
        payments = tasks["seeds"]["load_payments"]["result"]
        assert payments["rows_loaded"] == 123
        assert {c["name"]: c["schema_type"] for c in payments["inferred_columns"]} == INFERRED
        _assert_checks_passed(project, tasks)
        first = _marts(engine_url, shop_ns)
        # Again over what the first run published: the seeds are replaced under the views.
        _assert_checks_passed(project, _run_all(project))
        again = _marts(engine_url, shop_ns)
        checked = cli("check", "shop", project=project)
        assert checked.exit_code == 0, checked.stdout + checked.stderr
    finally:
        shopkit.drop_shop(engine_url, suffix)
    for customers, orders in (first, again):
        assert shopkit.keyed(customers) == shopkit.expected_customers()
        assert shopkit.keyed(orders) == shopkit.expected_orders()
