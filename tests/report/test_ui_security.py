"""The web UI answers only its own user: the Host check, the security headers on every
route and every error, the report's policy by hash, and ``/flows/`` serving only flows.

The routes are read from the app itself, so a page added later is covered (or this test
fails until it has a sample URL).
"""

from __future__ import annotations

import base64
import hashlib
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import cli
from tests.report.test_report_cli import TOKEN, run_shop, shop_project
from tests.uikit import free_port, raw_get, ui_process, ui_server

SECRET = "hunter2-do-not-show"


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QE_REPORT_TOKEN", TOKEN)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The shop flow run once (run ``r1``), with a ``.env`` and a text file beside it."""
    mp = pytest.MonkeyPatch()
    mp.setenv("QE_REPORT_TOKEN", TOKEN)
    try:
        project = shop_project(tmp_path_factory.mktemp("sec"))
        run_shop(project)
        (project / ".env").write_text(f"PASSWORD={SECRET}\n")
        (project / "notaflow.txt").write_text(f"id = 'x'\n{SECRET}\n")
        (project / "flows" / "notes.txt").write_text(f"{SECRET}\n")
        yield project
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def server(shop: Path) -> Iterator[str]:
    with ui_server(
        shop, "--allow-host", "qarion.test", env={"QE_REPORT_TOKEN": TOKEN}, cwd=shop
    ) as base:
        yield base


def _app(project: Path, hosts: frozenset[str] = frozenset({"testserver"})):  # type: ignore[no-untyped-def]
    from qarion_etl.project import Project
    from qarion_etl.ui.app import create_app

    return create_app(Project.load(project / "qarion-etl.toml"), hosts=hosts)


#: A sample URL for each route of the app (path parameters filled in).
SAMPLES = {
    "flow": "shop",
    "run": "r1",
    "task": "broken",
}
QUERIES = {"/xcoms/value": "?flow=shop&run=r1&task=make&key=return_value"}


def _policy(headers: dict[str, str]) -> dict[str, str]:
    text = headers["content-security-policy"]
    out = {}
    for part in text.split(";"):
        name, _, value = part.strip().partition(" ")
        out[name] = value
    return out


def assert_guarded(headers: dict[str, str], what: str) -> None:
    headers = {k.lower(): v for k, v in headers.items()}
    assert "content-security-policy" in headers, what
    policy = _policy(headers)
    assert policy["default-src"] == "'none'", what
    assert policy["frame-ancestors"] == "'none'", what
    assert policy["base-uri"] == "'none'", what
    assert policy["form-action"] == "'self'", what
    assert "unsafe-inline" not in headers["content-security-policy"], what
    assert re.fullmatch(r"('sha256-[A-Za-z0-9+/=]+' ?)+", policy["script-src"]), what
    assert headers["x-content-type-options"] == "nosniff", what
    assert headers["referrer-policy"] == "no-referrer", what


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_every_route_and_every_error_sends_the_security_headers(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.routing import Route
    from starlette.testclient import TestClient

    monkeypatch.setenv("QE_REPORT_TOKEN", TOKEN)
    app = _app(shop)
    routes = [r for r in app.routes if isinstance(r, Route)]
    assert len(routes) >= 7
    with TestClient(app, raise_server_exceptions=False) as client:
        for route in routes:
            path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: SAMPLES[m.group(1)], route.path)
            r = client.get(path + QUERIES.get(route.path, ""))
            assert r.status_code == 200, (route.path, r.status_code, r.text[:300])
            assert_guarded(dict(r.headers), route.path)
        answers = {
            "404 unknown page": client.get("/nope"),
            "404 unknown run": client.get("/runs/shop/nope"),
            "404 unknown flow": client.get("/flows/nope"),
            "400 missing filters": client.get("/xcoms/value?flow=shop"),
            "405 POST": client.post("/", data={"x": "1"}),
            "400 foreign host": client.get("/", headers={"host": "attacker.example"}),
        }
        for what, r in answers.items():
            assert r.status_code == int(what[:3]), (what, r.status_code)
            assert_guarded(dict(r.headers), what)

        def broken(self: object) -> object:
            raise RuntimeError("the store fell over")

        from qarion_etl.ui.app import Viewer

        monkeypatch.setattr(Viewer, "xcom", property(broken))
        r = client.get("/xcoms")
        assert r.status_code == 500 and "fell over" not in r.text
        assert_guarded(dict(r.headers), "500")


def test_a_foreign_host_is_refused(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "qarion.test", f"qarion.test:{port}"):
        status, body, headers = raw_get(server, "/xcoms", host=host)
        assert status == 200 and 'id="xcoms"' in body, host
    for host in (
        "attacker.example",
        f"attacker.example:{port}",
        f"127.0.0.1:{int(port) + 1}",
        "localhost",
        f"qarion.test.attacker.example:{port}",
        "",
    ):
        status, body, headers = raw_get(
            server, "/xcoms/value?flow=shop&run=r1&task=make&key=return_value", host=host
        )
        assert status == 400, (host, status)
        assert "rows_written" not in body and "--allow-host" in body
        assert_guarded(headers, f"refused {host}")


def test_the_report_runs_its_script_by_hash(shop: Path, server: str) -> None:
    done = cli("report", "r1", project=shop)
    assert done.exit_code == 0, done.output
    html = Path(done.stdout.strip()).read_text()
    meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert meta is not None
    policy = _policy({"content-security-policy": meta.group(1)})
    assert "unsafe-inline" not in meta.group(1)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert scripts and styles

    def source(text: str) -> str:
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        return f"'sha256-{digest}'"

    assert {source(s) for s in scripts} == set(policy["script-src"].split())
    assert {source(s) for s in styles} == set(policy["style-src"].split())
    assert policy["default-src"] == "'none'"
    # The UI serves the same page under a header policy naming the same hashes.
    status, page, headers = raw_get(server, "/runs/shop/r1")
    assert status == 200
    served = _policy(headers)
    for text in re.findall(r"<script>(.*?)</script>", page, re.S):
        assert source(text) in served["script-src"].split()
    for text in re.findall(r"<style>(.*?)</style>", page, re.S):
        assert source(text) in served["style-src"].split()


TRAVERSALS = [
    "/flows/notaflow.txt",
    "/flows/.env",
    "/flows/notes.txt",
    "/flows/../x",
    "/flows/..",
    "/flows/.",
    "/flows/%2e%2e",
    "/flows/%2e%2e%2fnotaflow.txt",
    "/flows/..%2F.env",
    "/flows/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "/flows/%2Fetc%2Fpasswd",
    "/flows/qarion-etl.toml",
    "/flows/flows%2Fshop.toml",
    "/flows/shop.toml",
    "/flows/..%5Cnotaflow.txt",
    "/flows/notaflow.txt%00",
    "/flows/%252e%252e%252fnotaflow.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_flows_serves_only_the_projects_flows(server: str, path: str) -> None:
    status, body, headers = raw_get(server, path)
    assert status == 404, (path, status, body[:200])
    assert SECRET not in body and "PASSWORD" not in body
    assert_guarded(headers, path)


def test_flows_by_id_still_answer(server: str) -> None:
    status, body, _ = raw_get(server, "/flows/shop")
    assert status == 200 and 'data-task="broken"' in body


def test_an_ipv6_bind_prints_a_url_that_works(tmp_path: Path) -> None:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    project = shop_project(tmp_path)
    port = free_port()
    proc = ui_process(project, "--host", "::1", "--port", str(port))
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert f"http://[::1]:{port}/" in line, line
        status, _, _ = raw_get(f"http://[::1]:{port}", "/api/nothing", host=f"[::1]:{port}")
        assert status == 404
        status, _, _ = raw_get(f"http://[::1]:{port}", "/", host=f"127.0.0.1:{port}")
        assert status == 400
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        rest = proc.stderr.read() if proc.stderr else ""
        assert "Error" not in rest and "stopped" in rest
        if proc.stderr is not None:
            proc.stderr.close()


def test_a_missing_extra_is_said_before_any_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = shop_project(tmp_path)
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    done = cli("ui", "--port", "0", project=project)
    assert done.exit_code == 2
    assert "pip install -e '" in done.stderr and "[ui]'" in done.stderr
    assert "http://" not in done.output and "Traceback" not in done.output


@pytest.mark.parametrize(
    ("bind", "extra", "answered", "refused"),
    [
        ("127.0.0.1", [], {"127.0.0.1:8765", "localhost:8765"}, {"[::1]:8765", "127.0.0.1"}),
        ("::1", [], {"[::1]:8765", "localhost:8765"}, {"127.0.0.1:8765", "::1:8765"}),
        ("localhost", [], {"127.0.0.1:8765", "localhost:8765", "[::1]:8765"}, {"localhost"}),
        ("0.0.0.0", [], {"127.0.0.1:8765", "localhost:8765"}, {"0.0.0.0:8765", "10.0.0.5:8765"}),
        ("10.0.0.5", [], {"10.0.0.5:8765"}, {"127.0.0.1:8765", "localhost:8765"}),
        ("127.0.0.1", ["Qarion.Test"], {"qarion.test", "qarion.test:8765"}, {"qarion.test:80"}),
        (
            "127.0.0.1",
            ["qarion.test:9000"],
            {"qarion.test:9000"},
            {"qarion.test", "qarion.test:8765"},
        ),
        ("127.0.0.1", ["fd00::7"], {"[fd00::7]", "[fd00::7]:8765"}, {"fd00::7"}),
        ("127.0.0.1", ["[fd00::7]:9000"], {"[fd00::7]:9000"}, {"[fd00::7]"}),
    ],
)
def test_the_hosts_a_bind_answers(
    bind: str, extra: list[str], answered: set[str], refused: set[str]
) -> None:
    from qarion_etl.ui.security import allowed_hosts

    hosts = allowed_hosts(bind, 8765, extra)
    assert answered <= hosts and not (refused & hosts), sorted(hosts)
