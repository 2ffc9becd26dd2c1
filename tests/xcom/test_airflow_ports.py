"""Airflow-style custom backends (``airflow_styles.py``), ported, through the CLI and the API.

Every backend stores its values as objects on moto's S3 server, the way the public
backends it imitates do. Each one runs the seed flow, answers ``xcom get``, lists in its
own light form, shows its class in ``config show``, passes ``doctor`` without leaving its
probe behind, re-runs one task of a run and clears, and a purge hook removes every object
a removed or replaced value referred to.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unique_name
from tests.helpers import cli, make_project
from tests.runkit import orders_mean

pytestmark = pytest.mark.s3

STYLES = Path(__file__).with_name("airflow_styles.py")
PURGING = {"AirflowKeywords", "SuperCalls", "RowStyle", "RequiredClear", "DataFrames"}


@pytest.fixture
def objects(s3_bucket: str, s3_env: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A function listing the backend objects in the test's bucket."""
    import boto3

    monkeypatch.setenv("XCOM_TEST_ENDPOINT", s3_env)
    monkeypatch.setenv("XCOM_TEST_BUCKET", s3_bucket)
    client = boto3.client("s3", endpoint_url=s3_env, region_name="us-east-1")

    def listing() -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket)
        return sorted(o["Key"] for p in pages for o in p.get("Contents", ()))

    return listing


def _project(tmp_path: Path, cls: str) -> tuple[Path, str]:
    module = unique_name("styles")
    project = make_project(tmp_path)
    (project / "backends").mkdir()
    shutil.copy(STYLES, project / "backends" / f"{module}.py")
    config = (project / "qarion-etl.toml").read_text()
    config = config.replace('backend = "database"', f'backend = "backends.{module}:{cls}"')
    (project / "qarion-etl.toml").write_text(config)
    return project, f"backends.{module}:{cls}"


@pytest.fixture(autouse=True)
def _clean_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in [m for m in sys.modules if m == "backends" or m.startswith("backends.")]:
        del sys.modules[name]


@pytest.mark.parametrize("cls", ["OneArgument", *sorted(PURGING - {"DataFrames"})])
def test_ported_backend_through_the_cli(tmp_path: Path, cls: str, objects: Any) -> None:
    project, path = _project(tmp_path, cls)

    shown = cli("config", "show", "--json", project=project)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["xcom"]["backend_class"] == path

    run = cli("run", "data_pipeline", "--json", "--run-id", "r1", project=project)
    assert run.exit_code == 0, run.output
    stored = objects()
    assert stored and all(k.startswith("xcom-objects/") for k in stored)

    got = cli("xcom", "get", "calculate_stats", "--key", "avg_value", "--flow", "data_pipeline",
              project=project)  # fmt: skip
    mean, _ = orders_mean(project / "data" / "orders.csv")
    assert got.exit_code == 0 and float(got.stdout) == pytest.approx(mean, rel=1e-12)

    listed = cli("xcom", "list", "--json", project=project)
    assert listed.exit_code == 0, listed.output
    entries = json.loads(listed.stdout)
    assert len(entries) > 10  # every key of three tasks
    if cls == "RowStyle":
        assert all(e["preview"].startswith("object s3://") for e in entries)
    else:
        assert all('"s3://' in e["preview"] for e in entries)

    doctor = cli("doctor", project=project)
    assert doctor.exit_code == 0, doctor.output
    left = cli("xcom", "list", "--json", "--flow", "__doctor__", project=project)
    assert json.loads(left.stdout) == []

    # One task again inside run r1: its values are cleared (with the run's whole identity)
    # and written anew; with a purge hook, their old objects go too.
    before = len(objects())
    again = cli("run", "data_pipeline", "--run-id", "r1", "--task", "calculate_stats",
                project=project)  # fmt: skip
    assert again.exit_code == 0, again.output
    if cls in PURGING:
        assert len(objects()) == before

    if cls == "RequiredClear":
        refused = cli("xcom", "clear", "--flow", "data_pipeline", project=project)
        assert refused.exit_code == 2
        assert "RequiredClear.clear() needs dag_run_id and task_id" in refused.stderr
        assert "--run, --task" in refused.stderr and "Traceback" not in refused.output
        for task in ("ingest_orders", "calculate_stats", "filter_high_value"):
            done = cli("xcom", "clear", "--flow", "data_pipeline", "--task", task, "--run", "r1",
                       project=project)  # fmt: skip
            assert done.exit_code == 0, done.output
    else:
        done = cli("xcom", "clear", "--flow", "data_pipeline", project=project)
        assert done.exit_code == 0 and "Removed" in done.stderr
    assert json.loads(cli("xcom", "list", "--json", project=project).stdout) == []
    if cls in PURGING:
        assert objects() == [], "purge removes every object of a removed value"


def test_keyword_only_clear_gets_the_runs_identity_on_retry(tmp_path: Path, objects: Any) -> None:
    project, path = _project(tmp_path, "RequiredClear")
    assert cli("run", "data_pipeline", "--run-id", "r9", project=project).exit_code == 0
    import importlib

    styles = importlib.import_module(path.split(":")[0])
    styles.RequiredClear.cleared.clear()
    assert cli("run", "data_pipeline", "--run-id", "r9", "--task", "filter_high_value",
               project=project).exit_code == 0  # fmt: skip
    assert styles.RequiredClear.cleared == [
        {
            "dag_id": "data_pipeline",
            "task_id": "filter_high_value",
            "run_id": "r9",
            "map_index": None,
        }
    ]


def test_pandas_dataframes_through_the_api(tmp_path: Path, objects: Any) -> None:
    pd = pytest.importorskip("pandas")
    from qarion_etl.project import Project

    project, _ = _project(tmp_path, "DataFrames")
    frame = pd.DataFrame({"id": [1, 2, 3], "value": [1.5, 2.5, 4.0]})
    with Project.load(project / "qarion-etl.toml") as p:
        svc = p.xcom_service("frames", default_dag_run_id="r1")
        svc.push("extract", frame, key="orders")
        svc.push("extract", {"rows": 3}, key="meta")  # not a DataFrame: stored inline
        assert [k for k in objects() if k.endswith(".csv")]
        back = svc.pull("extract", key="orders")
        pd.testing.assert_frame_equal(back, frame)
        assert svc.pull("extract", key="meta") == {"rows": 3}
        previews = {e.key: e.preview for e in svc.list()}
        assert previews["orders"].startswith("DataFrame at s3://")
        assert previews["meta"] == '{"rows":3}'
        svc.push("extract", frame.head(1), key="orders")  # replaces: the old object is purged
        assert len([k for k in objects() if k.endswith(".csv")]) == 1
        assert svc.clear(flow_id="frames") == 2
    assert objects() == []


def test_a_backend_that_cannot_load_fails_config_show(tmp_path: Path) -> None:
    project, _ = _project(tmp_path, "NoSuchClass")
    shown = cli("config", "show", project=project)
    assert shown.exit_code == 3
    assert "has no attribute 'NoSuchClass'" in shown.stderr and "Traceback" not in shown.output
