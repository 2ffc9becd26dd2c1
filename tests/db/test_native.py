"""Native SQLite and DuckDB connections agree with the SQLAlchemy path they stand in for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from qarion_etl.db.urls import native_target
from qarion_etl.db_service import DatabaseService, create_engine
from qarion_etl.errors import StoreUnavailable
from qarion_etl.run.history import RunStore, TaskInstanceRecord
from qarion_etl.xcom import XComService
from qarion_etl.xcom.backends.database import DatabaseXComBackend
from tests.helpers import make_project

KINDS = ("sqlite", "duckdb")


def url_of(kind: str, path: Path) -> str:
    return f"{kind}:///{path}"


def schema(url: str) -> dict[str, Any]:
    """Columns, primary key and indexes of every table, read from the catalog."""
    if url.startswith("duckdb"):
        # duckdb-engine's reflection queries PostgreSQL catalogs DuckDB lacks: ask DuckDB.
        import duckdb

        con = duckdb.connect(url.removeprefix("duckdb:///"), read_only=True)
        try:
            return {
                "columns": con.execute(
                    "SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns() WHERE NOT internal "
                    "ORDER BY table_name, column_index"
                ).fetchall(),
                "pk": con.execute(
                    "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
                    "WHERE constraint_type = 'PRIMARY KEY' ORDER BY table_name"
                ).fetchall(),
                "indexes": con.execute(
                    "SELECT table_name, index_name, expressions FROM duckdb_indexes() "
                    "ORDER BY table_name, index_name"
                ).fetchall(),
            }
        finally:
            con.close()
    engine = create_engine(url)
    try:
        insp = sa.inspect(engine)
        out = {}
        for table in sorted(insp.get_table_names()):
            out[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
                ],
                "pk": insp.get_pk_constraint(table)["constrained_columns"],
                "indexes": sorted(
                    (ix["name"], tuple(ix["column_names"])) for ix in insp.get_indexes(table)
                ),
            }
        return out
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", KINDS)
def test_native_ddl_matches_sqlalchemy_ddl(tmp_path: Path, kind: str) -> None:
    native_url = url_of(kind, tmp_path / f"native.{kind}")
    sa_url = url_of(kind, tmp_path / f"sa.{kind}")
    native_db = DatabaseService(native_url)
    sa_db = DatabaseService(create_engine(sa_url))
    assert native_db.native and not sa_db.native
    for db in (native_db, sa_db):
        RunStore(db, "meta").create_tables()
        backend = DatabaseXComBackend(db)
        XComService(backend, default_flow_id="f").push("t", 1)
        backend.close()
        db.close()
    native, via_sa = schema(native_url), schema(sa_url)
    tables = {
        "meta_runs",
        "meta_task_instances",
        "meta_batches",
        "meta_task_tries",
        "meta_run_plans",
        "qarion_xcom",
    }
    if kind == "sqlite":
        assert set(native) == tables
    else:
        assert {row[0] for row in native["columns"]} == tables
        assert len(native["indexes"]) == 4
    assert native == via_sa


@pytest.mark.postgres
def test_native_postgres_ddl_matches_sqlalchemy_ddl(pg_url: str) -> None:
    """The metadata tables written by psycopg are the ones SQLAlchemy writes, to the index."""
    from tests.conftest import unique_name
    from tests.runkit import drop_metadata

    native_ns, sa_ns = unique_name("nat"), unique_name("sqa")
    native_db = DatabaseService(pg_url)
    sa_db = DatabaseService(create_engine(pg_url))
    assert native_db.native and not sa_db.native
    try:
        for db, ns in ((native_db, native_ns), (sa_db, sa_ns)):
            RunStore(db, ns).create_tables()
            backend = DatabaseXComBackend(db, table_name=f"{ns}_xcom")
            XComService(backend, default_flow_id="f").push("t", 1)
            backend.close()
        engine = create_engine(pg_url)
        insp = sa.inspect(engine)

        def shape(ns: str) -> dict[str, Any]:
            out = {}
            for table in sorted(t for t in insp.get_table_names() if t.startswith(ns)):
                out[table.removeprefix(ns)] = {
                    "columns": [
                        (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
                    ],
                    "pk": insp.get_pk_constraint(table)["constrained_columns"],
                    "indexes": sorted(
                        (ix["name"].replace(ns, "NS"), tuple(ix["column_names"]))
                        for ix in insp.get_indexes(table)
                    ),
                }
            return out

        native, via_sa = shape(native_ns), shape(sa_ns)
        engine.dispose()
        assert len(native) == 6 and native == via_sa
    finally:
        native_db.close()
        sa_db.close()
        for ns in (native_ns, sa_ns):
            drop_metadata(pg_url, ns)


@pytest.mark.parametrize("kind", KINDS)
def test_values_cross_between_native_and_sqlalchemy(tmp_path: Path, kind: str) -> None:
    url = url_of(kind, tmp_path / f"x.{kind}")
    native_db = DatabaseService(url)
    native = DatabaseXComBackend(native_db)
    XComService(native, default_flow_id="f", default_dag_run_id="r").push("t", {"n": 1.5}, key="k")
    native.close()
    # DuckDB opens one file once per process: its SQLAlchemy engine borrows the native one.
    engine = native_db.engine if kind == "duckdb" else create_engine(url)
    via_sa = DatabaseXComBackend(DatabaseService(engine))
    svc = XComService(via_sa, default_flow_id="f", default_dag_run_id="r")
    assert svc.pull("t", key="k") == {"n": 1.5}
    svc.push("t", "from sqlalchemy", key="k")
    via_sa.close()
    again = DatabaseXComBackend(native_db)
    svc = XComService(again, default_flow_id="f", default_dag_run_id="r")
    assert svc.pull("t", key="k") == "from sqlalchemy"
    assert svc.clear(flow_id="f") == 1
    again.close()
    native_db.close()


@pytest.mark.parametrize("kind", ("sqlite",))
def test_run_store_rows_cross_paths(tmp_path: Path, kind: str) -> None:
    url = url_of(kind, tmp_path / "meta.db")
    store = RunStore(DatabaseService(url))
    batch = store.allocate_batch_id("f")
    store.start_run("r1", "f", batch, "2026-01-01T00:00:00")
    store.record_task(
        TaskInstanceRecord("r1", "t", "f", batch, "success", 1, "a", "b", 3, None, ["k"])
    )
    store.finish_run("f", "r1", "success", "2026-01-01T00:00:01", {"ok": True})
    store.db.close()
    other = RunStore(DatabaseService(create_engine(url)))
    assert other.allocate_batch_id("f") == batch + 1
    run = other.get_run("r1")
    assert run is not None and run.status == "success" and run.summary == {"ok": True}
    (ti,) = other.task_instances("f", "r1")
    assert (ti.task_id, ti.rows, ti.xcom_keys) == ("t", 3, ["k"])
    other.db.close()


def test_which_urls_are_native(tmp_path: Path) -> None:
    assert native_target(f"sqlite:///{tmp_path}/m.db") == ("sqlite", f"{tmp_path}/m.db")
    assert native_target(f"duckdb:///{tmp_path}/w.duckdb") == ("duckdb", f"{tmp_path}/w.duckdb")
    assert native_target("duckdb:///:memory:") == ("duckdb", ":memory:")
    # SQLite in memory is private to each connection, and query options mean something to
    # SQLAlchemy: both stay with it.
    assert native_target("sqlite:///:memory:") is None
    assert native_target("sqlite://") is None
    assert native_target(f"sqlite:///{tmp_path}/m.db?mode=ro") is None
    # PostgreSQL through psycopg itself (an Airflow task process is spared SQLAlchemy's
    # import); with query options, through SQLAlchemy, which knows what they mean.
    assert native_target("postgresql+psycopg://u:p@h:5/db") == (
        "postgresql",
        "postgresql://u:p@h:5/db",
    )
    assert native_target("postgresql://u@h/db") == ("postgresql", "postgresql://u@h/db")
    assert native_target("postgresql+psycopg://u@h/db?sslmode=require") is None
    assert native_target("mysql+pymysql://u@h/db") is None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["plain", 'we"ird', "with space", "key", "naïve`tick"])
def test_quoting_matches_sqlalchemy(tmp_path: Path, kind: str, name: str) -> None:
    url = url_of(kind, tmp_path / f"q.{kind}")
    native = DatabaseService(url)
    via_sa = DatabaseService(native.engine if kind == "duckdb" else create_engine(url))
    try:
        with native.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE {native.quote(name)} (x INTEGER)")
        with via_sa.connect() as conn:
            assert via_sa.has_table(conn, name)
            assert conn.exec_driver_sql(f"SELECT COUNT(*) FROM {via_sa.quote(name)}").scalar() == 0
    finally:
        native.close()
        via_sa.close()


def test_duckdb_held_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        db = DatabaseService(url_of("duckdb", path), what="warehouse")
        with pytest.raises(StoreUnavailable, match="in use by another process"):
            db.check()
    finally:
        holder.kill()
        holder.wait()


def test_a_default_run_never_imports_sqlalchemy(tmp_path: Path) -> None:
    """The embedded default (DuckDB warehouse, SQLite metadata) runs on the drivers alone."""
    project = make_project(tmp_path)
    probe = (
        "import sys, json\n"
        "from qarion_etl.cli.main import main\n"
        "for argv in (['run', 'data_pipeline'], ['xcom', 'get', 'calculate_stats', '--key', "
        "'avg_value', '--flow', 'data_pipeline'], ['runs', 'list']):\n"
        "    try:\n        main(argv)\n    except SystemExit as e:\n"
        "        assert not e.code, (argv, e.code)\n"
        "sys.stderr.write('\\nMODULES=' + json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("QARION_ETL_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded = {m.split(".")[0] for m in json.loads(done.stderr.rsplit("MODULES=", 1)[1])}
    assert "duckdb" in loaded and "sqlite3" in loaded
    heavy = {"sqlalchemy", "duckdb_engine", "boto3", "networkx", "pyspark", "pyarrow", "grpc"}
    assert not loaded & heavy, sorted(loaded & heavy)
    assert "256.2401333333334\n" in done.stdout  # xcom get printed the pulled avg_value


def test_duckdb_url_options_reach_duckdb(tmp_path: Path) -> None:
    """A DuckDB URL with options (here a bound on its buffer pool) goes through duckdb-engine,
    which hands them to DuckDB."""
    db = DatabaseService(f"duckdb:///{tmp_path / 'w.duckdb'}?memory_limit=1GB")
    try:
        assert not db.native
        with db.connect() as conn:
            limit = conn.exec_driver_sql("SELECT current_setting('memory_limit')").scalar()
        assert limit in ("953.6 MiB", "1.0 GB", "1GB"), limit
    finally:
        db.close()


def test_only_file_urls_name_a_database_file(tmp_path: Path) -> None:
    """An Airflow pool of one slot is for a database file; a server takes many writers."""
    from qarion_etl.db.urls import database_file

    assert database_file(f"duckdb:///{tmp_path}/w.duckdb") == f"{tmp_path}/w.duckdb"
    assert database_file(f"sqlite:///{tmp_path}/m.db") == f"{tmp_path}/m.db"
    assert database_file("duckdb:///:memory:") is None
    assert database_file("postgresql+psycopg://u@h/db") is None
    assert database_file("mysql+pymysql://u@h/db") is None
