"""Ingestion on every engine: types, located errors, atomic swaps, incremental upserts."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pytest

from qarion_etl.errors import QarionError
from qarion_etl.project import Project
from qarion_etl.runner import FlowRunner, RunOptions
from tests.conftest import unique_name
from tests.runkit import drop_namespace, make_project, query, table, table_names, write_flow

FLOW = """
id = "typed"
namespace = "{ns}"

[input]
primary_key = ["id"]
columns = [
  {{name = "id", schema_type = "integer", required = true}},
  {{name = "amount", schema_type = "decimal"}},
  {{name = "ok", schema_type = "boolean"}},
  {{name = "day", schema_type = "date"}},
  {{name = "at", schema_type = "timestamp"}},
  {{name = "score", schema_type = "float", required = true}},
]

[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "landing"
[tasks.properties]
processing_type = "{ptype}"
[tasks.config]
path = "data/in.{fmt}"
format = "{fmt}"
{extra}
"""

GOOD = """id;amount;ok;day;at;score;note
1;10.50;true;2024-01-15;2024-01-15 10:00:00;1.5;"a; quoted"
2;;false;2024-01-16;2024-01-16T11:30:00;2;
3;7;1;2024-02-01;2024-02-01 00:00:00;-3.25;"multi
line"
"""


@pytest.fixture
def ns(engine_url: str):  # type: ignore[no-untyped-def]
    name = unique_name("ing")
    yield name
    drop_namespace(engine_url, name)


def _project(
    tmp_path: Path,
    engine_url: str,
    ns: str,
    *,
    fmt: str = "csv",
    ptype: str = "FULL_REFRESH",
    extra: str = 'delimiter = ";"',
) -> Path:
    project = make_project(tmp_path, engine_url=engine_url, example=False)
    (project / "data").mkdir(exist_ok=True)
    write_flow(project, "typed", FLOW.format(ns=ns, ptype=ptype, fmt=fmt, extra=extra))
    return project


def _run(project: Path, **opts: object):  # type: ignore[no-untyped-def]
    with Project.load(project / "qarion-etl.toml") as p:
        return FlowRunner(p).run("typed", RunOptions(max_workers=1, **opts))  # type: ignore[arg-type]


def test_typed_csv_load(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns)
    (project / "data" / "in.csv").write_text(GOOD)
    result = _run(project)
    assert result.ok, result.tasks[0].error
    assert result.tasks[0].rows == 3
    t = table(engine_url, ns, "landing")
    rows = query(
        engine_url, f"SELECT id, amount, ok, day, score, note, batch_id FROM {t} ORDER BY id"
    )
    assert [r[0] for r in rows] == [1, 2, 3]
    assert decimal.Decimal(str(rows[0][1])) == decimal.Decimal("10.50") and rows[1][1] is None
    assert [bool(r[2]) for r in rows] == [True, False, True]
    assert str(rows[0][3])[:10] == "2024-01-15"
    assert [r[4] for r in rows] == [1.5, 2.0, -3.25]
    assert rows[0][5] == "a; quoted" and rows[1][5] is None and rows[2][5] == "multi\nline"
    assert {r[6] for r in rows} == {result.batch_id}
    if not engine_url.startswith("sqlite"):
        assert isinstance(query(engine_url, f"SELECT day FROM {t} WHERE id = 1")[0][0], dt.date)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            "4;1;true;2024-01-01;2024-01-01 00:00:00;oops;",
            "in.csv:6: column 'score': 'oops' is not a valid float",
        ),
        (
            "4;1;maybe;2024-01-01;2024-01-01 00:00:00;1;",
            "in.csv:6: column 'ok': 'maybe' is not a valid boolean",
        ),
        (
            "4;1;true;2024-13-01;2024-01-01 00:00:00;1;",
            "in.csv:6: column 'day': '2024-13-01' is not a valid date",
        ),
        (
            ";1;true;2024-01-01;2024-01-01 00:00:00;1;",
            "in.csv:6: column 'id': missing required value",
        ),
        (
            "2;1;true;2024-01-01;2024-01-01 00:00:00;1;",
            "in.csv:6: duplicate primary key (id=2), first seen on line 3",
        ),
    ],
)
def test_bad_row_fails_with_location_and_keeps_previous_table(
    tmp_path: Path, engine_url: str, ns: str, bad: str, message: str
) -> None:
    project = _project(tmp_path, engine_url, ns)
    path = project / "data" / "in.csv"
    path.write_text(GOOD)
    assert _run(project).ok
    path.write_text(GOOD + bad + "\n")
    result = _run(project)
    assert result.status == "failed"
    assert message in (result.tasks[0].error or "")
    assert query(engine_url, f"SELECT COUNT(*) FROM {table(engine_url, ns, 'landing')}")[0][0] == 3
    assert table_names(engine_url, ns) == ["landing"]


def test_incremental_appends_and_upserts(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns, ptype="INCREMENTAL")
    path = project / "data" / "in.csv"
    path.write_text(GOOD)
    assert _run(project).ok
    path.write_text(
        "id;amount;ok;day;at;score;note\n3;8;0;2024-03-01;2024-03-01 00:00:00;9;new\n"
        "4;1;1;2024-03-02;2024-03-02 00:00:00;4;\n"
    )
    second = _run(project)
    assert second.ok, second.tasks[0].error
    t = table(engine_url, ns, "landing")
    assert query(
        engine_url, f"SELECT id, score, note, batch_id FROM {t} WHERE id >= 3 ORDER BY id"
    ) == [(3, 9.0, "new", second.batch_id), (4, 4.0, None, second.batch_id)]
    assert query(engine_url, f"SELECT COUNT(*) FROM {t}")[0][0] == 4


def test_jsonl(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns, fmt="jsonl", extra="")
    (project / "data" / "in.jsonl").write_text(
        '{"id": 1, "amount": 2.5, "ok": true, "day": "2024-01-01", "at": "2024-01-01 00:00:00", "score": 1}\n'
        "\n"
        '{"id": 2, "score": 3.5, "extra": "x"}\n'
    )
    result = _run(project)
    assert result.ok, result.tasks[0].error
    assert query(
        engine_url, f"SELECT id, score FROM {table(engine_url, ns, 'landing')} ORDER BY id"
    ) == [(1, 1.0), (2, 3.5)]


def test_missing_file_and_missing_column(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns)
    result = _run(project)
    assert "input file not found" in (result.tasks[0].error or "")
    (project / "data" / "in.csv").write_text("id;score\n1;2\n")
    result = _run(project)
    assert "has no column 'amount', 'ok', 'day', 'at'" in (result.tasks[0].error or "")
    assert "(its columns: id, score)" in (result.tasks[0].error or "")
    # A file that is not the input it claims to be: its path and line, never its content.
    (project / "data" / "in.csv").write_text(
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    )
    error = _run(project).tasks[0].error or ""
    assert "data/in.csv:1: the file has no column 'id', 'amount'" in error
    assert "its only column is not a declared one" in error
    assert "root:x" not in error and "/bin/bash" not in error and "daemon" not in error


def test_stale_staging_tables_are_swept(tmp_path: Path, engine_url: str, ns: str) -> None:
    project = _project(tmp_path, engine_url, ns)
    (project / "data" / "in.csv").write_text(GOOD)
    from qarion_etl.db_service import create_engine

    engine = create_engine(engine_url)
    with engine.begin() as conn:
        if engine.dialect.name in ("postgresql", "duckdb"):
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{ns}"')
        conn.exec_driver_sql(
            f"CREATE TABLE {table(engine_url, ns, '_qtmp_landing_deadbeef')} (x INTEGER)"
        )
    engine.dispose()
    assert _run(project).ok
    assert table_names(engine_url, ns) == ["landing"]


def test_reader_errors_are_qarion_errors() -> None:
    from qarion_etl.errors import IngestError

    assert issubclass(IngestError, QarionError)
