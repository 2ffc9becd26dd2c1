"""Backends for the XCom tests: every backend kind, each with its own table, folder or bucket.

``BACKEND_KINDS`` is the one list the contract suite (``test_backend_contract.py``) runs
over: memory, local files, the database on four engines, and S3 on moto's server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qarion_etl.xcom import BaseXCom
from tests.conftest import database_url, unique_name

DATABASE_KINDS = ("sqlite", "duckdb", "postgres", "mariadb")

BACKEND_KINDS = [
    pytest.param("memory", id="memory"),
    pytest.param("local_file", id="local_file"),
    pytest.param("sqlite", id="database-sqlite"),
    pytest.param("duckdb", id="database-duckdb"),
    pytest.param("postgres", id="database-postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", id="database-mariadb", marks=pytest.mark.mariadb),
    pytest.param("s3", id="s3", marks=pytest.mark.s3),
]


def drop_table(backend: BaseXCom) -> None:
    db = backend.db_service
    if db is not None:
        backend.close()
        with db.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {db.quote(backend.table_name)}")


def make_backend(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> BaseXCom:
    if kind == "s3":
        from qarion_etl.xcom.backends.s3 import S3XComBackend

        endpoint = request.getfixturevalue("s3_env")
        bucket = request.getfixturevalue("s3_bucket")  # fresh, emptied and deleted after
        return S3XComBackend(bucket=bucket, prefix=unique_name("xc"), endpoint_url=endpoint)
    if kind == "memory":
        from qarion_etl.xcom.backends.memory import MemoryXComBackend

        return MemoryXComBackend()
    if kind == "local_file":
        from qarion_etl.xcom.backends.local_file import LocalFileXComBackend

        return LocalFileXComBackend(base_path=tmp_path / "xcom")
    from qarion_etl.db_service import DatabaseService
    from qarion_etl.xcom.backends.database import DatabaseXComBackend

    db = DatabaseService(database_url(kind, tmp_path))
    return DatabaseXComBackend(db, table_name=unique_name("xcom"))


@pytest.fixture(params=BACKEND_KINDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseXCom]:
    """One backend of every kind, empty, cleaned up afterwards."""
    b = make_backend(request.param, tmp_path, request)
    b.kind = request.param  # type: ignore[attr-defined]
    yield b
    b.close()
    if b.db_service is not None:
        drop_table(b)
        b.db_service.close()


@pytest.fixture
def kind(backend: BaseXCom) -> str:
    return backend.kind  # type: ignore[attr-defined]
