"""The report and the web UI in a real browser (Debian's chromium through Playwright).

The report opened from ``file://``: one graph node per task with its status, the failed
task's error shown without a click, clicking a node opens its SQL, the script runs under
the page's policy and the page makes no network request. The UI on SQLite and PostgreSQL
metadata: the runs list leads to the run page, the XCom filter narrows the list, and the
page of a run in progress changes by itself when the run ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import BrowserPage
from tests.conftest import unique_name
from tests.helpers import cli, write_flow
from tests.report.test_report_cli import TOKEN, run_shop, shop_project
from tests.runkit import drop_metadata, run_dir
from tests.uikit import ui_server

pytestmark = pytest.mark.browser

STATUSES = {"make": "success", "stats": "success", "broken": "failed", "after": "skipped"}


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QE_REPORT_TOKEN", TOKEN)


def _statuses(b: BrowserPage) -> dict[str, str]:
    nodes = b.page.locator("svg.graph g.node")
    return {
        nodes.nth(i).get_attribute("data-task") or "": nodes.nth(i).get_attribute("data-status")
        or ""
        for i in range(nodes.count())
    }


def test_the_report_shows_the_run_and_fetches_nothing(
    tmp_path: Path, browser_page: BrowserPage
) -> None:
    project = shop_project(tmp_path)
    run_shop(project, "--report")
    report = run_dir(project, "r1") / "report.html"
    page = browser_page.page
    started = time.monotonic()
    page.goto(report.as_uri())
    expect(page.locator("svg.graph")).to_be_visible()
    shown_in = time.monotonic() - started
    assert _statuses(browser_page) == STATUSES
    expect(page.locator("#run-status")).to_have_text("failed")
    assert page.locator("svg.timeline rect.try").count() == 3  # after was skipped: no try
    # the failed task's error, without a click: at the top, and its details open
    expect(page.locator('#failure [data-task="broken"] pre.error')).to_be_visible()
    expect(page.locator("#failure pre.error")).to_contain_text("nope")
    details = page.locator('details.task[data-task="broken"]')
    assert details.evaluate("d => d.open")
    expect(details.locator("pre.error")).to_be_visible()
    stats = page.locator('details.task[data-task="stats"]')
    assert not stats.evaluate("d => d.open")
    page.locator('svg.graph g.node[data-task="stats"]').click()
    assert stats.evaluate("d => d.open")
    expect(stats.locator("pre.sql").first).to_contain_text(
        'SELECT COUNT(*) AS n, \'***\' AS t FROM "shop"."numbers"'
    )
    expect(stats.locator("pre.sql").first.locator(".kw").first).to_have_text("SELECT")
    browser_page.shot("report-file")
    assert browser_page.csp_violations() == []
    assert browser_page.external_requests() == []
    assert browser_page.requests == [report.as_uri()]
    assert shown_in < 5, shown_in


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def metadata(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str | None, str]]:
    if request.param == "sqlite":
        yield None, "qarion"
        return
    ns = unique_name("uib")
    url = request.getfixturevalue("pg_url")
    try:
        yield url, ns
    finally:
        drop_metadata(url, ns)


def test_the_ui_lists_runs_shows_a_run_and_filters_xcoms(
    tmp_path: Path, browser_page: BrowserPage, metadata: tuple[str | None, str]
) -> None:
    url, ns = metadata
    project = shop_project(tmp_path, metadata_url=url, namespace=ns)
    run_shop(project)
    page = browser_page.page
    with ui_server(project) as base:
        page.goto(base + "/")
        row = page.locator('#runs tr[data-run="r1"]')
        expect(row).to_have_attribute("data-status", "failed")
        row.locator("a").first.click()
        expect(page.locator("#run-status")).to_have_text("failed")
        assert _statuses(browser_page) == STATUSES
        page.locator('svg.graph g.node[data-task="stats"]').click()
        stats = page.locator('details.task[data-task="stats"]')
        expect(stats.locator("pre.sql").first).to_contain_text("COUNT(*)")
        assert TOKEN not in page.content()

        page.goto(base + "/xcoms")
        everything = page.locator("#xcoms tbody tr").count()
        page.fill('input[name="task"]', "make")
        page.fill('input[name="key"]', "rows_written")
        page.locator("#xcom-filters button").click()
        expect(page.locator("#xcoms tbody tr")).to_have_count(1)
        assert everything > 1
        page.locator("#xcoms a.value").click()
        expect(page.locator("#value")).to_have_text("2")
    assert browser_page.csp_violations() == []
    assert not [u for u in browser_page.external_requests() if not u.startswith(base)]


SLOW = """\
id = "slow"
namespace = "slow"
[[tasks]]
id = "quick"
type = "transformation"
[tasks.config]
sql = "SELECT 1 AS x"
[[tasks]]
id = "crunch"
type = "transformation"
dependencies = ["quick"]
[tasks.config]
sql = "SELECT SUM(a.range * b.range) AS n FROM range(60000000) a, range(10) b"
"""


def test_the_run_page_follows_a_run_in_progress(tmp_path: Path, browser_page: BrowserPage) -> None:
    project = shop_project(tmp_path)
    write_flow(project, "slow", SLOW)
    page = browser_page.page
    with ui_server(project) as base:
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "qarion_etl",
                "--config",
                str(project / "qarion-etl.toml"),
                "run",
                "slow",
                "--run-id",
                "live1",
                "--max-workers",
                "1",
            ],
            env={**os.environ, "NO_COLOR": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while "running" not in _run_status(project):
                assert time.monotonic() < deadline and run.poll() is None, "the run did not start"
                time.sleep(0.05)
            page.goto(base + "/runs/slow/live1")
            expect(page.locator("#run-status")).to_have_text("running")
            expect(page.locator("#run-status")).to_have_text("success", timeout=60_000)
            expect(page.locator('svg.graph g.node[data-task="crunch"]')).to_have_attribute(
                "data-status", "success"
            )
        finally:
            assert run.wait(timeout=120) == 0


def _run_status(project: Path) -> str:
    done = cli("runs", "list", "--json", project=project)
    return done.stdout
