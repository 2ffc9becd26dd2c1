"""Descriptions and columns in the outputs: ``ls`` (text and JSON), the report, the UI's
task page and ``graph --format html``, HTML-escaped and with secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import cli, make_project, write_flow

FLOW = """
id = "shop"
namespace = "shop"

[[tasks]]
id = "customers"
type = "ingestion"
target_dataset_id = "raw_customers"
description = "Customers as the shop exports them"
primary_key = ["id"]
columns = [
  {name = "id", schema_type = "integer", required = true, description = "The <b>customer</b> number"},
  {name = "name", description = "Full name & title"},
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
id = "customer_orders"
type = "transformation"
target_dataset_id = "customer_orders"
dependencies = ["customers", "orders"]
description = "Orders per customer; token s3cr3t-token must not show"
materialized = "view"
columns = [{name = "orders", description = "How many orders"}]
[tasks.config]
sql = "SELECT 1 AS orders"
"""


def _project(tmp_path: Path) -> Path:
    project = make_project(tmp_path, example=False)
    config = project / "qarion-etl.toml"
    config.write_text(config.read_text() + '\n[credentials.api]\ntoken = "s3cr3t-token"\n')
    (project / "data").mkdir(exist_ok=True)
    (project / "data" / "customers.csv").write_text("id,name\n1,Ann\n")
    (project / "data" / "orders.csv").write_text(
        "order_id,customer_id,amount,day\n1,1,9.5,2024-01-02\n"
    )
    write_flow(project, "shop", FLOW)
    return project


def test_ls_json_shows_descriptions_and_declared_then_inferred_columns(tmp_path: Path) -> None:
    project = _project(tmp_path)
    rows = {r["task_id"]: r for r in json.loads(cli("ls", "-o", "json", project=project).stdout)}
    customers = rows["customers"]
    assert customers["description"] == "Customers as the shop exports them"
    assert customers["columns_source"] == "declared"
    assert customers["columns"][0] == {
        "name": "id",
        "schema_type": "integer",
        "required": True,
        "description": "The <b>customer</b> number",
    }
    assert rows["orders"]["columns"] == [] and rows["orders"]["columns_source"] is None
    model = rows["customer_orders"]
    assert (
        model["materialized"] == "view" and model["columns"][0]["description"] == "How many orders"
    )
    assert rows["customers"]["materialized"] is None
    assert "s3cr3t" not in model["description"] and "token ***" in model["description"]

    assert cli("run", "shop", "--run-id", "r1", project=project).exit_code == 0
    rows = {r["task_id"]: r for r in json.loads(cli("ls", "-o", "json", project=project).stdout)}
    assert rows["orders"]["columns_source"] == "inferred"
    assert [(c["name"], c["schema_type"]) for c in rows["orders"]["columns"]] == [
        ("order_id", "integer"),
        ("customer_id", "integer"),
        ("amount", "float"),
        ("day", "date"),
    ]
    text = cli("ls", "--resource-type", "column", "--select", "orders", project=project).stdout
    assert text.splitlines()[2].split() == ["shop.orders.amount", "float", "inferred"]
    text = cli("ls", "--resource-type", "column", "--select", "customers", project=project).stdout
    first = text.splitlines()[0]
    assert first.split()[:3] == ["shop.customers.id", "integer", "declared"]
    assert first.endswith("The <b>customer</b> number")


def test_html_outputs_show_escaped_descriptions(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert cli("run", "shop", "--run-id", "r1", "--report", project=project).exit_code == 0
    report = next((project / ".qarion" / "runs" / "shop" / "r1").glob("report.html")).read_text()
    graph = cli("graph", "shop", "--format", "html", project=project).stdout
    for page in (report, graph):
        assert "Customers as the shop exports them" in page
        assert "The &lt;b&gt;customer&lt;/b&gt; number" in page and "<b>customer" not in page
        assert "Full name &amp; title" in page and "How many orders" in page
        assert "<code>view</code>" in page
        assert "s3cr3t-token" not in page
    # The run's report also shows what the run inferred for the file without columns.
    assert "inferred from the file" in report and "<code>date</code>" in report


def test_ui_task_page_shows_descriptions(tmp_path: Path) -> None:
    from tests.uikit import get, ui_server

    project = _project(tmp_path)
    assert cli("run", "shop", "--run-id", "r1", project=project).exit_code == 0
    with ui_server(project) as base:
        status, body, _ = get(base + "/tasks/shop/customers")
        assert status == 200
        assert "Customers as the shop exports them" in body
        assert "The &lt;b&gt;customer&lt;/b&gt; number" in body
        status, body, _ = get(base + "/runs/shop/r1")
        assert status == 200 and "How many orders" in body and "s3cr3t-token" not in body
