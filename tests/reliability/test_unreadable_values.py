"""Values that cannot be read back: refused at push, or a clear error on read (design §11).

A value that no reader could use (a lone UTF-16 surrogate) is refused when it is pushed.
A value damaged or edited at rest reads back as an error that names flow, run, task and
key: never an internal error, never a value of another type (an integer ``1e999`` is not
``Infinity``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qarion_etl.errors import XComValueError
from qarion_etl.xcom import XComService, XComValueType
from qarion_etl.xcom.values import CorruptValue, decode_strict, encode
from tests.helpers import cli, make_project

#: (value type, stored text) pairs that this package never writes.
CORRUPT = [
    ("json", "not json"),
    ("json", '{"a": NaN}'),
    ("json", "1e999"),
    ("json", "[" * 100_000),
    ("integer", "1e999"),
    ("integer", '"5"'),
    ("integer", "true"),
    ("integer", "2.5"),
    ("float", '"abc"'),
    ("float", "1e999"),
    ("float", "true"),
    ("boolean", "1"),
    ("boolean", '"true"'),
    ("binary", '"!!not base64"'),
    ("binary", "5"),
    ("string", "5"),
    ("weird", '"x"'),
]


@pytest.mark.parametrize(("value_type", "text"), CORRUPT, ids=lambda v: str(v)[:20])
def test_strict_decoding_refuses_what_was_never_written(value_type: str, text: str) -> None:
    with pytest.raises(CorruptValue):
        decode_strict(text, value_type)


@pytest.mark.parametrize(
    ("value", "value_type"),
    [
        ({"a": [1, 2.5, None, "é"]}, XComValueType.JSON),
        ("text", XComValueType.STRING),
        (2**70, XComValueType.INTEGER),
        (float("nan"), XComValueType.FLOAT),
        (float("-inf"), XComValueType.FLOAT),
        (1.5, XComValueType.FLOAT),
        (False, XComValueType.BOOLEAN),
        (b"\x00\xff", XComValueType.BINARY),
        (None, XComValueType.INTEGER),
    ],
)
def test_what_is_written_reads_back_strictly(value: object, value_type: XComValueType) -> None:
    back = decode_strict(encode(value, value_type), value_type)
    if isinstance(value, float) and value != value:
        assert back != back
    else:
        assert back == value and type(back) is type(value)


def test_a_lone_surrogate_is_refused_at_push(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    pushed = cli("xcom", "push", "t", '"\\ud800"', "--flow", "f", project=project)
    assert pushed.exit_code == 1, pushed.output
    assert "surrogate" in pushed.stderr and "internal error" not in pushed.stderr
    listed = cli("xcom", "list", "--flow", "f", "--json", project=project)
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []
    from qarion_etl.project import Project

    with Project.load(project / "qarion-etl.toml") as p:
        svc = p.xcom_service("f")
        with pytest.raises(XComValueError, match="surrogate"):
            svc.push("t", {"k": ["ok", "\udfff"]})


def _corrupt_rows(service: XComService, table: str) -> None:
    """Overwrite stored rows in the metadata database with text we never write."""
    backend = service.backend
    db = backend.db_service
    assert db is not None
    backend.close()
    q = db.quote
    with db.begin() as conn:
        for i, (value_type, text) in enumerate(CORRUPT):
            conn.exec_driver_sql(
                db.sql(
                    f"UPDATE {q(table)} SET {q('value')} = ?, {q('value_type')} = ? "
                    f"WHERE {q('task_id')} = ?"
                ),
                (text, value_type, f"t{i}"),
            )


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_damaged_rows_read_back_as_located_errors(tmp_path: Path, kind: str) -> None:
    from qarion_etl.project import Project
    from tests.conftest import database_url, unique_name
    from tests.runkit import drop_metadata

    url = database_url(kind, tmp_path)
    namespace = unique_name("cv")
    project = make_project(tmp_path / "p", metadata_url=url, namespace=namespace)
    try:
        with Project.load(project / "qarion-etl.toml") as p:
            svc = p.xcom_service("f", default_dag_run_id="r7")
            for i in range(len(CORRUPT)):
                svc.push(f"t{i}", i, key="k", batch_id=3)
            _corrupt_rows(svc, f"{namespace}_xcom")
        for i, (value_type, text) in enumerate(CORRUPT):
            got = cli("xcom", "get", f"t{i}", "--key", "k", "--flow", "f", "--run", "r7",
                      project=project)  # fmt: skip
            assert got.exit_code == 1, (value_type, text, got.output)
            first = got.stderr.strip().splitlines()[0]
            assert "internal error" not in got.stderr and "Traceback" not in got.output
            for part in ("flow 'f'", "run 'r7'", "batch 3", f"task 't{i}'", "key 'k'"):
                assert part in first, (value_type, first)
        listed = cli("xcom", "list", "--flow", "f", "--json", project=project)
        assert listed.exit_code == 0, listed.output
        assert len(json.loads(listed.stdout)) == len(CORRUPT)
    finally:
        drop_metadata(url, namespace)


def test_damaged_files_of_the_local_file_backend(tmp_path: Path) -> None:
    config = """\
    [xcom]
    backend = "local_file"
    backend_config = {base_path = "xc"}
    """
    project = make_project(tmp_path / "p", config=config)
    from qarion_etl.project import Project

    with Project.load(project / "qarion-etl.toml") as p:
        svc = p.xcom_service("f", default_dag_run_id="r1")
        svc.push("t", 5, key="k", value_type="integer")
    files = [f for f in (project / "xc").rglob("*.json")]
    assert len(files) == 1
    doc = json.loads(files[0].read_text())
    doc["value"] = "1e999"
    files[0].write_text(json.dumps(doc))
    got = cli("xcom", "get", "t", "--key", "k", "--flow", "f", "--run", "r1", project=project)
    assert got.exit_code == 1, got.output
    assert "task 't'" in got.stderr and "key 'k'" in got.stderr and "run 'r1'" in got.stderr
    assert "internal error" not in got.stderr
