"""``runs list`` and ``runs show``: history you can read (durations, counts, filters, tries)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from tests.helpers import cli, make_project, write_flow

FLOW = """\
id = "hist"
namespace = "h"
[[tasks]]
id = "one"
type = "transformation"
[tasks.config]
sql = "SELECT 1 AS x"
[[tasks]]
id = "two"
type = "transformation"
dependencies = ["one"]
retries = 1
retry_on = "any"
retry_delay_seconds = 0
[tasks.config]
sql = "SELECT {sql}"
[[tasks]]
id = "three"
type = "transformation"
dependencies = ["two"]
[tasks.config]
sql = "SELECT 3 AS x"
"""


def _project(tmp_path: Path) -> Path:
    project = make_project(tmp_path / "p", example=False)
    flow = write_flow(project, "hist", FLOW.format(sql="2 AS x"))
    assert cli("run", "hist", "--run-id", "ok1", project=project).exit_code == 0
    flow.write_text(FLOW.format(sql="nope"))
    assert cli("run", "hist", "--run-id", "bad1", project=project).exit_code == 1
    flow.write_text(FLOW.format(sql="2 AS x"))
    assert cli("run", "hist", "--run-id", "ok2", project=project).exit_code == 0
    return project


def test_runs_list_shows_durations_counts_and_filters(tmp_path: Path) -> None:
    project = _project(tmp_path)
    listed = cli("runs", "list", project=project)
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == [
        "RUN",
        "FLOW",
        "BATCH",
        "STATUS",
        "STARTED",
        "(UTC)",
        "DURATION",
        "TASKS",
    ]
    assert [ln.split()[0] for ln in lines[1:]] == ["ok2", "bad1", "ok1"]
    bad = next(ln for ln in lines if ln.startswith("bad1"))
    assert re.search(r" \d+\.\d+s +1 success 1 failed 1 skipped$", bad), bad
    assert re.search(r" \d+\.\d+s +3 success$", lines[1]), lines[1]

    short = cli("runs", "list", "--limit", "2", project=project)
    assert len(short.stdout.splitlines()) == 3
    assert "1 more (--limit 3 shows them" in short.stderr
    assert "more" not in cli("runs", "list", "--limit", "3", project=project).stderr

    failed = cli("runs", "list", "--status", "failed", "--json", project=project)
    doc = json.loads(failed.stdout)
    assert [r["dag_run_id"] for r in doc] == ["bad1"]
    assert doc[0]["tasks"] == {"success": 1, "failed": 1, "skipped": 1}
    assert doc[0]["duration_seconds"] > 0
    assert (
        cli("runs", "list", "--flow", "other", project=project).stderr.strip() == "No runs match."
    )
    wrong = cli("runs", "list", "--status", "faild", project=project)
    assert wrong.exit_code == 2
    assert "--status 'faild': not a run status (did you mean 'failed'?)" in wrong.stderr


def test_runs_show_gives_durations_and_every_try(tmp_path: Path) -> None:
    project = _project(tmp_path)
    shown = cli("runs", "show", "bad1", project=project)
    assert shown.exit_code == 0
    assert "TASK   STATUS   TRIES  DURATION  ROWS  ERROR" in shown.stdout.replace("  ", "  ")
    assert re.search(r"two +failed +2 +\d+\.\d+s", shown.stdout), shown.stdout
    assert re.search(r"two try 1 failed in \d+\.\d+s: ", shown.stdout), shown.stdout
    latest = json.loads(cli("runs", "show", "latest", "--json", project=project).stdout)
    assert latest["dag_run_id"] == "ok2"
    assert all(t["duration_seconds"] is not None for t in latest["tasks"])


def test_a_narrow_xcom_table_keeps_the_preview_and_drops_less_useful_columns() -> None:
    from qarion_etl.cli.xcom import fit_columns

    header = ("FLOW", "RUN", "BATCH", "TASK", "KEY", "TYPE", "SIZE", "CREATED (UTC)", "PREVIEW")
    row = (
        "data_pipeline", "data_pipeline__20261202T041710_3fde73", "12", "calculate_stats",
        "avg_value", "json", "18", "2026-12-02 04:17:10", "250.5",
    )  # fmt: skip
    assert [header[i] for i in fit_columns(header, [row], 1000)] == list(header)
    at_80 = [header[i] for i in fit_columns(header, [row], 80)]
    assert "PREVIEW" in at_80 and "TASK" in at_80 and "KEY" in at_80
    assert "CREATED (UTC)" not in at_80 and "BATCH" not in at_80
    assert at_80 == ["RUN", "TASK", "KEY", "PREVIEW"] or at_80[-1] == "PREVIEW"
    assert [header[i] for i in fit_columns(header, [row], 120)][-1] == "PREVIEW"


def test_latest_works_wherever_a_run_id_does(tmp_path: Path) -> None:
    project = _project(tmp_path)  # runs ok1, bad1, ok2 of flow hist
    pulled = cli(
        "xcom", "get", "one", "--key", "x", "--flow", "hist", "--run", "latest", project=project
    )
    assert pulled.exit_code == 0 and pulled.stdout.strip() == "1"
    listed = json.loads(
        cli("xcom", "list", "--flow", "hist", "--run", "latest", "--json", project=project).stdout
    )
    assert listed and {e["dag_run_id"] for e in listed} == {"ok2"}
    rendered = cli("render", "hist", "three", "--run-id", "latest", project=project)
    assert rendered.exit_code == 0 and "SELECT 3 AS x" in rendered.stdout
    assert cli("report", "latest", project=project).exit_code == 0
    assert cli("graph", "hist", "--run", "latest", "-f", "json", project=project).exit_code == 0
    nothing = cli("xcom", "list", "--flow", "none", "--run", "latest", project=project)
    assert nothing.exit_code == 2 and "no runs yet of flow 'none'" in nothing.stderr


def test_runs_show_masks_a_secret_the_history_recorded_before_it_was_one(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", example=False)
    write_flow(project, "hist", FLOW.format(sql='* FROM \\"Tok-later-1234\\"'))
    assert cli("run", "hist", "--run-id", "r1", project=project).exit_code == 1
    shown = cli("runs", "show", "r1", "--flow", "hist", "--json", project=project)
    assert "Tok-later-1234" in shown.stdout  # not a secret when the run recorded it
    config = project / "qarion-etl.toml"
    config.write_text(config.read_text() + '\n[credentials.api]\ntoken = "Tok-later-1234"\n')
    for args in ((), ("--json",)):
        shown = cli("runs", "show", "r1", "--flow", "hist", *args, project=project)
        assert shown.exit_code == 0, shown.output
        assert "Tok-later-1234" not in shown.stdout
    assert "Table with name *** does not exist" in shown.stdout


def test_a_resumed_runs_duration_leaves_out_the_wait_before_its_resume(tmp_path: Path) -> None:
    import time

    import duckdb

    project = make_project(tmp_path / "p")
    write_flow(
        project,
        "gated",
        """\
        id = "gated"
        [[tasks]]
        id = "read"
        type = "transformation"
        [tasks.config]
        sql = "SELECT COUNT(*) AS n FROM main.gate"
        """,
    )
    assert cli("run", "gated", "--run-id", "g1", project=project).exit_code == 1
    time.sleep(2.0)
    with duckdb.connect(str(project / "warehouse.duckdb")) as con:
        con.execute("CREATE TABLE main.gate (x INTEGER)")
    resumed = cli("run", "gated", "--resume", "g1", project=project)
    assert resumed.exit_code == 0, resumed.output
    (run,) = json.loads(cli("runs", "list", "--json", project=project).stdout)
    started = dt.datetime.fromisoformat(run["started_at"])
    ended = dt.datetime.fromisoformat(run["ended_at"])
    assert (ended - started).total_seconds() > 2.0
    assert run["status"] == "success" and run["duration_seconds"] < 2.0, run
