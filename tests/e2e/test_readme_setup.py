"""The README's set-up and Airflow blocks, run as written, from a copy of the repository.

Every block marked ``<!-- readme-test: NAME -->`` in README.md is taken verbatim and run,
in order, in one bash session, in a folder holding the repository's files as a fresh
clone has them: ``make run`` builds a new ``.venv``, ``pip install -e '.[airflow]'`` adds
Apache Airflow to it (from whatever index and cache pip is configured with), and Airflow
gets the new ``AIRFLOW_HOME`` the README gives it. The test adds nothing to the commands:
it only sets ``AIRFLOW__API__PORT``, which the README's commands read, to a free port.

Then the example flow has succeeded as a DAG twice, once by ``airflow dags test`` and once
triggered and run by the scheduler, as ``qarion-etl runs list --json`` shows; and while the
services run, none of their processes listens beyond 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.helpers import ROOT
from tests.sockets import assert_loopback_only, listening, session_pids
from tests.uikit import free_port

README = ROOT / "README.md"
BLOCK = re.compile(r"<!-- readme-test: ([\w-]+) -->\n```(?:sh|bash)\n(.*?)```\n", re.S)
#: The blocks the README must carry, in its order: what a newcomer runs.
EXPECTED = ["setup", "airflow", "airflow", "airflow-servers", "airflow-trigger"]


def readme_blocks() -> list[tuple[str, str]]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_the_readme_marks_its_setup_and_airflow_blocks() -> None:
    """Fast: the blocks are there, and the quick start puts qarion-etl on PATH before use."""
    blocks = readme_blocks()
    assert [name for name, _ in blocks] == EXPECTED
    setup = blocks[0][1].splitlines()
    activate = next(
        i for i, line in enumerate(setup) if line.startswith("source .venv/bin/activate")
    )
    assert setup[0].startswith("make run")
    assert all(not line.startswith("qarion-etl") for line in setup[:activate])
    assert any(line.startswith("qarion-etl") for line in setup[activate:])
    script = "\n".join(code for _, code in blocks)
    for needed in (
        "pip install -e '.[airflow]'",
        "airflow db migrate",
        "dags_from_project(",
        "airflow dags reserialize",
        "airflow dags test data_pipeline",
        "AIRFLOW__API__HOST=127.0.0.1",
        "--skip-serve-logs",
    ):
        assert needed in script, needed
    assert "pip install 'qarion-etl" not in README.read_text()  # not on a package index
    # Under `make test` the parent's MAKELEVEL makes a nested make print "Leaving directory".
    quiet = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=quiet,
    )
    if dry.returncode == 0:  # make is there: run's last line tells how to reach qarion-etl
        assert "source .venv/bin/activate" in dry.stdout.splitlines()[-1]


def _copy_of_the_repository(target: Path) -> Path:
    """The files a clone has (tracked or new, never ignored), as they are in this tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _clean_env(port: int) -> dict[str, str]:
    """This environment without what the test run itself set up (its virtualenv, Airflow's
    and qarion-etl's settings, make's flags); pip's own configuration is kept."""
    ours = str(Path(sys.executable).parent)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "QARION", "PYTEST", "MAKE"))
        and k not in ("VIRTUAL_ENV", "PYTHONPATH", "MFLAGS", "PYTHONHOME")
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != ours)
    env["NO_COLOR"] = "1"
    env["AIRFLOW__API__PORT"] = str(port)  # the one thing the README leaves to the reader
    return env


def _runs(clone: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(clone / ".venv" / "bin" / "qarion-etl"), "runs", "list", "--json"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2
        ) as r:
            doc = json.load(r)
    except OSError:
        return False
    parts = ("scheduler", "dag_processor", "triggerer")
    return all(doc.get(p, {}).get("status") == "healthy" for p in parts)


def _stop(session: int) -> None:
    """SIGTERM to every process of the services' session, then SIGKILL to what is left."""
    for sig, grace in ((signal.SIGTERM, 40), (signal.SIGKILL, 10)):
        for pid in session_pids(session):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while session_pids(session) and time.monotonic() < deadline:
            time.sleep(0.5)


@pytest.mark.airflow
@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads Linux's /proc")
def test_the_readme_blocks_run_as_written(tmp_path: Path) -> None:
    missing = [tool for tool in ("make", "bash", "git") if shutil.which(tool) is None]
    if missing or not (ROOT / ".git").exists():
        message = f"needs a git checkout and {', '.join(missing) or 'make, bash, git'}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    blocks = readme_blocks()
    assert [name for name, _ in blocks] == EXPECTED
    clone = _copy_of_the_repository(tmp_path / "qarion-etl")
    port = free_port()
    script = "set -e -o pipefail\n" + "".join(f"# --- {n}\n{code}" for n, code in blocks)
    log = tmp_path / "readme.log"
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", "-c", script],
            cwd=clone,
            env=_clean_env(port),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    session = proc.pid
    try:
        try:
            code = proc.wait(timeout=1500)
        except subprocess.TimeoutExpired:
            tail = log.read_text()[-6000:]
            raise AssertionError(f"the README's blocks did not finish:\n{tail}") from None
        text = log.read_text()
        assert code == 0, f"the README's blocks failed (exit {code}):\n{text[-6000:]}"
        setup_took = time.monotonic() - started
        print(f"README blocks ran in {setup_took:.0f}s")

        # make run ended by saying how to reach qarion-etl; the quick start's runs list,
        # typed as 'qarion-etl', ran (set -e) and shows that run.
        assert 'qarion-etl is installed in .venv: "source .venv/bin/activate"' in text
        assert "state=success" in text  # airflow dags test
        dag_file = clone / ".airflow" / "dags" / "qarion_etl_dags.py"
        assert f'dags_from_project("{clone}")' in dag_file.read_text()

        deadline = time.monotonic() + 240
        while not _healthy(port):
            assert time.monotonic() < deadline, "the Airflow services did not become healthy"
            assert session_pids(session), "the Airflow services exited"
            time.sleep(2)
        assert_loopback_only(session, expect_port=port)

        def manual_runs() -> list[dict[str, Any]]:
            return [r for r in _runs(clone) if r["dag_run_id"].startswith("manual__")]

        deadline = time.monotonic() + 300
        while True:
            runs = manual_runs()
            assert not [r for r in runs if r["status"] in ("failed", "interrupted")], runs
            if len(runs) == 2 and all(r["status"] == "success" for r in runs):
                break
            assert time.monotonic() < deadline, f"the triggered DAG run did not succeed: {runs}"
            time.sleep(3)
        assert_loopback_only(session, expect_port=port)
        listeners = listening(session)
        assert {s.port for s in listeners} == {port}, [str(s) for s in listeners]

        all_runs = _runs(clone)
        assert len(all_runs) == 3  # make run's, airflow dags test's, the scheduler's
        assert all(r["flow_id"] == "data_pipeline" and r["status"] == "success" for r in all_runs)
        print(f"README blocks and the scheduled run: {time.monotonic() - started:.0f}s")
    finally:
        _stop(session)
    assert not session_pids(session)
