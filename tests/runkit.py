"""Helpers for runner tests: projects with a private namespace, table queries, cleanup."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.helpers import ROOT, cli, make_project, write_flow

SEED_FLOW = (ROOT / "flows" / "data_pipeline.toml").read_text()


def seed_project(
    tmp_path: Path, namespace: str, engine_url: str | None = None, flow_text: str | None = None
) -> Path:
    """The seed example with its flow moved to ``namespace`` (so tests never share tables)."""
    project = make_project(tmp_path, engine_url=engine_url)
    text = (flow_text or SEED_FLOW).replace(
        'namespace = "production"', f'namespace = "{namespace}"'
    )
    (project / "flows" / "data_pipeline.toml").write_text(text)
    return project


def run_cli(project: Path, *args: str) -> Any:
    return cli("run", *args, project=project)


def engine_url_of(project: Path) -> str:
    import tomli

    url = tomli.loads((project / "qarion-etl.toml").read_text())["engine"]["url"]
    return str(url)


def table(url: str, namespace: str, name: str) -> str:
    from qarion_etl.db_service import DatabaseService

    db = DatabaseService(url)
    try:
        return db.qualified(namespace, name)
    finally:
        db.close()


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    from qarion_etl.db_service import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def table_names(url: str, namespace: str, *, views: bool = False) -> list[str]:
    """The tables of ``namespace`` (and its views too, with ``views``), by their own names."""
    from qarion_etl.db_service import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            insp = sa.inspect(conn)
            if engine.dialect.name in ("postgresql", "duckdb"):
                names = insp.get_table_names(schema=namespace)
                return sorted(names + (insp.get_view_names(schema=namespace) if views else []))
            names = insp.get_table_names() + (insp.get_view_names() if views else [])
            return sorted(n[len(namespace) + 2 :] for n in names if n.startswith(namespace + "__"))
    finally:
        engine.dispose()


def drop_namespace(url: str, namespace: str) -> None:
    """Remove every view and table of ``namespace`` (the schema where the engine has schemas)."""
    from qarion_etl.db_service import create_engine

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name in ("postgresql", "duckdb"):
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE')
                return
            q = engine.dialect.identifier_preparer.quote_identifier
            inspector = sa.inspect(conn)
            for name in inspector.get_view_names():  # views first: they may read the tables
                if name.startswith(namespace + "__"):
                    conn.exec_driver_sql(f"DROP VIEW {q(name)}")
            for name in inspector.get_table_names():
                if name.startswith(namespace + "__"):
                    conn.exec_driver_sql(f"DROP TABLE {q(name)}")
    finally:
        engine.dispose()


def orders_mean(path: Path) -> tuple[float, int]:
    """The mean of ``value`` in an orders CSV and how many rows lie above it."""
    with path.open(newline="") as fh:
        values = [float(r["value"]) for r in csv.DictReader(fh)]
    mean = sum(values) / len(values)
    return mean, sum(v > mean for v in values)


def run_dir(project: Path, run_id: str, flow: str | None = None) -> Path:
    """``.qarion/runs/<flow>/<run_id>/`` (without ``flow``: of the one flow that has the run)."""
    runs = project / ".qarion" / "runs"
    if flow is not None:
        return runs / flow / run_id
    found = [p for p in runs.glob(f"*/{run_id}.json")]
    assert len(found) == 1, f"run {run_id!r} in {len(found)} flows: {found}"
    return found[0].with_suffix("")


def results_file(project: Path, run_id: str, flow: str | None = None) -> dict[str, Any]:
    folder = run_dir(project, run_id, flow)
    return json.loads(folder.with_name(folder.name + ".json").read_text())


def xcom(project: Path, task: str, key: str = "return_value", **ident: Any) -> Any:
    from qarion_etl.project import Project

    with Project.load(project / "qarion-etl.toml") as p:
        return p.xcom_service(ident.pop("flow_id", "data_pipeline")).pull(task, key=key, **ident)


__all__ = ["cli", "write_flow", "make_project"]


def drop_metadata(url: str, namespace: str) -> None:
    """Remove the run history and the XCom table a test kept under ``namespace``."""
    from qarion_etl.db_service import DatabaseService
    from qarion_etl.run.history import RunStore

    db = DatabaseService(url)
    try:
        RunStore(db, namespace).drop_tables()
        with db.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {db.quote(namespace + '_xcom')}")
    finally:
        db.close()
