"""Bad input of every kind gets a clear error and exit 2 (3 for a store), never an internal error.

Each case was once an "internal error … This is a bug": nesting past the TOML parser's
depth, a binary or endless ``--vars-file``, report and JUnit paths that cannot be written,
another program's JSON in a ``local_file`` folder, batch ids past 64 bits, and numeric task
settings that no timer or clock can hold.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import cli, make_project, write_flow


def _clear(result, code: int = 2) -> str:  # type: ignore[no-untyped-def]
    out = result.stdout + result.stderr
    assert result.exit_code == code, out
    assert "internal error" not in out and "Traceback" not in out, out
    return result.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "p")


def test_toml_nested_past_the_parser_depth(project: Path) -> None:
    nested = "a = " + "[" * 5000 + "]" * 5000 + "\n"
    (project / "flows" / "deep.toml").write_text(nested)
    err = _clear(cli("validate", "flows/deep.toml", project=project))
    assert "flows/deep.toml" in err and "nested too deeply" in err
    (project / "qarion-etl.toml").write_text(nested)
    assert "nested too deeply" in _clear(cli("config", "show", project=project))


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("vars.json", bytes(range(256)) * 4, "not JSON text"),
        ("vars.toml", b"\xff\xfe" * 10, "not TOML text"),
        ("vars.json", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
        ("vars.json", b"[1, 2]", "expected a table"),
    ],
)
def test_unreadable_vars_files(project: Path, name: str, content: bytes, says: str) -> None:
    (project / name).write_bytes(content)
    path = str(project / name)
    assert says in _clear(cli("run", "data_pipeline", "--vars-file", path, project=project))


def test_an_endless_vars_file_is_cut_short(project: Path) -> None:
    err = _clear(cli("run", "data_pipeline", "--vars-file", "/dev/zero", project=project))
    assert "larger than 16 MB" in err


def test_unwritable_junit_and_report_paths(project: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for target in (str(blocker / "x.xml"), str(tmp_path)):
        err = _clear(cli("run", "data_pipeline", "--junit-xml", target, project=project))
        assert "--junit-xml" in err and "cannot write" in err
    for target in (str(blocker / "r.html"), "/"):
        err = _clear(cli("report", "latest", "-o", target, project=project))
        assert "cannot write the report" in err


@pytest.mark.parametrize(
    "foreign",
    [
        [1, 2, 3],
        {"meta": {"flow_id": "f"}, "value": "1"},
        {"meta": {"flow_id": 5, "task_id": "t", "key": "k", "value_type": "json",
                  "dag_run_id": None, "batch_id": None, "size": 1, "pushed_ns": "x"},
         "value": "1"},
        "just a string",
    ],
)  # fmt: skip
def test_foreign_json_in_a_local_file_folder(tmp_path: Path, foreign: object) -> None:
    config = '[xcom]\nbackend = "local_file"\nbackend_config = {base_path = "xc"}\n'
    project = make_project(tmp_path / "p", config=config)
    assert cli("xcom", "push", "t", "1", "--flow", "f", project=project).exit_code == 0
    folder = next(p for p in (project / "xc").rglob("*.json")).parent
    (folder / "someone-elses.json").write_text(json.dumps(foreign))
    for args in (("xcom", "list", "--flow", "f"), ("xcom", "get", "t", "--flow", "f")):
        err = _clear(cli(*args, project=project), code=3)
        assert "someone-elses.json" in err and "not an XCom document" in err


@pytest.mark.parametrize("batch", ["9223372036854775808", "-9223372036854775809", "10" * 20])
def test_batch_ids_past_64_bits(project: Path, batch: str) -> None:
    assert "batch" in _clear(cli("run", "data_pipeline", "--batch-id", batch, project=project))
    for args in (
        ("xcom", "push", "t", "1", "--flow", "f", "--batch", batch),
        ("xcom", "get", "t", "--flow", "f", "--batch", batch),
        ("xcom", "list", "--batch", batch),
        ("xcom", "clear", "--batch", batch, "--yes"),
    ):
        assert "batch" in _clear(cli(*args, project=project)).lower(), args


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("retry_delay_seconds", "1e10"),
        ("retry_delay_seconds", "-1"),
        ("timeout_seconds", "inf"),
        ("timeout_seconds", "1e308"),
        ("timeout_seconds", "nan"),
        ("timeout_seconds", "0"),
        ("retries", "100000000000000000000000000"),
        ("retries", "-1"),
    ],
)
def test_numeric_task_settings_out_of_range(project: Path, setting: str, value: str) -> None:
    write_flow(
        project,
        "odd",
        f"""\
        id = "odd"
        [[tasks]]
        id = "t"
        type = "transformation"
        {setting} = {value}
        [tasks.config]
        sql = "SELECT 1 AS x"
        """,
    )
    for args in (("validate", "odd"), ("run", "odd")):
        err = _clear(cli(*args, project=project))
        assert "flows/odd.toml:5" in err and f"'{setting}'" in err, err
    assert cli("runs", "list", "--json", project=project).stdout.strip() == "[]"
