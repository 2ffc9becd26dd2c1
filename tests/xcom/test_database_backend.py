"""The database backend beyond the contract: schema, plain SQL readability, connections."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from qarion_etl.db_service import DatabaseService
from qarion_etl.errors import StoreUnavailable
from qarion_etl.xcom import XComService, XComValueType
from qarion_etl.xcom.backends.database import DatabaseXComBackend
from tests.conftest import unique_name
from tests.xcom.conftest import drop_table


@pytest.fixture
def backend(metadata_url: str) -> Iterator[DatabaseXComBackend]:
    db = DatabaseService(metadata_url)
    b = DatabaseXComBackend(db, table_name=unique_name("xcom"))
    yield b
    drop_table(b)
    db.close()


def rows(b: DatabaseXComBackend, sql: str) -> list[tuple[object, ...]]:
    assert b.db_service is not None
    with b.db_service.connect() as conn:
        return [
            tuple(r) for r in conn.exec_driver_sql(sql.format(t=b.db_service.quote(b.table_name)))
        ]


def test_values_are_plain_json_text(backend: DatabaseXComBackend) -> None:
    svc = XComService(backend, default_flow_id="f")
    pushes = {
        "j": ({"a": [1, None]}, None),
        "s": ("x", "string"),
        "i": (7, "integer"),
        "fl": (0.5, "float"),
        "nan": (float("nan"), None),
        "b": (True, "boolean"),
        "bin": (b"\x01", None),
        "none": (None, None),
    }
    for key, (value, vtype) in pushes.items():
        svc.push("t", value, key=key, value_type=vtype)
    got = dict(
        rows(backend, "SELECT {k}, value FROM {t}".replace("{k}", backend.db_service.quote("key")))
    )  # type: ignore[union-attr]
    assert got == {
        "j": '{"a":[1,null]}',
        "s": '"x"',
        "i": "7",
        "fl": "0.5",
        "nan": '"NaN"',
        "b": "true",
        "bin": '"AQ=="',
        "none": "null",
    }
    for text in got.values():
        json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))  # type: ignore[arg-type]
    if backend.db_service.dialect.name == "postgresql":  # type: ignore[union-attr]
        assert len(rows(backend, "SELECT value::jsonb FROM {t}")) == len(pushes)


def test_missing_run_and_batch_leave_one_row(backend: DatabaseXComBackend) -> None:
    svc = XComService(backend, default_flow_id="f")
    for i in range(3):
        svc.push("t", i)
    assert rows(backend, "SELECT COUNT(*), MIN(dag_run_id), MIN(batch_id) FROM {t}") == [
        (1, None, None)
    ]
    assert svc.pull("t") == 2


def test_schema_has_identity_key_and_lookup_indexes(backend: DatabaseXComBackend) -> None:
    XComService(backend, default_flow_id="f").push("t", 1)
    assert backend.db_service is not None
    insp = sa.inspect(backend.db_service.engine)
    assert insp.get_pk_constraint(backend.table_name)["constrained_columns"] == ["identity"]
    indexed = {tuple(ix["column_names"]) for ix in insp.get_indexes(backend.table_name)}
    assert {("task_id", "key", "pushed_ns"), ("flow_id", "dag_run_id"), ("pushed_ns",)} <= indexed


def test_one_connection_per_thread_for_the_life_of_the_backend(
    backend: DatabaseXComBackend,
) -> None:
    svc = XComService(backend, default_flow_id="f")
    for i in range(50):
        svc.push("t", i, key=str(i))
        svc.pull("t", key=str(i))
    svc.list()
    svc.clear(task_id="nothing")
    assert backend._sql is not None and len(backend._sql._open) == 1


def test_second_backend_reuses_the_existing_table(backend: DatabaseXComBackend) -> None:
    XComService(backend, default_flow_id="f").push("t", "first")
    again = DatabaseXComBackend(backend.db_service, table_name=backend.table_name)  # type: ignore[arg-type]
    assert XComService(again, default_flow_id="f").pull("t") == "first"
    again.close()


def test_unreachable_database_is_store_unavailable(tmp_path: Path) -> None:
    db = DatabaseService("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    svc = XComService(DatabaseXComBackend(db), default_flow_id="f")
    with pytest.raises(StoreUnavailable) as err:
        svc.push("t", 1)
    assert err.value.exit_code == 3 and "127.0.0.1:1" in str(err.value)


@pytest.mark.postgres
def test_reconnects_after_the_server_drops_the_connection(pg_url: str) -> None:
    db = DatabaseService(pg_url)
    b = DatabaseXComBackend(db, table_name=unique_name("xcom"))
    svc = XComService(b, default_flow_id="f")
    try:
        svc.push("t", 1)
        assert b._sql is not None
        conn = b._sql._connection()[0].raw
        with db.connect() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({conn.info.backend_pid})")
        svc.push("t", 2, value_type=XComValueType.INTEGER)
        assert svc.pull("t") == 2
    finally:
        drop_table(b)
        db.close()


@pytest.mark.postgres
def test_a_pull_naming_every_part_is_a_primary_key_lookup(pg_url: str) -> None:
    """Without fresh statistics (autovacuum off, a new table) PostgreSQL once chose the run
    index for pulls and read every row of the run: 5 ms a pull at 10,000 values."""
    backend = DatabaseXComBackend(DatabaseService(pg_url), table_name=unique_name("xc"))
    try:
        svc = XComService(backend, default_flow_id="f", default_dag_run_id="r", default_batch_id=1)
        for _ in range(3):  # updated rows leave dead index entries behind, as in real runs
            svc.push_many([{"task_id": f"t{i}", "value": i} for i in range(300)])
        assert svc.pull("t7") == 7
        assert svc.pull("t7", key="other") is None
        store = backend._store()
        with backend.db_service.connect() as conn:  # type: ignore[union-attr]
            plan = "\n".join(
                r[0]
                for r in conn.exec_driver_sql(
                    "EXPLAIN " + store._stmts["identity"].replace("%s", "'x'")
                )
            )
        assert "pkey" in plan and "Sort" not in plan, plan
    finally:
        drop_table(backend)
