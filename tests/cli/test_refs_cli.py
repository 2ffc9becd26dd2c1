"""Datasets read through ``ref()`` in ``graph``, ``ls``, the ``dataset:`` selector and ``render``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import cli, make_project, write_flow

SEED = """
id = "seed"
namespace = "raw"
[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "orders"
[tasks.config]
path = "data/orders.csv"
format = "csv"
"""

MART = """
id = "mart"
namespace = "marts"
[[tasks]]
id = "stg"
type = "transformation"
target_dataset_id = "stg_orders"
materialized = "ephemeral"
[tasks.config]
sql = "SELECT id, {{ double('value') }} AS v FROM {{ ref('seed', 'orders') }}"

[[tasks]]
id = "final"
type = "transformation"
target_dataset_id = "final"
[tasks.config]
sql = "SELECT COUNT(*) AS n FROM {{ ref('stg_orders') }} WHERE v > 0"
"""


def _project(tmp_path: Path) -> Path:
    project = make_project(tmp_path, example=False)
    write_flow(project, "seed", SEED)
    write_flow(project, "mart", MART)
    (project / "macros").mkdir()
    (project / "macros" / "m.sql").write_text(
        "{% macro double(col) %}({{ col }} * 2){% endmacro %}\n"
    )
    return project


def test_graph_shows_the_ref_edges_and_the_datasets(tmp_path: Path) -> None:
    project = _project(tmp_path)
    text = cli("graph", "mart", project=project)
    assert text.exit_code == 0, text.output
    assert "stg [transformation] reads seed.orders; writes stg_orders" in text.stdout
    assert "final [transformation] reads stg_orders; writes final  <- stg" in text.stdout
    doc = json.loads(cli("graph", "mart", "--format", "json", project=project).stdout)
    assert doc["edges"] == [{"from": "stg", "to": "final", "reason": "ref"}]
    assert doc["nodes"][0]["refs"] == ["seed.orders"]
    # With the datasets drawn, a ref edge goes through its dataset.
    doc = json.loads(cli("graph", "mart", "--datasets", "--format", "json", project=project).stdout)
    assert doc["edges"] == []
    assert doc["datasets"] == ["final", "seed.orders", "stg_orders"]
    assert {"task": "final", "dataset": "stg_orders", "how": "reads"} in doc["dataset_edges"]
    mermaid = cli("graph", "mart", "--datasets", "--format", "mermaid", project=project).stdout
    assert "d_seed_orders -.-> t_stg" in mermaid and "t_stg -.-> t_final" not in mermaid


def test_ls_lists_datasets_read_through_ref_in_their_own_namespace(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = cli("ls", "--resource-type", "dataset", "-o", "json", project=project)
    assert done.exit_code == 0, done.output
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert rows["raw.orders"]["writer"] == "seed.load"
    assert rows["raw.orders"]["readers"] == ["mart.stg"]
    assert rows["marts.stg_orders"]["readers"] == ["mart.final"]
    tasks = json.loads(cli("ls", "-o", "json", project=project).stdout)
    assert next(t for t in tasks if t["name"] == "mart.stg")["refs"] == ["seed.orders"]


def test_the_dataset_selector_sees_ref_readers(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = cli("ls", "--select", "dataset:orders", project=project)
    assert done.exit_code == 0, done.output
    assert done.stdout.split() == ["mart.stg", "seed.load"]
    done = cli("ls", "--select", "dataset:stg_orders", project=project)
    assert done.stdout.split() == ["mart.stg", "mart.final"]


def test_render_inlines_the_ephemeral_and_expands_the_macro(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = cli("render", "mart", "final", project=project)
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == (
        'SELECT COUNT(*) AS n FROM (\n    SELECT id, (value * 2) AS v FROM "raw"."orders"\n'
        ') AS "stg_orders" WHERE v > 0'
    )


def test_ls_selection_over_the_project_crosses_flows(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = cli("ls", "--select", "+final", project=project)
    assert done.exit_code == 0, done.output
    assert done.stdout.split() == ["mart.stg", "mart.final", "seed.load"]
    done = cli("ls", "--select", "load+", project=project)
    assert done.stdout.split() == ["mart.stg", "mart.final", "seed.load"]
    # One flow named: the selection stays inside it.
    done = cli("ls", "mart", "--select", "+final", project=project)
    assert done.stdout.split() == ["mart.stg", "mart.final"]


def test_an_ephemeral_task_of_another_flow_is_inlined_too(tmp_path: Path) -> None:
    project = _project(tmp_path)
    write_flow(
        project,
        "other",
        """
        id = "other"
        [[tasks]]
        id = "top"
        type = "transformation"
        target_dataset_id = "top"
        [tasks.config]
        sql = "SELECT * FROM {{ ref('mart', 'stg_orders') }} x JOIN {{ ref('final') }} f ON 1 = 1"
        """,
    )
    done = cli("render", "other", "top", project=project)
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == (
        'SELECT * FROM (\n    SELECT id, (value * 2) AS v FROM "raw"."orders"\n'
        ') AS x JOIN "marts"."final" f ON 1 = 1'
    )


def test_a_macro_cannot_reach_python_internals(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project / "macros" / "evil.sql").write_text(
        "{% macro evil() %}\n{{ ref.__globals__ }}\n{% endmacro %}\n"
    )
    done = cli("validate", "mart", project=project)
    assert done.exit_code == 2
    assert "macros/evil.sql:2: macro reaches for '__globals__'" in done.output


def test_graph_without_a_flow_draws_the_flows_and_their_ref_edges(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = cli("graph", project=project)
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == ["2 flows", "  mart  <- seed (orders)", "  seed"]
    doc = json.loads(cli("graph", "-f", "json", project=project).stdout)
    assert doc["edges"] == [{"from": "seed", "to": "mart", "datasets": ["orders"]}]
    assert 'f_seed -->|"orders"| f_mart' in cli("graph", "-f", "mermaid", project=project).stdout
    bad = cli("graph", "-f", "svg", project=project)
    assert bad.exit_code == 2 and "graph without a flow draws text, mermaid, json" in bad.output


def test_graph_names_a_one_name_ref_to_another_flow_by_its_flow(tmp_path: Path) -> None:
    project = _project(tmp_path)
    mart = (project / "flows" / "mart.toml").read_text()
    write_flow(project, "mart", mart.replace("ref('seed', 'orders')", "ref('orders')"))
    done = cli("graph", "mart", project=project)
    assert "stg [transformation] reads seed.orders; writes stg_orders" in done.stdout
