"""The test rig: real databases and a real S3 server.

- ``require_service(name)`` skips a test when a service is down, and fails it when
  ``CI=true`` (a missing service in CI is a failure, not a skip).
- ``engine_url`` is parametrised over sqlite, duckdb, postgres and mariadb; each test
  gets its own names (``unique_name``) and cleans up, so the suite can run twice.
- ``s3_server`` starts moto's HTTP server on 127.0.0.1 for the session; tests reach it
  through boto3 with ``endpoint_url``, never by patching boto3.
- ``QARION_TEST_BACKENDS`` (comma list) narrows the database parametrisation.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_URL = os.environ.get("QARION_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("QARION_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

_PORTS = {"postgres": 5432, "mariadb": 3306}


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Skip (locally) or fail (CI=true) when service ``name`` cannot be reached."""
    port = _PORTS[name]
    if _port_open(port):
        return
    msg = f"{name} is not reachable on 127.0.0.1:{port}"
    if IN_CI:
        pytest.fail(f"{msg} (CI=true: a missing service is a failure)")
    pytest.skip(msg)


def unique_name(prefix: str = "t") -> str:
    """A short identifier unique to this test run."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def _selected(backend: str) -> bool:
    wanted = os.environ.get("QARION_TEST_BACKENDS")
    return not wanted or backend in {w.strip() for w in wanted.split(",")}


DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("duckdb", id="duckdb"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
]
METADATA_DATABASES = [p for p in DATABASES if p.values[0] != "duckdb"]
#: The four engines, plus MariaDB named by a ``mariadb+pymysql://`` URL (SQLAlchemy's
#: ``mariadb`` dialect name, which must get the MySQL dialect's facts).
ENGINES_AND_ALIASES = [
    *DATABASES,
    pytest.param("mariadb-alias", id="mariadb+pymysql", marks=pytest.mark.mariadb),
]


def database_url(kind: str, tmp_path: Path) -> str:
    if not _selected(kind.removesuffix("-alias")):
        pytest.skip(f"{kind} not in QARION_TEST_BACKENDS")
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    if kind == "duckdb":
        return f"duckdb:///{tmp_path / 'test.duckdb'}"
    if kind == "postgres":
        require_service("postgres")
        return PG_URL
    if kind == "mariadb":
        require_service("mariadb")
        return MYSQL_URL
    if kind == "mariadb-alias":
        require_service("mariadb")
        return MYSQL_URL.replace("mysql+", "mariadb+", 1)
    raise ValueError(kind)


@pytest.fixture(params=DATABASES)
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A warehouse URL, once per engine."""
    return database_url(request.param, tmp_path)


@pytest.fixture(params=METADATA_DATABASES)
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A metadata database URL, once per supported metadata database."""
    return database_url(request.param, tmp_path)


@pytest.fixture
def pg_url() -> str:
    require_service("postgres")
    return PG_URL


@pytest.fixture
def mariadb_url() -> str:
    require_service("mariadb")
    return MYSQL_URL


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server over real HTTP on 127.0.0.1; yields its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:  # pragma: no cover - moto is a dev dependency
        if IN_CI:
            pytest.fail("moto[server] is not installed")
        pytest.skip("moto[server] is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake credentials for moto in the environment; returns the endpoint URL."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3_server


@pytest.fixture
def s3_bucket(s3_env: str) -> Iterator[str]:
    """A fresh bucket on the moto server, emptied and deleted afterwards."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_env, region_name="us-east-1")
    name = unique_name("bkt").replace("_", "-")
    client.create_bucket(Bucket=name)
    yield name
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=name):
        objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if objs:
            client.delete_objects(Bucket=name, Delete={"Objects": objs})
    client.delete_bucket(Bucket=name)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer config leaks into tests."""
    monkeypatch.delenv("QARION_ETL_CONFIG", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
