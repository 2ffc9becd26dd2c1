"""The installed console script and ``python -m qarion_etl``, as real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, make_project

HEAVY = ("boto3", "botocore", "duckdb", "sqlalchemy", "psycopg", "pymysql", "rich")


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", **env}
    full_env.pop("QARION_ETL_CONFIG", None)
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=full_env, timeout=120)


def script() -> str:
    found = shutil.which("qarion-etl", path=str(Path(sys.executable).parent))
    assert found, "the qarion-etl console script is not installed in this environment"
    return found


def test_console_script_version(tmp_path: Path) -> None:
    result = run([script(), "--version"], tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("qarion-etl ")
    assert result.stderr == ""


def test_python_dash_m(tmp_path: Path) -> None:
    result = run([sys.executable, "-m", "qarion_etl", "--help"], tmp_path)
    assert result.returncode == 0 and "validate" in result.stdout


def test_exit_codes_as_a_process(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert run([script(), "validate"], project).returncode == 0
    (project / "flows" / "bad.toml").write_text('[[tasks]]\nid = "a"\ntype = "nope"\n')
    bad = run([script(), "validate"], project)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert "unknown task type 'nope'" in bad.stderr
    usage = run([script(), "graph"], project)
    assert usage.returncode == 2


def _imported_after(argv: list[str], cwd: Path) -> set[str]:
    code = (
        "import sys, json\n"
        "from qarion_etl.cli.main import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('\\nMODULES=' + json.dumps(sorted(sys.modules)))\n"
    )
    result = run([sys.executable, "-c", code], cwd)
    line = result.stderr.rsplit("MODULES=", 1)[1]
    return {m.split(".")[0] for m in json.loads(line)}


@pytest.mark.parametrize(
    "argv", [["--help"], ["validate"], ["graph", "data_pipeline"], ["config", "show"]]
)
def test_light_commands_import_nothing_heavy(tmp_path: Path, argv: list[str]) -> None:
    project = make_project(tmp_path)
    loaded = _imported_after(argv, project)
    assert "qarion_etl" in loaded
    heavy = set(HEAVY) - ({"rich"} if argv == ["--help"] else set())  # typer formats help with rich
    assert not loaded & heavy, sorted(loaded & heavy)


def test_help_does_not_import_networkx_or_jinja(tmp_path: Path) -> None:
    loaded = _imported_after(["--help"], tmp_path)
    assert not loaded & {"networkx", "jinja2", "tomli"}, sorted(
        loaded & {"networkx", "jinja2", "tomli"}
    )


def test_json_output_is_pure(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = run([script(), "validate", "--json"], project)
    assert json.loads(result.stdout)["valid"] is True


def test_repository_example_validates() -> None:
    result = run([script(), "validate"], ROOT)
    assert result.returncode == 0, result.stderr
