"""``spark://local[2]``: Spark inside the ``qarion-etl`` process, its catalog kept between runs.

Run as a child process (its JVM ends with it), before the session's Connect server starts
(``tests/db`` is collected before ``tests/spark``), so two Spark JVMs never run at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.helpers import make_project
from tests.spark.server import java_missing


@pytest.mark.spark
def test_a_session_in_the_process_keeps_its_catalog_in_the_project(tmp_path: Path) -> None:
    why = java_missing()
    if why:
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)
    project = make_project(tmp_path, engine_url="spark://local[2]")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK", "PYSPARK"))}
    env["NO_COLOR"] = "1"
    argv = [sys.executable, "-m", "qarion_etl", "run", "data_pipeline", "--full-refresh"]
    for _ in range(2):
        done = subprocess.run(
            argv, cwd=project, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-4000:]
        assert "SUCCESS: 3 ok" in done.stderr
    assert (project / ".qarion" / "spark" / "metastore_db").is_dir()
    tables = project / "spark-warehouse" / "production.db"
    assert sorted(p.name for p in tables.iterdir()) == [
        "high_value_orders",
        "orders_landing",
        "orders_stats",
    ]
