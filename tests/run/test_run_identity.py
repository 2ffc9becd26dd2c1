"""A run is (flow, run id) everywhere: folders, results files, logs, reports (design §11).

Airflow gives every DAG of a schedule the same run id, so two flows' runs with one id
must never share a file; a hostile run id never names a path outside the run's folder;
the results file of a run whose tasks run in several processes holds every task.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from qarion_etl.run.history import write_results
from qarion_etl.run.logs import file_name, results_file, run_folder
from qarion_etl.run.model import RunResult, RunStatus, TaskOutcome, TaskStatus
from tests.helpers import cli, make_project, write_flow

AIRFLOW_RUN_ID = "scheduled__2026-12-06T00:00:00+00:00"

OTHER = """\
id = "other"
namespace = "other"
[[tasks]]
id = "calculate_stats"
type = "transformation"
[tasks.config]
sql = "SELECT 42 AS other_only"
"""


@settings(max_examples=400, deadline=None)
@given(st.text(min_size=0, max_size=300), st.text(min_size=0, max_size=300))
def test_file_names_are_distinct_and_stay_in_their_folder(a: str, b: str) -> None:
    for text in (a, b):
        name = file_name(text)
        assert name and "/" not in name and "\\" not in name and "\x00" not in name
        assert name not in (".", "..") and not name.startswith(".")
        assert len(name.encode()) <= 255
    if a != b:
        assert file_name(a) != file_name(b)


def test_hostile_run_ids_get_a_folder_of_their_own(tmp_path: Path) -> None:
    state = tmp_path / ".qarion"
    for run_id in (".", "..", "../x", "a/b", "a_b", "", "%2E"):
        folder = run_folder(state, "flow", run_id)
        assert folder.parent == state / "runs" / "flow", run_id
        assert folder.resolve().parent == (state / "runs" / "flow").resolve()
    assert len({run_folder(state, "f", r) for r in (".", "..", "a/b", "a_b", "%2E")}) == 5


def test_dot_run_ids_write_inside_their_flow_folder(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    for run_id in ("..", "."):
        done = cli("run", "data_pipeline", "--run-id", run_id, project=project)
        assert done.exit_code == 0, done.output
    runs = project / ".qarion" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["data_pipeline"]
    names = sorted(p.name for p in (runs / "data_pipeline").iterdir())
    assert names == ["%2E", "%2E.", "%2E..json", "%2E.json"]
    assert not (project / ".qarion" / "run.log").exists()
    assert (runs / "data_pipeline" / "%2E." / "run.log").is_file()


def test_two_flows_with_one_run_id_keep_apart(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    write_flow(project, "other", OTHER)
    for flow in ("data_pipeline", "other"):
        done = cli("run", flow, "--run-id", AIRFLOW_RUN_ID, project=project)
        assert done.exit_code == 0, done.output
    state = project / ".qarion"
    mine = results_file(state, "data_pipeline", AIRFLOW_RUN_ID)
    theirs = results_file(state, "other", AIRFLOW_RUN_ID)
    assert [t["task_id"] for t in json.loads(theirs.read_text())["tasks"]] == ["calculate_stats"]
    assert len(json.loads(mine.read_text())["tasks"]) == 3
    other_sql = (run_folder(state, "other", AIRFLOW_RUN_ID) / "calculate_stats.sql").read_text()
    main_sql = run_folder(state, "data_pipeline", AIRFLOW_RUN_ID) / "calculate_stats.sql"
    assert "other_only" in other_sql and "other_only" not in main_sql.read_text()
    log = (run_folder(state, "other", AIRFLOW_RUN_ID) / "run.log").read_text()
    assert "ingest_orders" not in log and "calculate_stats" in log
    # the report of each flow's run shows its own SQL
    report = cli("report", AIRFLOW_RUN_ID, "--flow", "other", project=project)
    assert report.exit_code == 0, report.output
    html = Path(report.stdout.strip()).read_text()
    assert "other_only" in html and "ingest_orders" not in html


def _one_task(path: str, task: str) -> None:
    outcome = TaskOutcome(task, TaskStatus.SUCCESS, tries=1, rows=1)
    result = RunResult("fan", "r1", 1, RunStatus.RUNNING, "2026-12-06T00:00:00+00:00")
    result.ended_at = "2026-12-06T00:00:01+00:00"
    result.tasks = [outcome]
    assert write_results(result, Path(path), merge="running") == path


def test_results_of_tasks_in_many_processes_merge(tmp_path: Path) -> None:
    path = str(tmp_path / "fan" / "r1.json")
    tasks = [f"part_{i}" for i in range(16)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(8) as pool:
        pool.starmap(_one_task, [(path, t) for t in tasks])
    doc = json.loads(Path(path).read_text())
    assert sorted(t["task_id"] for t in doc["tasks"]) == sorted(tasks)
    assert doc["counts"] == {"success": 16}
    assert [p.name for p in (tmp_path / "fan").iterdir() if p.suffix == ".tmp"] == []
