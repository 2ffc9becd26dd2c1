"""Small promises of the command line: --json always gives JSON, help has examples."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import cli, make_project, write_flow


def test_run_json_on_a_flow_that_does_not_validate_prints_a_json_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", example=False)
    write_flow(
        project,
        "broken",
        'id = "broken"\nnamespace = "b"\n[[tasks]]\nid = "t"\ntype = "transform"\n',
    )
    done = cli("run", "broken", "--json", project=project)
    assert done.exit_code == 2
    doc = json.loads(done.stdout)
    assert doc["status"] == "error" and doc["exit_code"] == 2
    assert doc["type"] == "FlowValidationError" and doc["line"] == 5 and doc["task_id"] == "t"
    assert doc["path"].endswith("broken.toml")
    assert "did you mean 'transformation'" in doc["problems"][0]["message"]
    assert "Error:" in done.stderr  # the human line stays on stderr
    unknown = cli("run", "nope", "--json", project=project)
    assert unknown.exit_code == 2 and json.loads(unknown.stdout)["type"] == "UsageError"


def test_after_a_run_the_next_commands_are_named(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    done = cli("run", "data_pipeline", "--run-id", "n1", project=project)
    assert done.exit_code == 0
    assert (
        "Next:\n  qarion-etl report n1\n  qarion-etl runs show n1\n  qarion-etl xcom list --run n1"
        in (done.stderr)
    )
    for line in (
        "qarion-etl report n1",
        "qarion-etl runs show n1",
        "qarion-etl xcom list --run n1",
    ):
        assert cli(*line.split()[1:], project=project).exit_code == 0, line
    quiet = cli("run", "data_pipeline", "-q", project=project)
    assert "Next:" not in quiet.stderr


def test_on_a_terminal_a_failure_prints_its_error_once(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from qarion_etl.cli import console

    monkeypatch.setattr(
        console,
        "make_reporter",
        lambda *a, **k: console.RichReporter(verbosity=k.get("verbosity", 0)),
    )
    project = make_project(tmp_path / "p", example=False)
    write_flow(
        project,
        "oops",
        'id = "oops"\nnamespace = "o"\n[[tasks]]\nid = "t"\ntype = "transformation"\n'
        '[tasks.config]\nsql = "SELECT nope FROM range(1)"\n',
    )
    done = cli("run", "oops", project=project)
    assert done.exit_code == 1
    assert done.stderr.count("Binder Error") == 1, done.stderr
    assert not [ln for ln in done.stderr.splitlines() if ln.startswith("Error:")]


def test_every_command_has_an_example_and_named_placeholders() -> None:
    import typer.main

    from qarion_etl.cli.main import app

    def leaves(cmd, path):  # type: ignore[no-untyped-def]
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(None):
                yield from leaves(cmd.get_command(None, name), [*path, name])
        else:
            yield path

    for path in leaves(typer.main.get_command(app), []):
        text = cli(*path, "--help", env={"COLUMNS": "200"}).stdout
        assert "Example:" in text, path
        assert not [w for w in ("<str>", "<int", "<float", "<path>") if w in text], (path, text)


def test_help_lists_every_command_without_importing_one() -> None:
    """``--help`` shows the commands from a table; the table matches the commands."""
    import subprocess
    import sys

    from qarion_etl.cli.main import COMMANDS, load_command

    for name, (_, _, short) in COMMANDS.items():
        command = load_command(name)
        first = " ".join((command.help or "").split("\n\n")[0].split())
        assert first == short, (name, first)
    code = (
        "import sys\nfrom qarion_etl.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('qarion_etl.cli.') and "
        "m.split('.')[-1] in {'flows', 'run', 'xcom', 'runs', 'report', 'ui', 'listing', 'project'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_run_option_errors_are_usage_errors(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    both = cli("run", "data_pipeline", "-q", "-v", project=project)
    assert both.exit_code == 2 and "--quiet and --verbose cannot be used together" in both.stderr
    fmt = cli("run", "data_pipeline", "--log-format", "xml", project=project)
    assert fmt.exit_code == 2 and "--log-format 'xml': use text or json" in fmt.stderr
    ls = cli("ls", "--output", "yaml", project=project)
    assert ls.exit_code == 2 and "--output 'yaml': use text or json" in ls.stderr
    empty = make_project(tmp_path / "empty", example=False)
    (empty / "flows").mkdir(exist_ok=True)
    nothing = cli("run", "--all", project=empty)
    assert nothing.exit_code == 2 and "--all: no flow files in" in nothing.stderr
