"""``qarion-etl ui`` as the tests run it: the real command, on a free port of 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ui_argv(project: Path, *args: str) -> list[str]:
    config = str(project / "qarion-etl.toml")
    return [sys.executable, "-m", "qarion_etl", "--config", config, "ui", *args]


def ui_process(project: Path, *args: str) -> subprocess.Popen[str]:
    """``qarion-etl ui ARGS`` for ``project`` as a process, its stderr a text pipe."""
    return subprocess.Popen(
        _ui_argv(project, *args),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


@contextmanager
def ui_server(
    project: Path, *extra: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[str]:
    """Start ``qarion-etl ui`` for ``project`` (in ``cwd``); yields its base URL; stops it after."""
    port = free_port()
    proc = subprocess.Popen(
        _ui_argv(project, "--port", str(port), *extra),
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    out, err = proc.communicate(timeout=5)
                    raise AssertionError(f"qarion-etl ui did not start: {err}{out}") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def raw_get(base: str, path: str, host: str | None = None) -> tuple[int, str, dict[str, str]]:
    """GET ``path`` exactly as written (no normalising), with ``host`` as the Host header."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(base)
    conn = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host if host is not None else where.netloc)
        conn.endheaders()
        r = conn.getresponse()
        return (
            r.status,
            r.read().decode("utf-8", "replace"),
            {k.lower(): v for k, v in r.getheaders()},
        )
    finally:
        conn.close()


def get(url: str) -> tuple[int, str, dict[str, str]]:
    """Status, body and headers of a GET (errors included)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)
