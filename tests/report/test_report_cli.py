"""``report``, ``run --report`` and ``graph --format svg|html`` through the command line.

The page is one file: every task a graph node with its status, a timeline, the task
table, the SQL each task ran and its whole error, the run's XComs in their light form;
nothing it needs is fetched, and no secret is in it. (The browser tests open it.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import cli, make_project, write_flow
from tests.runkit import run_dir

FLOW = """\
id = "shop"
namespace = "shop"

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
[tasks.config]
sql = "SELECT COUNT(*) AS n, '{{{{ var('token') }}}}' AS t FROM {{{{ source_dataset }}}}"

[[tasks]]
id = "broken"
type = "transformation"
dependencies = ["make"]
[tasks.config]
sql = "SELECT nope FROM {ns}.numbers"

[[tasks]]
id = "after"
type = "transformation"
dependencies = ["broken"]
[tasks.config]
sql = "SELECT 1"
"""

TOKEN = "tok-2718281828"
CONFIG = """\
[engine]
url = "duckdb:///warehouse.duckdb"
[metadata]
url = "{metadata_url}"
namespace = "{namespace}"
[credentials.api]
token = "${{env:QE_REPORT_TOKEN}}"
[xcom]
enabled = true
"""


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QE_REPORT_TOKEN", TOKEN)


def shop_project(
    tmp_path: Path,
    metadata_url: str | None = None,
    namespace: str = "qarion",
    xcom_backend: str | None = None,
    xcom_extra: str = "",
) -> Path:
    url = metadata_url or f"sqlite:///{tmp_path / 'p' / '.qarion' / 'metadata.db'}"
    config = CONFIG.format(metadata_url=url, namespace=namespace)
    if xcom_backend:
        config += f'backend = "{xcom_backend}"\n{xcom_extra}'
    project = make_project(tmp_path / "p", example=False, config=config)
    write_flow(project, "shop", FLOW.format(ns="shop"))
    return project


def run_shop(project: Path, *extra: str):  # type: ignore[no-untyped-def]
    return cli(
        "run",
        "shop",
        "--run-id",
        "r1",
        "--var",
        f"token={TOKEN}",
        *extra,
        project=project,
        env={"QE_REPORT_TOKEN": TOKEN},
    )


def nodes(html: str) -> dict[str, str]:
    """Task id -> status of each graph node of a page."""
    return dict(
        (t, s)
        for t, s in re.findall(
            r'<g class="node [^"]*" data-task="([^"]+)" data-status="([^"]+)"', html
        )
    )


def test_run_report_writes_one_self_contained_page(tmp_path: Path) -> None:
    project = shop_project(tmp_path)
    done = run_shop(project, "--report")
    assert done.exit_code == 1
    path = run_dir(project, "r1") / "report.html"
    assert f"Report: {path}" in done.stderr
    html = path.read_text()
    assert nodes(html) == {
        "make": "success",
        "stats": "success",
        "broken": "failed",
        "after": "skipped",
    }
    assert html.count('class="edge') == 3  # make->stats (dataset), make->broken, broken->after
    assert 'class="edge dataset"' in html
    assert 'data-task="make"' in html and "<svg" in html and 'class="timeline"' in html
    # the header: status, batch, exit code
    assert 'id="run-status">failed<' in html and "exit code</dt><dd>1<" in html
    # the SQL that ran, and the whole error (the driver's detail below the first line)
    assert "CREATE TABLE" in html and "SELECT 1 AS value UNION ALL SELECT 2" in html
    assert "Referenced column &#34;nope&#34; not found" in html or "nope" in html
    assert "LINE 1:" in html
    # XComs in their light form
    assert 'data-task="make" data-key="rows_written"' in html
    # nothing to fetch: no URL but the SVG namespace, and a policy that forbids fetching
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert "default-src 'none'" in html
    # no secret: the token reached the SQL and an XCom, masked in both
    assert TOKEN not in html
    assert "&#39;***&#39; AS t" in html or "'***' AS t" in html


def test_report_of_a_run_by_id_or_latest_to_a_file(tmp_path: Path) -> None:
    project = shop_project(tmp_path)
    run_shop(project)
    out = tmp_path / "out" / "run.html"
    done = cli("report", "latest", "-o", str(out), project=project)
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == str(out)
    assert nodes(out.read_text())["broken"] == "failed"
    by_id = cli("report", "r1", project=project)
    assert by_id.exit_code == 0
    assert Path(by_id.stdout.strip()) == run_dir(project, "r1") / "report.html"
    missing = cli("report", "nope", project=project)
    assert missing.exit_code == 2
    assert "no run 'nope'" in missing.stderr and "Traceback" not in missing.output


def test_report_before_any_run_says_so(tmp_path: Path) -> None:
    project = shop_project(tmp_path)
    done = cli("report", project=project)
    assert done.exit_code == 2
    assert "no runs yet" in done.stderr


def test_graph_draws_svg_and_html_without_a_run(tmp_path: Path) -> None:
    project = shop_project(tmp_path)
    svg = cli("graph", "shop", "--format", "svg", project=project)
    assert svg.exit_code == 0, svg.output
    assert svg.stdout.startswith("<svg") and svg.stdout.rstrip().endswith("</svg>")
    assert set(nodes(svg.stdout).values()) == {"not_run"} and len(nodes(svg.stdout)) == 4
    page = cli("graph", "shop", "--format", "html", project=project)
    assert page.exit_code == 0
    assert (
        page.stdout.startswith("<!doctype html>") and "SELECT nope FROM shop.numbers" in page.stdout
    )
    wrong = cli("graph", "shop", "--format", "png", project=project)
    assert wrong.exit_code == 2 and "use text, mermaid, dot, json, svg or html" in wrong.stderr


@pytest.mark.postgres
def test_report_from_postgresql_metadata(tmp_path: Path, pg_url: str) -> None:
    from tests.conftest import unique_name
    from tests.runkit import drop_metadata

    ns = unique_name("rep")
    project = shop_project(tmp_path, metadata_url=pg_url, namespace=ns)
    try:
        run_shop(project)
        done = cli("report", "latest", project=project)
        assert done.exit_code == 0, done.output
        html = Path(done.stdout.strip()).read_text()
        assert nodes(html)["after"] == "skipped"
        assert 'data-key="return_value"' in html
    finally:
        drop_metadata(pg_url, ns)
