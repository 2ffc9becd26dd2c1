"""``run FLOW FLOW …`` and ``run --all``: flows at once, sharing --max-workers, one exit code."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import cli, make_project, write_flow

SECOND = """\
id = "second"
namespace = "second"
[[tasks]]
id = "a"
type = "transformation"
target_dataset_id = "a_out"
[tasks.config]
sql = "SELECT 1 AS x"
[[tasks]]
id = "b"
type = "transformation"
[tasks.config]
sql = "SELECT 2 AS y"
"""

BROKEN_TASK = """\
id = "third"
namespace = "third"
[[tasks]]
id = "oops"
type = "transformation"
[tasks.config]
sql = "SELECT nope FROM range(1)"
"""


def _span(task: dict) -> tuple[float, float]:  # type: ignore[type-arg]
    start = dt.datetime.fromisoformat(task["started_at"]).timestamp()
    return start, dt.datetime.fromisoformat(task["ended_at"]).timestamp()


def test_two_flows_run_at_once_within_max_workers(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    write_flow(project, "second", SECOND)
    done = cli(
        "run", "data_pipeline", "second", "--max-workers", "1", "--json", project=project
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["status"] == "success" and doc["exit_code"] == 0
    assert sorted(f["flow_id"] for f in doc["flows"]) == ["data_pipeline", "second"]
    assert "second.a" in done.stderr and "data_pipeline.ingest_orders" in done.stderr
    # one slot in all: no two tasks of the two flows ran at the same time
    spans = sorted(_span(t) for f in doc["flows"] for t in f["tasks"])
    assert len(spans) == 5
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
    listed = json.loads(cli("runs", "list", "--json", project=project).stdout)
    assert {(r["flow_id"], r["status"]) for r in listed} == {
        ("data_pipeline", "success"),
        ("second", "success"),
    }


def test_all_runs_every_flow_and_the_gravest_exit_code_wins(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    write_flow(project, "second", SECOND)
    write_flow(project, "third", BROKEN_TASK)
    failed = cli("run", "--all", project=project)
    assert failed.exit_code == 1
    assert "3 flows: 2 succeeded, 1 did not" in failed.stderr
    for args in ((), ("-q",)):  # the last line names the failure, quiet or not
        again = cli("run", "--all", *args, project=project)
        last = again.stderr.strip().splitlines()[-1]
        assert last.startswith("Error: ") and "third" in last and "'oops'" in last, last
    write_flow(
        project, "fourth", 'id = "fourth"\nnamespace = "f"\n[[tasks]]\nid = "t"\ntype = "nope"\n'
    )
    worse = cli("run", "--all", "--json", project=project)
    assert worse.exit_code == 2  # a flow that does not validate outranks a failed task
    doc = json.loads(worse.stdout)
    assert [e["exit_code"] for e in doc["errors"]] == [2]
    assert len(doc["flows"]) == 3  # the others ran


def test_several_flows_refuse_what_takes_one(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    write_flow(project, "second", SECOND)
    none = cli("run", project=project)
    assert none.exit_code == 2 and "name the flow to run" in none.stderr
    both = cli("run", "second", "--all", project=project)
    assert both.exit_code == 2 and "not both" in both.stderr
    resume = cli("run", "data_pipeline", "second", "--resume", "latest", project=project)
    assert resume.exit_code == 2 and "take one flow" in resume.stderr
    for extra in (["--junit-xml", "j.xml"], ["--report"]):
        refused = cli("run", "data_pipeline", "second", *extra, project=project)
        assert refused.exit_code == 2, extra
        assert "--resume, --task, --junit-xml and --report take one flow" in refused.stderr


SLOW = """\
id = "slow{n}"
namespace = "slow{n}"
[[tasks]]
id = "crunch"
type = "transformation"
[tasks.config]
sql = "SELECT SUM(a.range * b.range) AS n FROM range(100000000) a, range(100) b"
[[tasks]]
id = "after"
type = "transformation"
dependencies = ["crunch"]
[tasks.config]
sql = "SELECT 1 AS x"
"""


def test_ctrl_c_stops_every_flow(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", example=False)
    for n in (1, 2):
        write_flow(project, f"slow{n}", SLOW.format(n=n))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qarion_etl",
            "--config",
            str(project / "qarion-etl.toml"),
            "run",
            "--all",
        ],
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            listed = cli("runs", "list", "--json", project=project).stdout
            if [r["status"] for r in json.loads(listed or "[]")] == ["running", "running"]:
                break
            assert time.monotonic() < deadline, listed
            time.sleep(0.1)
        time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert time.monotonic() - started < 15  # the statements were interrupted, not awaited
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    runs = json.loads(cli("runs", "list", "--json", project=project).stdout)
    assert sorted(r["status"] for r in runs) == ["interrupted", "interrupted"]
