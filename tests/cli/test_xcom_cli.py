"""``qarion-etl xcom list | get | push | clear`` through the root app, in a temporary project."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import cli, make_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path, example=False)


def ok(*args: str, project: Path) -> tuple[str, str]:
    result = cli("xcom", *args, project=project)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.stdout, result.stderr


def test_push_then_get_prints_only_the_value(project: Path) -> None:
    _, err = ok(
        "push", "calc", '{"avg": 12.5, "n": 3}', "--flow", "demo", "--key", "stats", project=project
    )
    assert "Pushed task 'calc' key 'stats' to flow 'demo'" in err
    out, err = ok("get", "calc", "--key", "stats", "--flow", "demo", project=project)
    assert out == '{"avg": 12.5, "n": 3}\n' and err == ""


@pytest.mark.parametrize(
    ("value", "vtype", "shown", "raw"),
    [
        ("hello world", None, '"hello world"\n', "hello world\n"),
        ("42", None, "42\n", "42\n"),
        ("42", "string", '"42"\n', "42\n"),
        ("7", "float", "7.0\n", "7.0\n"),
        ("yes", "boolean", "true\n", "true\n"),
        ('[1, "a"]', "json", '[1, "a"]\n', '[1, "a"]\n'),
        ("nan", "float", "NaN\n", "NaN\n"),
    ],
)
def test_push_types_and_get_output(
    project: Path, value: str, vtype: str | None, shown: str, raw: str
) -> None:
    extra = ["--type", vtype] if vtype else []
    ok("push", "t", value, "--flow", "f", *extra, project=project)
    assert ok("get", "t", project=project)[0] == shown
    assert ok("get", "t", "--raw", project=project)[0] == raw


def test_binary_values(project: Path) -> None:
    data = b"\x00\x01binary\xff"
    ok(
        "push",
        "t",
        base64.b64encode(data).decode(),
        "--type",
        "binary",
        "--flow",
        "f",
        project=project,
    )
    assert ok("get", "t", project=project)[0] == json.dumps(base64.b64encode(data).decode()) + "\n"
    result = cli("xcom", "get", "t", "--raw", project=project)
    assert result.stdout_bytes == data
    # Listed as its size and a hex preview, never as a Python bytes repr.
    listed, _ = ok("list", project=project)
    assert "<binary 9 bytes> 000162696e617279ff" in listed and "b'" not in listed
    [entry] = json.loads(ok("list", "--json", project=project)[0])
    assert entry["preview"] == "<binary 9 bytes> 000162696e617279ff"


def test_a_long_binary_value_is_listed_with_its_estimated_size(project: Path) -> None:
    data = bytes(range(256)) * 4
    encoded = base64.b64encode(data).decode()
    ok("push", "t", encoded, "--type", "binary", "--flow", "f", project=project)
    [entry] = json.loads(ok("list", "--json", project=project)[0])
    # Base64 cut short: the size is known but for the padding (up to 2 bytes).
    assert re.match(r"<binary ~1,02[4-6] bytes> 000102030405", entry["preview"])
    assert entry["preview"].endswith("…") and len(entry["preview"]) <= 60


def test_listed_previews_are_text_not_markup_or_controls(project: Path) -> None:
    value = "[bold]x[/] \x1b]0;PWNED\x07\x9b [link=http://e.x]y[/]"
    ok("push", "t", value, "--flow", "f", project=project)
    listed, _ = ok("list", project=project)
    assert "[bold]x[/] " in listed and "[link=http://e.x]y[/]" in listed  # not rich markup
    assert "\x1b" not in listed and "\x9b" not in listed and "\\u001b]0;PWNED\\u0007" in listed


def test_get_without_match_exits_1(project: Path) -> None:
    result = cli("xcom", "get", "missing", "--key", "k", "--flow", "f", project=project)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: task 'missing': key 'k': no XCom value found (flow 'f')\n"


def test_newest_match_wins_and_filters(project: Path) -> None:
    ok("push", "t", "1", "--flow", "f", "--run", "r1", "--batch", "1", project=project)
    ok("push", "t", "2", "--flow", "f", "--run", "r2", "--batch", "2", project=project)
    assert ok("get", "t", project=project)[0] == "2\n"
    assert ok("get", "t", "--batch", "1", project=project)[0] == "1\n"
    assert ok("get", "t", "--run", "r1", "--flow", "f", project=project)[0] == "1\n"


def test_bad_input_exits_2(project: Path) -> None:
    for args, message in (
        (["push", "t", "1"], "xcom push needs --flow"),
        (
            ["push", "t", "abc", "--flow", "f", "--type", "integer"],
            "task 't': key 'return_value': VALUE 'abc' is not a valid integer",
        ),
        (["push", "t", "1", "--flow", "f", "--type", "decimal"], "--type must be one of"),
        (["push", "t", "!!", "--flow", "f", "--type", "binary"], "base64"),
        (["clear", "--older-than", "3 months"], "--older-than must look like"),
    ):
        result = cli("xcom", *args, project=project)
        assert result.exit_code == 2, args
        assert message in result.stderr and "Traceback" not in result.output


def test_value_over_the_limit_exits_1_with_hint(tmp_path: Path) -> None:
    project = make_project(tmp_path, example=False)
    config = project / "qarion-etl.toml"
    config.write_text(
        config.read_text().replace(
            "backend_config = {}", "backend_config = {}\nmax_value_bytes = 10"
        )
    )
    result = cli("xcom", "push", "t", '"a long string value"', "--flow", "f", project=project)
    assert result.exit_code == 1
    assert "over the XCom limit of 10 bytes" in result.stderr and "dataset" in result.stderr


def test_list_table_and_json(project: Path) -> None:
    ok("push", "a", '{"x": 1}', "--flow", "f", "--run", "r1", "--batch", "4", project=project)
    ok("push", "b", '"' + "z" * 200 + '"', "--flow", "f", "--key", "long", project=project)
    out, _ = ok("list", project=project)
    lines = out.splitlines()
    assert lines[0].split() == [
        "FLOW",
        "RUN",
        "BATCH",
        "TASK",
        "KEY",
        "TYPE",
        "SIZE",
        "CREATED",
        "(UTC)",
        "PREVIEW",
    ]
    assert lines[1].split()[:7] == ["f", "-", "-", "b", "long", "json", "202"]
    assert lines[2].split()[:7] == ["f", "r1", "4", "a", "return_value", "json", "7"]
    assert "z" * 100 not in out  # only a preview
    out, _ = ok("list", "--json", "--limit", "1", project=project)
    [entry] = json.loads(out)
    assert entry["task_id"] == "b" and entry["size"] == 202 and entry["preview"].endswith("…")
    assert json.loads(ok("list", "--json", "--task", "a", project=project)[0])[0]["batch_id"] == 4
    empty = cli("xcom", "list", "--flow", "nothing", project=project)
    assert empty.exit_code == 0 and empty.stdout == "" and "No XCom values match." in empty.stderr


def test_clear_reports_counts_and_guards_unscoped(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for task in ("a", "b", "c"):
        ok("push", task, "1", "--flow", "f", project=project)
    ok("push", "a", "1", "--flow", "g", project=project)
    assert (
        ok("clear", "--flow", "f", "--task", "a", project=project)[1] == "Removed 1 XCom value.\n"
    )
    refused = cli("xcom", "clear", project=project)
    assert refused.exit_code == 2 and "without --yes" in refused.stderr
    assert ok("clear", "--older-than", "30d", project=project)[1] == "Removed 0 XCom values.\n"
    from qarion_etl.cli import xcom as xcom_cli

    monkeypatch.setattr(xcom_cli, "_interactive", lambda: True)
    declined = cli("xcom", "clear", project=project, input="n\n")
    assert declined.exit_code == 1 and "Nothing removed." in declined.stderr
    assert cli("xcom", "clear", project=project, input="y\n").stderr.endswith(
        "Removed 3 XCom values.\n"
    )
    assert ok("clear", "--yes", project=project)[1] == "Removed 0 XCom values.\n"


def test_broken_backend_path_exits_3_naming_it(tmp_path: Path) -> None:
    project = make_project(tmp_path, example=False)
    config = project / "qarion-etl.toml"
    config.write_text(
        config.read_text().replace('backend = "database"', 'backend = "backends.nope:Missing"')
    )
    result = cli("xcom", "get", "t", project=project)
    assert result.exit_code == 3
    assert "backends.nope:Missing" in result.stderr and "not found" in result.stderr
    assert "Traceback" not in result.output


def test_project_local_custom_backend(tmp_path: Path) -> None:
    project = make_project(tmp_path, example=False)
    (project / "backends").mkdir()
    (project / "backends" / "upper_xcom.py").write_text(
        "from qarion_etl.xcom import BaseXCom\n\n"
        "class UpperXCom(BaseXCom):\n"
        "    @staticmethod\n"
        "    def serialize_value(value, key=None, task_id=None, dag_id=None, run_id=None, map_index=None, **kw):\n"
        "        return BaseXCom.serialize_value(value=value.upper() if isinstance(value, str) else value)\n"
    )
    config = project / "qarion-etl.toml"
    config.write_text(
        config.read_text().replace(
            'backend = "database"', 'backend = "backends.upper_xcom.UpperXCom"'
        )
    )
    ok("push", "t", "shout", "--flow", "f", project=project)
    assert ok("get", "t", "--raw", project=project)[0] == "SHOUT\n"


def test_xcom_get_process_stays_light(project: Path) -> None:
    ok("push", "t", "1", "--flow", "f", project=project)
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['qarion-etl', '--config', sys.argv[1], 'xcom', 'get', 't']\n"
        "try:\n    runpy.run_module('qarion_etl', run_name='__main__')\n"
        "except SystemExit as e:\n    code = e.code\n"
        "heavy = [m for m in ('boto3', 'botocore', 'duckdb', 'jinja2', 'networkx', 'rich', 'sqlalchemy') if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("QARION_ETL_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-c", probe, str(project / "qarion-etl.toml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.stdout == "1\n"
    assert done.stderr.endswith("HEAVY="), done.stderr


def test_push_types_are_the_value_types() -> None:
    from qarion_etl.cli import xcom as xcom_cli
    from qarion_etl.xcom import XComValueType

    assert xcom_cli._TYPES == tuple(t.value for t in XComValueType)


def test_list_says_what_it_left_out_and_json_lists_everything(project: Path) -> None:
    from qarion_etl.project import Project

    with Project.load(project / "qarion-etl.toml") as p:
        p.xcom_service("many").push_many({"task_id": f"t{i}", "value": i} for i in range(120))
    out, err = ok("list", "--flow", "many", project=project)
    assert len(out.splitlines()) == 1 + 50
    assert "50 of 120 shown: --limit N or --all" in err
    out, err = ok("list", "--flow", "many", "--limit", "7", project=project)
    assert len(out.splitlines()) == 8 and "7 of 120 shown" in err
    out, err = ok("list", "--flow", "many", "--all", project=project)
    assert len(out.splitlines()) == 121 and "shown" not in err
    assert len(json.loads(ok("list", "--flow", "many", "--json", project=project)[0])) == 120
    limited = json.loads(ok("list", "--flow", "many", "--json", "--limit", "5", project=project)[0])
    assert len(limited) == 5


def test_value_errors_name_task_and_key(project: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for args, message in (
        (["push", "T", "not-a-number", "--flow", "f", "--key", "K", "--type", "integer"],
         "task 'T': key 'K': VALUE 'not-a-number' is not a valid integer"),
        (["push", "T", deep, "--flow", "f", "--key", "K"], "task 'T': key 'K': VALUE: JSON nested too deeply"),
        (["push", "T", deep, "--flow", "f", "--key", "K", "--type", "json"], "task 'T': key 'K': VALUE: JSON"),
    ):  # fmt: skip
        result = cli("xcom", *args, project=project)
        assert result.exit_code == 2, result.output
        assert message in result.stderr and "Traceback" not in result.output


def test_an_empty_key_is_refused(project: Path) -> None:
    for args in (
        ["push", "t", "1", "--flow", "f", "--key", ""],
        ["get", "t", "--key", "", "--flow", "f"],
        ["clear", "--flow", "f", "--key", ""],
        ["list", "--key", ""],
    ):
        result = cli("xcom", *args, project=project)
        assert result.exit_code == 2, (args, result.output)
        assert "key must be a non-empty string" in result.stderr
