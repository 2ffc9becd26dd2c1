"""What a newcomer meets in the first hour: honest lines from init, ls, render, run and ui.

- ``init`` names the project after its folder and, in the current folder, says so
  instead of printing ``cd . && …``;
- ``ls --select`` with a typo suggests the task, as ``run --select`` does;
- ``render`` of an ingestion says "an ingestion task";
- rows a load set aside (quarantined or skipped) show in the task's line and the summary;
- Ctrl-C on ``ui``, as it tells you to, stops it quietly with exit 0 (a real process and
  a real signal);
- a missing extra is installed from the source folder (``pip install -e '…[airflow]'``):
  qarion-etl is not on a package index.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import ROOT, cli, make_project, write_flow
from tests.uikit import free_port


def test_init_in_the_current_folder_names_the_project_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "sales_reports"
    here.mkdir()
    monkeypatch.chdir(here)
    done = cli("init")
    assert done.exit_code == 0, done.output
    assert "Project ready in this folder. Next: qarion-etl run data_pipeline" in done.stderr
    assert "cd ." not in done.output
    shown = cli("config", "show", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["project"]["name"] == "sales_reports"


def test_init_elsewhere_gives_a_cd_that_works_in_a_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    done = cli("init", "my project")
    assert done.exit_code == 0, done.output
    assert "Next: cd 'my project' && qarion-etl run data_pipeline" in done.stderr
    shown = cli("--config", "my project/qarion-etl.toml", "config", "show", "--json")
    assert json.loads(shown.stdout)["project"]["name"] == "my project"


def test_ls_select_with_a_typo_suggests_the_task(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    alone = cli("ls", "--select", "calculate_stat", project=project)
    ran = cli("run", "--select", "calculate_stat", "data_pipeline", project=project)
    assert alone.exit_code == ran.exit_code == 2
    assert "(did you mean 'calculate_stats'?)" in alone.stderr
    assert alone.stderr == ran.stderr  # one flow: the very message of run
    write_flow(
        project,
        "other",
        'id = "other"\n[[tasks]]\nid = "solo"\ntype = "transformation"\n'
        'target_dataset_id = "t"\n[tasks.config]\nsql = "SELECT 1 AS x"\n',
    )
    for select, meant in (
        ("calculate_stat", "calculate_stats"),
        ("+calculate_stat", "calculate_stats"),
        ("tag:x,sol", "solo"),
    ):
        several = cli("ls", "--select", select, project=project)
        assert several.exit_code == 2
        assert several.stderr == (
            f"Error: --select {select}: no task of any flow matches (did you mean '{meant}'?)\n"
        )
    wild = cli("ls", "--select", "calc_*", project=project)
    assert wild.exit_code == 2 and "did you mean" not in wild.stderr


def test_render_of_an_ingestion_uses_an(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    done = cli("render", "data_pipeline", "ingest_orders", project=project)
    assert done.exit_code == 2
    assert "task 'ingest_orders' is an ingestion task: it has no SQL to render" in done.stderr


DIRTY = """
id = "dirty"
namespace = "dirty"

[input]
primary_key = ["id"]
columns = [
  {name = "id", schema_type = "integer", required = true},
  {name = "value", schema_type = "float", required = true},
]

[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "orders"
[tasks.config]
path = "data/dirty.csv"
format = "csv"
on_bad_rows = "quarantine"

[[tasks]]
id = "load_again"
type = "ingestion"
target_dataset_id = "orders_again"
dependencies = ["load"]
[tasks.config]
path = "data/dirty.csv"
format = "csv"
on_bad_rows = "skip"
"""


def test_rows_set_aside_are_said_in_the_task_line_and_the_summary(tmp_path: Path) -> None:
    project = make_project(tmp_path, example=False)
    (project / "data").mkdir()
    (project / "data" / "dirty.csv").write_text("id,value\n1,2.5\n2,abc\n3,\n4,7\n5,x\n")
    write_flow(project, "dirty", DIRTY)
    done = cli("run", "dirty", "--json", project=project)
    assert done.exit_code == 0, done.output
    lines = done.stderr.splitlines()
    load = next(line for line in lines if " load ." in line)
    assert "(2 rows, 3 bad rows in orders__rejects)" in load
    again = next(line for line in lines if " load_again " in line)
    assert "(2 rows, 3 bad rows skipped)" in again
    summary = next(line for line in lines if line.startswith("Run "))
    assert summary.endswith("; 3 bad rows in orders__rejects, 3 bad rows skipped"), summary
    tasks = {t["task_id"]: t for t in json.loads(done.stdout)["tasks"]}
    assert tasks["load"]["result"]["rows_rejected"] == 3
    assert tasks["load"]["result"]["rejects_dataset"] == "orders__rejects"

    (project / "data" / "dirty.csv").write_text("id,value\n1,2.5\n")
    fine = cli("run", "dirty", project=project)
    assert fine.exit_code == 0 and "bad row" not in fine.stderr
    assert "(1 row)" in fine.stderr


def test_ctrl_c_stops_the_ui_quietly(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    project = make_project(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qarion_etl", "--config", str(project / "qarion-etl.toml"),
         "ui", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.monotonic() < deadline, "ui did not start"
                time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert err.splitlines() == [
        f"qarion-etl ui on http://127.0.0.1:{port}/ (Ctrl-C stops it)",
        "qarion-etl ui stopped",
    ]
    assert out == ""


def test_install_hints_name_the_source_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from qarion_etl.airflow import __main__ as pools_cli
    from qarion_etl.errors import install_hint

    hint = f"pip install -e '{ROOT}[airflow]'"
    assert install_hint("airflow") == hint and install_hint("ui") == f"pip install -e '{ROOT}[ui]'"

    project = make_project(tmp_path)
    config = project / "qarion-etl.toml"
    config.write_text(config.read_text().replace(
        'url = "duckdb:', 'url = "${airflow_conn:warehouse}"\n# was: "duckdb:', 1
    ))  # fmt: skip
    monkeypatch.setitem(sys.modules, "airflow.sdk", None)  # as where Airflow is not installed
    done = cli("config", "show", project=project)
    assert done.exit_code == 2
    assert f"'${{airflow_conn:warehouse}}' needs Apache Airflow ({hint})" in done.stderr

    monkeypatch.setattr(pools_cli, "_airflow", lambda: None)
    assert pools_cli.main(["pools", str(make_project(tmp_path / "duck")), "--create"]) == 3
    assert f"no 'airflow' command here ({hint})" in capsys.readouterr().err
