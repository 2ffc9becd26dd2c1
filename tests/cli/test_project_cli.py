"""validate, graph, config show, init, --version, --help: through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import FIXTURE_FLOWS, cli, make_project, write_flow


def test_version() -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("qarion-etl 0.")


def test_validate_example_project(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = cli("validate", project=project)
    assert result.exit_code == 0, result.output
    assert (
        "OK    flows/data_pipeline.toml" in result.stderr or "data_pipeline.toml" in result.stderr
    )
    assert "1 of 1 flow valid" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("cycle.toml", "dependency cycle: a -> b -> c -> a"),
        ("unknown_dep.toml", "unknown dependency 'laod' (did you mean 'load'?)"),
        ("dup_task.toml", "duplicate task id 'same'"),
        ("dup_writer.toml", "dataset 'out' is written by several tasks: one, two"),
        ("unknown_type.toml", "unknown task type 'ingestoin' (did you mean 'ingestion'?)"),
        ("missing_config.toml", "missing config 'path'"),
        ("bad_jinja.toml", "SQL template syntax error"),
        ("pull_not_upstream.toml", "which is not upstream of 'filter'"),
        ("bad_toml.toml", "invalid TOML"),
    ],
)
def test_validate_broken_flows_exit_2(tmp_path: Path, fixture: str, expected: str) -> None:
    project = make_project(tmp_path, example=False)
    (project / "flows").mkdir()
    (project / "flows" / fixture).write_bytes((FIXTURE_FLOWS / fixture).read_bytes())
    result = cli("validate", project=project)
    assert result.exit_code == 2
    assert expected in result.stderr
    assert f"{fixture}:" in result.stderr
    assert "Traceback" not in result.output


def test_validate_json(tmp_path: Path) -> None:
    import json

    project = make_project(tmp_path)
    (project / "flows" / "cycle.toml").write_bytes((FIXTURE_FLOWS / "cycle.toml").read_bytes())
    result = cli("validate", "--json", project=project)
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["valid"] is False
    by_path = {f["path"].split("/")[-1]: f for f in doc["flows"]}
    assert by_path["data_pipeline.toml"]["valid"] is True
    assert by_path["cycle.toml"]["problems"][0]["task"] == "a"


def test_validate_by_id_and_unknown_flow(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert cli("validate", "data_pipeline", project=project).exit_code == 0
    result = cli("validate", "data_pipeline2", project=project)
    assert result.exit_code == 2
    assert (
        "no flow 'data_pipeline2'" in result.stderr
        and "did you mean 'data_pipeline'" in result.stderr
    )


@pytest.mark.parametrize(
    ("fmt", "needle"),
    [
        ("text", "filter_high_value [transformation]"),
        ("mermaid", "flowchart LR"),
        ("dot", "digraph"),
    ],
)
def test_graph_formats(tmp_path: Path, fmt: str, needle: str) -> None:
    project = make_project(tmp_path)
    result = cli("graph", "data_pipeline", "--format", fmt, project=project)
    assert result.exit_code == 0, result.output
    assert needle in result.stdout
    assert "ingest_orders" in result.stdout and "calculate_stats" in result.stdout


def test_graph_of_a_cycle_fails(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = cli("graph", str(FIXTURE_FLOWS / "cycle.toml"), project=project)
    assert result.exit_code == 2 and "dependency cycle" in result.stderr


def test_config_show_masks_the_seed_s3_credentials(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        config="""
[credentials.aws_creds]
aws_access_key_id = "${env:AWS_ACCESS_KEY_ID}"
aws_secret_access_key = "${env:AWS_SECRET_ACCESS_KEY}"
region_name = "us-east-1"

[metadata]
url = "postgresql+psycopg://etl:pa55word@db.example:5432/meta"

[xcom]
enabled = true
backend = "s3"

[xcom.backend_config]
bucket = "my-xcom-bucket"
prefix = "xcom"
credentials = { aws_access_key_id = "your-key", aws_secret_access_key = "your-secret", region_name = "us-east-1" }
""",
    )
    env = {"AWS_ACCESS_KEY_ID": "AKIAENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecretvalue"}
    result = cli("config", "show", project=project, env=env)
    assert result.exit_code == 0, result.output
    for secret in ("AKIAENVKEY", "envsecretvalue", "pa55word", "your-key", "your-secret"):
        assert secret not in result.output
    assert 'bucket = "my-xcom-bucket"' in result.stdout
    assert "backend_class" in result.stdout and "S3XComBackend" in result.stdout
    assert 'aws_secret_access_key = "***"' in result.stdout


def test_config_error_exit_2_no_traceback(tmp_path: Path) -> None:
    project = make_project(tmp_path, config='[xcom]\nbakend = "s3"\n')
    result = cli("config", "show", project=project)
    assert result.exit_code == 2
    assert "did you mean 'backend'" in result.stderr
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    project = make_project(tmp_path, config='[xcom]\nbakend = "s3"\n')
    result = cli("--debug", "config", "show", project=project)
    assert result.exit_code == 2
    assert "Traceback" in result.stderr


def test_init_writes_a_working_project(tmp_path: Path) -> None:
    target = tmp_path / "new"
    result = cli("init", str(target))
    assert result.exit_code == 0, result.output
    for name in ("qarion-etl.toml", "flows/data_pipeline.toml", "data/orders.csv"):
        assert (target / name).is_file()
    assert cli("--config", str(target / "qarion-etl.toml"), "validate").exit_code == 0
    again = cli("init", str(target))
    assert again.exit_code == 2 and "--force" in again.stderr
    ignored = (target / ".gitignore").read_text().splitlines()
    assert {".qarion/", "warehouse.duckdb", ".venv/"} <= set(ignored)


def test_init_adds_to_a_gitignore_it_finds(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / ".gitignore").write_text("node_modules/\n.venv/")
    assert cli("init", str(target)).exit_code == 0
    lines = (target / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["node_modules/", ".venv/"]
    assert lines.count(".venv/") == 1 and ".qarion/" in lines and "warehouse.duckdb" in lines


def test_scaffold_matches_the_repository_example() -> None:
    from qarion_etl.scaffold import _HERE, FILES
    from tests.helpers import ROOT

    for name in FILES:
        assert (ROOT / name).read_bytes() == (_HERE / name).read_bytes(), name


def test_every_command_has_help() -> None:
    import typer.main

    from qarion_etl.cli.main import app

    group = typer.main.get_command(app)
    names: list[list[str]] = []

    def walk(cmd, path):  # type: ignore[no-untyped-def]
        if not hasattr(cmd, "list_commands"):
            return
        for name in cmd.list_commands(None):  # loads the root's commands on demand
            sub = cmd.get_command(None, name)
            names.append([*path, name])
            walk(sub, [*path, name])

    walk(group, [])
    assert ["validate"] in names and ["graph"] in names and ["config", "show"] in names
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for path in names:
        result = cli(*path, "--help")
        assert result.exit_code == 0, path
        assert "Usage:" in result.stdout
        assert f"qarion-etl {' '.join(path)}" in readme, (
            f"README does not document {' '.join(path)}"
        )


def test_flow_with_unknown_dependency_via_write_flow(tmp_path: Path) -> None:
    project = make_project(tmp_path, example=False)
    write_flow(
        project,
        "f",
        """
        [[tasks]]
        id = "a"
        type = "transformation"
        dependencies = ["zzz"]
        [tasks.config]
        sql = "SELECT 1"
    """,
    )
    result = cli("validate", "f", project=project)
    assert result.exit_code == 2 and "unknown dependency 'zzz'" in result.stderr


def test_graph_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = cli("graph", "data_pipeline", "--format", "png", project=project)
    assert result.exit_code == 2
    assert "unknown --format 'png' (use text, mermaid, dot, json, svg or html)" in result.stderr


def test_init_force_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "p"
    assert cli("init", str(target)).exit_code == 0
    (target / "flows" / "data_pipeline.toml").write_text("broken")
    assert cli("init", str(target), "--force").exit_code == 0
    assert cli("--config", str(target / "qarion-etl.toml"), "validate").exit_code == 0
