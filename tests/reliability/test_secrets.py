"""Secrets never leave: a full run with known secrets, every output and every file scanned.

The warehouse password comes from ``${env:…}`` (PostgreSQL trusts local connections, so any
password works), a token from ``[credentials]``; one task fails with a database error, one
run meets an unreachable metadata database whose URL holds the password.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import unique_name
from tests.helpers import write_flow
from tests.reliability import procs
from tests.runkit import drop_namespace

PASSWORD = "pw-S3cr3t-7f1e9a"
TOKEN = "tok-Cr3d-55aa21"
LITERAL = "lit-Cr3d-0c0ffee"
SECRETS = (PASSWORD, TOKEN, LITERAL)


def _config(metadata_url: str) -> str:
    return f'''
[project]
name = "secrets"

[engine]
url = "postgresql+psycopg://postgres:${{env:QARION_TEST_PW}}@127.0.0.1:5432/test"

[metadata]
url = "{metadata_url}"

[xcom]
backend = "database"

[credentials.api]
token = "${{env:QARION_TEST_TOKEN}}"
password = "{LITERAL}"
'''


FLOW = """
id = "leaky"
namespace = "{ns}"

[[tasks]]
id = "ok"
type = "transformation"
target_dataset_id = "fine"
[tasks.config]
sql = "SELECT 1 AS a, current_user AS who"

[[tasks]]
id = "broken_sql"
type = "transformation"
dependencies = ["ok"]
[tasks.config]
sql = "SELECT * FROM no_such_table_{ns}"
"""


@pytest.mark.postgres
def test_no_secret_in_any_output_or_file(tmp_path: Path, pg_url: str) -> None:
    ns = unique_name("sec")
    project = tmp_path / "proj"
    project.mkdir()
    (project / "qarion-etl.toml").write_text(_config("sqlite:///.qarion/metadata.db"))
    write_flow(project, "leaky", FLOW.format(ns=ns))
    env = {"QARION_TEST_PW": PASSWORD, "QARION_TEST_TOKEN": TOKEN}
    outputs: list[tuple[str, str]] = []

    def qe(*args: str, cfg: Path | None = None) -> procs.subprocess.CompletedProcess[str]:
        result = procs.run(project, *args, env=env)
        if cfg is not None:  # another config file in the same project
            proc = procs.subprocess.run(
                [*procs.QARION, "--config", str(cfg), *args],
                cwd=project,
                env={**os.environ, "NO_COLOR": "1", **env},
                capture_output=True,
                text=True,
            )
            result = procs.subprocess.CompletedProcess(
                proc.args, proc.returncode, proc.stdout, proc.stderr
            )
        outputs.append((" ".join(args), result.stdout + result.stderr))
        assert "Traceback" not in result.stderr, result.stderr
        return result

    try:
        run = qe("run", "leaky", "--run-id", "r1", "--json", "--junit-xml", "report.xml")
        assert run.returncode == 1, run.stderr
        assert '"status": "success"' in run.stdout  # the ok task ran against the warehouse
        qe("run", "leaky", "--resume", "r1")
        qe("run", "leaky", "--select", "ok", "--debug")
        qe("render", "leaky", "ok")
        qe("render", "leaky", "broken_sql")
        qe("config", "show")
        qe("doctor")
        qe("runs", "list")
        qe("runs", "show", "r1", "--json")
        qe("xcom", "list", "--json")
        qe("xcom", "get", "ok", "--flow", "leaky", "--run", "r1")
        qe("validate")
        # The warehouse and the metadata database unreachable, with the password in their URLs.
        down = project / "down.toml"
        down.write_text(
            _config("postgresql+psycopg://postgres:${env:QARION_TEST_PW}@127.0.0.1:1/test").replace(
                "127.0.0.1:5432", "127.0.0.1:2"
            )
        )
        failed = qe("run", "leaky", cfg=down)
        assert failed.returncode == 3, failed.stderr
        qe("doctor", cfg=down)
        qe("xcom", "list", cfg=down)
        qe("runs", "list", cfg=down)
        qe("config", "show", cfg=down)

        for what, text in outputs:
            for secret in SECRETS:
                assert secret not in text, f"{what!r} printed a secret:\n{text}"
        files = [p for p in project.rglob("*") if p.is_file() and p.suffix != ".toml"]
        assert any(p.suffix == ".json" for p in files) and (project / "report.xml").is_file()
        for path in files:
            data = path.read_bytes()
            for secret in SECRETS:
                assert secret.encode() not in data, f"{path} holds a secret"
    finally:
        drop_namespace(pg_url, ns)
