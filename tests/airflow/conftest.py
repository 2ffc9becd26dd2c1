"""A real Apache Airflow for the tests: its CLI from this virtualenv, a home per test.

``airflow db migrate`` runs once per session into a template home; each test gets a copy
(its own SQLite Airflow database, dags folder and logs), so DAG ids never clash between
tests. Airflow runs in subprocesses only: importing it here would reconfigure logging for
the whole test session. Under ``CI=true`` a missing Airflow is a failure, not a skip.

Servers listen on free ports of 127.0.0.1 only: the API server through ``[api] host``; the
log servers of the scheduler and the triggerer, which Airflow binds to every interface
whatever the configuration, are not started (``--skip-serve-logs``), and their ports are
moved off the defaults all the same (the triggerer's is ``[logging]
trigger_log_server_port``; there is no ``[triggerer] port``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI

AIRFLOW = Path(sys.executable).with_name("airflow")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Airflow:
    """One Airflow home: its environment, its dags folder and a runner for its CLI."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.dags = home / "dags"
        self.dags.mkdir(exist_ok=True)
        self.api_port = _free_port()
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
            "QARION_ETL_AIRFLOW_CACHE": str(home / "parse-cache"),
            "PATH": f"{AIRFLOW.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "NO_COLOR": "1",
        }
        self.env.pop("QARION_ETL_CONFIG", None)

    def logs(self) -> list[Path]:
        """Every task log file written so far."""
        return sorted((self.home / "logs").rglob("*.log"))

    def dag_file(self, name: str, text: str) -> Path:
        path = self.dags / f"{name}.py"
        path.write_text(textwrap.dedent(text))
        return path

    def run(
        self, *args: str, timeout: float = 240, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(AIRFLOW), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"airflow {' '.join(args)} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            )
        return done

    def python(self, code: str, timeout: float = 240) -> Any:
        """Run ``code`` with Airflow importable in this home; it prints one JSON document last."""
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    def airflow_xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        """The ``return_value`` Airflow itself keeps for a task instance."""
        return self.python(
            f"""
            import json
            from airflow.models.xcom import XComModel
            from airflow.utils.session import create_session
            with create_session() as session:
                row = session.query(XComModel).filter_by(
                    dag_id={dag_id!r}, run_id={run_id!r}, task_id={task_id!r}, key="return_value"
                ).one()
                value = row.value
            print(json.dumps(json.loads(value) if isinstance(value, str) else value))
            """
        )


@pytest.fixture(scope="session")
def airflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not AIRFLOW.exists():
        message = "Apache Airflow is not installed here (make test installs it)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true: a missing Airflow is a failure")
        pytest.skip(message)
    home = tmp_path_factory.mktemp("airflow-template")
    Airflow(home).run("db", "migrate")
    return home


@pytest.fixture
def airflow(airflow_template: Path, tmp_path: Path) -> Iterator[Airflow]:
    home = tmp_path / "airflow"
    shutil.copytree(airflow_template, home)
    yield Airflow(home)
