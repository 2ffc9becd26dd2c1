"""``graph``: narrowed by a selection, with datasets as nodes, coloured by a run, as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import cli, make_project


def _project(tmp_path: Path) -> Path:
    project = make_project(tmp_path / "p")
    assert cli("run", "data_pipeline", "--run-id", "r1", project=project).exit_code == 0
    return project


def test_graph_as_json_with_datasets_and_statuses(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = cli(
        "graph",
        "data_pipeline",
        "--format",
        "json",
        "--datasets",
        "--run",
        "latest",
        project=project,
    )
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert [n["id"] for n in doc["nodes"]] == [
        "ingest_orders",
        "calculate_stats",
        "filter_high_value",
    ]
    assert {n["status"] for n in doc["nodes"]} == {"success"}
    assert "orders_landing" in doc["datasets"]
    assert {"task": "ingest_orders", "dataset": "orders_landing", "how": "writes"} in doc[
        "dataset_edges"
    ]
    assert {"task": "calculate_stats", "dataset": "orders_landing", "how": "reads"} in doc[
        "dataset_edges"
    ]
    # with datasets as nodes, the task-to-task dataset edges give way to them
    assert all(e["reason"] != "dataset" for e in doc["edges"])
    plain = json.loads(cli("graph", "data_pipeline", "--format", "json", project=project).stdout)
    assert "status" not in plain["nodes"][0] and "datasets" not in plain


def test_graph_coloured_by_a_run_in_mermaid_and_dot(tmp_path: Path) -> None:
    project = _project(tmp_path)
    mermaid = cli("graph", "data_pipeline", "-f", "mermaid", "--run", "r1", project=project).stdout
    assert "classDef success fill:#d9f2dc,stroke:#2e7d32" in mermaid
    assert "class t_calculate_stats success" in mermaid
    dot = cli(
        "graph", "data_pipeline", "-f", "dot", "--run", "r1", "--datasets", project=project
    ).stdout
    assert (
        '"calculate_stats" [label="calculate_stats\\ntransformation", style=filled, fillcolor="#d9f2dc"'
        in dot
    )
    assert '"dataset:orders_landing" [label="orders_landing", shape=cylinder];' in dot
    missing = cli("graph", "data_pipeline", "--run", "nope", project=project)
    assert missing.exit_code == 2 and "no run 'nope'" in missing.stderr


def test_graph_narrowed_by_a_selection(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = cli("graph", "data_pipeline", "--select", "calculate_stats+", project=project)
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0].startswith("data_pipeline (2 of 3 tasks")
    assert [ln.split()[0] for ln in lines[1:]] == ["calculate_stats", "filter_high_value"]
    bad = cli("graph", "data_pipeline", "--select", "calc_stats", project=project)
    assert bad.exit_code == 2 and "did you mean 'calculate_stats'" in bad.stderr


def test_svg_and_html_take_the_selection_and_refuse_dataset_nodes(tmp_path: Path) -> None:
    project = _project(tmp_path)
    svg = cli(
        "graph", "data_pipeline", "-f", "svg", "--select", "calculate_stats+", project=project
    )
    assert svg.exit_code == 0, svg.output
    assert (
        'data-task="calculate_stats"' in svg.stdout
        and 'data-task="ingest_orders"' not in svg.stdout
    )
    assert svg.stdout.count('class="edge') == 1
    refused = cli("graph", "data_pipeline", "-f", "html", "--datasets", project=project)
    assert refused.exit_code == 2
    assert "--datasets draws text, mermaid, dot or json (not svg or html)" in refused.stderr
