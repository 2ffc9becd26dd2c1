"""Column types inferred from a file that declares none: the rules, and loads on every engine."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from qarion_etl.tasks.inference import fits, narrowest
from tests.conftest import unique_name
from tests.helpers import cli
from tests.runkit import drop_namespace, make_project, query, results_file, table, write_flow, xcom

FLOW = """
id = "infer"
namespace = "{ns}"

[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "landing"
{schema}
[tasks.config]
path = "data/in.{fmt}"
format = "{fmt}"
"""

CSV = """id,price,qty_text,day,at,flag,code,note,empty
1,10.5,7,2024-01-15,2024-01-15 10:00:00,true,007,plain,
2,3,8,2024-02-29,2024-02-29T23:59:59,FALSE,010,"a, b",
3,-2.25e1,x,2023-12-31,2023-12-31,True,123,3,
"""


def _infer(values: list[Any]) -> str:
    current: str | None = None
    for value in values:
        if value is not None:
            current = narrowest(current, value)
    return current or "string"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1", "-2", "+3"], "integer"),
        (["1", "2.5"], "float"),
        (["1e3", "2"], "float"),
        (["1", "9223372036854775808"], "string"),  # beyond 64 bits: kept exact, as text
        (["007", "8"], "string"),  # a code with leading zeros stays text
        (["0", "0.5"], "float"),
        (["nan", "1"], "string"),
        (["2024-01-01", "2024-12-31"], "date"),
        (["2024-01-01", "2024-01-02 10:00:00"], "timestamp"),
        (["2024-01-01T10:00:00+02:00"], "timestamp"),
        (["20240101"], "integer"),
        (["2024-02-30"], "string"),
        (["true", "False"], "boolean"),
        (["1", "0"], "integer"),
        (["yes", "no"], "string"),
        (["true", "1"], "string"),
        ([None, None], "string"),
        ([None, "4"], "integer"),
        ([1, 2], "integer"),
        ([1, 2.5], "float"),
        ([True, False], "boolean"),
        ([1, True], "string"),
        (["1", 2], "integer"),
        ([{"a": 1}], "string"),
    ],
)
def test_narrowest_type_that_fits_every_value(values: list[Any], expected: str) -> None:
    assert _infer(values) == expected


def test_fits_refuses_what_would_not_load() -> None:
    assert not fits("inf", "float") and not fits("1.5", "integer")
    assert not fits("2024-13-01", "date") and fits("2024-01-01", "timestamp")


@pytest.fixture
def ns(engine_url: str):  # type: ignore[no-untyped-def]
    name = unique_name("inf")
    yield name
    drop_namespace(engine_url, name)


def _project(
    tmp_path: Path, url: str, ns: str, text: str, fmt: str = "csv", schema: str = ""
) -> Path:
    project = make_project(tmp_path, engine_url=url, example=False)
    (project / "data").mkdir(exist_ok=True)
    (project / "data" / f"in.{fmt}").write_text(text)
    write_flow(project, "infer", FLOW.format(ns=ns, fmt=fmt, schema=schema))
    return project


def _run(project: Path, run_id: str) -> Any:
    return cli("run", "infer", "--run-id", run_id, project=project)


INFERRED = [
    {"name": "id", "schema_type": "integer"},
    {"name": "price", "schema_type": "float"},
    {"name": "qty_text", "schema_type": "string"},
    {"name": "day", "schema_type": "date"},
    {"name": "at", "schema_type": "timestamp"},
    {"name": "flag", "schema_type": "boolean"},
    {"name": "code", "schema_type": "string"},
    {"name": "note", "schema_type": "string"},
    {"name": "empty", "schema_type": "string"},
]


def test_csv_types_are_inferred_loaded_and_reported(
    tmp_path: Path, engine_url: str, ns: str
) -> None:
    project = _project(tmp_path, engine_url, ns, CSV)
    result = _run(project, "r1")
    assert result.exit_code == 0, result.output + result.stderr
    task = results_file(project, "r1", "infer")["tasks"]
    load = task["load"] if isinstance(task, dict) else task[0]
    assert load["result"]["inferred_columns"] == INFERRED
    assert xcom(project, "load", key="inferred_columns", flow_id="infer") == INFERRED
    rows = query(
        engine_url,
        f"SELECT id, price, code, day, flag FROM {table(engine_url, ns, 'landing')} ORDER BY id",
    )
    assert [r[0] for r in rows] == [1, 2, 3]
    assert [float(r[1]) for r in rows] == [10.5, 3.0, -22.5]
    assert [r[2] for r in rows] == ["007", "010", "123"]
    if not engine_url.startswith("sqlite"):  # SQLite keeps dates as text
        assert rows[1][3] == dt.date(2024, 2, 29)
    assert [bool(r[4]) for r in rows] == [True, False, True]


def test_declared_columns_are_not_inferred(tmp_path: Path, engine_url: str, ns: str) -> None:
    schema = 'columns = [{name = "id", schema_type = "string"}]'
    project = _project(tmp_path, engine_url, ns, "id,n\n1,2\n", schema=schema)
    assert _run(project, "r1").exit_code == 0
    load = results_file(project, "r1", "infer")["tasks"]
    load = load["load"] if isinstance(load, dict) else load[0]
    assert "inferred_columns" not in load["result"]
    assert [
        str(r[0]) for r in query(engine_url, f"SELECT id FROM {table(engine_url, ns, 'landing')}")
    ] == ["1"]


def test_a_bad_row_is_still_located(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns, "id,n\n1,2\n2\n")
    result = _run(project, "r1")
    assert result.exit_code == 1
    assert "data/in.csv:3" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("engine_url", ["duckdb", "sqlite"], indirect=True)
def test_jsonl_types_are_inferred(tmp_path: Path, engine_url: str, ns: str) -> None:
    text = '{"id": 1, "v": 1.5, "ok": true, "day": "2024-01-01", "tags": [1]}\n'
    text += '{"id": 2, "v": 2, "ok": false, "day": "2024-01-02", "tags": {"a": 1}}\n'
    project = _project(tmp_path, engine_url, ns, text, fmt="jsonl")
    result = _run(project, "r1")
    assert result.exit_code == 0, result.output + result.stderr
    load = results_file(project, "r1", "infer")["tasks"]
    load = load["load"] if isinstance(load, dict) else load[0]
    assert [(c["name"], c["schema_type"]) for c in load["result"]["inferred_columns"]] == [
        ("id", "integer"),
        ("v", "float"),
        ("ok", "boolean"),
        ("day", "date"),
        ("tags", "string"),
    ]
    rows = query(engine_url, f"SELECT id, v FROM {table(engine_url, ns, 'landing')} ORDER BY id")
    assert rows == [(1, 1.5), (2, 2.0)]


TWO_SEEDS = """
id = "infer"
namespace = "{ns}"

[input]
primary_key = ["id"]
columns = [{{name = "id", schema_type = "integer"}}, {{name = "label", schema_type = "string"}}]

[[tasks]]
id = "flow_schema"
type = "ingestion"
target_dataset_id = "labels"
[tasks.config]
path = "data/labels.csv"
format = "csv"

[[tasks]]
id = "own_schema"
type = "ingestion"
target_dataset_id = "payments"
primary_key = ["payment_id"]
columns = [
  {{name = "payment_id", schema_type = "integer", required = true}},
  {{name = "amount", schema_type = "decimal"}},
]
[tasks.properties]
processing_type = "INCREMENTAL"
[tasks.config]
path = "data/payments.csv"
format = "csv"
"""


def test_each_ingestion_loads_by_its_own_schema(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = make_project(tmp_path, engine_url=engine_url, example=False)
    data = project / "data"
    data.mkdir(exist_ok=True)
    (data / "labels.csv").write_text("id,label\n1,one\n")
    (data / "payments.csv").write_text("payment_id,amount\n10,1.50\n11,2.25\n")
    write_flow(project, "infer", TWO_SEEDS.format(ns=ns))
    assert _run(project, "r1").exit_code == 0
    # The task's own key upserts: payment 11 is replaced, 12 added.
    (data / "payments.csv").write_text("payment_id,amount\n11,9.75\n12,3\n")
    assert _run(project, "r2").exit_code == 0
    rows = query(
        engine_url,
        f"SELECT payment_id, amount FROM {table(engine_url, ns, 'payments')} ORDER BY payment_id",
    )
    assert [(r[0], float(r[1])) for r in rows] == [(10, 1.5), (11, 9.75), (12, 3.0)]
    # Its own required column and key are enforced, naming the file and line.
    (data / "payments.csv").write_text("payment_id,amount\n13,1\n13,2\n")
    result = _run(project, "r3")
    assert result.exit_code == 1 and "duplicate primary key (payment_id=13)" in result.stderr
    assert "data/payments.csv:3" in result.stderr
