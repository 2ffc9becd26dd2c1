"""``python -m qarion_etl.airflow pools PROJECT [--create]``: the Airflow pools of a project.

A SQLite or DuckDB warehouse file takes one writer process at a time, so the project's
tasks share an Airflow pool with one slot; Airflow schedules no task of a pool that does
not exist. This prints the command that creates it, or runs it with ``--create``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from qarion_etl.airflow.plan import project_pools
from qarion_etl.errors import QarionError, install_hint


def _airflow() -> str | None:
    """The ``airflow`` command beside this Python (a virtualenv's), else the one on PATH."""
    here = Path(sys.executable).with_name("airflow")
    return str(here) if here.exists() else shutil.which("airflow")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qarion_etl.airflow")
    sub = parser.add_subparsers(dest="command", required=True)
    pools = sub.add_parser("pools", help="print (or create) the project's Airflow pools")
    pools.add_argument("project", help="the folder holding qarion-etl.toml")
    pools.add_argument("--create", action="store_true", help="run 'airflow pools set'")
    args = parser.parse_args(argv)
    try:
        found = project_pools(args.project)
    except QarionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if not found:
        print("# no pool needed: the warehouse is a server database", file=sys.stderr)
    for pool in found:
        if not args.create:
            print(pool.command())
            continue
        airflow = _airflow()
        if airflow is None:
            print(
                f"error: no 'airflow' command here ({install_hint('airflow')})",
                file=sys.stderr,
            )
            return 3
        done = subprocess.run(
            [airflow, "pools", "set", pool.name, str(pool.slots), pool.description],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(
                f"error: {pool.command()} failed:\n{done.stderr.strip()[-2000:]}", file=sys.stderr
            )
            return 3
        print(f"created pool {pool.name} ({pool.slots} slot)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
