"""Every page in chromium, at 1280 px and at 390 px, in light and dark: what it shows.

One project for the module, its history made of three runs of the shop flow: ``r1``
fails (task ``broken``), ``r2`` succeeds after the fix, ``r3`` runs after a task
``extra`` was added and ``make`` changed. One UI server answers every test.

- The failed run's error is on the page without a click; the SQL is highlighted.
- No edge of the drawn graph passes through a box (read from the browser's own geometry).
- ``r1`` is drawn with its own tasks and config, not today's file.
- The grid and the duration chart show the statuses and durations the history holds.
- A screenshot of every page at 1280 px and 390 px lands in ``tests/artifacts/screenshots``
  (``docs/ui-run-failed.png`` and ``docs/ui-flow.png`` in the README are two of the
  ``-1280-top`` ones); no page scrolls sideways at 390 px, and none breaks its
  Content-Security-Policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from qarion_etl.project import Project
from qarion_etl.report.data import seconds_between
from tests.browser.conftest import BrowserPage
from tests.helpers import cli, write_flow
from tests.report.test_report_cli import FLOW, TOKEN, run_shop, shop_project
from tests.uikit import ui_server

pytestmark = pytest.mark.browser

FIXED = FLOW.format(ns="shop").replace(
    "SELECT nope FROM shop.numbers", "SELECT value FROM shop.numbers"
)
CHANGED = FIXED.replace("SELECT 1 AS value UNION ALL SELECT 2", "SELECT 7 AS value") + (
    '\n[[tasks]]\nid = "extra"\ntype = "transformation"\ndependencies = ["make"]\n'
    'retries = 2\n[tasks.config]\nsql = "SELECT 3 AS three"\n'
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    mp = pytest.MonkeyPatch()
    mp.setenv("QE_REPORT_TOKEN", TOKEN)
    try:
        folder = shop_project(tmp_path_factory.mktemp("pages"))
        mp.chdir(folder)  # paths on the pages are shown relative to where the runs ran
        assert run_shop(folder, "--report").exit_code == 1
        write_flow(folder, "shop", FIXED)
        for run_id, flow in (("r2", FIXED), ("r3", CHANGED)):
            write_flow(folder, "shop", flow)
            done = cli("run", "shop", "--run-id", run_id, "--var", f"token={TOKEN}", project=folder)
            assert done.exit_code == 0, done.output
        graph = cli("graph", "shop", "--format", "html", project=folder)
        (folder / "graph.html").write_text(graph.stdout)
        yield folder
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def base(project: Path) -> Iterator[str]:
    with ui_server(project, env={"QE_REPORT_TOKEN": TOKEN}, cwd=project) as url:
        yield url


def _pages(project: Path, base: str) -> dict[str, str]:
    run_folder = project / ".qarion" / "runs" / "shop" / "r1"
    return {
        "report-file": (run_folder / "report.html").as_uri(),
        "graph-file": (project / "graph.html").as_uri(),
        "ui-runs": base + "/",
        "ui-run-failed": base + "/runs/shop/r1",
        "ui-run": base + "/runs/shop/r3",
        "ui-flow": base + "/flows/shop",
        "ui-task": base + "/tasks/shop/make",
        "ui-xcoms": base + "/xcoms?flow=shop",
        "ui-xcom-value": base + "/xcoms/value?flow=shop&run=r3&task=make&key=return_value",
    }


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_at_1280_and_390_px(
    project: Path, base: str, new_page: Callable[..., BrowserPage], width: int
) -> None:
    for name, url in _pages(project, base).items():
        b = new_page(width=width)
        b.page.goto(url)
        expect(b.page.locator("h1")).to_be_visible()
        overflow = b.page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
        b.shot(f"{name}-{width}")
        if width == 1280:  # the first screen, as the README shows it
            b.shot(f"{name}-{width}-top", full_page=False)
        assert b.csp_violations() == [], (name, b.console)
        assert [u for u in b.requests if not u.startswith((base, "file://"))] == [], name
        b.page.context.close()


def test_dark_pages_are_dark(
    project: Path, base: str, new_page: Callable[..., BrowserPage]
) -> None:
    for name in ("report-file", "ui-flow", "ui-task"):
        b = new_page(width=1280, dark=True)
        b.page.goto(_pages(project, base)[name])
        background = b.page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        text = b.page.evaluate("() => getComputedStyle(document.body).color")
        assert _luminance(background) < 0.1 < 0.7 < _luminance(text), (name, background, text)
        b.shot(f"{name}-1280-dark")


def _luminance(css: str) -> float:
    r, g, b = (int(v) / 255 for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_a_failed_run_shows_its_error_without_a_click(
    project: Path, base: str, browser_page: BrowserPage
) -> None:
    page = browser_page.page
    for url in (_pages(project, base)["report-file"], base + "/runs/shop/r1"):
        page.goto(url)
        top = page.locator("#failure")
        expect(top).to_be_visible()
        expect(top.locator('[data-task="broken"] pre.error')).to_contain_text("Referenced column")
        assert top.bounding_box()["y"] < page.locator("#graph").bounding_box()["y"]  # type: ignore[index]
        row = page.locator('#tasks tr[data-task="broken"] td.error')
        expect(row).to_be_visible()
        expect(row).to_contain_text("nope")
        broken = page.locator('details.task[data-task="broken"]')
        expect(broken.locator("pre.error")).to_be_visible()
        statement = broken.locator("pre.sql").first
        expect(statement).to_have_text("SELECT nope FROM shop.numbers")
        expect(statement.locator(".kw")).to_have_text(["SELECT", "FROM"])
    assert browser_page.csp_violations() == []


def test_no_edge_crosses_a_box_in_the_browser(
    project: Path, base: str, browser_page: BrowserPage
) -> None:
    page = browser_page.page
    page.goto(base + "/flows/shop")
    hits = page.evaluate(
        """() => {
        const boxes = [...document.querySelectorAll("svg.graph g.node")].map(g => {
            const r = g.querySelector("rect").getBBox();
            return {task: g.dataset.task, x0: r.x + 1, y0: r.y + 1, x1: r.x + r.width - 1, y1: r.y + r.height - 1};
        });
        const hits = [];
        let edges = 0;
        for (const path of document.querySelectorAll("svg.graph path.edge")) {
            edges++;
            const total = path.getTotalLength();
            for (let i = 0; i <= 200; i++) {
                const p = path.getPointAtLength(total * i / 200);
                for (const b of boxes) {
                    if (b.task === path.dataset.from || b.task === path.dataset.to) continue;
                    if (p.x > b.x0 && p.x < b.x1 && p.y > b.y0 && p.y < b.y1)
                        hits.push(path.dataset.from + "->" + path.dataset.to + " in " + b.task);
                }
            }
        }
        return {edges, hits: [...new Set(hits)]};
    }"""
    )
    assert hits["edges"] >= 4 and hits["hits"] == []


def test_an_old_run_is_drawn_with_its_own_tasks(base: str, browser_page: BrowserPage) -> None:
    page = browser_page.page
    page.goto(base + "/runs/shop/r1")
    expect(page.locator("svg.graph g.node")).to_have_count(4)
    expect(page.locator('svg.graph g.node[data-task="extra"]')).to_have_count(0)
    expect(page.locator("#drawn-from")).to_contain_text("plan the run recorded")
    page.locator('svg.graph g.node[data-task="make"]').click()
    make = page.locator('details.task[data-task="make"]')
    expect(make.locator("pre.sql").first).to_contain_text("SELECT 1 AS value UNION ALL SELECT 2")
    expect(make).not_to_contain_text("SELECT 7 AS value")
    page.goto(base + "/runs/shop/r3")
    expect(page.locator('svg.graph g.node[data-task="extra"]')).to_have_count(1)
    page.locator('svg.graph g.node[data-task="extra"]').click()
    extra = page.locator('details.task[data-task="extra"]')
    expect(extra.locator("tr.setting")).to_contain_text("retries")


def test_the_grid_and_the_duration_chart_show_the_history(
    project: Path, base: str, browser_page: BrowserPage
) -> None:
    with Project.load(project / "qarion-etl.toml") as p:
        store = p.run_store()
        expected = {
            (ti.task_id, run): ti.status
            for run in ("r1", "r2", "r3")
            for ti in store.task_instances("shop", run)
        }
        history = store.task_history("shop", "make")
    page = browser_page.page
    page.goto(base + "/flows/shop")
    grid = page.locator("#grid")
    expect(grid.locator("th.run")).to_have_count(3)
    assert grid.locator("th.run").evaluate_all("hs => hs.map(h => h.dataset.run)") == [
        "r1",
        "r2",
        "r3",
    ]
    shown = grid.locator("tbody td").evaluate_all(
        "cells => cells.map(c => [c.closest('tr').dataset.task, c.dataset.run, c.dataset.status])"
    )
    assert {(t, r): s for t, r, s in shown if s != "none"} == expected
    assert {(t, r) for t, r, s in shown if s == "none"} == {("extra", "r1"), ("extra", "r2")}
    failed = grid.locator('tr[data-task="broken"] td[data-run="r1"]')
    ok = grid.locator('tr[data-task="broken"] td[data-run="r2"]')
    assert failed.evaluate("c => getComputedStyle(c).backgroundColor") == "rgb(251, 213, 213)"
    assert ok.evaluate("c => getComputedStyle(c).backgroundColor") == "rgb(217, 242, 220)"
    # a cell leads to that task in that run
    failed.locator("a").click()
    expect(page).to_have_url(base + "/runs/shop/r1#task=broken")
    assert page.locator('details.task[data-task="broken"]').evaluate("d => d.open")

    page.goto(base + "/tasks/shop/make")
    bars = page.locator("svg.durations rect.bar")
    expect(bars).to_have_count(3)
    drawn = bars.evaluate_all(
        "bs => bs.map(b => [b.dataset.run, b.dataset.status, Number(b.dataset.seconds), b.getBBox().height])"
    )
    want = [
        (t.dag_run_id, t.status, seconds_between(t.started_at, t.ended_at))
        for t in reversed(history)
    ]
    assert [(r, s) for r, s, _, _ in drawn] == [(r, s) for r, s, _ in want]
    for (_, _, seconds, _), (_, _, wanted) in zip(drawn, want, strict=True):
        assert wanted is not None and abs(seconds - wanted) < 1e-6
    longest = max(drawn, key=lambda d: d[2])
    for _, _, seconds, height in drawn:  # a bar's height is its share of the longest
        assert abs(height - longest[3] * seconds / longest[2]) < 0.2 or height == 2
    assert longest[3] > 100  # the longest run fills most of the chart
