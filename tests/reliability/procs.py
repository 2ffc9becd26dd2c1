"""Helpers for reliability tests: real ``qarion-etl`` processes, big inputs, state snapshots."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

QARION = [sys.executable, "-m", "qarion_etl"]


def start(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``qarion-etl --config PROJECT/qarion-etl.toml ARGS`` in its own process group."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", **(env or {})}
    return subprocess.Popen(
        [*QARION, "--config", str(project / "qarion-etl.toml"), *args],
        cwd=project,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run(
    project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``qarion-etl`` to the end; returns the completed process (stdout and stderr apart)."""
    proc = start(project, *args, env=env)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def wait_for(
    condition: Callable[[], bool],
    proc: subprocess.Popen[str] | None = None,
    timeout: float = 60,
    what: str = "condition",
) -> None:
    """Poll ``condition`` until it holds; fail when ``proc`` ends first or time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(
                f"process ended (exit {proc.returncode}) before {what}:\n{out}\n{err}"
            )
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def stop(
    proc: subprocess.Popen[str], sig: signal.Signals, timeout: float = 60
) -> tuple[int, str, str]:
    """Send ``sig`` to the process and collect its exit code and output."""
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def metadata_url(project: Path) -> str:
    return f"sqlite:///{project / '.qarion' / 'metadata.db'}"


def task_states(url: str, namespace: str = "qarion") -> dict[str, str]:
    """``{task_id: status}`` of every task instance in the metadata database (empty when none yet)."""
    engine = sa.create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(f"{namespace}_task_instances"):
                return {}
            rows = conn.exec_driver_sql(
                f"SELECT task_id, status FROM {namespace}_task_instances"
            ).all()
        return {str(r[0]): str(r[1]) for r in rows}
    except sa.exc.OperationalError:
        return {}
    finally:
        engine.dispose()


def runs(url: str, namespace: str = "qarion") -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.exec_driver_sql(
                    f"SELECT dag_run_id, status, batch_id FROM {namespace}_runs ORDER BY started_at"
                )
            ]
    finally:
        engine.dispose()


def write_orders_csv(path: Path, rows: int) -> Path:
    """An ``id,value`` CSV with ``rows`` rows (values 0..999.5 repeating)."""
    if path.exists():
        return path
    tmp = path.with_suffix(".part")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write("id,value\n")
        chunk = 100_000
        for start_ in range(0, rows, chunk):
            fh.write(
                "".join(
                    f"{i},{(i % 2000) / 2}\n"
                    for i in range(start_ + 1, min(rows, start_ + chunk) + 1)
                )
            )
    tmp.rename(path)
    return path


_SEED_FLOW = """
id = "@FLOW@"
namespace = "@NAMESPACE@"

[input]
primary_key = ["id"]
columns = [{name = "id", schema_type = "integer", required = true},
           {name = "value", schema_type = "float", required = true}]

[[tasks]]
id = "ingest_orders"
type = "ingestion"
target_dataset_id = "orders_landing"
[tasks.config]
path = "data/orders.csv"
format = "csv"

[[tasks]]
id = "calculate_stats"
type = "transformation"
source_dataset_id = "orders_landing"
target_dataset_id = "orders_stats"
dependencies = ["ingest_orders"]
[tasks.config]
sql = @STATS_SQL@

[[tasks]]
id = "filter_high_value"
type = "transformation"
source_dataset_id = "orders_landing"
target_dataset_id = "high_value_orders"
dependencies = ["calculate_stats"]
[tasks.config]
sql = "SELECT * FROM {{ source_dataset }} WHERE value > {{ xcom_pull('calculate_stats', key='avg_value') }}"
"""


def seed_flow(flow_id: str, namespace: str, stats_sql: str) -> str:
    """The seed pipeline as a flow file; ``stats_sql`` is calculate_stats's SQL as a TOML string."""
    return (
        _SEED_FLOW.replace("@FLOW@", flow_id)
        .replace("@NAMESPACE@", namespace)
        .replace("@STATS_SQL@", stats_sql)
    )
