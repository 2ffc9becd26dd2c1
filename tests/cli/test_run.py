"""``qarion-etl run``/``render``/``runs`` through the CLI, on DuckDB: each user story and its failures."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import unique_name
from tests.runkit import (
    cli,
    engine_url_of,
    orders_mean,
    query,
    results_file,
    run_cli,
    seed_project,
    table,
    table_names,
    write_flow,
    xcom,
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return seed_project(tmp_path, "production")


def _landing_count(project: Path, ns: str = "production", name: str = "orders_landing") -> int:
    url = engine_url_of(project)
    return int(query(url, f"SELECT COUNT(*) FROM {table(url, ns, name)}")[0][0])


def _json(result) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(result.stdout)


def test_seed_run_results_file_history_and_junit(project: Path) -> None:
    junit = project / "out" / "junit.xml"
    result = run_cli(project, "data_pipeline", "--run-id", "r1", "--junit-xml", str(junit))
    assert result.exit_code == 0, result.output
    assert "1 of 3 ingest_orders" in result.stderr and "OK in" in result.stderr
    assert result.stdout == ""
    mean, above = orders_mean(project / "data" / "orders.csv")
    assert xcom(project, "calculate_stats", key="avg_value") == pytest.approx(mean)
    assert xcom(project, "ingest_orders", key="rows_loaded", dag_run_id="r1") == 300
    doc = results_file(project, "r1")
    tasks = {t["task_id"]: t for t in doc["tasks"]}
    assert tasks["filter_high_value"]["rows"] == above
    assert tasks["calculate_stats"]["tries"] == 1
    assert "avg_value" in tasks["calculate_stats"]["xcom_keys"]
    assert tasks["ingest_orders"]["started_at"] and tasks["ingest_orders"]["ended_at"]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "0"

    listed = cli("runs", "list", project=project)
    assert listed.exit_code == 0 and "r1" in listed.stdout and "success" in listed.stdout
    shown = cli("runs", "show", "r1", "--json", project=project)
    assert [t["status"] for t in _json(shown)["tasks"]] == ["success"] * 3


def test_duplicate_run_id_is_a_usage_error(project: Path) -> None:
    assert run_cli(project, "data_pipeline", "--run-id", "same").exit_code == 0
    again = run_cli(project, "data_pipeline", "--run-id", "same")
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_bad_csv_row_names_file_line_column_and_keeps_table(project: Path) -> None:
    assert run_cli(project, "data_pipeline").exit_code == 0
    csv_path = project / "data" / "orders.csv"
    lines = csv_path.read_text().splitlines()
    lines[4] = lines[4].split(",")[0] + ",abc"  # line 5 of the file (header = line 1)
    csv_path.write_text("\n".join(lines) + "\n")
    result = run_cli(project, "data_pipeline", "--json")
    assert result.exit_code == 1
    assert "data/orders.csv:5: column 'value': 'abc' is not a valid float" in result.stderr
    assert "Traceback" not in result.output
    statuses = {t["task_id"]: t["status"] for t in _json(result)["tasks"]}
    assert statuses == {
        "ingest_orders": "failed",
        "calculate_stats": "skipped",
        "filter_high_value": "skipped",
    }
    assert _landing_count(project) == 300  # the previous table, untouched
    assert table_names(engine_url_of(project), "production") == [
        "high_value_orders",
        "orders_landing",
        "orders_stats",
    ]


def test_missing_required_value_and_duplicate_key(project: Path) -> None:
    csv_path = project / "data" / "orders.csv"
    original = csv_path.read_text()
    csv_path.write_text(original.replace("\n3,", "\n,", 1))
    result = run_cli(project, "data_pipeline")
    assert result.exit_code == 1
    assert "data/orders.csv:4: column 'id': missing required value" in result.stderr
    csv_path.write_text(original.replace("\n3,", "\n2,", 1))
    dup = run_cli(project, "data_pipeline")
    assert dup.exit_code == 1
    assert "data/orders.csv:4: duplicate primary key (id=2), first seen on line 3" in dup.stderr


def test_missing_file(project: Path) -> None:
    (project / "data" / "orders.csv").unlink()
    result = run_cli(project, "data_pipeline")
    assert result.exit_code == 1
    assert "task 'ingest_orders'" in result.stderr and "input file not found" in result.stderr


def test_sql_error_fails_task_and_skips_descendants(project: Path) -> None:
    flow = project / "flows" / "data_pipeline.toml"
    flow.write_text(
        flow.read_text().replace("AVG(value) as avg_value", "AVG(no_such_column) as avg_value")
    )
    result = run_cli(project, "data_pipeline", "--json")
    assert result.exit_code == 1
    assert "task 'calculate_stats'" in result.stderr and "no_such_column" in result.stderr
    statuses = [t["status"] for t in _json(result)["tasks"]]
    assert statuses == ["success", "failed", "skipped"]
    shown = _json(cli("runs", "show", _json(result)["dag_run_id"], "--json", project=project))
    assert [t["status"] for t in shown["tasks"]] == ["success", "failed", "skipped"]
    assert shown["status"] == "failed"


def test_missing_pull_names_task_key_and_run(project: Path) -> None:
    flow = project / "flows" / "data_pipeline.toml"
    flow.write_text(flow.read_text().replace("key='avg_value'", "key='median_value'"))
    result = run_cli(project, "data_pipeline", "--run-id", "r-miss")
    assert result.exit_code == 1
    assert "xcom_pull('calculate_stats', key='median_value') found nothing" in result.stderr
    assert "run 'r-miss'" in result.stderr


def test_pull_default_and_vars(project: Path) -> None:
    write_flow(
        project,
        "vars",
        """
        id = "vars"
        namespace = "vars_ns"
        [[tasks]]
        id = "a"
        type = "transformation"
        target_dataset_id = "a_out"
        [tasks.config]
        sql = "SELECT {{ var('n') }} AS n, {{ var('m', 7) }} AS m, {{ batch_id }} AS b, {{ ds | sql_literal }} AS d"
        [[tasks]]
        id = "b"
        type = "transformation"
        dependencies = ["a"]
        [tasks.config]
        sql = "SELECT {{ xcom_pull('a', key='nothing', default=0) }} + {{ ti.xcom_pull('a', key='n') }} AS total"
    """,
    )
    result = run_cli(project, "vars", "--var", "n=5", "--batch-id", "42", "--run-id", "rv")
    assert result.exit_code == 0, result.output
    assert xcom(project, "a", flow_id="vars", dag_run_id="rv") | {"d": None} == {
        "rows_written": 1,
        "target_dataset": "a_out",
        "n": 5,
        "m": 7,
        "b": 42,
        "d": None,
        "status": "success",
        "batch_id": 42,
        "duration_seconds": pytest.approx(0, abs=5),
    }
    assert xcom(project, "b", key="total", flow_id="vars") == 5
    missing = run_cli(project, "vars")
    assert missing.exit_code == 1 and "var('n') is not set" in missing.stderr


def test_retries_clear_the_tasks_xcoms_before_each_try(project: Path) -> None:
    write_flow(
        project,
        "flaky",
        """
        id = "flaky"
        namespace = "flaky_ns"
        [[tasks]]
        id = "bad"
        type = "transformation"
        retries = 2
        retry_delay_seconds = 0
        retry_on = "any"
        [tasks.config]
        sql = "SELECT * FROM no_such_table"
    """,
    )
    from qarion_etl.project import Project

    with Project.load(project / "qarion-etl.toml") as p:
        p.xcom_service("flaky").push("bad", "stale", key="leftover", dag_run_id="rr", batch_id=1)
    result = run_cli(project, "flaky", "--run-id", "rr")
    assert result.exit_code == 1
    assert "retrying bad" in result.stderr
    assert results_file(project, "rr")["tasks"][0]["tries"] == 3
    assert xcom(project, "bad", key="leftover", flow_id="flaky", dag_run_id="rr") is None


def test_resume_reruns_only_what_did_not_succeed(project: Path) -> None:
    flow = project / "flows" / "data_pipeline.toml"
    flow.write_text(
        flow.read_text().replace("WHERE value >", "WHERE value > {{ var('offset') }} +")
    )
    first = run_cli(project, "data_pipeline", "--run-id", "rz")
    assert first.exit_code == 1
    before = xcom(project, "calculate_stats", dag_run_id="rz")
    resumed = run_cli(project, "data_pipeline", "--resume", "rz", "--var", "offset=0", "--json")
    assert resumed.exit_code == 0, resumed.output
    statuses = {t["task_id"]: t["status"] for t in _json(resumed)["tasks"]}
    assert statuses == {
        "ingest_orders": "kept",
        "calculate_stats": "kept",
        "filter_high_value": "success",
    }
    assert xcom(project, "calculate_stats", dag_run_id="rz") == before
    shown = _json(cli("runs", "show", "rz", "--json", project=project))
    assert shown["status"] == "success"
    assert {t["task_id"]: t["status"] for t in shown["tasks"]}["filter_high_value"] == "success"


def test_fail_fast_and_independent_branches(project: Path) -> None:
    write_flow(
        project,
        "branches",
        """
        id = "branches"
        namespace = "br_ns"
        [[tasks]]
        id = "broken"
        type = "transformation"
        [tasks.config]
        sql = "SELECT * FROM missing_table"
        [[tasks]]
        id = "after_broken"
        type = "transformation"
        dependencies = ["broken"]
        [tasks.config]
        sql = "SELECT 1 AS x"
        [[tasks]]
        id = "fine"
        type = "transformation"
        target_dataset_id = "fine_out"
        [tasks.config]
        sql = "SELECT 1 AS x"
    """,
    )
    goes_on = run_cli(project, "branches", "--max-workers", "1", "--json")
    assert goes_on.exit_code == 1
    assert {t["task_id"]: t["status"] for t in _json(goes_on)["tasks"]} == {
        "broken": "failed",
        "after_broken": "skipped",
        "fine": "success",
    }
    stops = run_cli(project, "branches", "--max-workers", "1", "--fail-fast", "--json")
    assert stops.exit_code == 1
    assert {t["task_id"]: t["status"] for t in _json(stops)["tasks"]}["fine"] == "not_run"


def test_select_exclude_and_upstream_values_from_latest_success(project: Path) -> None:
    assert run_cli(project, "data_pipeline", "--run-id", "full").exit_code == 0
    only = run_cli(project, "data_pipeline", "--select", "filter_high_value", "--json")
    assert only.exit_code == 0, only.output
    assert [t["task_id"] for t in _json(only)["tasks"]] == ["filter_high_value"]
    down = run_cli(project, "data_pipeline", "--select", "calculate_stats+", "--json")
    assert [t["task_id"] for t in _json(down)["tasks"]] == ["calculate_stats", "filter_high_value"]
    up = run_cli(
        project, "data_pipeline", "-s", "+calculate_stats", "--exclude", "ingest_orders", "--json"
    )
    assert [t["task_id"] for t in _json(up)["tasks"]] == ["calculate_stats"]
    bad = run_cli(project, "data_pipeline", "--select", "calc_stats")
    assert bad.exit_code == 2 and "did you mean 'calculate_stats'" in bad.stderr


def test_one_task_at_a_time_inside_one_run(project: Path) -> None:
    for task in ("ingest_orders", "calculate_stats", "filter_high_value"):
        step = run_cli(project, "data_pipeline", "--run-id", "shared", "--task", task)
        assert step.exit_code == 0, step.output
    shown = _json(cli("runs", "show", "shared", "--json", project=project))
    assert [t["status"] for t in shown["tasks"]] == ["success"] * 3
    assert len({t["task_id"] for t in shown["tasks"]}) == 3


def test_running_a_task_again_in_its_run_clears_all_its_values_there(project: Path) -> None:
    """Also one pushed into the run by hand with no batch (as Airflow's retries rely on)."""
    assert run_cli(project, "data_pipeline", "--run-id", "r").exit_code == 0
    ids = ("--flow", "data_pipeline", "--run", "r")
    pushed = cli(
        "xcom", "push", "calculate_stats", "stale", "--key", "leftover", *ids, project=project
    )
    kept = cli("xcom", "push", "ingest_orders", "mine", "--key", "note", *ids, project=project)
    assert pushed.exit_code == 0 and kept.exit_code == 0
    again = run_cli(project, "data_pipeline", "--run-id", "r", "--task", "calculate_stats")
    assert again.exit_code == 0, again.output
    gone = cli("xcom", "get", "calculate_stats", "--key", "leftover", *ids, project=project)
    assert gone.exit_code == 1
    assert (
        cli("xcom", "get", "calculate_stats", "--key", "avg_value", *ids, project=project).exit_code
        == 0
    )
    assert (
        cli("xcom", "get", "ingest_orders", "--key", "note", *ids, project=project).stdout.strip()
        == '"mine"'
    )


def test_incremental_upsert_on_primary_key(project: Path) -> None:
    flow = project / "flows" / "data_pipeline.toml"
    flow.write_text(flow.read_text().replace('"FULL_REFRESH"', '"INCREMENTAL"'))
    assert run_cli(project, "data_pipeline").exit_code == 0
    csv_path = project / "data" / "orders.csv"
    csv_path.write_text("id,value\n1,1000.5\n999,1.25\n")
    assert run_cli(project, "data_pipeline").exit_code == 0
    url = engine_url_of(project)
    landing = table(url, "production", "orders_landing")
    assert query(url, f"SELECT COUNT(*) FROM {landing}")[0][0] == 301
    assert query(url, f"SELECT value, batch_id FROM {landing} WHERE id = 1") == [(1000.5, 2)]
    assert run_cli(project, "data_pipeline", "--full-refresh").exit_code == 0
    assert query(url, f"SELECT COUNT(*) FROM {landing}")[0][0] == 2


def test_jsonl_ingestion_and_no_push(project: Path) -> None:
    (project / "data" / "events.jsonl").write_text(
        '{"id": 1, "value": 2.5}\n{"id": 2, "value": "x"}\n'
    )
    write_flow(
        project,
        "events",
        """
        id = "events"
        namespace = "ev_ns"
        [input]
        columns = [{name = "id", schema_type = "integer", required = true},
                   {name = "value", schema_type = "float"}]
        [[tasks]]
        id = "load"
        type = "ingestion"
        target_dataset_id = "events"
        do_xcom_push = false
        [tasks.config]
        path = "data/events.jsonl"
        format = "jsonl"
    """,
    )
    bad = run_cli(project, "events")
    assert bad.exit_code == 1 and "data/events.jsonl:2: column 'value'" in bad.stderr
    (project / "data" / "events.jsonl").write_text('{"id": 1, "value": 2.5}\n{"id": 2}\n')
    good = run_cli(project, "events", "--run-id", "ev1")
    assert good.exit_code == 0, good.output
    assert _landing_count(project, "ev_ns", "events") == 2
    assert xcom(project, "load", flow_id="events") is None
    assert results_file(project, "ev1")["tasks"][0]["xcom_keys"] == []


def test_render_with_given_values_connects_to_nothing(project: Path) -> None:
    result = cli(
        "render",
        "data_pipeline",
        "filter_high_value",
        "--xcom",
        "calculate_stats.avg_value=12.5",
        project=project,
    )
    assert result.exit_code == 0, result.output
    assert "WHERE value > 12.5" in result.stdout
    assert '"production"."orders_landing"' in result.stdout
    assert not (project / ".qarion").exists()
    assert not (project / "warehouse.duckdb").exists()
    missing = cli("render", "data_pipeline", "filter_high_value", project=project)
    assert missing.exit_code == 2 and "found nothing" in missing.stderr


def test_interrupt_marks_run_and_leaves_no_half_written_table(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qarion_etl.cli import console

    class Interrupting(console.PlainReporter):
        def task_started(self, task_id: str, try_number: int) -> None:
            if task_id == "filter_high_value":
                raise KeyboardInterrupt

    monkeypatch.setattr(console, "make_reporter", lambda *args, **kwargs: Interrupting())
    result = run_cli(project, "data_pipeline", "--run-id", "ri", "--max-workers", "1")
    assert result.exit_code == 130
    assert results_file(project, "ri")["status"] == "interrupted"
    assert _json(cli("runs", "show", "ri", "--json", project=project))["status"] == "interrupted"
    assert table_names(engine_url_of(project), "production") == ["orders_landing", "orders_stats"]


def test_xcom_disabled_pull_is_a_validation_error(project: Path) -> None:
    cfg = project / "qarion-etl.toml"
    cfg.write_text(cfg.read_text().replace("enabled = true", "enabled = false"))
    result = run_cli(project, "data_pipeline")
    assert result.exit_code == 2 and "XCom is disabled" in result.stderr


def test_dry_run_and_unique_namespace(tmp_path: Path) -> None:
    ns = unique_name("ns")
    project = seed_project(tmp_path, ns)
    result = run_cli(project, "data_pipeline", "--dry-run")
    assert result.exit_code == 0 and "filter_high_value" in result.stderr
    assert not (project / "warehouse.duckdb").exists()


def test_unreachable_engine_exits_3(tmp_path: Path) -> None:
    project = seed_project(
        tmp_path, "production", engine_url="postgresql+psycopg://nobody@127.0.0.1:9/none"
    )
    result = run_cli(project, "data_pipeline")
    assert result.exit_code == 3
    assert "cannot reach the warehouse" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("setting", "make", "expected"),
    [
        ("metadata", "garbage", "cannot reach the metadata database"),
        ("metadata", "folder", "cannot reach the metadata database"),
        ("engine", "garbage", "cannot reach the warehouse"),
        ("engine", "folder", "cannot reach the warehouse"),
    ],
)
def test_unusable_sqlite_or_duckdb_file_exits_3(
    tmp_path: Path, setting: str, make: str, expected: str
) -> None:
    """A metadata or warehouse path that is not a database (or is a folder) is exit 3."""
    project = seed_project(tmp_path, "production")
    target = tmp_path / ("bad.db" if setting == "metadata" else "bad.duckdb")
    if make == "folder":
        target.mkdir()
    else:
        target.write_bytes(b"this is not a database file, only some text" * 100)
    config = project / "qarion-etl.toml"
    scheme = "sqlite" if setting == "metadata" else "duckdb"
    lines = config.read_text().splitlines()
    section = None
    for i, line in enumerate(lines):
        if line.startswith("["):
            section = line.strip("[] ")
        elif section == setting and line.startswith("url"):
            lines[i] = f'url = "{scheme}:///{target}"'
    config.write_text("\n".join(lines) + "\n")
    result = run_cli(project, "data_pipeline")
    assert result.exit_code == 3, result.output
    assert expected in result.stderr and str(target) in result.stderr
    assert "Traceback" not in result.output
    if make == "garbage":
        assert target.read_bytes().startswith(b"this is not a database file")  # left as it was


def test_vars_file(project: Path) -> None:
    flow = project / "flows" / "data_pipeline.toml"
    flow.write_text(
        flow.read_text().replace("WHERE value >", "WHERE value > {{ var('offset') }} +")
    )
    (project / "vars.toml").write_text("offset = 100\n")
    result = run_cli(project, "data_pipeline", "--vars-file", str(project / "vars.toml"), "--json")
    assert result.exit_code == 0, result.output
    mean, _ = orders_mean(project / "data" / "orders.csv")
    url = engine_url_of(project)
    low = query(url, f"SELECT MIN(value) FROM {table(url, 'production', 'high_value_orders')}")[0][
        0
    ]
    assert low > mean + 100


def test_timeout_seconds_stops_a_slow_query(project: Path) -> None:
    write_flow(
        project,
        "slow",
        """
        id = "slow"
        namespace = "slow_ns"
        [[tasks]]
        id = "crunch"
        type = "transformation"
        target_dataset_id = "crunched"
        timeout_seconds = 0.5
        [tasks.config]
        sql = "SELECT COUNT(*) AS n FROM range(100000000000) a"
    """,
    )
    result = run_cli(project, "slow")
    assert result.exit_code == 1
    assert "timed out after 0.5s" in result.stderr
    assert "crunched" not in table_names(engine_url_of(project), "slow_ns")


@pytest.mark.postgres
def test_timeout_cancels_a_running_postgresql_statement(tmp_path: Path, pg_url: str) -> None:
    """On PostgreSQL the timeout cancels the statement on the server (psycopg's cancel),
    instead of waiting for it to finish before the next checkpoint."""
    import time

    from tests.runkit import drop_namespace

    ns = unique_name("pgslow")
    project = seed_project(tmp_path, ns, pg_url)
    write_flow(
        project,
        "slow",
        f"""
        id = "slow"
        namespace = "{ns}"
        [[tasks]]
        id = "sleepy"
        type = "transformation"
        target_dataset_id = "slept"
        timeout_seconds = 1
        [tasks.config]
        sql = "SELECT 1 AS slept FROM (SELECT pg_sleep(30)) AS s"
    """,
    )
    try:
        started = time.monotonic()
        result = run_cli(project, "slow")
        took = time.monotonic() - started
        assert result.exit_code == 1
        assert "timed out after 1s (timeout_seconds)" in result.stderr
        assert took < 15, took
        assert "slept" not in table_names(pg_url, ns)
    finally:
        drop_namespace(pg_url, ns)
