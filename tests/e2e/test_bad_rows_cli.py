"""Bad input rows through the command line: the message, the exit code, ``rows_rejected``.

One flow loads the same dirty file twice: once quarantining its bad rows (the task
succeeds and pushes ``rows_rejected``), once with the default ``on_bad_rows = "fail"``
(the task fails, naming the rows, and the run exits 1).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import unique_name
from tests.helpers import cli, make_project, write_flow
from tests.runkit import drop_namespace, query, run_dir, table

FLOW = """
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
on_bad_rows = "{policy}"
max_bad_rows = 5

[[tasks]]
id = "load_strict"
type = "ingestion"
target_dataset_id = "orders_s"
dependencies = ["load_quarantined"]
[tasks.config]
path = "data/orders.csv"
format = "csv"
"""

ORDERS = "id,value\n1,10.5\n2,abc\n3,\n4,7.25\n5,1,2\n6,3.5\n"


@pytest.fixture
def ns(engine_url: str) -> Iterator[str]:
    name = unique_name("cli")
    yield name
    drop_namespace(engine_url, name)


def _project(tmp_path: Path, engine_url: str, ns: str, policy: str = "quarantine") -> Path:
    project = make_project(tmp_path, engine_url=engine_url, example=False)
    (project / "data").mkdir(exist_ok=True)
    (project / "data" / "orders.csv").write_text(ORDERS)
    write_flow(project, "dirty", FLOW.format(ns=ns, policy=policy))
    return project


def test_run_names_bad_rows_exits_1_and_pushes_rows_rejected(
    tmp_path: Path, engine_url: str, ns: str
) -> None:
    project = _project(tmp_path, engine_url, ns)
    result = cli("run", "dirty", "--run-id", "r1", "--json", project=project)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "task 'load_strict'" in result.stderr
    # The reporter indents the lines of a message; each is there, in the file's order.
    named = [
        "data/orders.csv: 3 bad rows:",
        "  data/orders.csv:3: column 'value': 'abc' is not a valid float",
        "  data/orders.csv:4: column 'value': missing required value",
        "  data/orders.csv:6: expected 2 fields, found 3",
    ]
    at = [result.stderr.find(line + "\n") for line in named]
    assert -1 not in at and at == sorted(at), result.stderr
    assert "… and" not in result.stderr
    doc = json.loads(result.stdout)
    status = {t["task_id"]: t["status"] for t in doc["tasks"]}
    assert status == {"load_quarantined": "success", "load_strict": "failed"}
    (done,) = [t for t in doc["tasks"] if t["task_id"] == "load_quarantined"]
    assert done["rows"] == 3
    assert done["result"]["rows_rejected"] == 3
    assert done["result"]["rejects_dataset"] == "orders_q__rejects"

    got = cli(
        "xcom",
        "get",
        "load_quarantined",
        "--key",
        "rows_rejected",
        "--flow",
        "dirty",
        project=project,
    )
    assert got.exit_code == 0, got.output
    assert got.stdout == "3\n"
    rejects = table(engine_url, ns, "orders_q__rejects")
    assert query(
        engine_url, f"SELECT line, column_name, raw_text FROM {rejects} ORDER BY line"
    ) == [
        (3, "value", "2,abc"),
        (4, "value", "3,"),
        (6, None, "5,1,2"),
    ]
    saved = json.loads((run_dir(project, "r1").with_suffix(".json")).read_text())
    (kept,) = [t for t in saved["tasks"] if t["task_id"] == "load_quarantined"]
    assert kept["result"]["rows_rejected"] == 3


def test_validate_locates_a_wrong_bad_row_policy(tmp_path: Path) -> None:
    project = _project(tmp_path, "sqlite:///w.db", "ns", policy="ignore")
    result = cli("validate", project=project)
    assert result.exit_code == 2, result.output
    lines = (project / "flows" / "dirty.toml").read_text().splitlines()
    line = lines.index('on_bad_rows = "ignore"') + 1
    assert (
        f"flows/dirty.toml:{line}: task 'load_quarantined': unknown on_bad_rows 'ignore' "
        "(known: fail, skip, quarantine)"
    ) in result.output
    assert "Traceback" not in result.output
