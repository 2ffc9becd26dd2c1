"""Hostile input through the command line: names, files, sizes and nesting.

Each case ends in a clear error (exit 2, or 1 for a task that refuses its input) or a
safe result; never a traceback, an "internal error" or a file written outside the project.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import unique_name
from tests.helpers import cli, make_project, write_flow
from tests.reliability import procs
from tests.runkit import drop_namespace, query, table, table_names

HOSTILE = {
    "quote": 'it\'s "q"',
    "semicolon": "1; DROP TABLE x; --",
    "dotdot": "..",
    "traversal": "../../outside",
    "slashes": "/etc/passwd",
    "unicode": "é名\u202e🙂",
    "long": "k" * 10_000,
    "nul": "a\x00b",
    "newline": "a\nb",
}

LOCAL_FILE = """\
[project]
name = "h"
[engine]
url = "duckdb:///warehouse.duckdb"
[metadata]
url = "sqlite:///.qarion/metadata.db"
[xcom]
backend = "local_file"
backend_config = {base_path = ".qarion/xcom"}
"""


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def _clean(result: object) -> None:
    out = result.stdout + result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in out and "internal error" not in out, out[:2000]
    assert len(result.stderr) < 5_000, "an error message must not flood the terminal"  # type: ignore[attr-defined]


@pytest.fixture(params=["database", "local_file"])
def hostile_project(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    if request.param == "local_file":
        return make_project(root, config=LOCAL_FILE, example=False)
    return make_project(root, example=False)


@pytest.mark.parametrize("where", ["task", "key", "flow", "run"])
@pytest.mark.parametrize("name", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_names_in_xcom_push_and_get(
    hostile_project: Path, tmp_path: Path, name: str, where: str
) -> None:
    value = HOSTILE[name]
    outside_before = _files(tmp_path) - _files(hostile_project)
    args = {"task": "t", "key": None, "flow": "f", "run": None}
    args[where] = value
    ident = []
    if args["key"] is not None:
        ident += ["--key", args["key"]]
    ident += ["--flow", args["flow"]]
    if args["run"] is not None:
        ident += ["--run", args["run"]]
    pushed = cli("xcom", "push", args["task"], '{"v": 1}', *ident, project=hostile_project)
    _clean(pushed)
    assert pushed.exit_code in (0, 2), pushed.stderr
    got = cli("xcom", "get", args["task"], *ident, project=hostile_project)
    _clean(got)
    if pushed.exit_code == 0:
        assert got.exit_code == 0, got.stderr
        assert json.loads(got.stdout) == {"v": 1}
    else:
        assert got.exit_code in (1, 2)
    listed = cli("xcom", "list", "--json", project=hostile_project)
    _clean(listed)
    assert listed.exit_code == 0
    cleared = cli("xcom", "clear", "--flow", args["flow"], "--yes", project=hostile_project)
    _clean(cleared)
    assert cleared.exit_code in (0, 2)
    assert _files(tmp_path) - _files(hostile_project) == outside_before


@pytest.mark.parametrize("name", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_flow_refs_and_run_ids(tmp_path: Path, name: str) -> None:
    project = make_project(tmp_path / "proj")
    value = HOSTILE[name]
    for args in (
        ["run", value],
        ["run", f"{value}.toml"],
        ["render", value, value],
        ["graph", value],
        ["run", "data_pipeline", "--task", value, "--run-id", "r"],
        ["runs", "show", value],
        ["run", "data_pipeline", "--select", value],
        ["run", "data_pipeline", "--resume", value],
    ):
        result = cli(*args, project=project)
        _clean(result)
        assert result.exit_code == 2, (args[:2], result.stderr)
    result = cli("run", "data_pipeline", "--run-id", value, project=project)
    _clean(result)
    assert result.exit_code in (0, 2), result.stderr
    assert {p.name for p in tmp_path.iterdir()} == {"proj"}
    flows = project / ".qarion" / "runs" / "data_pipeline"
    for p in (project / ".qarion").rglob("*"):
        assert p.resolve().is_relative_to(project / ".qarion")
    if result.exit_code == 0:  # the run's folder and results file, and nothing else
        assert {p.parent for p in (project / ".qarion" / "runs").rglob("*")} <= {
            project / ".qarion" / "runs",
            flows,
            *flows.glob("*"),
        }


@pytest.mark.parametrize("name", ["quote", "semicolon", "traversal", "unicode", "long"])
def test_hostile_ids_in_flow_files_are_refused(tmp_path: Path, name: str) -> None:
    project = make_project(tmp_path / "proj", example=False)
    value = json.dumps(HOSTILE[name], ensure_ascii=False)
    write_flow(
        project,
        "bad",
        f'id = "bad"\nnamespace = "n"\n[[tasks]]\nid = {value}\ntype = "transformation"\n'
        f'target_dataset_id = {value}\n[tasks.config]\nsql = "SELECT 1 AS a"\n',
    )
    for args in (["validate", "bad"], ["run", "bad"]):
        result = cli(*args, project=project)
        _clean(result)
        assert result.exit_code == 2 and "letters, digits" in result.stderr


# --- input files ---------------------------------------------------------------------

FLOW = """
id = "load"
namespace = "{ns}"
[input]
columns = [{{name = "id", schema_type = "integer", required = true}}, {{name = "label", schema_type = "string"}}]
[[tasks]]
id = "ingest"
type = "ingestion"
target_dataset_id = "landing"
[tasks.config]
path = "data/input.csv"
format = "csv"
"""

BAD_FILES: dict[str, tuple[bytes, str]] = {
    "ragged": (b"id,label\n1,a\n2,b,extra\n3,c\n", "input.csv:3: expected 2 fields, found 3"),
    "short_row": (b"id,label\n1,a\n2\n", "input.csv:3: expected 2 fields, found 1"),
    "bad_encoding": (b"id,label\n1,a\n2,\xff\xfe\xfa\n", "input.csv:3: not valid utf-8 text"),
    "nul": (b"id,label\n1,a\n2,b\x00c\n", "input.csv:3"),
    "empty": (b"", "the file is empty"),
    "unterminated_quote": (b'id,label\n1,"a\n2,b\n', "input.csv:"),
}


def _ingest_project(tmp_path: Path, engine_url: str, content: bytes) -> tuple[Path, str]:
    ns = unique_name("csv")
    project = make_project(tmp_path / "proj", engine_url=engine_url, example=False)
    write_flow(project, "load", FLOW.format(ns=ns))
    (project / "data").mkdir(exist_ok=True)
    (project / "data" / "input.csv").write_bytes(b"id,label\n1,first\n")
    first = cli("run", "load", project=project)
    assert first.exit_code == 0, first.stderr
    (project / "data" / "input.csv").write_bytes(content)
    return project, ns


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_csv_fails_the_task_and_keeps_the_table(
    tmp_path: Path, engine_url: str, case: str
) -> None:
    content, message = BAD_FILES[case]
    project, ns = _ingest_project(tmp_path, engine_url, content)
    try:
        result = cli("run", "load", project=project)
        _clean(result)
        if case == "nul" and result.exit_code == 0:
            # A NUL inside a text field is data: it loads where the engine stores it.
            assert len(query(engine_url, f"SELECT * FROM {table(engine_url, ns, 'landing')}")) == 2
            return
        assert result.exit_code == 1, result.stderr
        if case == "nul" and "postgres" in engine_url:
            message = (
                "cannot contain NUL"  # PostgreSQL refuses the byte; COPY does not say which row
            )
        assert message in result.stderr, result.stderr
        rows = query(engine_url, f"SELECT id, label FROM {table(engine_url, ns, 'landing')}")
        assert [tuple(r) for r in rows] == [(1, "first")]
        assert not [n for n in table_names(engine_url, ns) if n.startswith("_qtmp_")]
    finally:
        drop_namespace(engine_url, ns)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_a_100_mb_field(tmp_path: Path, engine: str) -> None:
    url = (
        f"sqlite:///{tmp_path / 'w.db'}"
        if engine == "sqlite"
        else f"duckdb:///{tmp_path / 'w.duckdb'}"
    )
    project, ns = _ingest_project(tmp_path, url, b"")
    with (project / "data" / "input.csv").open("wb") as fh:
        fh.write(b'id,label\n1,"')
        block = b"x" * (1 << 20)
        for _ in range(100):
            fh.write(block)
        fh.write(b'"\n')
    result = procs.run(project, "run", "load")
    _clean(result)
    assert result.returncode in (0, 1), result.stderr
    if result.returncode == 1:
        assert "input.csv:2" in result.stderr
        assert query(url, f"SELECT id FROM {table(url, ns, 'landing')}") == [(1,)]
    else:
        assert query(url, f"SELECT LENGTH(label) FROM {table(url, ns, 'landing')}") == [
            (100 << 20,)
        ]


# --- XCom values ---------------------------------------------------------------------

LIMITED = """\
[project]
name = "h"
[metadata]
url = "sqlite:///.qarion/metadata.db"
[xcom]
max_value_bytes = 1000
"""


def test_xcom_values_at_and_past_max_value_bytes(tmp_path: Path) -> None:
    project = make_project(tmp_path, config=LIMITED, example=False)
    at = cli(
        "xcom", "push", "t", "x" * 998, "--type", "string", "--flow", "f", project=project
    )  # '"x…x"'
    assert at.exit_code == 0, at.stderr
    assert json.loads(cli("xcom", "get", "t", "--flow", "f", project=project).stdout) == "x" * 998
    past = cli(
        "xcom",
        "push",
        "t",
        "x" * 999,
        "--type",
        "string",
        "--flow",
        "f",
        "--key",
        "k2",
        project=project,
    )
    _clean(past)
    assert past.exit_code == 1
    assert "1,001 bytes, over the XCom limit of 1,000 bytes (max_value_bytes)" in past.stderr
    assert cli("xcom", "get", "t", "--key", "k2", "--flow", "f", project=project).exit_code == 1
    big = cli("xcom", "push", "t", "é" * 5_000, "--flow", "f", "--key", "k3", project=project)
    _clean(big)
    assert big.exit_code == 1 and "max_value_bytes" in big.stderr


@pytest.mark.parametrize("shape", ["array", "object"])
def test_deeply_nested_json_values(tmp_path: Path, shape: str) -> None:
    project = make_project(tmp_path, example=False)
    levels = 100_000
    text = (
        "[" * levels + "]" * levels if shape == "array" else '{"a":' * levels + "1" + "}" * levels
    )
    # Through the CLI (an argument of 200 KB is too long for exec, so in process).
    for args in (
        ["xcom", "push", "t", text, "--flow", "f"],
        ["xcom", "push", "t", text, "--type", "json", "--flow", "f"],
        ["run", "x", "--var", f"v={text}"],
        ["render", "x", "y", "--xcom", f"t.k={text}"],
    ):
        result = cli(*args, project=project)
        _clean(result)
        assert result.exit_code == 2, result.stderr
        assert "nested too deeply" in result.stderr
    # Through the Python API: a clear XComValueError, never a RecursionError.
    from qarion_etl.errors import XComValueError
    from qarion_etl.project import Project

    value: object = 1
    for _ in range(levels):
        value = [value] if shape == "array" else {"a": value}
    with Project.load(project / "qarion-etl.toml") as p:
        with pytest.raises(XComValueError, match="cannot be serialised"):
            p.xcom_service("f").push("t", value)
    # A JSON Lines input with one such line fails its task with the line number.
    ns = unique_name("deep")
    write_flow(
        project,
        "deep",
        f'id = "deep"\nnamespace = "{ns}"\n[[tasks]]\nid = "ingest"\ntype = "ingestion"\n'
        'target_dataset_id = "landing"\n[tasks.config]\npath = "data/in.jsonl"\nformat = "jsonl"\n',
    )
    (project / "data").mkdir(exist_ok=True)
    (project / "data" / "in.jsonl").write_text('{"a": 1}\n{"a": ' + text + "}\n")
    result = cli("run", "deep", project=project)
    _clean(result)
    assert (
        result.exit_code == 1
        and "in.jsonl:2" in result.stderr
        and "nested too deeply" in result.stderr
    )


def test_hostile_environment_is_not_a_crash(tmp_path: Path) -> None:
    """A config whose ${env:…} names a missing variable is a usage error naming it."""
    project = make_project(tmp_path, example=False)
    cfg = project / "qarion-etl.toml"
    cfg.write_text(
        cfg.read_text().replace(
            'url = "sqlite:', 'url = "${env:QARION_NOPE_' + "x" * 200 + "}sqlite:"
        )
    )
    result = procs.run(
        project, "xcom", "list", env={k: v for k, v in os.environ.items() if k != "QARION_NOPE"}
    )
    _clean(result)
    assert result.returncode == 2 and "QARION_NOPE" in result.stderr
