"""Large-value offload on the database backend, to a local folder and to S3 (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qarion_etl.db_service import DatabaseService
from qarion_etl.errors import ConfigError, StoreUnavailable
from qarion_etl.xcom import XComService
from qarion_etl.xcom.backends.database import DatabaseXComBackend
from qarion_etl.xcom.registry import create_backend
from tests.conftest import unique_name

THRESHOLD = 1000
BIG = {"rows": ["x" * 50] * 40}  # about 2 KB of JSON
SMALL = {"rows": 3}


def _rows(backend: DatabaseXComBackend) -> list[tuple[Any, ...]]:
    db = backend.db_service
    assert db is not None
    with db.begin() as conn:
        sql = f"SELECT task_id, value_type, value, size FROM {db.quote(backend.table_name)} ORDER BY task_id"
        return [tuple(r) for r in conn.exec_driver_sql(sql)]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def offload_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[DatabaseXComBackend, Any]]:
    """A database backend offloading to ``request.param`` ("local_file" or "s3")."""
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_env")
        bucket = request.getfixturevalue("s3_bucket")
        target: dict[str, Any] = {"type": "s3", "bucket": bucket, "endpoint_url": endpoint}
    else:
        target = {"type": "local_file", "base_path": "offload"}
    db = DatabaseService(f"sqlite:///{tmp_path / 'meta.db'}")
    backend = DatabaseXComBackend(
        db,
        table_name=unique_name("xcom"),
        offload_threshold_bytes=THRESHOLD,
        offload_to=target,
        root=tmp_path,
    )
    yield backend, target
    backend.close()
    db.close()


def _stored_objects(backend: DatabaseXComBackend, target: dict[str, Any]) -> list[str]:
    store = backend.offload_store
    if target["type"] == "s3":
        client = store._s3.client  # type: ignore[union-attr]
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=target["bucket"])
        return [f"s3://{target['bucket']}/{o['Key']}" for p in pages for o in p.get("Contents", ())]
    return [f"file:{p.relative_to(store.base_path).as_posix()}" for p in _files(store.base_path)]  # type: ignore[union-attr]


PARAMS = [
    pytest.param("local_file", id="local_file"),
    pytest.param("s3", id="s3", marks=pytest.mark.s3),
]


@pytest.mark.parametrize("offload_backend", PARAMS, indirect=True)
def test_large_values_go_to_the_store_with_an_explicit_reference(offload_backend: Any) -> None:
    backend, target = offload_backend
    svc = XComService(backend, default_flow_id="f", default_dag_run_id="r1", default_batch_id=1)
    svc.push("big", BIG)
    svc.push("small", SMALL)
    (big_row, small_row) = _rows(backend)
    assert small_row[1] == "json" and json.loads(small_row[2]) == SMALL
    assert big_row[1] == "ref:json" and big_row[3] > THRESHOLD
    ref = json.loads(big_row[2])
    assert ref["ref"] == "qarion-xcom-offload/1" and ref["store"] == target["type"]
    assert _stored_objects(backend, target) == [ref["location"]]
    assert svc.pull("big") == BIG and svc.pull("small") == SMALL
    assert svc.pull_many(["big", "small", "none"]) == {"big": BIG, "small": SMALL, "none": None}


@pytest.mark.parametrize("offload_backend", PARAMS, indirect=True)
def test_listing_shows_size_and_location_without_reading_the_store(offload_backend: Any) -> None:
    backend, target = offload_backend
    svc = XComService(backend, default_flow_id="f")
    svc.push("big", BIG)
    (location,) = _stored_objects(backend, target)
    backend.offload_store.get = None  # type: ignore[union-attr,method-assign]  # any read would fail
    (entry,) = svc.list()
    assert entry.value_type == "json" and entry.size > THRESHOLD
    assert entry.preview == f"offloaded {entry.size} bytes: {location}"


@pytest.mark.parametrize("offload_backend", PARAMS, indirect=True)
def test_replace_and_clear_leave_no_orphans(offload_backend: Any) -> None:
    backend, target = offload_backend
    svc = XComService(backend, default_flow_id="f")
    svc.push("t", BIG)
    first = _stored_objects(backend, target)
    svc.push("t", {**BIG, "v": 2})  # a new object, the old one removed
    second = _stored_objects(backend, target)
    assert len(second) == 1 and second != first
    svc.push("t", SMALL)  # back into the row: the object goes
    assert _stored_objects(backend, target) == []
    for i in range(3):
        svc.push(f"t{i}", BIG, dag_run_id="r")
    assert len(_stored_objects(backend, target)) == 3
    assert svc.clear(dag_run_id="r") == 3 and svc.clear() == 1
    assert _stored_objects(backend, target) == []


def test_rolled_back_batch_removes_the_objects_it_wrote(tmp_path: Path) -> None:
    db = DatabaseService(f"sqlite:///{tmp_path / 'meta.db'}")
    target = {"type": "local_file", "base_path": str(tmp_path / "off")}
    backend = DatabaseXComBackend(db, offload_threshold_bytes=10, offload_to=target)
    svc = XComService(backend, default_flow_id="f")
    svc.push("kept", "k" * 50)
    with pytest.raises(RuntimeError), svc.batch():
        svc.push("lost", "l" * 50)
        svc.push("kept", "n" * 50)  # replaces, but is rolled back
        raise RuntimeError("boom")
    assert svc.pull("kept") == "k" * 50 and svc.pull("lost") is None
    assert len(_files(tmp_path / "off")) == 1
    with svc.batch():
        svc.push("kept", "n" * 50)
    assert svc.pull("kept") == "n" * 50 and len(_files(tmp_path / "off")) == 1
    backend.close()
    db.close()


def test_a_value_that_looks_like_a_reference_is_just_a_value(tmp_path: Path) -> None:
    db = DatabaseService(f"sqlite:///{tmp_path / 'meta.db'}")
    target = {"type": "local_file", "base_path": str(tmp_path / "off")}
    backend = DatabaseXComBackend(db, offload_threshold_bytes=10_000, offload_to=target)
    svc = XComService(backend, default_flow_id="f")
    lookalike = {
        "ref": "qarion-xcom-offload/1",
        "store": "local_file",
        "location": "file:../../etc/passwd",
        "size": 1,
        "sha256": "0",
    }
    svc.push("t", lookalike)
    svc.push("p", "file:/etc/passwd")
    assert svc.pull("t") == lookalike and svc.pull("p") == "file:/etc/passwd"
    backend.close()
    db.close()


def test_missing_or_altered_object_is_a_clear_error(tmp_path: Path) -> None:
    db = DatabaseService(f"sqlite:///{tmp_path / 'meta.db'}")
    target = {"type": "local_file", "base_path": str(tmp_path / "off")}
    backend = DatabaseXComBackend(db, offload_threshold_bytes=10, offload_to=target)
    svc = XComService(backend, default_flow_id="f")
    svc.push("t", "v" * 50, key="k")
    (path,) = _files(tmp_path / "off")
    path.write_text('"tampered"')
    with pytest.raises(
        StoreUnavailable, match="XCom f/t/k: offloaded value at file:.* does not match"
    ):
        svc.pull("t", key="k")
    path.unlink()
    with pytest.raises(StoreUnavailable, match="is missing"):
        svc.pull("t", key="k")
    backend.close()
    db.close()


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"offload_threshold_bytes": 10}, "needs both"),
        ({"offload_to": {"type": "local_file"}}, "needs both"),
        ({"offload_threshold_bytes": -1, "offload_to": {"type": "local_file"}}, "non-negative"),
        ({"offload_threshold_bytes": 1, "offload_to": {"type": "s4"}}, "did you mean 's3'"),
        ({"offload_threshold_bytes": 1, "offload_to": "s3://b"}, "must be a table"),
        (
            {"offload_threshold_bytes": 1, "offload_to": {"type": "local_file", "bucket": "b"}},
            "bucket",
        ),
    ],
)
def test_bad_offload_options(tmp_path: Path, options: dict[str, Any], needle: str) -> None:
    class Cfg:
        backend = "database"
        backend_config = options
        max_value_bytes = 1 << 20

    db = DatabaseService(f"sqlite:///{tmp_path / 'meta.db'}")
    with pytest.raises(ConfigError) as err:
        create_backend(Cfg(), db, root=tmp_path)
    assert needle in str(err.value) and err.value.exit_code == 2
    db.close()


def test_configured_through_the_registry_relative_to_the_root(tmp_path: Path) -> None:
    class Cfg:
        backend = "database"
        backend_config = {
            "offload_threshold_bytes": 100,
            "offload_to": {"type": "local_file", "base_path": "big"},
        }
        max_value_bytes = 1 << 20

    db = DatabaseService(f"sqlite:///{tmp_path / 'meta.db'}")
    backend = create_backend(Cfg(), db, root=tmp_path)
    assert isinstance(backend, DatabaseXComBackend)
    assert (
        backend.describe()
        == f"table qarion_xcom; values over 100 bytes to folder {(tmp_path / 'big').resolve()}"
    )
    XComService(backend, default_flow_id="f").push("t", "z" * 200)
    assert len(_files(tmp_path / "big")) == 1
    backend.close()
    db.close()
