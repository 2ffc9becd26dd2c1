"""The ``s3`` backend against moto's server over real HTTP: the key layout, pagination past
1,000 objects, light listings, credentials and errors. (The contract suite runs on S3 from
``test_backend_contract.py``: S3 is one of ``conftest.BACKEND_KINDS``.)"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from qarion_etl.errors import ConfigError, StoreUnavailable
from qarion_etl.xcom import BaseXCom, XComService
from qarion_etl.xcom.backends.s3 import S3XComBackend
from qarion_etl.xcom.registry import create_backend
from tests.conftest import unique_name

pytestmark = pytest.mark.s3


@pytest.fixture
def backend(s3_bucket: str, s3_env: str) -> Iterator[BaseXCom]:
    """This module's backend: an S3 backend on a fresh bucket."""
    b = S3XComBackend(bucket=s3_bucket, prefix=unique_name("xc"), endpoint_url=s3_env)
    b.kind = "s3"  # type: ignore[attr-defined]
    yield b
    b.close()


def _client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def _all_keys(endpoint: str, bucket: str) -> list[str]:
    pages = _client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", ())]


class _Calls:
    """Counts S3 API calls of a client through botocore's event system (no patching)."""

    def __init__(self, client: Any) -> None:
        self.names: list[str] = []
        client.meta.events.register("before-call.s3.*", self._seen)

    def _seen(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)

    def count(self, name: str) -> int:
        return self.names.count(name)


def test_key_layout_is_readable_and_documented(backend: S3XComBackend, s3_env: str) -> None:
    svc = XComService(backend, default_flow_id="data_pipeline")
    svc.push("ingest", 1, key="rows_loaded", dag_run_id="run_2024-01-15", batch_id=5)
    svc.push("ingest", 2, key="rows_loaded")
    keys = sorted(_all_keys(s3_env, backend.bucket))
    p = backend.prefix
    assert keys == [
        f"{p}/data_pipeline/run=_/batch=_/ingest/rows_loaded.json",
        f"{p}/data_pipeline/run=run_2024-01-15/batch=5/ingest/rows_loaded.json",
    ]
    body = _client(s3_env).get_object(Bucket=backend.bucket, Key=keys[1])
    assert body["Metadata"]["value-type"] == "json" and body["Metadata"]["size"] == "1"
    assert b'"value": "1"' in body["Body"].read()


def test_hostile_ids_cannot_break_the_layout(backend: S3XComBackend, s3_env: str) -> None:
    svc = XComService(backend, default_flow_id="../f/")
    ids = ["../../etc", "a/b", "_", "%2F", "run=x", "ünï ✓", "..", "\\", "x" * 250, "é" * 250]
    for i, hostile in enumerate(ids):
        svc.push(hostile, i, key=hostile, dag_run_id=hostile)
    for key in _all_keys(s3_env, backend.bucket):
        assert key.startswith(backend.prefix + "/") and len(key.encode()) <= 1024
        parts = key.split("/")
        assert len(parts) == 6 and ".." not in parts and "." not in parts
    for i, hostile in enumerate(ids):
        assert svc.pull(hostile, key=hostile, dag_run_id=hostile) == i
    listed = {(e.task_id, e.key, e.dag_run_id) for e in svc.list(limit=None)}
    assert listed == {(h, h, h) for h in ids}
    assert svc.clear() == len(ids)


def test_listing_reads_metadata_not_values(backend: S3XComBackend) -> None:
    svc = XComService(backend, default_flow_id="f")
    for i in range(30):
        svc.push(f"t{i}", {"i": i, "pad": "z" * 5000})
    calls = _Calls(backend.client)
    entries = svc.list(limit=None)
    assert len(entries) == 30 and entries[0].task_id == "t29" and entries[0].size > 5000
    assert entries[0].preview.startswith('{"i":29')
    assert calls.count("GetObject") == 0 and calls.count("HeadObject") == 30


def test_full_identity_pull_is_one_request(backend: S3XComBackend) -> None:
    svc = XComService(backend, default_flow_id="f", default_batch_id=1, default_dag_run_id="r")
    svc.push("t", {"ok": True})
    calls = _Calls(backend.client)
    assert svc.pull("t") == {"ok": True}
    assert calls.names == ["GetObject"]


@pytest.mark.slow
def test_2500_values_list_and_clear_through_pagination(backend: S3XComBackend, s3_env: str) -> None:
    svc = XComService(backend, default_flow_id="big", default_dag_run_id="r1")
    assert svc.push_many([{"task_id": f"t{i:04d}", "value": i} for i in range(2500)]) == 2500
    calls = _Calls(backend.client)
    assert len(svc.list(limit=None)) == 2500
    assert calls.count("ListObjectsV2") == 3  # 1,000 + 1,000 + 500
    assert svc.pull_many(["t0000", "t2499"]) == {"t0000": 0, "t2499": 2499}
    calls.names.clear()
    assert svc.clear(flow_id="big") == 2500
    assert calls.count("DeleteObjects") == 3
    assert _all_keys(s3_env, backend.bucket) == []


@pytest.mark.slow
def test_listings_with_any_filter_page_past_1000_objects(backend: S3XComBackend) -> None:
    """1,200 matches under each filter (and 300 that match none): every listing is whole."""
    svc = XComService(backend, default_flow_id="pages")
    items = [
        {
            "task_id": f"t{i % 400:03d}",
            "key": f"k{i // 400}",
            "value": i,
            "dag_run_id": "r1",
            "batch_id": 7,
        }
        for i in range(1200)
    ] + [{"task_id": "other", "key": f"x{i}", "value": i, "dag_run_id": "r2"} for i in range(300)]
    assert svc.push_many(items) == 1500  # fmt: skip
    filters: list[dict[str, Any]] = [
        {},
        {"dag_run_id": "r1"},
        {"batch_id": 7},
        {"dag_run_id": "r1", "batch_id": 7},
    ]
    for f in filters:
        assert len(svc.list(limit=None, **f)) == (1500 if not f else 1200), f
    assert len(svc.list(key="k1", limit=None)) == 400
    assert len(svc.list(task_id="t007", limit=None)) == 3
    assert svc.count(dag_run_id="r1") == 1200
    assert svc.clear(flow_id="pages", dag_run_id="r1") == 1200
    assert len(svc.list(limit=None)) == 300


def test_clear_leaves_foreign_objects_alone(backend: S3XComBackend, s3_env: str) -> None:
    client = _client(s3_env)
    client.put_object(Bucket=backend.bucket, Key=f"{backend.prefix}/README.txt", Body=b"hi")
    client.put_object(Bucket=backend.bucket, Key="other/f/run=_/batch=_/t/k.json", Body=b"{}")
    XComService(backend, default_flow_id="f").push("t", 1)
    assert backend.clear() == 1
    assert sorted(_all_keys(s3_env, backend.bucket)) == sorted(
        [f"{backend.prefix}/README.txt", "other/f/run=_/batch=_/t/k.json"]
    )


def test_explicit_credentials_and_registry(s3_bucket: str, s3_env: str) -> None:
    class Cfg:
        backend = "s3"
        max_value_bytes = 1000
        backend_config = {
            "bucket": s3_bucket,
            "prefix": "team/xcom/",
            "endpoint_url": s3_env,
            "credentials": {
                "aws_access_key_id": "AKIDEXAMPLE",
                "aws_secret_access_key": "s3cr3t-value",
                "region_name": "eu-west-1",
            },
        }

    b = create_backend(Cfg(), None)
    assert isinstance(b, S3XComBackend) and b.max_value_bytes == 1000
    assert b.describe() == f"s3://{s3_bucket}/team/xcom (endpoint {s3_env}, region eu-west-1)"
    assert "s3cr3t" not in repr(b) and "s3cr3t" not in b.describe()
    XComService(b, default_flow_id="f").push("t", "v")
    assert _all_keys(s3_env, s3_bucket) == ["team/xcom/f/run=_/batch=_/t/return_value.json"]
    clone = pickle.loads(pickle.dumps(b))  # process pools get a working copy
    assert XComService(clone, default_flow_id="f").pull("t") == "v"
    b.clear()


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({}, "needs 'bucket'"),
        ({"bucket": "a/b"}, "needs 'bucket'"),
        ({"bucket": "b", "credentials": "plain"}, "must be a table"),
        (
            {"bucket": "b", "credentials": {"aws_secret_key": "x"}},
            "did you mean 'aws_secret_access_key'",
        ),
        ({"bucket": "b", "credentials": {"aws_access_key_id": "x"}}, "give both"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        S3XComBackend(**options)
    assert needle in str(err.value) and err.value.exit_code == 2


def test_missing_bucket_names_bucket_and_operation(s3_env: str) -> None:
    b = S3XComBackend(bucket=unique_name("gone").replace("_", "-"), endpoint_url=s3_env)
    svc = XComService(b, default_flow_id="f")
    for call, op in ((lambda: svc.push("t", 1), "put"), (lambda: svc.list(), "list")):
        with pytest.raises(StoreUnavailable) as err:
            call()
        assert str(err.value) == (
            f"S3 XCom store: {op} on bucket '{b.bucket}' failed: the bucket does not exist"
        )
        assert err.value.exit_code == 3


def test_unreachable_endpoint_fails_fast_without_secrets() -> None:
    with __import__("socket").socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = S3XComBackend(
        bucket="xcom-bucket",
        endpoint_url=f"http://127.0.0.1:{port}",
        credentials={"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "very-secret-1"},
    )
    start = time.monotonic()
    with pytest.raises(StoreUnavailable) as err:
        XComService(b, default_flow_id="f").pull("t")
    assert time.monotonic() - start < 15
    message = str(err.value)
    assert (
        "bucket 'xcom-bucket'" in message
        and f"cannot reach endpoint http://127.0.0.1:{port}" in message
    )
    assert "very-secret-1" not in message and "\n" not in message


def test_no_credentials_is_one_clear_line(
    s3_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    b = S3XComBackend(bucket="some-bucket", endpoint_url=s3_env)
    with pytest.raises(StoreUnavailable) as err:
        XComService(b, default_flow_id="f").pull("t")
    assert "bucket 'some-bucket'" in str(err.value) and "no AWS credentials found" in str(err.value)


def test_module_import_does_not_import_boto3() -> None:
    code = "import sys, qarion_etl.xcom.backends.s3; print('boto3' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ
    )
    assert out.stdout.strip() == "False", out.stderr
