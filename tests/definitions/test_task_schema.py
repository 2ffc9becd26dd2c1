"""A schema per ingestion task, column descriptions and the materialization keys."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from qarion_etl.definitions.flow import ColumnSpec, InputSpec
from qarion_etl.definitions.flow_parser import load_flow
from qarion_etl.errors import FlowValidationError
from tests.helpers import cli, make_project, write_flow

HEAD = """
id = "shop"

[input]
primary_key = ["id"]
columns = [
  {name = "id", schema_type = "integer", required = true, description = "Order number"},
  {name = "payment_id", schema_type = "integer"},
]
"""

SEEDS = """
[[tasks]]
id = "customers"
type = "ingestion"
target_dataset_id = "raw_customers"
primary_key = ["customer_id"]
columns = [
  {name = "customer_id", schema_type = "int", required = true, description = "Who buys"},
  {name = "first_name", description = "Given name"},
]
[tasks.config]
path = "data/customers.csv"
format = "csv"

[[tasks]]
id = "orders"
type = "ingestion"
target_dataset_id = "raw_orders"
[tasks.config]
path = "data/orders.csv"
format = "csv"

[[tasks]]
id = "payments"
type = "ingestion"
target_dataset_id = "raw_payments"
primary_key = "payment_id"
[tasks.config]
path = "data/payments.csv"
format = "csv"
"""


def _flow(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shop.toml"
    path.write_text(textwrap.dedent(text))
    return path


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(FlowValidationError) as exc:
        load_flow(_flow(tmp_path, text))
    assert exc.value.exit_code == 2
    return [p.format(exc.value.path) for p in exc.value.problems]


def test_each_ingestion_has_its_own_schema_or_the_flows(tmp_path: Path) -> None:
    flow = load_flow(_flow(tmp_path, HEAD + SEEDS))
    customers = flow.task("customers")
    assert customers.primary_key == ("customer_id",)
    assert flow.input_for(customers) == InputSpec(
        ("customer_id",),
        (
            ColumnSpec("customer_id", "integer", True, "Who buys"),
            ColumnSpec("first_name", "string", False, "Given name"),
        ),
    )
    # Nothing declared: the flow's [input] (descriptions kept).
    assert flow.input_for(flow.task("orders")) is flow.input
    assert flow.input.columns[0].description == "Order number"
    # A key of its own (one name is a list of one) over the flow's columns.
    payments = flow.input_for(flow.task("payments"))
    assert payments.primary_key == ("payment_id",) and payments.columns == flow.input.columns


def test_transformation_keys_parse(tmp_path: Path) -> None:
    flow = load_flow(
        _flow(
            tmp_path,
            SEEDS
            + """
[[tasks]]
id = "orders_model"
type = "transformation"
target_dataset_id = "orders"
description = "One row per order"
materialized = "incremental"
unique_key = ["order_id", "line"]
columns = [{name = "order_id", description = "The order"}]
[tasks.config]
sql = "SELECT 1 AS order_id, 1 AS line"
""",
        )
    )
    model = flow.task("orders_model")
    assert model.materialized == "incremental" and model.processing_type == "INCREMENTAL"
    assert model.unique_key == ("order_id", "line")
    assert model.columns == (ColumnSpec("order_id", description="The order"),)
    assert flow.task("orders").materialized == "table"


def test_bad_schema_keys_are_named_with_line_and_task(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "raw"
primary_key = ["idd"]
columns = [
  {name = "id", schema_type = "integr"},
  {name = "id"},
  {name = "note", requried = true},
]
[tasks.config]
path = "x.csv"
format = "csv"
""",
    )
    text = "\n".join(problems)
    assert (
        "shop.toml:7: task 'load': column 'id': unknown schema_type 'integr' (did you mean 'integer'?)"
        in text
    )
    assert "shop.toml:7: task 'load': column 'id' is declared twice" in text
    assert "unknown key 'requried' in column 'note' (did you mean 'required'?)" in text
    assert (
        "shop.toml:6: task 'load': primary_key column 'idd' is not among the task's columns"
        " (did you mean 'id'?)" in text
    )


def test_materialized_is_checked(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "raw"
materialized = "view"
unique_key = "id"
[tasks.config]
path = "x.csv"
format = "csv"

[[tasks]]
id = "m"
type = "transformation"
target_dataset_id = "m"
materialized = "veiw"
columns = [{name = "a", schema_type = "integer"}]
[tasks.config]
sql = "SELECT 1 AS a"

[[tasks]]
id = "n"
type = "transformation"
target_dataset_id = "n"
materialized = "incremental"
[tasks.properties]
processing_type = "FULL_REFRESH"
[tasks.config]
sql = "SELECT 1 AS a"

[[tasks]]
id = "o"
type = "transformation"
target_dataset_id = "o"
unique_key = "a"
primary_key = ["a"]
[tasks.config]
sql = "SELECT 1 AS a"

[[tasks]]
id = "p"
type = "transformation"
materialized = "view"
[tasks.config]
sql = "SELECT 1 AS a"
""",
    )
    text = "\n".join(problems)
    assert "shop.toml:6: task 'load': only a transformation task has 'materialized'" in text
    assert (
        "shop.toml:16: task 'm': 'materialized' must be one of 'table', 'view', 'ephemeral', "
        "'incremental', got 'veiw' (did you mean 'view'?)" in text
    )
    assert "task 'm': unknown key 'schema_type' in column 'a'" in text
    assert (
        "shop.toml:27: task 'n': materialized = 'incremental' and processing_type = 'FULL_REFRESH' disagree"
        in text
    )
    assert "shop.toml:35: task 'o': 'unique_key' needs materialized = \"incremental\"" in text
    assert "shop.toml:36: task 'o': only an ingestion task has a 'primary_key'" in text
    assert "shop.toml:43: task 'p': materialized = 'view' needs 'target_dataset_id'" in text


def test_legacy_incremental_and_unique_key_agree(tmp_path: Path) -> None:
    flow = load_flow(
        _flow(
            tmp_path,
            """
[[tasks]]
id = "m"
type = "transformation"
target_dataset_id = "m"
unique_key = "a"
[tasks.properties]
processing_type = "incremental"
[tasks.config]
sql = "SELECT 1 AS a"
""",
        )
    )
    task = flow.task("m")
    assert task.processing_type == "INCREMENTAL" and task.unique_key == ("a",)
    assert task.materialized == "table"


def test_validate_exits_2_without_traceback(tmp_path: Path) -> None:
    project = make_project(tmp_path, example=False)
    write_flow(
        project,
        "shop",
        """
        [[tasks]]
        id = "m"
        type = "transformation"
        target_dataset_id = "m"
        materialized = "tabel"
        [tasks.config]
        sql = "SELECT 1 AS a"
        """,
    )
    result = cli("validate", "shop", project=project)
    assert result.exit_code == 2
    assert "task 'm': 'materialized' must be one of" in result.stderr
    assert "(did you mean 'table'?)" in result.stderr and "Traceback" not in result.output
