"""``ls``: tasks, datasets and flows of a project, narrowed by a selection."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import cli, make_project, write_flow

OTHER = """\
id = "other"
namespace = "o"
[[tasks]]
id = "solo"
type = "transformation"
target_dataset_id = "solo_out"
[tasks.config]
sql = "SELECT 1 AS x"
"""


def test_ls_lists_tasks_datasets_and_flows(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    write_flow(project, "other", OTHER)
    tasks = cli("ls", project=project)
    assert tasks.exit_code == 0, tasks.output
    assert tasks.stdout.splitlines() == [
        "data_pipeline.ingest_orders",
        "data_pipeline.calculate_stats",
        "data_pipeline.filter_high_value",
        "other.solo",
    ]
    one = cli("ls", "data_pipeline", "--select", "calculate_stats+", project=project)
    assert one.stdout.splitlines() == [
        "data_pipeline.calculate_stats",
        "data_pipeline.filter_high_value",
    ]
    datasets = json.loads(
        cli(
            "ls", "data_pipeline", "--resource-type", "dataset", "-o", "json", project=project
        ).stdout
    )
    landing = next(d for d in datasets if d["dataset"] == "orders_landing")
    assert landing["writer"] == "data_pipeline.ingest_orders"
    assert landing["readers"] == [
        "data_pipeline.calculate_stats",
        "data_pipeline.filter_high_value",
    ] or ("data_pipeline.calculate_stats" in landing["readers"])
    flows = cli("ls", "--resource-type", "flow", "--select", "solo", project=project)
    assert flows.stdout.splitlines() == ["other"]
    assert cli("ls", "--resource-type", "table", project=project).exit_code == 2
    none = cli("ls", "--select", "nothing_like_it", project=project)
    assert none.exit_code == 2 and "no task of any flow matches" in none.stderr
