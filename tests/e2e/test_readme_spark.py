"""The README's "Running on Spark" set-up, run as written from a copy of the repository.

The block marked ``<!-- spark-test: setup -->`` is taken verbatim and run in bash, in a
folder holding the repository's files as a fresh clone has them: ``make run`` builds a new
``.venv``, pip adds the full ``pyspark``, a Spark Connect server starts with ``local[2]``
(the test only gives it a free port, through ``SPARK_CONNECT_PORT``, which the block
reads), the example flow runs on it and the server is stopped. Needs Java: ``spark``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.e2e.test_readme_setup import README, _clean_env, _copy_of_the_repository
from tests.spark.server import free_port, java_missing

BLOCK = re.compile(r"<!-- spark-test: ([\w-]+) -->\n```(?:sh|bash)\n(.*?)```\n", re.S)


def spark_blocks() -> list[tuple[str, str]]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_the_readme_marks_its_spark_setup() -> None:
    blocks = spark_blocks()
    assert [name for name, _ in blocks] == ["setup"]
    script = blocks[0][1]
    for needed in (
        "pip install -q 'pyspark[connect]==4.3.*'",
        "start-connect-server.sh",
        "spark.connect.grpc.binding.address=127.0.0.1",
        "spark.ui.enabled=false",
        "qarion-etl run data_pipeline",
        "stop-connect-server.sh",
    ):
        assert needed in script, needed


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="a Linux shell session")
def test_the_readme_spark_setup_runs_as_written(tmp_path: Path) -> None:
    missing = java_missing() or next(
        (f"no {t}" for t in ("make", "bash", "git") if shutil.which(t) is None), None
    )
    if missing:
        if IN_CI:
            pytest.fail(missing)
        pytest.skip(missing)
    clone = _copy_of_the_repository(tmp_path / "qarion-etl")
    env = _clean_env(free_port())
    env["SPARK_CONNECT_PORT"] = str(free_port())
    script = "set -e -o pipefail\n" + spark_blocks()[0][1]
    try:
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=1500,
            start_new_session=True,
        )
    finally:
        # Whatever happened, the server is stopped (its pid file is in .qarion/spark).
        stop = clone / ".venv" / "bin" / "python"
        if stop.exists():
            subprocess.run(
                [
                    "bash",
                    "-c",
                    'SPARK_PID_DIR="$PWD/.qarion/spark" SPARK_HOME="$('
                    f"{stop} -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')\" "
                    '"$SPARK_HOME/sbin/stop-connect-server.sh" || true',
                ],
                cwd=clone,
                capture_output=True,
                timeout=120,
            )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "spark at sc://127.0.0.1" in out  # doctor
    assert "SUCCESS: 3 ok" in out
    assert "256.2401333333334" in done.stdout  # the pulled avg_value
