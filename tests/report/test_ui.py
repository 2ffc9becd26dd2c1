"""``qarion-etl ui`` over HTTP: every page on SQLite and PostgreSQL metadata, read-only.

The browser tests (``tests/browser``) click through the same pages; these check what
each page answers, the 404 of an unknown run, that nothing but GET is served, and the
size cap on full XCom values.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import unique_name
from tests.report.test_report_cli import TOKEN, run_shop, shop_project
from tests.runkit import drop_metadata
from tests.uikit import get, ui_server


@pytest.fixture(
    params=[
        "sqlite",
        "local_file",
        pytest.param("s3", marks=pytest.mark.s3),
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def shop(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The shop flow run once, its history on each metadata database (and, for
    ``local_file`` and ``s3``, its XComs in files or in moto's S3 server)."""
    monkeypatch.setenv("QE_REPORT_TOKEN", TOKEN)
    if request.param == "s3":
        bucket, endpoint = request.getfixturevalue("s3_bucket"), request.getfixturevalue("s3_env")
        extra = f'[xcom.backend_config]\nbucket = "{bucket}"\nendpoint_url = "{endpoint}"\n'
        project = shop_project(tmp_path, xcom_backend="s3", xcom_extra=extra)
        run_shop(project)
        yield project
        return
    if request.param in ("sqlite", "local_file"):
        backend = "local_file" if request.param == "local_file" else None
        project = shop_project(tmp_path, xcom_backend=backend)
        run_shop(project)
        yield project
        return
    url = request.getfixturevalue("pg_url" if request.param == "postgres" else "mariadb_url")
    ns = unique_name("ui")
    project = shop_project(tmp_path, metadata_url=url, namespace=ns)
    try:
        run_shop(project)
        yield project
    finally:
        drop_metadata(url, ns)


def test_every_page_answers(shop: Path) -> None:
    with ui_server(shop) as base:
        status, body, headers = get(base + "/")
        assert status == 200 and 'data-run="r1"' in body and 'data-status="failed"' in body
        assert "app;dur=" in headers["server-timing"]
        status, body, _ = get(base + "/?status=success")
        assert status == 200 and 'data-run="r1"' not in body
        status, body, _ = get(base + "/runs/shop/r1")
        nodes = dict(re.findall(r'data-task="([^"]+)" data-status="([^"]+)" tabindex', body))
        assert status == 200 and nodes == {
            "make": "success",
            "stats": "success",
            "broken": "failed",
            "after": "skipped",
        }
        assert "<body data-live" not in body  # a finished run is not polled
        assert TOKEN not in body
        status, body, _ = get(base + "/api/runs/shop/r1")
        state = json.loads(body)
        assert state["status"] == "failed" and state["tasks"]["after"] == "skipped"
        status, body, _ = get(base + "/flows/shop")
        assert status == 200 and 'data-status="failed"' in body and "SELECT nope" in body
        status, body, _ = get(base + "/tasks/shop/broken")
        assert status == 200 and 'data-run="r1"' in body and "nope" in body
        status, body, _ = get(base + "/xcoms")
        all_rows = body.count("<tr data-task=")
        status, body, _ = get(base + "/xcoms?task=make&key=rows_written")
        assert status == 200 and body.count("<tr data-task=") == 1 < all_rows
        status, body, _ = get(base + "/xcoms/value?flow=shop&run=r1&task=make&key=return_value")
        assert status == 200 and '"rows_written": 2' in body.replace("&#34;", '"')
        status, body, _ = get(base + "/xcoms/value?flow=shop&run=r1&task=stats&key=t")
        assert status == 200 and TOKEN not in body and "***" in body
        assert get(base + "/runs/shop/nope")[0] == 404
        assert get(base + "/xcoms/value?flow=shop")[0] == 400


def test_the_ui_is_read_only_and_warns_off_localhost(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ui_server(shop) as base:
        for path in ("/", "/runs/shop/r1", "/xcoms"):
            req = urllib.request.Request(base + path, data=b"x=1", method="POST")
            try:
                urllib.request.urlopen(req, timeout=5)
                raise AssertionError(f"POST {path} was served")
            except urllib.error.HTTPError as exc:
                assert exc.code == 405
    # The warning, without binding every interface for real: no test server may.
    served: list[tuple[str, int]] = []

    class _Listener:
        def __init__(self, host: str, port: int) -> None:
            self.host, self.port, self.url = host, port, f"http://{host}:{port}/"

    monkeypatch.setattr("qarion_etl.ui.listen", _Listener)
    monkeypatch.setattr(
        "qarion_etl.ui.serve",
        lambda project, listener, allow: served.append((listener.host, listener.port)),
    )
    from tests.helpers import cli

    warned = cli("ui", "--host", "0.0.0.0", "--port", "8765", project=shop)
    assert warned.exit_code == 0 and served == [("0.0.0.0", 8765)]
    first = warned.stderr.splitlines()[0]
    assert "binding 0.0.0.0" in first and "no login" in first, first


def test_a_large_value_is_not_loaded_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QE_REPORT_TOKEN", TOKEN)
    project = shop_project(tmp_path)
    from tests.helpers import cli

    big = json.dumps(["x" * 1000] * 300)  # about 300 KB, over the 256 KB the UI loads
    pushed = cli(
        "xcom",
        "push",
        "make",
        big,
        "--key",
        "big",
        "--flow",
        "shop",
        "--run",
        "r9",
        project=project,
    )
    assert pushed.exit_code == 0, pushed.output
    with ui_server(project) as base:
        status, body, _ = get(base + "/xcoms/value?flow=shop&run=r9&task=make&key=big")
        assert status == 200 and 'id="refused"' in body and "xcom get" in body
        assert body.count("x" * 1000) <= 1
