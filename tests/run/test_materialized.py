"""Materializations on every engine: views, incremental models, ``is_incremental()``,
``unique_key`` upserts, appends and ``--full-refresh``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qarion_etl.db.materialize import Namespace
from qarion_etl.db.views import relation_kind
from qarion_etl.db_service import DatabaseService
from tests.conftest import unique_name
from tests.helpers import cli
from tests.runkit import (
    drop_namespace,
    make_project,
    query,
    results_file,
    table,
    table_names,
    write_flow,
)

FLOW = """
id = "models"
namespace = "{ns}"

[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "src"
primary_key = ["id"]
columns = [
  {{name = "id", schema_type = "integer", required = true}},
  {{name = "v", schema_type = "string"}},
]
[tasks.config]
path = "data/src.csv"
format = "csv"

[[tasks]]
id = "shown"
type = "transformation"
source_dataset_id = "src"
target_dataset_id = "src_view"
materialized = "{shown}"
[tasks.config]
sql = "SELECT id, v FROM {{{{ source_dataset }}}}"

[[tasks]]
id = "chained"
type = "transformation"
source_dataset_id = "src_view"
target_dataset_id = "big_ids"
materialized = "view"
[tasks.config]
sql = "SELECT id FROM {{{{ source_dataset }}}} WHERE id > 1"

[[tasks]]
id = "merged"
type = "transformation"
source_dataset_id = "src"
target_dataset_id = "merged"
materialized = "incremental"
unique_key = "id"
[tasks.config]
sql = '''
SELECT id, v FROM {{{{ source_dataset }}}}
{{% if is_incremental() %}}
WHERE id >= (SELECT MAX(id) FROM {{{{ target_dataset }}}})
{{% endif %}}
'''

[[tasks]]
id = "counted"
type = "transformation"
source_dataset_id = "src"
target_dataset_id = "counts"
materialized = "incremental"
[tasks.config]
sql = "SELECT COUNT(*) AS n, {{{{ 1 if is_incremental() else 0 }}}} AS later FROM {{{{ source_dataset }}}}"
"""


def _drop_views(url: str, ns: str) -> None:
    """MariaDB keeps a namespace as a name prefix: its views go one by one."""
    if not url.startswith("mysql"):
        return
    from qarion_etl.db_service import create_engine

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            names = conn.exec_driver_sql(
                "SELECT table_name FROM information_schema.views "
                "WHERE table_schema = DATABASE() AND table_name LIKE %s",
                (f"{ns}__%",),
            ).fetchall()
            for (name,) in names:
                conn.exec_driver_sql(f"DROP VIEW IF EXISTS `{name}`")
    finally:
        engine.dispose()


@pytest.fixture
def ns(engine_url: str):  # type: ignore[no-untyped-def]
    name = unique_name("mat")
    yield name
    _drop_views(engine_url, name)
    drop_namespace(engine_url, name)


def _project(tmp_path: Path, engine_url: str, ns: str, shown: str = "view") -> Path:
    project = make_project(tmp_path, engine_url=engine_url, example=False)
    (project / "data").mkdir(exist_ok=True)
    _flow(project, ns, shown)
    _data(project, "id,v\n1,a\n2,b\n3,c\n")
    return project


def _flow(project: Path, ns: str, shown: str) -> None:
    write_flow(project, "models", FLOW.format(ns=ns, shown=shown))


def _data(project: Path, text: str) -> None:
    (project / "data" / "src.csv").write_text(text)


def _run(project: Path, *args: str) -> dict[str, Any]:
    result = cli("run", "models", "--run-id", args[0], *args[1:], project=project)
    assert result.exit_code == 0, result.output + result.stderr
    return results_file(project, args[0], "models")


def _kind(url: str, ns: str, name: str) -> str | None:
    db = DatabaseService(url)
    try:
        with db.connect() as conn:
            return relation_kind(conn, Namespace(db, ns), name)
    finally:
        db.close()


def _rows(url: str, ns: str, name: str, order: str = "id") -> list[tuple[Any, ...]]:
    return [
        tuple(int(v) if isinstance(v, (int, float)) or str(v).isdigit() else v for v in row)
        for row in query(url, f"SELECT * FROM {table(url, ns, name)} ORDER BY {order}")
    ]


def _task(results: dict[str, Any], task_id: str) -> dict[str, Any]:
    tasks = results["tasks"]
    found = (
        tasks[task_id]
        if isinstance(tasks, dict)
        else next(t for t in tasks if t["task_id"] == task_id)
    )
    return found.get("result", found)


def test_view_replaces_a_table_and_back(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns, shown="table")
    _run(project, "r1")
    assert _kind(engine_url, ns, "src_view") == "table"
    _flow(project, ns, "view")
    results = _run(project, "r2")
    assert _kind(engine_url, ns, "src_view") == "view"
    shown = _task(results, "shown")
    assert shown["materialized"] == "view" and "rows_written" not in shown
    assert _rows(engine_url, ns, "src_view") == [(1, "a"), (2, "b"), (3, "c")]
    # The view reads its source as it is now: a reload shows through it, and a view
    # over a table survives that table being replaced.
    _data(project, "id,v\n1,a\n2,b\n3,c\n4,d\n")
    _run(project, "r3")
    assert _rows(engine_url, ns, "src_view")[-1] == (4, "d")
    _flow(project, ns, "table")
    _run(project, "r4")
    assert _kind(engine_url, ns, "src_view") == "table"
    assert len(_rows(engine_url, ns, "src_view")) == 4
    # A view over the model's table or view survives each change of it.
    assert _kind(engine_url, ns, "big_ids") == "view"
    assert _rows(engine_url, ns, "big_ids") == [(2,), (3,), (4,)]


@pytest.mark.parametrize("engine_url", ["sqlite"], indirect=True)
def test_full_refresh_passes_through_run_all(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns)
    write_flow(
        project,
        "other",
        f"""
        id = "other"
        namespace = "{ns}_o"
        [[tasks]]
        id = "one"
        type = "transformation"
        target_dataset_id = "one"
        [tasks.config]
        sql = "SELECT 1 AS x"
        """,
    )
    for args in ((), (), ("--full-refresh",)):
        result = cli("run", "--all", *args, project=project)
        assert result.exit_code == 0, result.output + result.stderr
    assert _rows(engine_url, ns, "counts", "n") == [(3, 0)]


def test_incremental_upsert_append_and_full_refresh(
    tmp_path: Path, engine_url: str, ns: str
) -> None:
    project = _project(tmp_path, engine_url, ns)
    _run(project, "r1")
    assert _rows(engine_url, ns, "merged") == [(1, "a"), (2, "b"), (3, "c")]
    assert _rows(engine_url, ns, "counts", "n") == [(3, 0)]
    # id 1 changes but is below the newest id: is_incremental() keeps it out; 3 is upserted.
    _data(project, "id,v\n1,z\n3,c2\n4,d\n")
    _run(project, "r2")
    assert _rows(engine_url, ns, "merged") == [(1, "a"), (2, "b"), (3, "c2"), (4, "d")]
    assert _rows(engine_url, ns, "counts", "n, later") == [(3, 0), (3, 1)]
    results = _run(project, "r3", "--full-refresh")
    assert _rows(engine_url, ns, "merged") == [(1, "z"), (3, "c2"), (4, "d")]
    assert _rows(engine_url, ns, "counts", "n") == [(3, 0)]
    assert _task(results, "merged")["rows_written"] == 3


# SQLite: the Airflow runtime keeps its project (and a DuckDB file's connection) open.
@pytest.mark.parametrize("engine_url", ["sqlite"], indirect=True)
def test_airflow_task_rebuilds_on_a_full_refresh_conf(
    tmp_path: Path, engine_url: str, ns: str
) -> None:
    pytest.importorskip("airflow.sdk")
    from types import SimpleNamespace

    from qarion_etl.airflow.operator import full_refresh_of
    from qarion_etl.airflow.runtime import run_task

    project = _project(tmp_path, engine_url, ns)

    def run(run_id: str, full_refresh: bool) -> None:
        for task in ("load", "counted"):
            run_task(project, "flows/models.toml", task, run_id=run_id, full_refresh=full_refresh)

    run("a1", False)
    run("a2", False)
    assert _rows(engine_url, ns, "counts", "n, later") == [(3, 0), (3, 1)]
    context = {"dag_run": SimpleNamespace(conf={"full_refresh": True})}
    run("a3", full_refresh_of(context))
    assert _rows(engine_url, ns, "counts", "n") == [(3, 0)]
    assert not full_refresh_of({"dag_run": SimpleNamespace(conf={})})


@pytest.mark.parametrize("engine_url", ["duckdb", "sqlite"], indirect=True)
def test_unknown_unique_key_fails_naming_it_and_publishes_nothing(
    tmp_path: Path, engine_url: str, ns: str
) -> None:
    project = _project(tmp_path, engine_url, ns)
    flow = project / "flows" / "models.toml"
    _run(project, "r1")
    flow.write_text(flow.read_text().replace('unique_key = "id"', 'unique_key = "key"'))
    result = cli("run", "models", "--run-id", "r2", project=project)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert (
        "models.toml:42: task 'merged': key 'unique_key': no column 'key' in the query's"
        " result (its columns: id, v)" in result.stderr
    )
    assert _rows(engine_url, ns, "merged") == [(1, "a"), (2, "b"), (3, "c")]


@pytest.mark.parametrize("engine_url", ["mariadb"], indirect=True)
def test_a_staging_view_left_by_a_killed_write_is_swept(
    tmp_path: Path, engine_url: str, ns: str
) -> None:
    """MariaDB commits DDL at once: a process killed between creating a staging view and its
    rename leaves it. The next write of that view drops it; another target's stays."""
    project = _project(tmp_path, engine_url, ns)
    _run(project, "r1")
    table_of = {n: table(engine_url, ns, f"_qtmp_{n}") for n in ("src_view_0badc0de", "src_view_x")}
    with DatabaseService(engine_url) as db, db.begin() as conn:
        for name in table_of.values():
            conn.exec_driver_sql(f"CREATE VIEW {name} AS SELECT 1 AS one")
    _run(project, "r2")
    views = table_names(engine_url, ns, views=True)
    assert "_qtmp_src_view_0badc0de" not in views
    assert "_qtmp_src_view_x" in views  # not a staging name of src_view: not ours to drop
