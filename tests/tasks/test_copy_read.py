"""PostgreSQL parses a clean CSV file itself: same rows as the checked reader, or a fallback.

A clean file goes to the server as bytes (``COPY … (FORMAT csv)``); the rows that land must
be the ones the checked reader would load (the SQLite warehouse, which always takes the
checked reader, is the reference). A file the server refuses is read again by the checked
reader, which names its bad rows; options the server would read differently never take
the server's path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qarion_etl.db.engines.postgresql import copy_parses
from qarion_etl.definitions.flow import ColumnSpec
from qarion_etl.tasks.formats import InputFile
from tests.conftest import unique_name
from tests.helpers import cli, make_project, write_flow
from tests.runkit import drop_namespace, query, run_dir, table

#: Quoted empty fields, a quoted delimiter, a line break inside a field, non-ASCII text,
#: spaces around numbers, exponents and signs: all read alike by the server and by Python.
TRICKY = 'id,value,label\n1, 7 ,"a, b"\n2,-1e3,""\n3,+2.5,"two\nlines"\n4,0,é ü\n5,,plain\n'

FLOW = """
id = "tricky"
namespace = "{ns}"
[input]
primary_key = ["id"]
columns = [
  {{name = "id", schema_type = "integer", required = true}},
  {{name = "value", schema_type = "float"}},
]
[[tasks]]
id = "load"
type = "ingestion"
target_dataset_id = "landed"
[tasks.config]
path = "data/t.csv"
format = "csv"
"""


def _load(tmp_path: Path, url: str, ns: str, text: str) -> tuple[Path, object]:
    project = make_project(tmp_path, engine_url=url, example=False)
    (project / "data").mkdir(exist_ok=True)
    (project / "data" / "t.csv").write_text(text, encoding="utf-8")
    write_flow(project, "tricky", FLOW.format(ns=ns))
    return project, cli("run", "tricky", "--run-id", "r1", project=project)


@pytest.mark.postgres
def test_the_server_loads_what_the_checked_reader_would(tmp_path: Path, pg_url: str) -> None:
    ns = unique_name("cp")
    try:
        project, done = _load(tmp_path / "pg", pg_url, ns, TRICKY)
        assert done.exit_code == 0, done.stderr
        sql = (run_dir(project, "r1") / "load.sql").read_text()
        assert "FROM STDIN (FORMAT csv" in sql  # the server parsed it
        sqlite_url = f"sqlite:///{tmp_path / 'w.sqlite'}"
        _, ref = _load(tmp_path / "lite", sqlite_url, ns, TRICKY)
        assert ref.exit_code == 0, ref.stderr
        select = "SELECT id, value, label, batch_id FROM {} ORDER BY id"
        got = query(pg_url, select.format(table(pg_url, ns, "landed")))
        want = query(sqlite_url, select.format(table(sqlite_url, ns, "landed")))
        assert got == want
        assert got[1][2] is None  # a quoted empty field is NULL, as the checked reader has it
        assert got[2][2] == "two\nlines"
    finally:
        drop_namespace(pg_url, ns)


@pytest.mark.postgres
def test_a_file_the_server_refuses_is_read_again_to_name_its_bad_rows(
    tmp_path: Path, pg_url: str
) -> None:
    ns = unique_name("cp")
    try:
        project, done = _load(tmp_path, pg_url, ns, "id,value,label\n1,2,a\n2,oops,b\n3,4\n")
        assert done.exit_code == 1
        assert "2 bad rows" in done.stderr
        assert "data/t.csv:3: column 'value': 'oops' is not a valid float" in done.stderr
        assert "data/t.csv:4: expected 3 fields, found 2" in done.stderr
        assert "landed" not in [r[0] for r in query(pg_url, _tables(ns))]
    finally:
        drop_namespace(pg_url, ns)


def _tables(ns: str) -> str:
    return f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{ns}'"


@pytest.mark.parametrize(
    ("config", "types", "server"),
    [
        ({}, ["integer", "float", "string"], True),
        ({"delimiter": ";", "quote": "'"}, ["integer"], True),
        ({"escape": "\\"}, ["integer"], False),
        ({"null_values": ["", "NA"]}, ["integer"], False),
        ({"encoding": "latin-1"}, ["integer"], False),
        ({}, ["integer", "date"], False),
        ({}, ["boolean"], False),
        ({}, ["decimal"], False),
    ],
)
def test_only_options_the_server_reads_alike_take_its_path(
    tmp_path: Path, config: dict[str, object], types: list[str], server: bool
) -> None:
    columns = [ColumnSpec(f"c{i}", t) for i, t in enumerate(types)]
    source = InputFile(tmp_path / "x.csv", "x.csv", "csv", config, columns)
    assert copy_parses(source) is server
    assert copy_parses(InputFile(tmp_path / "x.jsonl", "x.jsonl", "jsonl", {}, [])) is False
