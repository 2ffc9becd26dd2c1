"""A standalone Spark cluster on this machine: a master, two workers and a Connect server.

The seed example and a fan-out flow (one ingestion, four transformations run at once)
run through the Connect server, and Spark's own event log shows their tasks ran on the
executors of both workers. Every process of the cluster listens on 127.0.0.1 only, and all
of them are stopped at the end. Slow (the cluster takes a minute to come up): ``slow``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import unique_name
from tests.helpers import cli, write_flow
from tests.runkit import seed_project
from tests.sockets import assert_loopback_only
from tests.spark.conftest import require_spark
from tests.spark.server import start_connect, start_standalone

pytestmark = pytest.mark.slow

FAN_OUT = """
id = "fan_out"
namespace = "{ns}"

[input]
columns = [
  {{name = "id", schema_type = "integer", required = true}},
  {{name = "value", schema_type = "float", required = true}},
]

[[tasks]]
id = "ingest"
type = "ingestion"
target_dataset_id = "events"
[tasks.config]
path = "data/events.csv"
format = "csv"
{branches}
"""

BRANCH = """
[[tasks]]
id = "by_bucket_{n}"
type = "transformation"
source_dataset_id = "events"
target_dataset_id = "bucket_{n}"
[tasks.config]
sql = "SELECT id % {m} AS bucket, count(*) AS n, avg(value) AS v FROM {{{{ source_dataset }}}} GROUP BY id % {m}"
"""


def _task_executors(events: Path) -> Counter[str]:
    """Tasks per executor id, read from the event logs of the Connect server's application."""
    seen: Counter[str] = Counter()
    for log in (p for p in events.rglob("*") if p.is_file()):
        for line in log.read_text(errors="replace").splitlines():
            event = json.loads(line)
            if event.get("Event") == "SparkListenerTaskEnd":
                seen[str(event["Task Info"]["Executor ID"])] += 1
    return seen


def test_flows_spread_over_two_workers(tmp_path: Path) -> None:
    require_spark()
    cluster = start_standalone(tmp_path / "cluster", workers=2)
    try:
        confs = {"spark.executor.memory": "512m", "spark.cores.max": "2"}
        # The Connect server joins the cluster's processes; its URL replaces the master's.
        sc_url = start_connect(
            tmp_path / "cluster", master=cluster.url, cluster=cluster, event_log=True, confs=confs
        ).url
        for pid in cluster.sessions:
            assert_loopback_only(pid)

        ns = unique_name("cl")
        project = seed_project(tmp_path / "project", ns, sc_url)
        result = cli("run", "data_pipeline", project=project)
        assert result.exit_code == 0, result.output

        data = project / "data" / "events.csv"
        data.write_text("id,value\n" + "".join(f"{i},{i % 97}.5\n" for i in range(200_000)))
        branches = "".join(BRANCH.format(n=n, m=n + 2) for n in range(4))
        write_flow(project, "fan_out", FAN_OUT.format(ns=ns, branches=branches))
        result = cli("run", "fan_out", "--max-workers", "4", "--json", project=project)
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert [t["status"] for t in doc["tasks"]] == ["success"] * 5
        assert {t["task_id"]: t["rows"] for t in doc["tasks"]}["by_bucket_3"] == 5
        cluster.stop()  # the server writes the rest of its event log as it stops

        assert cluster.event_log is not None
        executors = _task_executors(cluster.event_log)
        assert len([e for e in executors if e != "driver"]) >= 2, executors
    finally:
        cluster.stop()
