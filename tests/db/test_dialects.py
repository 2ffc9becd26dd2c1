"""One table of what each engine's ``Dialect`` says, and each fact tried on the real engine.

The expectations are written out once per engine (``EXPECTED``); aliases must be the same
object as their engine's dialect, so two tables can never disagree about one engine again
(``mariadb`` once got DuckDB's column types).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qarion_etl.db.dialects import DIALECTS, GENERIC, dialect_named, dialect_of_url, known_dialect
from qarion_etl.db_service import DatabaseService
from qarion_etl.definitions.task_types import SCHEMA_TYPES
from tests.conftest import ENGINES_AND_ALIASES, database_url, unique_name

EXPECTED: dict[str, dict[str, Any]] = {
    "duckdb": {
        "aliases": (),
        "string": "VARCHAR",
        "timestamp": "TIMESTAMP",
        "quote": '"a""b"',
        "literal": "'it''s \\ ok'",
        "has_schemas": True,
        "transactional_ddl": True,
        "begin": "BEGIN TRANSACTION",
        "paramstyle": "qmark",
        "upsert": "on_conflict",
        "swap_by_rename_table": False,
        "bulk_load": "read_file",
    },
    "sqlite": {
        "aliases": (),
        "string": "TEXT",
        "timestamp": "TIMESTAMP",
        "quote": '"a""b"',
        "literal": "'it''s \\ ok'",
        "has_schemas": False,
        "transactional_ddl": True,
        "begin": "BEGIN IMMEDIATE",
        "paramstyle": "qmark",
        "upsert": "on_conflict",
        "swap_by_rename_table": False,
        "bulk_load": "executemany",
    },
    "postgresql": {
        "aliases": ("postgres",),
        "string": "TEXT",
        "timestamp": "TIMESTAMP",
        "quote": '"a""b"',
        "literal": "'it''s \\ ok'",
        "has_schemas": True,
        "transactional_ddl": True,
        "begin": "BEGIN",
        "paramstyle": "format",
        "upsert": "on_conflict",
        "swap_by_rename_table": False,
        "bulk_load": "copy",
    },
    "mysql": {
        "aliases": ("mariadb",),
        "string": "TEXT",
        "timestamp": "DATETIME(6)",
        "quote": '`a"b`',
        "literal": "'it''s \\\\ ok'",
        "has_schemas": False,
        "transactional_ddl": False,
        "begin": "START TRANSACTION",
        "paramstyle": "format",
        "upsert": "on_duplicate_key",
        "swap_by_rename_table": True,
        "bulk_load": "executemany",
    },
    "spark": {
        "aliases": (),
        "string": "STRING",
        "timestamp": "TIMESTAMP_NTZ",
        "quote": '`a"b`',
        "literal": "'it\\'s \\\\ ok'",
        "has_schemas": True,
        "transactional_ddl": False,
        "begin": "BEGIN",
        "paramstyle": "qmark",
        "upsert": "on_conflict",
        "swap_by_rename_table": True,
        "bulk_load": "read_file",
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_engine_states_its_facts(name: str) -> None:
    d = dialect_named(name)
    want = EXPECTED[name]
    assert d.name == name and d.aliases == want["aliases"]
    for alias in want["aliases"]:
        assert dialect_named(alias) is d, f"{alias} must be {name}'s own dialect"
        assert dialect_named(alias.upper()) is d
    assert set(d.column_types) == set(SCHEMA_TYPES)
    assert d.sql_type("string") == want["string"]
    assert d.sql_type("timestamp") == want["timestamp"]
    assert d.quote('a"b' if d.identifier_quote == '"' else 'a"b') == want["quote"]
    assert d.literal("it's \\ ok") == want["literal"]
    assert d.has_schemas is want["has_schemas"]
    assert d.transactional_ddl is want["transactional_ddl"]
    assert d.begin_statement == want["begin"]
    assert d.paramstyle == want["paramstyle"]
    assert d.sql("SELECT ? , ?") == (
        "SELECT ? , ?" if d.paramstyle == "qmark" else "SELECT %s , %s"
    )
    assert d.upsert_style == want["upsert"]
    assert d.swap_by_rename_table is want["swap_by_rename_table"]
    assert d.bulk_load == want["bulk_load"]


def test_the_table_covers_every_dialect_once() -> None:
    assert sorted(d.name for d in DIALECTS) == sorted(EXPECTED)
    names = [n for d in DIALECTS for n in d.names]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("mariadb+pymysql://root@127.0.0.1/test", "mysql"),
        ("mysql+pymysql://root@127.0.0.1/test", "mysql"),
        ("postgresql+psycopg://u@h/db", "postgresql"),
        ("sqlite:///x.db", "sqlite"),
        ("duckdb:///x.duckdb", "duckdb"),
        ("sc://127.0.0.1:15002", "spark"),
        ("SC://host:15002/;token=x", "spark"),
    ],
)
def test_urls_name_their_dialect(url: str, name: str) -> None:
    assert dialect_of_url(url) is dialect_named(name)


def test_an_unlisted_engine_gets_the_generic_dialect_under_its_name() -> None:
    d = dialect_named("trino")
    assert known_dialect("trino") is None
    assert d.name == "trino" and d.column_types == GENERIC.column_types
    assert d.quote("x") == '"x"' and not d.has_schemas and not d.transactional_ddl


def test_literals_of_every_python_type() -> None:
    d = dialect_named("postgresql")
    assert d.literal(None) == "NULL"
    assert d.literal(True) == "TRUE" and d.literal(False) == "FALSE"
    assert d.literal(7) == "7" and d.literal(2.5) == "2.5"
    assert d.literal(Decimal("1.10")) == "1.10"
    assert d.literal(dt.date(2024, 1, 15)) == "'2024-01-15'"
    assert d.literal(dt.datetime(2024, 1, 15, 10, 30)) == "'2024-01-15 10:30:00'"
    for bad in (float("nan"), float("inf"), "a\x00b"):
        with pytest.raises(ValueError):
            d.literal(bad)


def test_swap_statements() -> None:
    pg, my = dialect_named("postgresql"), dialect_named("mariadb")
    assert pg.swap(target='"n"."t"', staging='"n"."s"', renamed='"t"', old=None) == [
        'DROP TABLE IF EXISTS "n"."t"',
        'ALTER TABLE "n"."s" RENAME TO "t"',
    ]
    assert my.swap(target="`t`", staging="`s`", renamed="`t`", old="`o`") == [
        "RENAME TABLE `t` TO `o`, `s` TO `t`",
        "DROP TABLE `o`",
    ]
    assert my.swap(target="`t`", staging="`s`", renamed="`t`", old=None) == [
        "RENAME TABLE `s` TO `t`"
    ]


SAMPLE = {
    "string": 'it\'s a \\ "quoted" 100% string',
    "integer": 9007199254740993,
    "float": 2.5,
    "decimal": Decimal("12345.6789"),
    "boolean": True,
    "date": dt.date(2024, 1, 15),
    "timestamp": dt.datetime(2024, 1, 15, 10, 30, 5, 123456),
}


@pytest.mark.parametrize("kind", ENGINES_AND_ALIASES)
def test_every_fact_holds_on_the_real_engine(kind: str, tmp_path: Path) -> None:
    """Each schema type's SQL type, quoting, literals, upsert and swap, run on the engine."""
    db = DatabaseService(database_url(kind, tmp_path))
    d = db.dialect
    ns = unique_name("dia")
    table, staging = db.qualified(ns, 'odd "name"'), db.qualified(ns, "staging")
    try:
        with db.begin() as conn:
            db.ensure_namespace(conn, ns)
            cols = ", ".join(f"{d.quote(t)} {d.sql_type(t)}" for t in SCHEMA_TYPES)
            conn.exec_driver_sql(f"CREATE TABLE {table} (k INTEGER PRIMARY KEY, {cols})")
            values = ", ".join(d.literal(SAMPLE[t]) for t in SCHEMA_TYPES)
            conn.exec_driver_sql(f"INSERT INTO {table} VALUES (1, {values})")
        with db.connect() as conn:
            row = conn.exec_driver_sql(f"SELECT * FROM {table}").one()
        got = dict(zip(["k", *SCHEMA_TYPES], row, strict=True))
        assert got["string"] == SAMPLE["string"]
        assert got["integer"] == SAMPLE["integer"]
        assert float(got["float"]) == SAMPLE["float"]
        assert Decimal(str(got["decimal"])) == SAMPLE["decimal"]
        assert got["boolean"] in (True, 1)
        assert str(got["date"]) == "2024-01-15"
        assert str(got["timestamp"]).replace("T", " ") == "2024-01-15 10:30:05.123456"

        # The upsert clause replaces the row with the same key.
        marks = d.placeholders(2)
        insert = f"INSERT INTO {table} (k, {d.quote('string')}) VALUES ({marks})"
        upsert = d.upsert(insert, "k", [d.quote("string")])
        with db.begin() as conn:
            conn.exec_driver_sql(upsert, (1, "replaced"))
            conn.exec_driver_sql(upsert, (2, "new"))
        with db.connect() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT k, {d.quote('string')} FROM {table} ORDER BY k"
            ).fetchall()
        assert [tuple(r) for r in rows] == [(1, "replaced"), (2, "new")]

        # The swap makes the staging table the target.
        with db.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE {staging} (k INTEGER)")
            conn.exec_driver_sql(f"INSERT INTO {staging} VALUES (42)")
            old = db.qualified(ns, "old") if d.swap_by_rename_table else None
            renamed = d.quote(d.physical(ns, 'odd "name"'))
            for statement in d.swap(target=table, staging=staging, renamed=renamed, old=old):
                conn.exec_driver_sql(statement)
        with db.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT k FROM {table}").fetchall() == [(42,)]
    finally:
        with db.begin() as conn:
            for t in (table, staging):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {t}")
            if d.has_schemas:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {d.quote(ns)} CASCADE")
        db.close()


@pytest.mark.parametrize("kind", ENGINES_AND_ALIASES)
def test_percent_signs_without_parameters_reach_the_engine(kind: str, tmp_path: Path) -> None:
    """A statement with no parameters is sent as written: no driver reads '%' in it."""
    db = DatabaseService(database_url(kind, tmp_path))
    sql = "SELECT 7 % 2, 'a%' LIKE 'a%', '100%'"
    try:
        with db.connect() as conn:
            assert [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()] in (
                [(1, True, "100%")],
                [(1, 1, "100%")],
            )
        with db.dedicated() as conn:
            assert conn.exec_driver_sql(sql).first()[2] == "100%"
    finally:
        db.close()
