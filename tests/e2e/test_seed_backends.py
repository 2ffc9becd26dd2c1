"""The seed page's four XCom configuration blocks, each running the complete example
(``flows/data_pipeline.toml``, verbatim) through the CLI.

The database and local-file blocks are the seed's text as written; the two S3 blocks are
written in valid TOML (``[xcom.backend_config]``; the seed's multi-line inline tables
without commas are not TOML) with ``endpoint_url`` pointing at the moto server and the
bucket made unique per test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import cli, make_project
from tests.runkit import orders_mean

HEAD = """\
[project]
name = "demo"
flows_dir = "flows"

[engine]
url = "duckdb:///{root}/warehouse.duckdb"

[metadata]
url = "sqlite:///{root}/.qarion/metadata.db"
namespace = "qarion"

"""

DATABASE_BLOCK = """\
[xcom]
enabled = true
backend = "database"
backend_config = {
# Optional: custom table name (default: uses metadata namespace)
table_name = "xcom"
}
"""

LOCAL_FILE_BLOCK = """\
[xcom]
enabled = true
backend = "local_file"
backend_config = {
base_path = "xcom" # Base directory for XCom files
}
"""

S3_REFERENCE_BLOCK = """\
[credentials.aws_creds]
aws_access_key_id = "${{env:AWS_ACCESS_KEY_ID}}"
aws_secret_access_key = "${{env:AWS_SECRET_ACCESS_KEY}}"
region_name = "us-east-1"

[xcom]
enabled = true
backend = "s3"

[xcom.backend_config]
bucket = "{bucket}"
prefix = "xcom" # Optional: S3 prefix/path
credentials = "${{credential:aws_creds}}" # Optional: credential reference
endpoint_url = "{endpoint}"
"""

S3_EXPLICIT_BLOCK = """\
[xcom]
enabled = true
backend = "s3"

[xcom.backend_config]
bucket = "{bucket}"
prefix = "xcom"
endpoint_url = "{endpoint}"

[xcom.backend_config.credentials]
aws_access_key_id = "your-key"
aws_secret_access_key = "your-secret"
region_name = "us-east-1"
"""


def _run_example(project: Path) -> dict[str, Any]:
    result = cli("run", "flows/data_pipeline.toml", "--json", project=project)
    assert result.exit_code == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "success"
    assert [t["status"] for t in summary["tasks"]] == ["success"] * 3
    got = cli(
        "xcom",
        "get",
        "calculate_stats",
        "--key",
        "avg_value",
        "--flow",
        "data_pipeline",
        project=project,
    )
    assert got.exit_code == 0, got.stderr
    mean, _ = orders_mean(project / "data" / "orders.csv")
    assert json.loads(got.stdout) == pytest.approx(mean, rel=1e-12)
    rows = cli(
        "xcom",
        "get",
        "ingest_orders",
        "--key",
        "rows_loaded",
        "--flow",
        "data_pipeline",
        project=project,
    )
    assert json.loads(rows.stdout) == 300
    return summary


def _clear_all(project: Path) -> None:
    result = cli("xcom", "clear", "--flow", "data_pipeline", "--yes", project=project)
    assert result.exit_code == 0, result.stderr
    listed = cli("xcom", "list", "--flow", "data_pipeline", "--json", project=project)
    assert json.loads(listed.stdout) == []


def _project(tmp_path: Path, block: str) -> Path:
    project = make_project(tmp_path, config=HEAD.format(root=tmp_path) + block)
    (project / "qarion-etl.toml").write_text(HEAD.format(root=tmp_path) + block)
    return project


def test_database_block(tmp_path: Path) -> None:
    project = _project(tmp_path, DATABASE_BLOCK)
    _run_example(project)
    import sqlite3

    with sqlite3.connect(tmp_path / ".qarion" / "metadata.db") as conn:
        count = conn.execute(
            "SELECT COUNT(*) FROM xcom WHERE flow_id = 'data_pipeline'"
        ).fetchone()[0]
    assert count > 3
    _clear_all(project)


def test_local_file_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(tmp_path / "proj", LOCAL_FILE_BLOCK)
    monkeypatch.chdir(tmp_path)  # base_path is relative to the project, not the working folder
    _run_example(project)
    files = [p for p in (project / "xcom").rglob("*.json")]
    assert len(files) > 3 and not (tmp_path / "xcom").exists()
    _clear_all(project)
    assert list((project / "xcom").iterdir()) == []


def _objects(endpoint: str, bucket: str) -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for p in pages for o in p.get("Contents", ())]


@pytest.mark.s3
@pytest.mark.parametrize(
    "block",
    [S3_REFERENCE_BLOCK, S3_EXPLICIT_BLOCK],
    ids=["credential-reference", "explicit-credentials"],
)
def test_s3_blocks(tmp_path: Path, s3_bucket: str, s3_env: str, block: str) -> None:
    project = _project(tmp_path, block.format(bucket=s3_bucket, endpoint=s3_env))
    summary = _run_example(project)
    keys = _objects(s3_env, s3_bucket)
    run_prefix = f"xcom/data_pipeline/run={summary['dag_run_id']}/batch={summary['batch_id']}/"
    assert f"{run_prefix}calculate_stats/avg_value.json" in keys
    assert all(k.startswith(run_prefix) for k in keys)
    shown = cli("config", "show", project=project)
    assert "your-secret" not in shown.stdout + shown.stderr
    _clear_all(project)
    assert _objects(s3_env, s3_bucket) == []
