"""Data checks during a run, on the four engines: the SQL of each check type, a failing
``error`` check that leaves the published table as it was, a ``warn`` check that publishes
with a warning, a relative ``row_count`` that reads the previous run's XCom, and
``unique`` on the merged rows of an incremental write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unique_name
from tests.helpers import cli, make_project, write_flow
from tests.runkit import drop_metadata, drop_namespace, engine_url_of, query, table, table_names

GOOD = "id,status,cust,amount\n1,open,1,10.5\n2,closed,2,20\n3,open,1,5\n"
BAD = "id,status,cust,amount\n1,open,1,10.5\n2,weird,9,20\n2,open,,5\n4,open,2,-1\n"

FLOW = """\
id = "shop"
namespace = "{ns}"
[input]
columns = [
  {{name = "id", schema_type = "integer"}},
  {{name = "status"}},
  {{name = "cust", schema_type = "integer"}},
  {{name = "amount", schema_type = "float"}},
]

[[tasks]]
id = "customers"
type = "transformation"
target_dataset_id = "customers"
[tasks.config]
sql = "SELECT 1 AS id UNION ALL SELECT 2"

[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "orders"
dependencies = ["customers"]
{props}
[tasks.config]
path = "data/orders.csv"
format = "csv"
{checks}
"""

ALL_CHECKS = """
[[tasks.checks]]
type = "not_null"
column = "cust"
severity = "{sev}"
[[tasks.checks]]
type = "unique"
column = "id"
severity = "{sev}"
[[tasks.checks]]
type = "accepted_values"
column = "status"
values = ["open", "closed"]
severity = "{sev}"
[[tasks.checks]]
type = "relationships"
column = "cust"
to = "ref('customers')"
field = "id"
severity = "{sev}"
[[tasks.checks]]
type = "row_count"
min = 1
max = 3
severity = "{sev}"
[[tasks.checks]]
name = "no_negative_amount"
type = "expression"
sql = "SELECT id, amount FROM {{{{ target_dataset }}}} WHERE amount < 0"
severity = "{sev}"
"""


@pytest.fixture
def shop(tmp_path: Path, engine_url: str) -> Iterator[tuple[Path, str, str]]:
    """A project on each engine, with a private namespace and metadata; cleaned up after."""
    ns = unique_name("ck")
    meta = f"sqlite:///{tmp_path / 'meta.db'}"
    project = make_project(tmp_path, engine_url=engine_url, metadata_url=meta, example=False)
    (project / "data").mkdir()
    yield project, ns, engine_url
    drop_namespace(engine_url, ns)
    drop_metadata(meta, "qarion")


def _setup(project: Path, ns: str, data: str, checks: str, props: str = "") -> None:
    write_flow(project, "shop", FLOW.format(ns=ns, checks=checks, props=props))
    (project / "data" / "orders.csv").write_text(data)


def _run(project: Path, *args: str) -> tuple[Any, dict[str, Any]]:
    result = cli("run", "shop", "--json", *args, project=project)
    return result, json.loads(result.stdout)


def _checks(doc: dict[str, Any], task: str = "load") -> dict[str, dict[str, Any]]:
    outcome = next(t for t in doc["tasks"] if t["task_id"] == task)
    return {c["name"]: c for c in outcome["checks"]}


def test_each_check_type_finds_its_failing_rows(shop: tuple[Path, str, str]) -> None:
    project, ns, url = shop
    _setup(project, ns, BAD, ALL_CHECKS.format(sev="warn"))
    result, doc = _run(project)
    assert result.exit_code == 0, result.stderr
    found = _checks(doc)
    assert {n: (c["status"], c["failing"]) for n, c in found.items()} == {
        "not_null_cust": ("warn", 1),
        "unique_id": ("warn", 1),
        "accepted_values_status": ("warn", 1),
        "relationships_cust": ("warn", 1),
        "row_count": ("warn", 1),
        "no_negative_amount": ("warn", 1),
    }
    assert found["not_null_cust"]["sample"][0]["id"] == 2
    assert found["unique_id"]["sample"] == [{"id": 2, "rows": 2}]
    assert found["accepted_values_status"]["sample"][0]["status"] == "weird"
    assert found["relationships_cust"]["sample"][0]["cust"] == 9
    assert "4 rows, more than max 3" in found["row_count"]["note"]
    assert found["no_negative_amount"]["sample"] == [{"id": 4, "amount": -1.0}]
    assert "WARN check 'unique_id' (unique on id): 1 failing row" in result.stderr
    assert "checks: 6 warned" in result.stderr
    log = [
        line for line in Path(doc["log_path"]).read_text().splitlines() if "check_warning" in line
    ]
    assert [line.split("check=")[1].split()[0] for line in log] == list(found)
    assert all(" WARNING " in line and "task=load" in line for line in log)
    # The warned rows were published.
    assert len(query(url, f"SELECT * FROM {table(url, ns, 'orders')}")) == 4


def test_checks_pass_on_good_rows_and_go_to_xcom(shop: tuple[Path, str, str]) -> None:
    project, ns, _url = shop
    _setup(project, ns, GOOD, ALL_CHECKS.format(sev="error"))
    result, doc = _run(project)
    assert result.exit_code == 0, result.stderr
    assert {c["status"] for c in _checks(doc).values()} == {"pass"}
    assert "checks: 6 passed" in result.stderr
    from qarion_etl.project import Project

    with Project.load(project / "qarion-etl.toml") as p:
        pushed = p.xcom_service("shop").pull("load", key="checks", dag_run_id=doc["dag_run_id"])
    assert [c["name"] for c in pushed] == list(_checks(doc))
    assert pushed[0] == {
        "name": "not_null_cust",
        "type": "not_null",
        "column": "cust",
        "severity": "error",
        "status": "pass",
        "failing": 0,
        "sample": [],
        "note": None,
    }


def test_a_failing_error_check_leaves_the_published_table(shop: tuple[Path, str, str]) -> None:
    project, ns, url = shop
    _setup(project, ns, GOOD, ALL_CHECKS.format(sev="error"))
    first, _ = _run(project)
    assert first.exit_code == 0, first.stderr
    before = sorted(query(url, f"SELECT id, status, cust, amount FROM {table(url, ns, 'orders')}"))
    (project / "data" / "orders.csv").write_text(BAD)
    result, doc = _run(project)
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    error = next(t for t in doc["tasks"] if t["task_id"] == "load")["error"]
    assert "task 'load': 6 of 6 checks failed: the dataset was not published" in error
    assert "check 'unique_id' (unique on id): 1 failing row" in error
    assert "id=2, rows=2" in error
    assert "check 'relationships_cust' (relationships on cust): 1 failing row" in error
    assert "not retried" not in error or "failing data check" in error
    assert {c["status"] for c in _checks(doc).values()} == {"fail"}
    after = sorted(query(url, f"SELECT id, status, cust, amount FROM {table(url, ns, 'orders')}"))
    assert after == before
    assert [n for n in table_names(url, ns) if n.startswith("_qtmp_")] == []


def test_a_failing_check_is_not_retried(tmp_path: Path) -> None:
    project = make_project(tmp_path, example=False)
    (project / "data").mkdir()
    ns = unique_name("ck")
    _setup(
        project,
        ns,
        BAD,
        '[[tasks.checks]]\ntype = "unique"\ncolumn = "id"\n',
        props="retries = 3\nretry_delay_seconds = 5",
    )
    result, doc = _run(project)
    outcome = next(t for t in doc["tasks"] if t["task_id"] == "load")
    assert result.exit_code == 1 and outcome["tries"] == 1
    assert "not retried: a failing data check" in outcome["error"]


def test_row_count_within_percent_of_the_previous_run(tmp_path: Path) -> None:
    project = make_project(tmp_path, example=False)
    (project / "data").mkdir()
    ns = unique_name("ck")
    check = (
        '[[tasks.checks]]\ntype = "row_count"\n'
        'compare_to = {task = "load", key = "rows_loaded", run = "previous"}\n'
        "within_percent = 20\n"
    )
    rows = "id,status,cust,amount\n" + "".join(f"{i},open,1,1\n" for i in range(10))
    _setup(project, ns, rows, check)
    result, doc = _run(project)
    assert result.exit_code == 0, result.stderr
    assert _checks(doc)["row_count"]["note"].startswith("no value of load.rows_loaded")
    more = "id,status,cust,amount\n" + "".join(f"{i},open,1,1\n" for i in range(12))
    (project / "data" / "orders.csv").write_text(more)
    result, doc = _run(project)
    assert result.exit_code == 0, result.stderr
    assert "12 rows against 10" in _checks(doc)["row_count"]["note"]
    many = "id,status,cust,amount\n" + "".join(f"{i},open,1,1\n" for i in range(30))
    (project / "data" / "orders.csv").write_text(many)
    result, doc = _run(project)
    assert result.exit_code == 1
    assert "30 rows, not within 20% of 12" in _checks(doc)["row_count"]["note"]


INCREMENTAL_FLOW = """\
id = "inc"
namespace = "{ns}"
[input]
primary_key = ["id"]
columns = [{{name = "id", schema_type = "integer"}}, {{name = "code"}}]
[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "items"
[tasks.properties]
processing_type = "INCREMENTAL"
[tasks.config]
path = "data/items.csv"
format = "csv"
[[tasks.checks]]
type = "unique"
column = "code"
"""


def test_unique_checks_the_merged_rows_of_an_incremental_write(
    shop: tuple[Path, str, str],
) -> None:
    project, ns, url = shop
    write_flow(project, "inc", INCREMENTAL_FLOW.format(ns=ns))
    items = project / "data" / "items.csv"
    items.write_text("id,code\n1,a\n2,b\n")
    assert cli("run", "inc", project=project).exit_code == 0
    # The batch alone is unique, and so is the merge: id 2 is replaced, its code moves on.
    items.write_text("id,code\n2,c\n3,b\n")
    ok = cli("run", "inc", project=project)
    assert ok.exit_code == 0, ok.stderr
    # Unique within the batch, but 'a' is already taken by a row the batch keeps.
    items.write_text("id,code\n4,a\n")
    failed = cli("run", "inc", project=project)
    assert failed.exit_code == 1
    assert "check 'unique_code' (unique on code): 1 failing row" in failed.stderr
    rows = sorted(query(url, f"SELECT id, code FROM {table(url, ns, 'items')}"))
    assert rows == [(1, "a"), (2, "c"), (3, "b")]


def test_a_check_whose_sql_fails_names_the_check_and_its_line(tmp_path: Path) -> None:
    project = make_project(tmp_path, example=False)
    ns = unique_name("ck")
    write_flow(
        project,
        "calc",
        f"""\
        id = "calc"
        namespace = "{ns}"
        [[tasks]]
        id = "t"
        type = "transformation"
        target_dataset_id = "t"
        [tasks.config]
        sql = "SELECT 1 AS n"
        [[tasks.checks]]
        type = "not_null"
        column = "missing_column"
        """,
    )
    result = cli("run", "calc", project=project)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "calc.toml:9: task 't': check 'not_null_missing_column':" in result.stderr
    assert table_names(engine_url_of(project), ns) == []


def test_check_command_reads_the_published_tables(shop: tuple[Path, str, str]) -> None:
    project, ns, url = shop
    _setup(project, ns, GOOD, ALL_CHECKS.format(sev="error"))
    assert cli("run", "shop", project=project).exit_code == 0
    passing = cli("check", "shop", "--json", project=project)
    assert passing.exit_code == 0, passing.stderr
    assert json.loads(passing.stdout)["status"] == "success"
    from qarion_etl.db_service import create_engine

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"INSERT INTO {table(url, ns, 'orders')} (id, status, cust, amount, batch_id) "
                "VALUES (1, 'open', 7, 1.0, 99)"
            )
    finally:
        engine.dispose()
    failing = cli("check", "shop", "--json", project=project)
    assert failing.exit_code == 1
    (task,) = json.loads(failing.stdout)["tasks"]
    statuses = {c["name"]: (c["status"], c["failing"]) for c in task["checks"]}
    assert statuses["unique_id"] == ("fail", 1)
    assert statuses["relationships_cust"] == ("fail", 1)
    assert statuses["row_count"] == ("fail", 1)  # 4 rows, max 3
    assert statuses["not_null_cust"] == ("pass", 0)


KEYED_FLOW = """\
id = "keyed"
namespace = "{ns}"
[input]
primary_key = ["id"]
columns = [{{name = "id", schema_type = "integer", required = true}}, {{name = "code"}}]
[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "items"
[tasks.config]
path = "data/items.csv"
format = "csv"
[[tasks.checks]]
type = "unique"
column = "id"
[[tasks.checks]]
type = "not_null"
column = "id"
[[tasks.checks]]
type = "not_null"
column = "code"
"""


def test_what_the_load_guarantees_costs_no_query(tmp_path: Path) -> None:
    project = make_project(tmp_path, example=False)
    (project / "data").mkdir()
    write_flow(project, "keyed", KEYED_FLOW.format(ns=unique_name("ck")))
    (project / "data" / "items.csv").write_text("id,code\n1,a\n2,b\n")
    result = cli("run", "keyed", "--json", project=project)
    assert result.exit_code == 0, result.stderr
    (load,) = json.loads(result.stdout)["tasks"]
    notes = {c["name"]: (c["status"], c["note"]) for c in load["checks"]}
    assert notes == {
        "unique_id": ("pass", "guaranteed by the load: the primary key admits no duplicate"),
        "not_null_id": ("pass", "guaranteed by the load: 'id' is required"),
        "not_null_code": ("pass", None),
    }
    sql = Path(load["sql_path"]).read_text()
    assert "COUNT(*) AS" not in sql  # no unique query ran
    # qarion-etl check proves nothing by the load: it queries the published table.
    checked = cli("check", "keyed", "--json", project=project)
    statuses = {c["name"]: c["note"] for c in json.loads(checked.stdout)["tasks"][0]["checks"]}
    assert statuses["unique_id"] is None and statuses["not_null_id"] is None


VIEW_FLOW = """\
id = "shop"
namespace = "{ns}"
[input]
columns = [{{name = "id", schema_type = "integer"}}, {{name = "status"}}, {{name = "cust"}}]

[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "orders"
[tasks.config]
path = "data/orders.csv"
format = "csv"

[[tasks]]
id = "kept"
type = "transformation"
target_dataset_id = "kept_orders"
materialized = "view"
[tasks.config]
sql = "SELECT id, cust FROM {{{{ ref('orders') }}}} WHERE {{{{ var('keep') }}}}"
[[tasks.checks]]
type = "not_null"
column = "cust"
"""


def test_a_failing_check_on_a_view_leaves_the_published_view(
    shop: tuple[Path, str, str],
) -> None:
    """A view's checks run on a staging view of its SELECT: the old view stays, and no
    staging view is left behind."""
    project, ns, url = shop
    write_flow(project, "shop", VIEW_FLOW.format(ns=ns))
    (project / "data" / "orders.csv").write_text(BAD)
    good, doc = _run(project, "--var", "keep=cust IS NOT NULL")
    assert good.exit_code == 0, good.stderr
    assert [c["status"] for c in _checks(doc, "kept").values()] == ["pass"]
    view = table(url, ns, "kept_orders")
    before = sorted(query(url, f"SELECT id, cust FROM {view}"))
    assert len(before) == 3 and all(cust is not None for _, cust in before)
    bad, doc = _run(project, "--var", "keep=1 = 1")
    assert bad.exit_code == 1
    assert "Traceback" not in bad.stderr
    error = next(t for t in doc["tasks"] if t["task_id"] == "kept")["error"]
    assert "check 'not_null_cust' (not_null on cust): 1 failing row" in error
    assert sorted(query(url, f"SELECT id, cust FROM {view}")) == before
    assert [n for n in table_names(url, ns, views=True) if n.startswith("_qtmp_")] == []
