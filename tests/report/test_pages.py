"""What the pages say: a failed run's error first, old runs drawn from their own plan, the
user's statement before the SQL file's boilerplate, config as keys and values, hidden
characters made visible, the grid and the durations over runs, a timeline that keeps its
last tick. (``tests/browser`` checks the same pages in chromium.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qarion_etl.project import Project
from qarion_etl.report import sqlfile
from qarion_etl.report.data import RunView, TaskView, TryView, run_view
from qarion_etl.report.svg import timeline_svg
from qarion_etl.report.trends import flow_grid, task_points
from tests.helpers import cli, make_project, write_flow
from tests.report.test_report_cli import FLOW, TOKEN, nodes, run_shop, shop_project
from tests.runkit import run_dir
from tests.uikit import get, ui_server

HIDDEN = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u200b\u061c"


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QE_REPORT_TOKEN", TOKEN)


def _report(project: Path, run_id: str) -> str:
    done = cli("report", run_id, "--flow", "shop", project=project)
    assert done.exit_code == 0, done.output
    return Path(done.stdout.strip()).read_text()


def _details(html: str, task: str) -> str:
    m = re.search(
        rf'<details class="task" id="task-\d+" data-task="{task}"( open)?>.*?\n</details>',
        html,
        re.S,
    )
    assert m is not None, task
    return m.group(0)


def test_a_failed_run_shows_its_error_first(tmp_path: Path) -> None:
    project = shop_project(tmp_path)
    run_shop(project)
    html = _report(project, "r1")
    failure = html.index('<section id="failure"')
    assert failure < html.index('id="graph"') < html.index('<table id="tasks"')
    top = html[failure : html.index("</section>", failure)]
    assert 'data-task="broken"' in top and "Referenced column" in top and "nope" in top
    assert 'data-task="after"' not in top  # skipped, not failed
    # the task table has an error column, the failed task's details are open
    row = re.search(r'<tr data-task="broken".*?</tr>', html, re.S)
    assert row is not None and '<td class="error">' in row.group(0) and "nope" in row.group(0)
    assert " open>" in _details(html, "broken").splitlines()[0]
    assert " open>" not in _details(html, "make").splitlines()[0]


def test_a_run_without_a_failure_has_no_failure_section(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    assert cli("run", "data_pipeline", "--run-id", "ok1", project=project).exit_code == 0
    done = cli("report", "ok1", project=project)
    html = Path(done.stdout.strip()).read_text()
    assert 'id="failure"' not in html and "<th>error</th>" not in html


def test_an_old_run_is_drawn_from_its_own_plan(tmp_path: Path) -> None:
    project = shop_project(tmp_path)
    run_shop(project)
    changed = (
        FLOW.format(ns="shop").replace("SELECT 1 AS value UNION ALL SELECT 2", "SELECT 10 AS value")
        + '\n[[tasks]]\nid = "extra"\ntype = "transformation"\nretries = 3\n[tasks.config]\nsql = "SELECT 3"\n'
    )
    write_flow(project, "shop", changed)
    assert cli("run", "shop", "--run-id", "r2", project=project).exit_code == 1
    old, new = _report(project, "r1"), _report(project, "r2")
    assert set(nodes(old)) == {"make", "stats", "broken", "after"}
    assert set(nodes(new)) == {"make", "stats", "broken", "after", "extra"}
    assert "SELECT 1 AS value UNION ALL SELECT 2" in _details(old, "make")
    assert "SELECT 10 AS value" not in old
    assert "SELECT 10 AS value" in _details(new, "make")
    assert "retries" in _details(new, "extra") and 'data-task="extra"' not in old
    assert "Drawn from the plan the run recorded" in old
    # A run from before plans were kept is drawn from today's file, and the page says so.
    with Project.load(project / "qarion-etl.toml") as p:
        store = p.run_store()
        with store.db.begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM {store.db.quote(store.plans_spec.name)}")
    older = _report(project, "r1")
    assert "extra" in nodes(older) and "started before runs recorded their plan" in older


def test_the_users_statement_comes_before_the_sql_files_boilerplate(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    assert cli("run", "data_pipeline", "--run-id", "s1", project=project).exit_code == 0
    path = run_dir(project, "s1", "data_pipeline") / "filter_high_value.sql"
    tries = sqlfile.parse(path.read_text())
    assert [t.number for t in tries] == [1]
    boilerplate = "SELECT table_name FROM duckdb_tables()"  # the look for the target table
    assert any(s.sql.startswith(boilerplate) for s in tries[0].statements)
    statement = sqlfile.user_statement(tries)
    assert statement is not None and statement.outcome.startswith("ok in")
    assert re.fullmatch(
        r'SELECT \*\nFROM "production"\."orders_landing"\nWHERE value > [\d.]+', statement.sql
    ), statement.sql
    html = Path(cli("report", "s1", project=project).stdout.strip()).read_text()
    box = _details(html, "filter_high_value")
    first = box.index('<pre class="sql">')
    assert box[first:].startswith('<pre class="sql"><code>SELECT *\nFROM &#34;production&#34;')
    whole = box.index('<details class="more">')
    assert first < whole < box.index(boilerplate)
    # the template, as written, is there too (it differs from what ran)
    assert "{{ xcom_pull(&#39;calculate_stats&#39;, key=&#39;avg_value&#39;) }}" in box


def test_every_try_of_a_retried_task_is_read_back(tmp_path: Path) -> None:
    text = (
        "-- flow f, run r, task t, try 1, 2026-01-01T00:00:00+00:00\n\n"
        "-- 00:00:00.001Z\nBEGIN;\n-- ok in 0.000 s\n\n"
        '-- 00:00:00.002Z\nCREATE TABLE "s"."_qtmp_x_1234abcd" AS SELECT 1\n-- one\n;\n'
        "-- failed after 0.010 s: boom\n"
        "-- flow f, run r, task t, try 2, 2026-01-01T00:00:01+00:00\n\n"
        '-- 00:00:01.001Z\nCREATE TABLE "s"."_qtmp_x_9999abcd" AS SELECT 2;\n'
        "-- parameters: (1,)\n-- ok in 0.001 s\n"
    )
    tries = sqlfile.parse(text)
    assert [(t.number, len(t.statements)) for t in tries] == [(1, 2), (2, 1)]
    assert tries[0].statements[1].failed and tries[0].statements[1].sql.endswith("-- one")
    last = sqlfile.user_statement(tries)
    assert last is not None and last.sql == "SELECT 2" and last.outcome == "ok in 0.001 s"
    only_first = sqlfile.user_statement(tries[:1])
    assert only_first is not None and only_first.sql == "SELECT 1\n-- one" and only_first.failed


def test_config_is_shown_as_keys_and_sql_as_code(tmp_path: Path) -> None:
    project = shop_project(tmp_path)
    flow = FLOW.format(ns="shop").replace(
        'sql = "SELECT 1"\n', 'sql = """\nSELECT 1\n  AS one\n"""\n'
    )
    write_flow(project, "shop", flow)
    html = cli("graph", "shop", "--format", "html", project=project).stdout
    body = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert "\\n" not in body  # no SQL inside JSON strings
    assert '<pre class="sql"><code>SELECT 1\n  AS one\n</code></pre>' in html


def test_hidden_characters_are_shown_not_obeyed(tmp_path: Path) -> None:
    project = shop_project(tmp_path)
    flow = (
        FLOW.format(ns="shop")
        .replace("SELECT 1 AS value UNION ALL SELECT 2", f"SELECT 1 AS value -- {HIDDEN} end")
        .replace("SELECT nope", "SELECT no\u202epe\u2066")
    )
    write_flow(project, "shop", flow)
    run_id = "rb"
    done = cli("run", "shop", "--run-id", run_id, "--var", f"token={TOKEN}", project=project)
    assert done.exit_code == 1, done.output
    pushed = cli(
        "xcom",
        "push",
        "make",
        f"a\u202eb{HIDDEN}",
        "--key",
        "odd",
        "--flow",
        "shop",
        "--run",
        run_id,
        project=project,
    )
    assert pushed.exit_code == 0, pushed.output
    html = _report(project, run_id)
    with ui_server(project, env={"QE_REPORT_TOKEN": TOKEN}) as base:
        pages = [html] + [
            get(base + path)[1]
            for path in (
                "/",
                "/runs/shop/rb",
                "/flows/shop",
                "/tasks/shop/make",
                "/xcoms?flow=shop",
                "/xcoms/value?flow=shop&run=rb&task=make&key=odd",
            )
        ]
    for page in pages:
        assert not [c for c in HIDDEN if c in page], [hex(ord(c)) for c in HIDDEN if c in page]
    assert "no‹U+202E›pe‹U+2066›" in html and "‹U+200B›" in html
    shown = [p for p in pages if "‹U+202E›" in p]
    assert len(shown) == len(pages) - 1  # all but the runs list, which shows no data


def test_the_grid_and_the_durations_show_what_the_history_holds(tmp_path: Path) -> None:
    project = shop_project(tmp_path)
    run_shop(project)
    write_flow(project, "shop", FLOW.format(ns="shop").replace("SELECT nope", "SELECT value"))
    again = cli("run", "shop", "--run-id", "r2", "--var", f"token={TOKEN}", project=project)
    assert again.exit_code == 0, again.output
    with Project.load(project / "qarion-etl.toml") as p:
        store = p.run_store()
        grid = flow_grid(store, "shop")
        assert [r.dag_run_id for r in grid.runs] == ["r1", "r2"]
        assert grid.tasks == ["make", "stats", "broken", "after"]
        assert [grid.status("broken", r) for r in ("r1", "r2")] == ["failed", "success"]
        assert [grid.status("after", r) for r in ("r1", "r2")] == ["skipped", "success"]
        history = {t.dag_run_id: t for t in store.task_history("shop", "make")}
        points = task_points(store, "shop", "make", 10)
        assert [p[0] for p in points] == ["r1", "r2"]
        for run_id, status, seconds in points:
            ti = history[run_id]
            assert status == ti.status == "success" and seconds is not None and seconds > 0


def test_the_timeline_keeps_its_last_tick_inside() -> None:
    start = "2026-01-01T00:00:00+00:00"
    tries = [TryView(1, "success", start, "2026-01-01T06:01:00+00:00", None)]
    view = RunView("f", "r", 1, "success", start, None, [TaskView("t", attempts=tries)], [])
    svg = timeline_svg(view)
    width = float(re.search(r'class="timeline" width="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    ticks = re.findall(r'<text class="tick" x="([\d.]+)"[^>]*>([^<]+)</text>', svg)
    assert [label for _, label in ticks] == ["0 h", "2 h", "4 h", "6 h"]
    for x, label in ticks:  # centred on x: half the label (at most 7 px a character) each side
        assert float(x) + len(label) * 3.5 <= width


def test_a_run_view_lists_failed_tasks_in_graph_order(tmp_path: Path) -> None:
    project = shop_project(tmp_path)
    run_shop(project)
    with Project.load(project / "qarion-etl.toml") as p:
        view = run_view(p, "r1", "shop")
    assert [t.task_id for t in view.failed] == ["broken"]
    assert view.drawn_from == "plan" and view.xcoms


def test_a_secret_cut_short_by_a_preview_is_masked(tmp_path: Path) -> None:
    project = shop_project(tmp_path)
    run_shop(project)  # stats returns {"t": TOKEN, …}: its light form cuts the token
    html = _report(project, "r1")
    with ui_server(project, env={"QE_REPORT_TOKEN": TOKEN}) as base:
        browser = get(base + "/xcoms?task=stats")[1]
    for page in (html, browser):
        assert '"t":"***…' in page.replace("&#34;", '"') and TOKEN[:5] not in page
