"""No secret in any output: every output of a succeeding and a failing run, collected and searched.

The configuration holds a secret in every form the product promises to mask: values of
``[credentials]`` (written, and from ``${env:…}``), a URL password from ``${env:…}``, a
password written in a URL, a ``?password=`` query parameter, a password with an unencoded
``@``, and URLs inside ``backend_config`` (a project-local XCom backend that names them in
``describe()``, as a careless plugin would). A task's SQL renders a credential into an
identifier the driver quotes back, another holds one in a string and a URL with a password
in a comment. The outputs searched: stdout and stderr of every command (``--json``,
``--log-format json -v``, ``--debug``, the final ``Error:`` line), GitHub annotations and
the step summary, the JUnit file, ``run.log``, the SQL files, the results files, the HTML
report, every page of the web UI, ``render``, ``config show``, ``doctor``, the runs and
XCom listings, ``logging``, and a run and a ``doctor`` whose warehouse cannot be reached
through a URL with an ``@`` in its password. On SQLite and on PostgreSQL metadata.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_URL, require_service, unique_name
from tests.helpers import cli, make_project, write_flow
from tests.runkit import drop_metadata, drop_namespace

CRED_WRITTEN = "CredLit-7c1e0d"
CRED_ENV = "CredEnv-55aa21"
URL_ENV_PW = "UrlEnvPw-91b3c4"
URL_WRITTEN_PW = "UrlLitPw-4d2f77"
QUERY_PW = "QueryPw-0e8a93"
AT_PW_TAIL = "AtPw-61c9b2"  # the password is "x@AtPw-61c9b2"
SQL_URL_PW = "SqlUrlPw-3a7e15"
SECRETS = (CRED_WRITTEN, CRED_ENV, URL_ENV_PW, URL_WRITTEN_PW, QUERY_PW, AT_PW_TAIL, SQL_URL_PW)

CONFIG = """\
[project]
name = "leaks"

[engine]
url = "{engine}"

[metadata]
url = "{metadata}"
namespace = "{meta_ns}"

[xcom]
backend = "leaky_backend:UrlXCom"

[xcom.backend_config]
replica = "postgresql://xcom:${{env:QE_LEAK_PGPW}}@db.internal:5432/x?sslpassword={query_pw}"
mirror = "postgresql://mirror:{url_pw}@db.internal/x"
archive = "postgresql://arch:x@{at_pw}@db.internal/x"

[credentials.api]
token = "${{env:QE_LEAK_TOKEN}}"
password = "{cred_written}"
"""

BACKEND = '''\
"""An XCom backend in the metadata database that names its replicas' URLs."""

from qarion_etl.xcom.backends.database import DatabaseXComBackend


class UrlXCom(DatabaseXComBackend):
    def __init__(self, db_service, *, replica, mirror, archive, namespace=None, root=None):
        super().__init__(db_service, namespace=namespace, root=root)
        self.urls = (replica, mirror, archive)

    def describe(self):
        return f"{super().describe()} (replicas: {', '.join(self.urls)})"
'''

GOOD = """\
id = "good"
namespace = "{ns}"

[[tasks]]
id = "land"
type = "ingestion"
target_dataset_id = "orders"
[tasks.config]
path = "data/orders.csv"
format = "csv"

[[tasks]]
id = "total"
type = "transformation"
source_dataset_id = "orders"
target_dataset_id = "totals"
dependencies = ["land"]
[tasks.config]
sql = "SELECT COUNT(*) AS n FROM {{{{ source_dataset }}}}"
"""

BAD = """\
id = "bad"
namespace = "{ns}"

[[tasks]]
id = "fine"
type = "transformation"
target_dataset_id = "fine"
[tasks.config]
sql = "SELECT 1 AS a -- see postgresql://etl:{sql_url_pw}@db.internal/x"

[[tasks]]
id = "quoted"
type = "transformation"
dependencies = ["fine"]
[tasks.config]
sql = "SELECT '{cred_written}' AS k FROM \\"{{{{ var('tok') }}}}\\""
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def leaky(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A project whose configuration holds every form of secret; its metadata on ``param``."""
    ns, meta_ns = unique_name("leak"), unique_name("leakmeta")
    root = make_project(tmp_path / "p", example=False)
    if request.param == "postgres":
        require_service("postgres")
        # PostgreSQL trusts local connections: any password connects, and is a secret.
        engine = "postgresql+psycopg://postgres:${env:QE_LEAK_PGPW}@127.0.0.1:5432/test"
        metadata = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?password={QUERY_PW}"
    else:
        engine, metadata = "sqlite:///warehouse.db", "sqlite:///.qarion/metadata.db"
    config = CONFIG.format(
        engine=engine,
        metadata=metadata,
        meta_ns=meta_ns,
        query_pw=QUERY_PW,
        url_pw=URL_WRITTEN_PW,
        at_pw=AT_PW_TAIL,
        cred_written=CRED_WRITTEN,
    )
    (root / "qarion-etl.toml").write_text(config)
    (root / "down.toml").write_text(
        config.replace(
            f'url = "{engine}"',
            f'url = "postgresql+psycopg://postgres:x@{AT_PW_TAIL}@127.0.0.1:1/test"',
        )
    )
    (root / "leaky_backend.py").write_text(BACKEND)
    (root / "data").mkdir()
    (root / "data" / "orders.csv").write_text("id,value\n1,10.5\n2,20\n")
    write_flow(root, "good", GOOD.format(ns=ns))
    write_flow(root, "bad", BAD.format(ns=ns, sql_url_pw=SQL_URL_PW, cred_written=CRED_WRITTEN))
    monkeypatch.setenv("QE_LEAK_TOKEN", CRED_ENV)
    monkeypatch.setenv("QE_LEAK_PGPW", URL_ENV_PW)
    monkeypatch.chdir(root)
    yield root
    if request.param == "postgres":
        drop_namespace(PG_URL, ns)
        drop_metadata(PG_URL, meta_ns)


def _ui_pages(root: Path) -> list[tuple[str, str]]:
    """Every page of the web UI reachable from its front page, read in-process."""
    from starlette.testclient import TestClient

    from qarion_etl.project import Project
    from qarion_etl.ui.app import create_app
    from qarion_etl.ui.security import allowed_hosts

    pages: list[tuple[str, str]] = []
    app = create_app(Project.load(root / "qarion-etl.toml"), hosts=allowed_hosts("127.0.0.1", 8765))
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        todo, seen = ["/", "/xcoms"], set()
        while todo and len(seen) < 300:
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            response = client.get(path)
            assert response.status_code < 500, (path, response.text[:500])
            pages.append((f"ui {path}", response.text))
            for link in re.findall(r'(?:href|src)="(/[^"/][^"]*|/)"', response.text):
                todo.append(html.unescape(link).split("#")[0])
            if path.startswith("/runs/"):
                todo.append("/api" + path)
    assert any(p.startswith("ui /runs/") for p, _ in pages) and any(
        p.startswith("ui /xcoms/value") for p, _ in pages
    )
    assert any(p.startswith("ui /tasks/") for p, _ in pages) and any(
        p.startswith("ui /flows/") for p, _ in pages
    )
    return pages


def test_no_secret_in_any_output(leaky: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = leaky
    summary = root / "summary.md"
    github = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    outputs: list[tuple[str, str]] = []

    def run(
        *args: str,
        code: int | None = None,
        env: dict[str, str] | None = None,
        config: str = "qarion-etl.toml",
    ) -> str:
        result = cli("--config", str(root / config), *args, env=env)
        outputs.append((" ".join(args), result.stdout + result.stderr))
        assert "Traceback" not in result.stderr or "--debug" in args, result.stderr
        assert code is None or result.exit_code == code, (args, result.output)
        return result.stdout

    caplog.set_level("DEBUG", logger="qarion_etl")
    tok = ("--var", f"tok={CRED_ENV}")
    run(
        "run",
        "good",
        "--run-id",
        "ok1",
        "--json",
        "--junit-xml",
        "good.xml",
        "--report",
        code=0,
        env=github,
    )
    run(
        "run",
        "bad",
        "--run-id",
        "bad1",
        *tok,
        "--json",
        "--junit-xml",
        "bad.xml",
        "--report",
        code=1,
        env=github,
    )
    run("run", "bad", "--run-id", "bad2", *tok, "--log-format", "json", "-v", code=1, env=github)
    run("--debug", "run", "bad", "--run-id", "bad3", *tok, code=1)
    run("run", "bad", "--resume", "bad1", *tok, code=1)
    run("run", "bad", "--run-id", "bad4", *tok, "--select", "quoted", "-q", code=1)
    run("render", "bad", "quoted", *tok, code=0)
    run("render", "bad", "fine", code=0)
    run("validate", *tok, code=0)
    for command in (
        ("config", "show"),
        ("config", "show", "--json"),
        ("doctor",),
        ("doctor", "--json"),
    ):
        run(*command, code=0)
    run("report", "bad1", "-o", "bad1.html", code=0)
    run("runs", "list")
    run("runs", "show", "bad1", "--flow", "bad")
    run("runs", "show", "bad1", "--flow", "bad", "--json")
    run("xcom", "list")
    run("xcom", "list", "--json")
    # The warehouse behind a URL whose password holds an unencoded "@": unreachable.
    run("run", "good", "--json", code=3, config="down.toml", env=github)
    run("doctor", code=3, config="down.toml")
    outputs += _ui_pages(root)
    outputs.append(("logging", caplog.text))

    assert "quoted" in summary.read_text() and "::error file=flows/bad.toml" in "".join(
        t for _, t in outputs
    )
    assert CRED_ENV.replace("-", "") not in "".join(t for _, t in outputs)  # (the var is the token)
    for what, text in outputs:
        for secret in SECRETS:
            assert secret not in text, f"{what!r} shows {secret!r}:\n{text}"
    # Every file the runs and commands wrote (the stores are not outputs: the databases).
    written = [
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix not in (".toml", ".db", ".py", ".pyc", ".csv")
        and not p.name.startswith("metadata.db")
    ]
    names = {p.name for p in written}
    assert {
        "good.xml",
        "bad.xml",
        "summary.md",
        "bad1.html",
        "run.log",
        "quoted.sql",
        "report.html",
    } <= names
    assert any(p.name == "bad1.json" for p in written)
    for path in written:
        data = path.read_text(encoding="utf-8", errors="replace")
        for secret in SECRETS:
            assert secret not in data, f"{path.relative_to(root)} holds {secret!r}"
