"""Shell completion of ids through Typer's completion protocol (what bash asks for)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import cli, make_project


def complete(project: Path, line: str) -> list[str]:
    """The candidates bash gets for the last word of ``line``."""
    words = line.split(" ")
    env = {
        **os.environ,
        "_QARION_ETL_COMPLETE": "complete_bash",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(words) - 1),
    }
    script = Path(sys.executable).parent / "qarion-etl"
    done = subprocess.run(
        [str(script)], cwd=project, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_flows_tasks_runs_and_keys_complete(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    assert cli("run", "data_pipeline", "--run-id", "r-complete", project=project).exit_code == 0
    assert complete(project, "qarion-etl graph da") == ["data_pipeline"]
    assert complete(project, "qarion-etl validate flows/") == ["flows/data_pipeline.toml"]
    assert complete(project, "qarion-etl graph data_pipeline --select +calc") == [
        "+calculate_stats"
    ]
    assert complete(project, "qarion-etl xcom get ") == [
        "calculate_stats",
        "filter_high_value",
        "ingest_orders",
    ]
    assert complete(project, "qarion-etl run data_pipeline --select calc") == ["calculate_stats"]
    assert complete(project, "qarion-etl run data_pipeline --exclude +f") == ["+filter_high_value"]
    assert complete(project, "qarion-etl render data_pipeline fil") == ["filter_high_value"]
    assert complete(project, "qarion-etl runs show ") == ["latest", "r-complete"]
    assert complete(project, "qarion-etl report r-") == ["r-complete"]
    keys = complete(project, "qarion-etl xcom get calculate_stats --key a")
    assert keys == ["avg_value"]
    # outside a project: nothing, and no error on the command line
    assert complete(tmp_path, "qarion-etl graph ") == []
