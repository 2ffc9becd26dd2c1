"""Flows on Spark, through the command line, against the session's Spark Connect server.

The seed example (twice: the second run swaps over the first's tables), its templates and
XComs; bad rows named with their lines and quarantined; a SQL error with its SQLSTATE
mapped to the flow line and not retried; a timeout that cancels the running Spark job;
INCREMENTAL appends and upserts on parquet tables; rows sent from Python (JSON Lines)
with every type; ``doctor``; and the configurations Spark refuses, with clear messages.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qarion_etl.db_service import DatabaseService
from tests.helpers import ROOT, cli, make_project, write_flow
from tests.runkit import run_dir, seed_project


@pytest.fixture
def spark_db(spark_url: str) -> Iterator[DatabaseService]:
    db = DatabaseService(spark_url)
    yield db
    db.close()


def rows(db: DatabaseService, sql: str) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]


@pytest.fixture
def dropped(spark_db: DatabaseService) -> Iterator[list[str]]:
    """Namespaces to drop (with their tables) after the test."""
    names: list[str] = []
    yield names
    with spark_db.connect() as conn:
        for ns in names:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {spark_db.quote(ns)} CASCADE")


def test_the_seed_example_runs_twice_with_its_xcoms(
    tmp_path: Path, spark_url: str, spark_ns: str, spark_db: DatabaseService, dropped: list[str]
) -> None:
    dropped.append(spark_ns)
    project = seed_project(tmp_path, spark_ns, spark_url)
    values = [float(r["value"]) for r in csv.DictReader((ROOT / "data" / "orders.csv").open())]
    avg = sum(values) / len(values)
    for run_id in ("first", "second"):
        result = cli("run", "data_pipeline", "--run-id", run_id, "--json", project=project)
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert [t["status"] for t in doc["tasks"]] == ["success"] * 3
    got = cli("xcom", "get", "calculate_stats", "--key", "avg_value", project=project)
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout) == pytest.approx(avg)
    count = cli("xcom", "get", "calculate_stats", "--key", "total_count", project=project)
    assert json.loads(count.stdout) == 300

    q = spark_db.qualified
    assert rows(
        spark_db, f"SELECT count(*), max(batch_id) FROM {q(spark_ns, 'orders_landing')}"
    ) == [(300, 2)]
    assert rows(spark_db, f"SELECT count(*) FROM {q(spark_ns, 'high_value_orders')}") == [
        (sum(v > avg for v in values),)
    ]
    with spark_db.connect() as conn:
        left = spark_db.table_names(conn, spark_ns)
    assert sorted(left) == ["high_value_orders", "orders_landing", "orders_stats"]

    # Spark read the file itself; the second run renamed the old table away first.
    ingest = (run_dir(project, "second") / "ingest_orders.sql").read_text()
    assert "USING csv OPTIONS" in ingest and "300 rows loaded" in ingest
    filtered = (run_dir(project, "second") / "filter_high_value.sql").read_text()
    assert f"ALTER TABLE `{spark_ns}`.`high_value_orders` RENAME TO" in filtered
    assert f"WHERE value > {avg!r}"[:24] in filtered  # the pulled value, rendered


DIRTY = """
id = "dirty"
namespace = "{ns}"

[input]
primary_key = ["id"]
columns = [
  {{name = "id", schema_type = "integer", required = true}},
  {{name = "value", schema_type = "float", required = true}},
]

[[tasks]]
id = "load_quarantined"
type = "ingestion"
target_dataset_id = "orders_q"
[tasks.config]
path = "data/orders.csv"
format = "csv"
on_bad_rows = "quarantine"

[[tasks]]
id = "load_strict"
type = "ingestion"
target_dataset_id = "orders_s"
dependencies = ["load_quarantined"]
retries = 2
[tasks.config]
path = "data/orders.csv"
format = "csv"
"""


def test_bad_rows_are_named_by_line_and_quarantined(
    tmp_path: Path, spark_url: str, spark_ns: str, spark_db: DatabaseService, dropped: list[str]
) -> None:
    dropped.append(spark_ns)
    project = make_project(tmp_path, engine_url=spark_url, example=False)
    (project / "data").mkdir(exist_ok=True)
    (project / "data" / "orders.csv").write_text("id,value\n1,10.5\n2,abc\n3,\n4,7.25\n5,1,2\n")
    write_flow(project, "dirty", DIRTY.format(ns=spark_ns))
    result = cli("run", "dirty", "--run-id", "r1", "--json", project=project)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for line in (
        "data/orders.csv:3: column 'value': 'abc' is not a valid float",
        "data/orders.csv:4: column 'value': missing required value",
        "data/orders.csv:6: expected 2 fields, found 3",
    ):
        assert line in result.stderr, result.stderr
    assert "not retried" in result.stderr
    doc = json.loads(result.stdout)
    (done,) = [t for t in doc["tasks"] if t["task_id"] == "load_quarantined"]
    assert done["result"]["rows_rejected"] == 3 and done["rows"] == 2
    q = spark_db.qualified
    assert rows(spark_db, f"SELECT id, value FROM {q(spark_ns, 'orders_q')} ORDER BY id") == [
        (1, 10.5),
        (4, 7.25),
    ]
    assert rows(
        spark_db,
        f"SELECT line, column_name, raw_text FROM {q(spark_ns, 'orders_q__rejects')} ORDER BY line",
    ) == [(3, "value", "2,abc"), (4, "value", "3,"), (6, None, "5,1,2")]
    # The failed load left nothing behind: no target, no staging table.
    with spark_db.connect() as conn:
        assert sorted(spark_db.table_names(conn, spark_ns)) == ["orders_q", "orders_q__rejects"]


BROKEN = """
id = "broken"
namespace = "{ns}"

[[tasks]]
id = "bad_column"
type = "transformation"
target_dataset_id = "out"
retries = 2
[tasks.config]
sql = \"\"\"
SELECT id,
       no_such_column
FROM range(3)
\"\"\"

[[tasks]]
id = "slow"
type = "transformation"
target_dataset_id = "slow_out"
timeout_seconds = 4
[tasks.config]
sql = "SELECT count(*) AS n FROM range(200000000) a CROSS JOIN range(1000000) b"
"""


def test_sql_errors_map_to_the_flow_line_and_timeouts_cancel_the_job(
    tmp_path: Path, spark_url: str, spark_ns: str, dropped: list[str]
) -> None:
    dropped.append(spark_ns)
    project = make_project(tmp_path, engine_url=spark_url, example=False)
    path = write_flow(project, "broken", BROKEN.format(ns=spark_ns))
    result = cli("run", "broken", "--run-id", "r1", "--json", project=project)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "JVM stacktrace" not in result.output
    line = path.read_text().splitlines().index("       no_such_column") + 1
    assert f"flows/broken.toml:{line}: task 'bad_column'" in result.stderr, result.stderr
    assert "UNRESOLVED_COLUMN" in result.stderr and "SQLSTATE: 42703" in result.stderr
    assert "not retried: a SQL binder error" in result.stderr
    doc = json.loads(result.stdout)
    tries = {t["task_id"]: t for t in doc["tasks"]}
    assert tries["bad_column"]["tries"] == 1
    assert tries["slow"]["status"] == "failed"
    assert "timed out after 4s" in result.stderr
    # The running statement was cancelled on the server, not left to finish.
    slow_sql = (run_dir(project, "r1") / "slow.sql").read_text()
    assert "OPERATION_CANCELED" in slow_sql or "cancel" in slow_sql.lower(), slow_sql


INCREMENTAL = """
id = "inc"
namespace = "{ns}"

[input]
primary_key = [{key}]
columns = [
  {{name = "id", schema_type = "integer", required = true}},
  {{name = "value", schema_type = "float"}},
]

[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "orders"
[tasks.properties]
processing_type = "INCREMENTAL"
[tasks.config]
path = "data/orders.csv"
format = "csv"
"""


@pytest.mark.parametrize(
    ("key", "want"),
    [
        ('"id"', [(1, 1.0, 1), (2, 20.0, 2), (3, 30.0, 2)]),
        ("", [(1, 1.0, 1), (2, 2.0, 1), (2, 20.0, 2), (3, 30.0, 2)]),
    ],
    ids=["upsert", "append"],
)
def test_incremental_upserts_and_appends_on_parquet(
    tmp_path: Path,
    spark_url: str,
    spark_ns: str,
    spark_db: DatabaseService,
    dropped: list[str],
    key: str,
    want: list[tuple[Any, ...]],
) -> None:
    dropped.append(spark_ns)
    project = make_project(tmp_path, engine_url=spark_url, example=False)
    (project / "data").mkdir(exist_ok=True)
    write_flow(project, "inc", INCREMENTAL.format(ns=spark_ns, key=key))
    for text in ("id,value\n1,1.0\n2,2.0\n", "id,value\n2,20.0\n3,30.0\n"):
        (project / "data" / "orders.csv").write_text(text)
        result = cli("run", "inc", project=project)
        assert result.exit_code == 0, result.output
    table = spark_db.qualified(spark_ns, "orders")
    assert rows(spark_db, f"SELECT id, value, batch_id FROM {table} ORDER BY id, batch_id") == want


TYPED = """
id = "typed"
namespace = "{ns}"

[input]
columns = [
  {{name = "s", schema_type = "string"}},
  {{name = "i", schema_type = "integer"}},
  {{name = "f", schema_type = "float"}},
  {{name = "d", schema_type = "decimal"}},
  {{name = "b", schema_type = "boolean"}},
  {{name = "day", schema_type = "date"}},
  {{name = "at", schema_type = "timestamp"}},
]

[[tasks]]
id = "load_json"
type = "ingestion"
target_dataset_id = "typed_json"
[tasks.config]
path = "data/rows.jsonl"
format = "jsonl"

[[tasks]]
id = "load_csv"
type = "ingestion"
target_dataset_id = "typed_csv"
[tasks.config]
path = "data/rows.csv"
format = "csv"

[[tasks]]
id = "one_row"
type = "transformation"
dependencies = ["load_json", "load_csv"]
[tasks.config]
sql = \"\"\"
SELECT j.d AS d, j.day AS day, j.at AS at, j.s AS s
FROM `{ns}`.`typed_json` j
JOIN `{ns}`.`typed_csv` c ON c.i = j.i
\"\"\"
"""


def test_every_type_through_arrow_and_through_spark_s_reader(
    tmp_path: Path, spark_url: str, spark_ns: str, spark_db: DatabaseService, dropped: list[str]
) -> None:
    dropped.append(spark_ns)
    project = make_project(tmp_path, engine_url=spark_url, example=False)
    data = project / "data"
    data.mkdir(exist_ok=True)
    row = {
        "s": 'it\'s a \\ "quoted" 100% string',
        "i": 9007199254740993,
        "f": 2.5,
        "d": "12345.6789",
        "b": True,
        "day": "2024-01-15",
        "at": "2024-01-15 10:30:05.123456",
    }
    (data / "rows.jsonl").write_text(json.dumps(row) + "\n")
    (data / "rows.csv").write_text(
        "s,i,f,d,b,day,at\n"
        '"it\'s a \\ ""quoted"" 100% string",9007199254740993,2.5,12345.6789,yes,'
        "2024-01-15,2024-01-15T10:30:05.123456\n"
    )
    write_flow(project, "typed", TYPED.format(ns=spark_ns))
    result = cli("run", "typed", "--json", project=project)
    assert result.exit_code == 0, result.output
    q = spark_db.qualified
    want = (
        row["s"],
        row["i"],
        2.5,
        "12345.6789000000",
        True,
        "2024-01-15",
        "2024-01-15 10:30:05.123456",
    )
    for name in ("typed_json", "typed_csv"):
        (got,) = rows(
            spark_db,
            f"SELECT s, i, f, CAST(d AS STRING), b, CAST(day AS STRING), CAST(at AS STRING) "
            f"FROM {q(spark_ns, name)}",
        )
        assert got == want, name
    ingest = (
        run_dir(project, json.loads(result.stdout)["dag_run_id"]) / "load_json.sql"
    ).read_text()
    assert "sent as Arrow" in ingest  # JSON Lines: the checked reader's rows, as Arrow
    one = {t["task_id"]: t for t in json.loads(result.stdout)["tasks"]}["one_row"]["result"]
    assert one["d"] == pytest.approx(12345.6789) and one["day"] == "2024-01-15"
    assert one["at"] == "2024-01-15T10:30:05.123456" and one["s"] == row["s"]


def test_doctor_and_the_configurations_spark_refuses(tmp_path: Path, spark_url: str) -> None:
    project = make_project(tmp_path, engine_url=spark_url)
    result = cli("doctor", project=project)
    assert result.exit_code == 0, result.output
    assert "spark at sc://127.0.0.1" in result.output

    # Spark keeps no metadata; a wrong option; a server that is not there.
    for engine, metadata, code, words in (
        ("duckdb:///w.duckdb", spark_url, 2, "Spark holds datasets only"),
        (spark_url + "/;table_format=orc", None, 2, "table_format must be one of"),
        ("sc://127.0.0.1:9", None, 3, "cannot reach the warehouse at sc://127.0.0.1:9"),
    ):
        other = make_project(
            tmp_path / str(code) / words[:5], engine_url=engine, metadata_url=metadata
        )
        result = cli("run", "data_pipeline", project=other)
        assert result.exit_code == code, result.output
        assert words in result.output, result.output
        assert "Traceback" not in result.output


def test_the_server_listens_on_this_machine_only(spark_server: Any) -> None:
    from tests.sockets import assert_loopback_only

    found = assert_loopback_only(spark_server.sessions[0], expect_port=spark_server.port)
    assert all(s.address == "127.0.0.1" for s in found), found


MODELS = """
id = "models"
namespace = "{ns}"

[[tasks]]
id = "customers"
type = "ingestion"
target_dataset_id = "customers"
primary_key = ["id"]
columns = [{{name = "id", schema_type = "integer", required = true}}, {{name = "name"}}]
[tasks.config]
path = "data/customers.csv"
format = "csv"

[[tasks]]
id = "orders"
type = "ingestion"
target_dataset_id = "orders"
[tasks.config]
path = "data/orders.csv"
format = "csv"

[[tasks]]
id = "by_customer"
type = "transformation"
target_dataset_id = "by_customer"
[tasks.config]
sql = \"\"\"
SELECT c.name, COUNT(*) AS n
FROM {{{{ ref('orders') }}}} o JOIN {{{{ ref('customers') }}}} c ON c.id = o.customer
GROUP BY c.name
\"\"\"
[[tasks.checks]]
type = "not_null"
column = "name"
[[tasks.checks]]
type = "unique"
column = "name"
[[tasks.checks]]
type = "relationships"
column = "name"
to = "ref('customers')"
field = "name"
[[tasks.checks]]
type = "accepted_values"
column = "name"
values = ["ann", "bob"]
severity = "{severity}"
"""


def test_refs_and_checks_guard_the_publish_on_spark(
    tmp_path: Path, spark_url: str, spark_ns: str, spark_db: DatabaseService, dropped: list[str]
) -> None:
    """ref() edges without dependencies and the checks' SQL on Spark: a failing error check
    keeps the old parquet table, a warn check publishes."""
    dropped.append(spark_ns)
    project = make_project(tmp_path, engine_url=spark_url, example=False)
    data = project / "data"
    data.mkdir(exist_ok=True)
    (data / "customers.csv").write_text("id,name\n1,ann\n2,bob\n3,cid\n")
    (data / "orders.csv").write_text("id,customer\n1,1\n2,1\n3,2\n")
    write_flow(project, "models", MODELS.format(ns=spark_ns, severity="error"))
    first = cli("run", "models", "--json", project=project)
    assert first.exit_code == 0, first.output
    table = spark_db.qualified(spark_ns, "by_customer")
    assert _fresh(spark_db, table) == [("ann", 2), ("bob", 1)]
    (data / "orders.csv").write_text("id,customer\n1,1\n2,3\n3,3\n")  # cid is not accepted
    failed = cli("run", "models", "--json", project=project)
    assert failed.exit_code == 1
    error = next(t for t in json.loads(failed.stdout)["tasks"] if t["task_id"] == "by_customer")
    assert "check 'accepted_values_name' (accepted_values on name): 1 failing row" in error["error"]
    assert _fresh(spark_db, table) == [("ann", 2), ("bob", 1)]
    write_flow(project, "models", MODELS.format(ns=spark_ns, severity="warn"))
    warned = cli("run", "models", "--json", project=project)
    assert warned.exit_code == 0, warned.output
    checks = next(t for t in json.loads(warned.stdout)["tasks"] if t["task_id"] == "by_customer")
    assert {c["name"]: c["status"] for c in checks["checks"]} == {
        "not_null_name": "pass",
        "unique_name": "pass",
        "relationships_name": "pass",
        "accepted_values_name": "warn",
    }
    assert _fresh(spark_db, table) == [("ann", 1), ("cid", 2)]
    with spark_db.connect() as conn:
        assert not [n for n in spark_db.table_names(conn, spark_ns) if n.startswith("_qtmp_")]


def _fresh(db: DatabaseService, table: str) -> list[tuple[Any, ...]]:
    """The table's rows as they are now: this session may hold an older file listing of it
    (a reader of a table that a swap replaced refreshes it, as the README says)."""
    with db.connect() as conn:
        conn.exec_driver_sql(f"REFRESH TABLE {table}")
    return rows(db, f"SELECT name, n FROM {table} ORDER BY name")


VIEWS = """
id = "views"
namespace = "{ns}"

[[tasks]]
id = "orders"
type = "ingestion"
target_dataset_id = "orders"
[tasks.config]
path = "data/orders.csv"
format = "csv"

[[tasks]]
id = "big"
type = "transformation"
target_dataset_id = "big_orders"
materialized = "view"
[tasks.config]
sql = "SELECT id FROM {{ ref('orders') }} WHERE customer > 1"
"""


def test_a_view_model_on_spark(
    tmp_path: Path, spark_url: str, spark_ns: str, spark_db: DatabaseService, dropped: list[str]
) -> None:
    """A view is published, replaced by the next run, and reads the table as it is now."""
    dropped.append(spark_ns)
    project = make_project(tmp_path, engine_url=spark_url, example=False)
    (project / "data").mkdir(exist_ok=True)
    write_flow(project, "views", VIEWS.replace("{ns}", spark_ns))
    view = spark_db.qualified(spark_ns, "big_orders")
    for text, want in (
        ("id,customer\n1,1\n2,2\n", [(2,)]),
        ("id,customer\n3,3\n4,4\n", [(3,), (4,)]),
    ):
        (project / "data" / "orders.csv").write_text(text)
        result = cli("run", "views", "--json", project=project)
        assert result.exit_code == 0, result.output
        with spark_db.connect() as conn:
            conn.exec_driver_sql(f"REFRESH TABLE {spark_db.qualified(spark_ns, 'orders')}")
        assert rows(spark_db, f"SELECT id FROM {view} ORDER BY id") == want
