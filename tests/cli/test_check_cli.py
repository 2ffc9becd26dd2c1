"""``qarion-etl check`` on published datasets, and check results in every output: the run's
``--json``, JUnit, the HTML report and the UI, with secrets masked and HTML escaped."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import cli, make_project, write_flow
from tests.runkit import query, table
from tests.uikit import get, ui_server

SECRET = "tok-31415926535"
CONFIG = """\
[engine]
url = "duckdb:///{root}/warehouse.duckdb"
[metadata]
url = "sqlite:///{root}/.qarion/meta.db"
[credentials.api]
token = "${{env:QE_CHECK_TOKEN}}"
[xcom]
enabled = true
"""

FLOW = """\
id = "shop"
[input]
columns = [{name = "id", schema_type = "integer"}, {name = "status"}]

[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "orders"
[tasks.config]
path = "data/orders.csv"
format = "csv"
[[tasks.checks]]
type = "unique"
column = "id"
[[tasks.checks]]
type = "accepted_values"
column = "status"
values = ["open", "closed"]
severity = "warn"

[[tasks]]
id = "big"
type = "transformation"
source_dataset_id = "orders"
target_dataset_id = "big_orders"
[tasks.config]
sql = "SELECT * FROM {{ source_dataset }} WHERE id > 1"
[[tasks.checks]]
type = "row_count"
min = 1
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QE_CHECK_TOKEN", SECRET)
    root = make_project(tmp_path, config=CONFIG.format(root=tmp_path), example=False)
    write_flow(root, "shop", FLOW)
    (root / "data").mkdir()
    (root / "data" / "orders.csv").write_text("id,status\n1,open\n2,closed\n3,open\n")
    return root


def _orders(project: Path, rows: str) -> None:
    (project / "data" / "orders.csv").write_text("id,status\n" + rows)


def _check(project: Path, *args: str) -> Any:
    return cli("check", "shop", *args, project=project)


def test_check_passes_on_the_published_datasets(project: Path) -> None:
    assert cli("run", "shop", project=project).exit_code == 0
    result = _check(project)
    assert result.exit_code == 0, result.stderr
    assert "load -> orders" in result.stderr and "checks: 2 passed" in result.stderr
    assert "big -> big_orders" in result.stderr and "checks: 1 passed" in result.stderr


def test_check_fails_when_a_published_table_breaks_a_rule(project: Path) -> None:
    assert cli("run", "shop", project=project).exit_code == 0
    url = f"duckdb:///{project}/warehouse.duckdb"
    orders = table(url, "shop", "orders")
    from qarion_etl.db_service import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO {orders} VALUES (2, 'lost', 9)")
    engine.dispose()
    result = _check(project, "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["status"] == "failed"
    load = next(t for t in doc["tasks"] if t["task_id"] == "load")
    by_name = {c["name"]: c for c in load["checks"]}
    assert by_name["unique_id"]["status"] == "fail"
    assert by_name["unique_id"]["sample"] == [{"id": 2, "rows": 2}]
    assert by_name["accepted_values_status"]["status"] == "warn"
    assert "FAIL check 'unique_id' (unique on id): 1 failing row" in result.stderr
    assert "WARN check 'accepted_values_status'" in result.stderr
    assert "Error: checks failed in load" in result.stderr
    # --select narrows it to the task whose checks pass.
    only_big = _check(project, "--select", "big")
    assert only_big.exit_code == 0 and "load ->" not in only_big.stderr
    # Nothing was written by check.
    assert len(query(url, f"SELECT * FROM {orders}")) == 4


def test_check_before_the_first_run_and_bad_requests(project: Path) -> None:
    result = _check(project)
    assert result.exit_code == 1
    assert "dataset 'orders' is not published yet: run the flow first" in result.stderr
    bad_select = _check(project, "--select", "nope")
    assert bad_select.exit_code == 2 and "no task 'nope'" in bad_select.stderr
    bad_flow = cli("check", "shpo", project=project)
    assert bad_flow.exit_code == 2 and "did you mean 'shop'?" in bad_flow.stderr
    write_flow(project, "shop", FLOW.replace('column = "id"', 'column = "idd"'))
    invalid = _check(project)
    assert invalid.exit_code == 2
    assert "unknown column 'idd' (did you mean 'id'?)" in invalid.stderr
    for out in (result, bad_select, bad_flow, invalid):
        assert "Traceback" not in out.stderr + out.stdout


def test_results_in_json_junit_report_and_ui(project: Path) -> None:
    hostile = f"<b>{SECRET}</b>"
    _orders(project, f"1,open\n1,{hostile}\n2,closed\n")
    junit = project / "junit.xml"
    result = cli("run", "shop", "--json", "--junit-xml", str(junit), project=project)
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    load = next(t for t in doc["tasks"] if t["task_id"] == "load")
    assert [(c["name"], c["status"]) for c in load["checks"]] == [
        ("unique_id", "fail"),
        ("accepted_values_status", "warn"),
    ]
    assert SECRET not in result.stdout + result.stderr
    assert "<b>***</b>" in json.dumps(load["checks"])

    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert suite.get("tests") == str(len(cases)) == "4"  # two tasks, the two checks that ran
    assert suite.get("failures") == "2"  # the task and its failed check
    failed = cases["check unique_id"]
    failure = failed.find("failure")
    assert failure is not None and failed.get("classname") == "shop.load"
    assert (
        failure.get("message")
        == "FAIL check 'unique_id' (unique on id): 1 failing row, e.g. id=1, rows=2"
    )
    warned = cases["check accepted_values_status"]
    assert warned.find("failure") is None
    assert "WARN check 'accepted_values_status'" in (warned.findtext("system-out") or "")
    assert SECRET not in junit.read_text()

    report = project / "report.html"
    assert cli("report", "latest", "-o", str(report), project=project).exit_code == 0
    html = report.read_text()
    assert "<h3>Checks</h3>" in html and "unique_id" in html
    assert SECRET not in html and "<b>***" not in html and "&lt;b&gt;***&lt;/b&gt;" in html

    with ui_server(project) as base:
        status, body, _ = get(base + "/tasks/shop/load")
    assert status == 200 and "<h3>Checks</h3>" in body and "accepted_values_status" in body
    assert SECRET not in body and "&lt;b&gt;***&lt;/b&gt;" in body


def test_a_warned_check_is_a_github_warning_on_its_line(project: Path) -> None:
    _orders(project, "1,open\n2,unknown\n")
    summary = project / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = cli("run", "shop", project=project, env=env)
    assert result.exit_code == 0, result.stderr
    (warning,) = [line for line in result.stdout.splitlines() if line.startswith("::warning ")]
    assert "shop.toml,line=15,title=qarion-etl%3A task load::" in warning
    assert (
        "WARN check 'accepted_values_status' (accepted_values on status): 1 failing row" in warning
    )


def test_ls_lists_each_task_s_checks(project: Path) -> None:
    result = cli("ls", "shop", "-o", "json", project=project)
    assert result.exit_code == 0, result.stderr
    rows = {r["task_id"]: r["checks"] for r in json.loads(result.stdout)}
    assert rows == {
        "load": [
            {"name": "unique_id", "type": "unique", "column": "id", "severity": "error"},
            {
                "name": "accepted_values_status",
                "type": "accepted_values",
                "column": "status",
                "severity": "warn",
            },
        ],
        "big": [{"name": "row_count", "type": "row_count", "column": None, "severity": "error"}],
    }


def test_check_of_tasks_without_checks_says_so(project: Path) -> None:
    write_flow(
        project,
        "plain",
        'id = "plain"\n[[tasks]]\nid = "t"\ntype = "transformation"\n'
        'target_dataset_id = "t"\n[tasks.config]\nsql = "SELECT 1 AS x"\n',
    )
    result = cli("check", "plain", project=project)
    assert result.exit_code == 0, result.stderr
    assert "plain: no checks in the selected tasks" in result.stderr
    as_json = cli("check", "plain", "--json", project=project)
    assert json.loads(as_json.stdout) == {"flow_id": "plain", "status": "success", "tasks": []}
