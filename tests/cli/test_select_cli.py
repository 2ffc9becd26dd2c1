"""``run --select/--exclude/--selector`` through the CLI: dbt's grammar, tags, named selectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import cli, make_project, write_flow

SHOP = """\
id = "shop"
namespace = "shop"
tags = ["shop"]

[[tasks]]
id = "ingest_orders"
type = "ingestion"
target_dataset_id = "orders_landing"
tags = ["nightly"]
[tasks.config]
path = "data/orders.csv"
format = "csv"

[[tasks]]
id = "calc_stats"
type = "transformation"
source_dataset_id = "orders_landing"
target_dataset_id = "orders_stats"
tags = ["nightly", "finance"]
[tasks.config]
sql = "SELECT COUNT(*) AS n FROM {{ source_dataset }}"

[[tasks]]
id = "report"
type = "transformation"
dependencies = ["calc_stats"]
target_dataset_id = "report_t"
[tasks.config]
sql = "SELECT 1 AS x"
"""

SELECTORS = """
[selectors]
nightly = "tag:nightly,type:ingestion"
finance_and_after = ["tag:finance+"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = make_project(tmp_path / "p")
    write_flow(project, "shop", SHOP)
    with (project / "qarion-etl.toml").open("a") as f:
        f.write(SELECTORS)
    return project


def planned(project: Path, *args: str) -> list[str]:
    result = cli("run", "shop", "--dry-run", "--json", *args, project=project)
    assert result.exit_code == 0, result.output
    return [t["task_id"] for t in json.loads(result.stdout)["tasks"]]


def test_the_grammar_through_run(project: Path) -> None:
    assert planned(project, "-s", "tag:nightly,type:ingestion") == ["ingest_orders"]
    assert planned(project, "-s", "tag:shop") == ["ingest_orders", "calc_stats", "report"]
    assert planned(project, "-s", "report ingest_orders") == ["ingest_orders", "report"]
    assert planned(project, "-s", "report", "-s", "ingest_orders") == ["ingest_orders", "report"]
    assert planned(project, "-s", "dataset:orders_landing") == ["ingest_orders", "calc_stats"]
    assert planned(project, "-s", "1+report") == ["calc_stats", "report"]
    assert planned(project, "-s", "ingest_orders+1") == ["ingest_orders", "calc_stats"]
    assert planned(project, "-s", "@calc_stats") == ["ingest_orders", "calc_stats", "report"]
    assert planned(project, "-s", "calc*+", "--exclude", "type:trans*,report") == ["calc_stats"]


def test_a_comma_is_an_intersection_not_a_union(project: Path) -> None:
    result = cli("run", "shop", "--dry-run", "-s", "ingest_orders,report", project=project)
    assert result.exit_code == 2
    assert "the selection is empty" in result.stderr
    assert "Traceback" not in result.output


def test_named_selectors(project: Path) -> None:
    assert planned(project, "--selector", "nightly") == ["ingest_orders"]
    assert planned(project, "--selector", "finance_and_after") == ["calc_stats", "report"]
    assert planned(project, "--selector", "nightly", "-s", "report") == ["ingest_orders", "report"]
    assert planned(project, "--selector", "finance_and_after", "--exclude", "report") == [
        "calc_stats"
    ]
    bad = cli("run", "shop", "--selector", "nighlty", project=project)
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "--selector nighlty: no selector 'nighlty'" in bad.stderr
    assert "(did you mean 'nightly'?)" in bad.stderr


def test_a_selector_runs_for_real(project: Path) -> None:
    result = cli("run", "shop", "--selector", "nightly", "--json", project=project)
    assert result.exit_code == 0, result.output
    tasks = json.loads(result.stdout)["tasks"]
    assert [(t["task_id"], t["status"]) for t in tasks] == [("ingest_orders", "success")]


@pytest.mark.parametrize(
    ("select", "message"),
    [
        ("tag:nitely", "no task has tag 'nitely' in this flow (did you mean 'nightly'?)"),
        ("type:ingest", "no task of type 'ingest' in this flow (did you mean 'ingestion'?)"),
        ("dataset:orders", "no task writes or reads dataset 'orders' in this flow"),
        ("repot+", "no task 'repot' in this flow (did you mean 'report'?)"),
        ("foo:bar", "unknown selector method 'foo' (known: tag, type, dataset, or a task id)"),
        ("@report+", "'@' and a '+' after the name cannot be used together"),
    ],
)
def test_what_matches_nothing_is_a_usage_error(project: Path, select: str, message: str) -> None:
    result = cli("run", "shop", "--select", select, project=project)
    assert result.exit_code == 2
    assert f"--select {select}: {message}" in result.stderr
    assert "Traceback" not in result.output


def test_ls_and_graph_take_the_grammar_too(project: Path) -> None:
    listed = cli("ls", "shop", "--select", "tag:finance+", project=project)
    assert listed.stdout.splitlines() == ["shop.calc_stats", "shop.report"]
    drawn = cli("graph", "shop", "--select", "tag:nightly,type:ingestion", project=project)
    assert drawn.exit_code == 0, drawn.output
    assert drawn.stdout.splitlines()[0].startswith("shop (1 of 3 tasks")


def test_tags_in_a_flow_file_are_checked_with_their_line(project: Path) -> None:
    write_flow(
        project,
        "bad",
        """\
        id = "bad"
        tags = "nightly"
        [[tasks]]
        id = "a"
        type = "transformation"
        tags = ["ok", "not ok"]
        [tasks.config]
        sql = "SELECT 1 AS x"
        """,
    )
    result = cli("validate", "bad", project=project)
    assert result.exit_code == 2
    assert "bad.toml:2: 'tags' must be a list of strings, got 'nightly'" in result.stderr
    assert "bad.toml:6: task 'a': tag 'not ok' must be letters, digits, '_', '-' or '.'" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("x = 5", "[selectors].x must be a string or a list of strings, got 5"),
        ('x = ["a", 1]', "[selectors].x must be a string or a list of strings"),
        ('x = "  "', "[selectors].x selects nothing"),
        ('"a b" = "x"', "selector name 'a b' must be letters, digits, '_' or '-'"),
    ],
)
def test_bad_selectors_in_the_config_are_located(tmp_path: Path, table: str, message: str) -> None:
    project = make_project(tmp_path / "p")
    config = project / "qarion-etl.toml"
    text = config.read_text()
    config.write_text(f"{text}\n[selectors]\n{table}\n")
    result = cli("run", "data_pipeline", "--dry-run", project=project)
    assert result.exit_code == 2
    assert f"qarion-etl.toml:{len(text.splitlines()) + 3}: {message}" in result.stderr


def test_selectors_must_be_a_table(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    config = project / "qarion-etl.toml"
    config.write_text(f"selectors = 3\n{config.read_text()}")
    result = cli("run", "data_pipeline", "--dry-run", project=project)
    assert (
        result.exit_code == 2 and "qarion-etl.toml:1: 'selectors' must be a table" in result.stderr
    )
