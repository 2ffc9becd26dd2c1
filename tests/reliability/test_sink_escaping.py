"""Data is text in every sink: JUnit, the step summary, workflow commands, stderr, JSON lines.

A CSV cell holds every control character, a terminal escape sequence (``ESC ]0;PWNED BEL``
retitles a terminal), bidirectional controls, Markdown (a heading, a link, a code fence,
HTML) and lines that look like GitHub workflow commands. DuckDB's conversion error quotes
the cell whole; every output of the failed run still parses in its own format and shows
the cell as text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from qarion_etl.cli.junit import write_junit
from qarion_etl.run.model import RunResult, RunStatus, TaskOutcome, TaskStatus
from tests.helpers import cli, make_project, write_flow
from tests.test_escaping import CONTROLS

RAW = re.compile("[" + "".join(re.escape(c) for c in CONTROLS) + "]")
EVIL = (
    "".join(c for c in CONTROLS if c not in "\x00")  # a CSV reader refuses a NUL
    + "\x1b]0;PWNED\x07\x1b[2J"
    + "\n# Injected heading\n[link](http://evil.example) <img src=x onerror=alert(1)>\n"
    + "```\n## after the fence\n::add-mask::oops\n  ::error::fake%0A::warning::more"
)

FLOW = """\
id = "sinks"

[[tasks]]
id = "land"
type = "ingestion"
target_dataset_id = "cells"
[tasks.config]
path = "data/cells.csv"
format = "csv"

[[tasks]]
id = "convert"
type = "transformation"
source_dataset_id = "cells"
dependencies = ["land"]
[tasks.config]
sql = "SELECT CAST(v AS INTEGER) AS n FROM {{ source_dataset }}"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(tmp_path / "p", example=False)
    monkeypatch.chdir(root)  # paths shown relative, as in a CI job
    (root / "data").mkdir()
    cell = '"' + EVIL.replace('"', '""') + '"'
    (root / "data" / "cells.csv").write_text(f"id,v\n1,{cell}\n", encoding="utf-8", newline="")
    write_flow(root, "sinks", FLOW)
    return root


def _outside_fences(markdown: str) -> list[str]:
    """The lines of ``markdown`` that are not inside a fenced code block (CommonMark)."""
    outside: list[str] = []
    fence: str | None = None
    for line in markdown.splitlines():
        run = re.match(r" {0,3}(`{3,})", line)
        if fence is None:
            if run:
                fence = run[1]
                continue
            outside.append(line)
        elif run and len(run[1]) >= len(fence) and not line.strip().strip("`"):
            fence = None
    assert fence is None, "a fenced block was left open"
    return outside


def test_data_in_a_failed_run_is_text_in_every_sink(project: Path) -> None:
    summary = project / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = cli("run", "sinks", "--junit-xml", "junit.xml", project=project, env=env)
    assert result.exit_code == 1, result.output
    assert "Could not convert string" in result.stderr  # DuckDB quoted the cell

    # stderr: the cell's controls are shown, none is sent; no data line is a workflow command.
    assert RAW.search(result.stderr) is None, result.stderr
    assert "\\x1b]0;PWNED\\x07" in result.stderr
    assert not any(line.lstrip().startswith("::") for line in result.stderr.splitlines())

    # Workflow commands on stdout: one annotation, one line, escaped.
    commands = result.stdout.splitlines()
    assert len(commands) == 1 and commands[0].startswith("::error file=flows/sinks.toml,"), commands
    assert RAW.search(commands[0]) is None
    assert "%0A  # Injected heading%0A" in commands[0] and "fake%250A" in commands[0]

    # JUnit: parses with an XML parser, the cell's text is there, escaped.
    junit = ET.parse(project / "junit.xml").getroot()
    failure = junit.find("./testsuite/testcase[@name='convert']/failure")
    assert failure is not None and failure.text is not None
    assert "\\x1b]0;PWNED\\x07" in failure.text and "# Injected heading" in failure.text
    assert RAW.search(failure.text + failure.get("message", "")) is None

    # Step summary: the Markdown of the cell stays inside a code block.
    text = summary.read_text(encoding="utf-8")
    outside = _outside_fences(text)
    assert [line for line in outside if line.startswith("#")] == [outside[0]]
    assert outside[0].startswith("### ❌ qarion-etl: `sinks` FAILED")
    assert not any("evil.example" in line or "<img" in line for line in outside)
    assert "# Injected heading" in text and RAW.search(text) is None

    # run.log and the try's SQL file: the controls shown there too.
    run_folder = next((project / ".qarion" / "runs" / "sinks").glob("sinks__*/"))
    for name in ("run.log", "convert.sql"):
        logged = (run_folder / name).read_text(encoding="utf-8")
        assert "Could not convert" in logged and RAW.search(logged) is None, name


def test_json_events_escape_every_control(project: Path) -> None:
    result = cli("run", "sinks", "--log-format", "json", "--json", project=project)
    assert result.exit_code == 1, result.output
    for document in (result.stdout, *result.stderr.splitlines()):
        assert RAW.search(document) is None
    events = [json.loads(line) for line in result.stderr.splitlines()]
    failed = [e for e in events if e["event"] == "task_failure" and e.get("task_id") == "convert"]
    assert failed and "\x1b]0;PWNED\x07" in failed[0]["error"]  # the value, once parsed
    summary = json.loads(result.stdout)
    assert "\x1b]0;PWNED\x07" in summary["tasks"][1]["error"]


def test_junit_parses_with_every_character_in_the_error(tmp_path: Path) -> None:
    every = "".join(map(chr, range(0x110))) + "\ud800\udfff\ufffe\uffff\u202e]]>&<'\""
    outcome = TaskOutcome(
        "t", TaskStatus.FAILED, tries=1, error=every, sql_path=str(tmp_path / every[32:40])
    )
    skipped = TaskOutcome("s", TaskStatus.SKIPPED, error=every)
    run = RunResult("f", "r" + every[32:100], 1, RunStatus.FAILED, "now", tasks=[outcome, skipped])
    write_junit(run, tmp_path / "j.xml")
    root = ET.parse(tmp_path / "j.xml").getroot()
    failure = root.find("./testsuite/testcase[@name='t']/failure")
    assert failure is not None and failure.text is not None
    assert "]]>&<'\"" in failure.text and "\\x1b" in failure.text and "\\ud800" in failure.text
