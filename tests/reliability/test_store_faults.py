"""Stores that go away mid-run: the S3 XCom store (our own moto server) and the metadata database.

The task whose push meets the outage retries by its own policy, then fails; the run exits
3 naming the store; values pushed before the outage stay; ``run --resume`` completes once
the store is back.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_URL, require_service, unique_name
from tests.helpers import make_project, write_flow
from tests.reliability import procs

SLOW_SQLITE = (
    "(WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < {{ var('slow', 15000000) }}) "
    "SELECT MIN(1, COUNT(*)) FROM r)"
)


def _flow(ns: str) -> str:
    return f'''
id = "outage"
namespace = "{ns}"

[[tasks]]
id = "first"
type = "transformation"
[tasks.config]
sql = "SELECT 41 AS answer, 'kept' AS label"

[[tasks]]
id = "slow"
type = "transformation"
target_dataset_id = "slow_out"
dependencies = ["first"]
retries = 1
retry_delay_seconds = 0.5
[tasks.config]
sql = "SELECT {{{{ xcom_pull('first', key='answer') }}}} + {SLOW_SQLITE} AS answer"

[[tasks]]
id = "last"
type = "transformation"
dependencies = ["slow"]
[tasks.config]
sql = "SELECT {{{{ xcom_pull('slow', key='answer') }}}} * 2 AS doubled"
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.s3
def test_s3_store_down_mid_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moto_server = pytest.importorskip("moto.server")
    import boto3

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    bucket = unique_name("outage").replace("_", "-")
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    project = make_project(
        tmp_path,
        example=False,
        config=f'''
[project]
name = "outage"
[engine]
url = "sqlite:///warehouse.db"
[metadata]
url = "sqlite:///.qarion/metadata.db"
[xcom]
backend = "s3"
backend_config = {{bucket = "{bucket}", prefix = "x", endpoint_url = "{endpoint}", region_name = "us-east-1", max_attempts = 2}}
''',
    )
    write_flow(project, "outage", _flow(unique_name("o")))
    running = True
    try:
        proc = procs.start(project, "run", "outage", "--run-id", "r1", env=env)
        procs.wait_for(
            lambda: procs.task_states(procs.metadata_url(project)).get("slow") == "running", proc
        )
        server.stop()
        running = False
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 3, err
        assert "Traceback" not in err
        assert f"bucket '{bucket}'" in err and "S3" in err
        assert "retrying slow" in err  # the task's retries = 1
        ti = json.loads(procs.run(project, "runs", "show", "r1", "--json").stdout)
        tries = {t["task_id"]: (t["status"], t["tries"]) for t in ti["tasks"]}
        assert tries["first"] == ("success", 1) and tries["slow"] == ("failed", 2)

        server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        running = True
        got = procs.run(
            project,
            "xcom",
            "get",
            "first",
            "--key",
            "label",
            "--flow",
            "outage",
            "--run",
            "r1",
            env=env,
        )
        assert got.returncode == 0 and json.loads(got.stdout) == "kept"  # pushed before the outage
        done = procs.run(project, "run", "outage", "--resume", "r1", "--var", "slow=1", env=env)
        assert done.returncode == 0, done.stderr
        got = procs.run(
            project,
            "xcom",
            "get",
            "last",
            "--key",
            "doubled",
            "--flow",
            "outage",
            "--run",
            "r1",
            env=env,
        )
        assert json.loads(got.stdout) == 84
    finally:
        if running:
            paginator = client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket):
                for obj in page.get("Contents", []):
                    client.delete_object(Bucket=bucket, Key=obj["Key"])
            client.delete_bucket(Bucket=bucket)
            server.stop()


class _Proxy(socketserver.ThreadingTCPServer):
    """A TCP proxy to PostgreSQL that can cut every connection and refuse new ones."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.open = True
        self.conns: list[socket.socket] = []
        super().__init__(("127.0.0.1", 0), _Pipe)

    def cut(self) -> None:
        self.open = False
        for c in list(self.conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass


class _Pipe(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: _Proxy = self.server  # type: ignore[assignment]
        if not server.open:
            return
        upstream = socket.create_connection(server.target)
        server.conns += [self.request, upstream]

        def pump(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.close()
                    except OSError:
                        pass

        t = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
        t.start()
        pump(self.request, upstream)
        t.join()


@pytest.fixture
def pg_proxy() -> Iterator[_Proxy]:
    require_service("postgres")
    proxy = _Proxy(("127.0.0.1", 5432))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    yield proxy
    proxy.cut()
    proxy.shutdown()
    proxy.server_close()


@pytest.mark.postgres
def test_metadata_database_down_mid_run(tmp_path: Path, pg_proxy: _Proxy) -> None:
    import sqlalchemy as sa

    ns = unique_name("meta")
    port = pg_proxy.server_address[1]
    url = PG_URL.replace("127.0.0.1:5432", f"127.0.0.1:{port}")
    project = make_project(
        tmp_path, example=False, engine_url=f"sqlite:///{tmp_path / 'w.db'}", metadata_url=url
    )
    cfg = project / "qarion-etl.toml"
    cfg.write_text(cfg.read_text().replace('namespace = "qarion"', f'namespace = "{ns}"'))
    write_flow(project, "outage", _flow(unique_name("o")))
    try:
        proc = procs.start(project, "run", "outage", "--run-id", "r1")
        procs.wait_for(lambda: procs.task_states(PG_URL, ns).get("slow") == "running", proc)
        pg_proxy.cut()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 3, err
        assert "Traceback" not in err and "metadata database" in err
        pg_proxy.open = True
        states = procs.task_states(PG_URL, ns)
        assert states["first"] == "success"
        done = procs.run(project, "run", "outage", "--resume", "r1", "--var", "slow=1")
        assert done.returncode == 0, done.stderr
        got = procs.run(
            project, "xcom", "get", "first", "--key", "label", "--flow", "outage", "--run", "r1"
        )
        assert json.loads(got.stdout) == "kept"  # pushed before the outage, still there
        got = procs.run(
            project, "xcom", "get", "last", "--key", "doubled", "--flow", "outage", "--run", "r1"
        )
        assert json.loads(got.stdout) == 84
    finally:
        engine = sa.create_engine(PG_URL)
        with engine.begin() as conn:
            for suffix in ("xcom", "runs", "task_instances", "batches"):
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{ns}_{suffix}"')
        engine.dispose()
