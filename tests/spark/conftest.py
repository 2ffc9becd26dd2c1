"""One Spark Connect server (``local[2]``) for the whole test session, started on first use.

Every test here is marked ``spark``. Without Java (or without the full ``pyspark`` of the
dev extras) they are skipped, and under ``CI=true`` they fail: ``.ci/run`` installs Java.
The server listens on a free 127.0.0.1 port, its UI is off, and it is stopped (its process
group killed) when the session ends. Tests share it and keep apart by namespace.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.spark.server import Cluster, java_missing, start_connect


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.spark)


def require_spark() -> None:
    why = java_missing()
    if why is None:
        return
    if IN_CI:
        pytest.fail(f"Spark cannot start: {why} (CI=true: a missing service is a failure)")
    pytest.skip(f"Spark cannot start: {why}")


@pytest.fixture(scope="session")
def spark_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The session's Spark Connect server; ``.url`` is ``sc://127.0.0.1:PORT``."""
    require_spark()
    server = start_connect(tmp_path_factory.mktemp("spark"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def spark_url(spark_server: Cluster) -> str:
    return spark_server.url


@pytest.fixture
def spark_ns() -> str:
    """A namespace (Spark database) of this test's own."""
    return f"t_{uuid.uuid4().hex[:10]}"
