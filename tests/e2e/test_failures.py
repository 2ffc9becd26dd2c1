"""When a run fails, it says why: user stories through the CLI, on every engine.

A typo in a multi-line transformation shows the driver's whole message under the one-line
error, located on the line of the flow file; the SQL that ran is kept per try, every run
has a log, ``--log-format json`` gives one event per line, ``-q``/``-v`` show less and more;
errors that cannot pass on another try are not retried; each try stays in the history.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import unique_name
from tests.helpers import cli, make_project, write_flow
from tests.runkit import drop_namespace, run_dir

#: The flow file; ``AVG(valu)`` is on line 22 (the SQL starts on line 21).
TYPO = """\
id = "calc"
namespace = "{ns}"

[[tasks]]
id = "make"
type = "transformation"
target_dataset_id = "numbers"
[tasks.config]
sql = "SELECT 1 AS value UNION ALL SELECT 2"

[[tasks]]
id = "stats"
type = "transformation"
source_dataset_id = "numbers"
target_dataset_id = "stats"
dependencies = ["make"]
retries = 2
retry_delay_seconds = 0
[tasks.config]
sql = \"\"\"
SELECT COUNT(*) AS n,
  AVG(valu) AS mean
FROM {{{{ source_dataset }}}}
\"\"\"
"""
TYPO_LINE = 22

#: What each engine's own message adds below its first line (or in it, for one-liners).
DRIVER_DETAIL = {
    "duckdb": ['Candidate bindings: "value"', "LINE 2:", "^^^^"],
    "sqlite": ["no such column: valu"],
    "postgres": ["LINE 2:", "HINT:"],
    "mariadb": ["Unknown column 'valu'"],
}


def _kind(engine_url: str) -> str:
    for name, prefix in (
        ("duckdb", "duckdb"),
        ("sqlite", "sqlite"),
        ("postgres", "postgresql"),
        ("mariadb", "mysql"),
    ):
        if engine_url.startswith(prefix):
            return name
    raise AssertionError(engine_url)


@pytest.fixture
def typo_project(tmp_path: Path, engine_url: str):  # type: ignore[no-untyped-def]
    ns = unique_name("fail")
    project = make_project(tmp_path / "p", engine_url=engine_url, namespace=ns, example=False)
    write_flow(project, "calc", TYPO.format(ns=ns))
    yield project
    if not engine_url.startswith(("sqlite", "duckdb")):
        drop_namespace(engine_url, ns)


def test_a_sql_typo_shows_the_drivers_whole_message_on_the_line_of_the_flow_file(
    typo_project: Path, engine_url: str
) -> None:
    done = cli("run", "calc", "--run-id", "r1", project=typo_project)
    assert done.exit_code == 1
    err = done.stderr
    assert f"calc.toml:{TYPO_LINE}: task 'stats': " in err, err
    for part in DRIVER_DETAIL[_kind(engine_url)]:
        assert part in err, (part, err)
    # A binder error cannot pass on another try: one try, not three.
    assert "not retried: a SQL binder error" in err
    assert "retrying stats" not in err
    shown = json.loads(cli("runs", "show", "r1", "--json", project=typo_project).stdout)
    stats = next(t for t in shown["tasks"] if t["task_id"] == "stats")
    assert stats["tries"] == 1 and stats["status"] == "failed"

    # The SQL that ran, for that try: the rendered statement, and how it failed.
    sql_path = run_dir(typo_project, "r1") / "stats.sql"
    assert "SQL that ran: " in err and "stats.sql" in err
    text = sql_path.read_text()
    assert "task stats, try 1" in text
    assert re.search(r"CREATE TABLE .* AS SELECT COUNT\(\*\) AS n,\n\s+AVG\(valu\) AS mean", text)
    assert "-- failed after" in text
    make_sql = (run_dir(typo_project, "r1") / "make.sql").read_text()
    assert "SELECT 1 AS value UNION ALL SELECT 2" in make_sql and "-- ok in" in make_sql

    results = json.loads((run_dir(typo_project, "r1").with_suffix(".json")).read_text())
    assert results["log_path"].endswith("r1/run.log")
    by_id = {t["task_id"]: t for t in results["tasks"]}
    assert by_id["stats"]["sql_path"] == str(sql_path)
    assert by_id["stats"]["not_retried"].startswith("a SQL binder error")
    log = (run_dir(typo_project, "r1") / "run.log").read_text()
    assert "run_start" in log and "task_failure task=stats" in log and "run_end" in log
    assert f"calc.toml:{TYPO_LINE}" in log


def test_debug_shows_the_drivers_traceback(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", example=False)
    write_flow(project, "calc", TYPO.format(ns="dbg"))
    done = cli("--debug", "run", "calc", project=project)
    assert done.exit_code == 1
    assert "Traceback" in done.stderr
    assert "duckdb.BinderException" in done.stderr or "_duckdb.BinderException" in done.stderr
    assert "qarion_etl.errors.SqlError" in done.stderr


def test_a_failed_pull_points_at_its_template_line(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", example=False)
    write_flow(
        project,
        "pulls",
        """\
        id = "pulls"
        namespace = "p"

        [[tasks]]
        id = "first"
        type = "transformation"
        [tasks.config]
        sql = "SELECT 1 AS n"

        [[tasks]]
        id = "second"
        type = "transformation"
        dependencies = ["first"]
        [tasks.config]
        sql = '''
        SELECT 1
          + {{ xcom_pull('first', key='missing') }}
        '''
        """,
    )
    done = cli("run", "pulls", project=project)
    assert done.exit_code == 1
    assert "pulls.toml:17: task 'second': xcom_pull('first', key='missing') found nothing" in (
        done.stderr
    )


def test_secrets_are_masked_in_the_sql_files(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        example=False,
        config="""\
        [engine]
        url = "duckdb:///warehouse.duckdb"
        [credentials.api]
        token = "${env:QE_TEST_TOKEN}"
        [xcom]
        enabled = true
        """,
    )
    write_flow(
        project,
        "secret",
        """\
        id = "secret"
        namespace = "s"
        [[tasks]]
        id = "use"
        type = "transformation"
        [tasks.config]
        sql = "SELECT '{{ var('token') }}' AS t"
        """,
    )
    env = {"QE_TEST_TOKEN": "tok-3141592653"}
    done = cli(
        "run", "secret", "--run-id", "s1", "--var", "token=tok-3141592653", project=project, env=env
    )
    assert done.exit_code == 0, done.output
    text = (run_dir(project, "s1") / "use.sql").read_text()
    assert "SELECT '***' AS t" in text and "tok-3141592653" not in text


def test_json_log_format_is_one_event_per_line(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    done = cli("run", "data_pipeline", "--run-id", "j1", "--log-format", "json", project=project)
    assert done.exit_code == 0
    events = [json.loads(line) for line in done.stderr.splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "run_start" and names[-1] == "run_end"
    assert names.count("task_start") == 3 and names.count("task_end") == 3
    for e in events:
        assert {"ts", "level", "event", "run_id", "flow_id"} <= set(e)
        assert e["run_id"] == "j1" and e["flow_id"] == "data_pipeline"
    ingest = next(e for e in events if e["event"] == "task_end" and e["task_id"] == "ingest_orders")
    assert ingest["rows"] == 300 and ingest["duration_seconds"] > 0 and ingest["level"] == "info"
    assert "statement" not in names  # only with -v

    verbose = cli("run", "data_pipeline", "--log-format", "json", "-v", project=project)
    statements = [json.loads(line) for line in verbose.stderr.splitlines()]
    assert any(e["event"] == "statement" and "CREATE TABLE" in e["sql"] for e in statements)


def test_quiet_and_verbose(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    quiet = cli("run", "data_pipeline", "-q", project=project)
    assert quiet.exit_code == 0
    assert "OK" not in quiet.stderr and "Running" not in quiet.stderr
    assert "SUCCESS" in quiet.stderr
    verbose = cli("run", "data_pipeline", "-v", project=project)
    assert re.search(r"calculate_stats: \d+\.\d{3}s CREATE TABLE .*AVG\(value\)", verbose.stderr)
    assert "300 rows" in verbose.stderr


def test_transient_errors_follow_retries_and_retry_on_any_retries_everything(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "p", example=False)
    write_flow(
        project,
        "slow",
        """\
        id = "slow"
        namespace = "s"
        [[tasks]]
        id = "crunch"
        type = "transformation"
        timeout_seconds = 0.3
        retries = 1
        retry_delay_seconds = 0
        [tasks.config]
        sql = "SELECT SUM(a.range * b.range) AS n FROM range(100000000) a, range(100) b"
        """,
    )
    done = cli("run", "slow", "--run-id", "t1", project=project)
    assert done.exit_code == 1
    assert "retrying crunch" in done.stderr and "not retried" not in done.stderr
    shown = json.loads(cli("runs", "show", "t1", "--json", project=project).stdout)
    assert shown["tasks"][0]["tries"] == 2
    assert [a["try_number"] for a in shown["tasks"][0]["attempts"]] == [1, 2]

    bad = write_flow(
        project,
        "bad_policy",
        """\
        id = "bad_policy"
        namespace = "s"
        [[tasks]]
        id = "t"
        type = "transformation"
        retry_on = "anything"
        [tasks.config]
        sql = "SELECT 1"
        """,
    )
    refused = cli("validate", str(bad), project=project)
    assert refused.exit_code == 2
    assert "bad_policy.toml:6: task 't': 'retry_on' must be one of 'transient', 'any'" in (
        refused.stderr
    )


def test_each_try_stays_in_the_history_and_latest_resumes(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", example=False)
    flow = write_flow(
        project,
        "gate",
        """\
        id = "gate"
        namespace = "g"
        [[tasks]]
        id = "read"
        type = "transformation"
        [tasks.config]
        sql = "SELECT COUNT(*) AS n FROM g.missing_table"
        """,
    )
    assert cli("run", "gate", "--run-id", "g1", project=project).exit_code == 1
    flow.write_text(flow.read_text().replace("FROM g.missing_table", "FROM range(3)"))
    resumed = cli("run", "gate", "--resume", "latest", project=project)
    assert resumed.exit_code == 0, resumed.output
    assert "run g1" in resumed.stderr
    shown = cli("runs", "show", "latest", "--json", project=project)
    doc = json.loads(shown.stdout)
    assert doc["dag_run_id"] == "g1" and doc["status"] == "success"
    attempts = doc["tasks"][0]["attempts"]
    assert [(a["try_number"], a["status"]) for a in attempts] == [(1, "failed"), (2, "success")]
    assert "missing_table" in attempts[0]["error"]
    human = cli("runs", "show", "latest", project=project).stdout
    assert "earlier tries:" in human and re.search(r"read try 1 failed in \d+\.\d+s: ", human)
    assert cli("run", "nothing", "--resume", "latest", project=project).exit_code == 2


def test_validate_finds_missing_input_files_and_unset_vars(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    flow = project / "flows" / "data_pipeline.toml"
    flow.write_text(flow.read_text().replace("data/orders.csv", "data/gone.csv"))
    done = cli("validate", project=project)
    assert done.exit_code == 2
    line = next(
        i for i, text in enumerate(flow.read_text().splitlines(), start=1) if "gone.csv" in text
    )
    assert (
        f"data_pipeline.toml:{line}: task 'ingest_orders': input file 'data/gone.csv' does not exist"
        in (done.stderr)
    )
    flow.write_text(flow.read_text().replace("data/gone.csv", "data/orders.csv"))
    write_flow(
        project,
        "vars",
        """\
        id = "vars"
        namespace = "v"
        [[tasks]]
        id = "t"
        type = "transformation"
        [tasks.config]
        sql = "SELECT {{ var('limit') }} AS a, {{ var('other', default=2) }} AS b"
        """,
    )
    unset = cli("validate", project=project)
    assert unset.exit_code == 2
    assert "vars.toml:7: task 't': var('limit') has no default and is not set" in unset.stderr
    assert "other" not in unset.stderr
    assert cli("validate", "--var", "limit=5", project=project).exit_code == 0


def test_github_actions_annotations_and_step_summary(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", example=False)
    write_flow(project, "calc", TYPO.format(ns="gh"))
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    junit = tmp_path / "junit.xml"
    done = cli(
        "run", "calc", "--run-id", "gh1", "--junit-xml", str(junit), project=project, env=env
    )
    assert done.exit_code == 1
    annotation = next(line for line in done.stdout.splitlines() if line.startswith("::error "))
    assert re.match(
        rf"::error file=[^,]*calc\.toml,line={TYPO_LINE},title=qarion-etl%3A task stats::"
        r"task 'stats': Binder Error",
        annotation,
    ), annotation
    assert "%0A" in annotation  # the whole message, newlines escaped
    md = summary.read_text()
    assert "| `stats` | failed |" in md and "| `make` | success |" in md
    assert "```mermaid" in md and "class t_stats failed" in md
    xml = junit.read_text()
    assert "Candidate bindings" in xml and 'name="sql_path"' in xml and "stats.sql" in xml

    bad = write_flow(
        project, "broken", 'id = "broken"\nnamespace = "b"\n[[tasks]]\nid = "x"\ntype = "nope"\n'
    )
    validated = cli("validate", str(bad), project=project, env=env)
    assert validated.exit_code == 2
    assert any(
        line.startswith("::error file=") and ",line=5," in line and "unknown task type" in line
        for line in validated.stdout.splitlines()
    ), validated.stdout


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_a_long_ingestion_reports_its_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    """Rows so far (grouped), the share of the file read and rows per second; DuckDB reads
    the file itself and tells only the share. Throttles are set to zero so a short load
    reports too; the defaults are one report a second, one printed line every 10 s."""
    from qarion_etl.cli.console import PlainReporter
    from qarion_etl.db.engines import duckdb_files as engine_read
    from qarion_etl.run import logs, tries

    monkeypatch.setattr(engine_read, "PROGRESS_POLL", 0.002)
    monkeypatch.setattr(tries.Progress, "EVERY", 0.0)
    monkeypatch.setattr(PlainReporter, "PROGRESS_EVERY", 0.0)
    monkeypatch.setattr(logs, "PROGRESS_EVERY", 0.0)
    url = f"{engine}:///{tmp_path / ('w.' + engine)}"
    project = make_project(tmp_path / "p", engine_url=url, example=False)
    data = project / "data" / "many.csv"
    data.parent.mkdir(exist_ok=True)
    data.write_text("id,value\n" + "".join(f"{i},{i * 0.5}\n" for i in range(300_000)))
    write_flow(
        project,
        "many",
        """\
        id = "many"
        namespace = "m"
        [[tasks]]
        id = "load"
        type = "ingestion"
        target_dataset_id = "landed"
        [tasks.config]
        path = "data/many.csv"
        format = "csv"
        """,
    )
    done = cli("run", "many", "--run-id", "r1", project=project)
    assert done.exit_code == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("  load: ")]
    if engine == "duckdb":
        assert lines, done.stderr
        assert all(re.fullmatch(r"  load: \d+% of the file", ln) for ln in lines), lines
    else:
        assert lines, done.stderr
        pattern = r"  load: \d{1,3}(,\d{3})* rows, \d+% of the file, [\d,]+ rows/s"
        assert all(re.fullmatch(pattern, ln) for ln in lines), lines
        assert "  load: 300,000 rows, 100% of the file" in done.stderr
        log = (run_dir(project, "r1") / "run.log").read_text()
        assert "task_progress task=load rows=" in log
    assert "OK" in done.stderr and "300,000 rows" in done.stderr


#: The statement each engine's bulk load runs, as the SQL file of the load shows it.
LOAD_STATEMENT = {
    "duckdb": r"CREATE TABLE \S+ AS SELECT \*, CAST\(\d+ AS BIGINT\) AS batch_id FROM read_csv",
    "sqlite": r"-- once per batch of rows:\nINSERT INTO \S+ \(.*\) VALUES \(\?",
    "postgres": r"COPY \S+ \(.*\) FROM STDIN \(FORMAT csv, HEADER true",
    "mariadb": r"-- once per batch of rows:\nINSERT INTO \S+ \(.*\) VALUES \(%s",
}


def test_the_sql_file_of_a_load_shows_the_bulk_statement_and_the_swap(
    tmp_path: Path, engine_url: str
) -> None:
    ns = unique_name("ld")
    project = make_project(tmp_path / "p", engine_url=engine_url, namespace=ns)
    try:
        done = cli("run", "data_pipeline", "--run-id", "r1", project=project)
        assert done.exit_code == 0, done.stderr
        results = json.loads((run_dir(project, "r1").with_suffix(".json")).read_text())
        load = next(t for t in results["tasks"] if "rows_loaded" in (t.get("result") or {}))
        text = Path(load["sql_path"]).read_text()
        assert re.search(LOAD_STATEMENT[_kind(engine_url)], text), text
        if _kind(engine_url) != "duckdb":
            assert re.search(r"-- \d[\d,]* rows loaded into ", text), text
        assert "RENAME" in text.upper() or "INSERT INTO" in text.upper()
    finally:
        if not engine_url.startswith(("sqlite", "duckdb")):
            drop_namespace(engine_url, ns)


def test_the_library_logs_through_logging(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A program that uses logging gets the run's events as records of ``qarion_etl.run``."""
    from qarion_etl.project import Project
    from qarion_etl.run.model import RunOptions
    from qarion_etl.run.runner import FlowRunner

    project_dir = make_project(tmp_path / "p")
    caplog.set_level("INFO", logger="qarion_etl")
    project = Project.load(project_dir / "qarion-etl.toml")
    try:
        result = FlowRunner(project).run("data_pipeline", RunOptions(run_id="lg1"))
    finally:
        project.close()
    assert result.ok
    events = [r.qarion["event"] for r in caplog.records if r.name == "qarion_etl.run"]  # type: ignore[attr-defined]
    assert events[0] == "run_start" and events[-1] == "run_end" and "task_end" in events
