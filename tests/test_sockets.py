"""The listening-socket check the server tests rely on sees what a process binds."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

import pytest

from tests.sockets import assert_loopback_only, listening

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads Linux's /proc")

SERVER = """
import socket, sys, time
a = socket.socket()
a.bind(("127.0.0.2", 0))  # loopback, yet not the address a test server may use
a.listen()
b = socket.socket(socket.AF_INET6) if socket.has_ipv6 else None
if b is not None:
    try:
        b.bind(("::1", 0))
        b.listen()
    except OSError:
        b = None
c = socket.socket()
c.bind(("127.0.0.1", 0))  # bound, not listening: not a server
print(a.getsockname()[1], b.getsockname()[1] if b else 0, flush=True)
time.sleep(120)
"""


def test_the_check_finds_each_listening_socket_and_its_address() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SERVER)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        v4, v6 = (int(p) for p in proc.stdout.readline().split())
        found = listening(proc.pid)
        assert any((s.address, s.port, s.pid) == ("127.0.0.2", v4, proc.pid) for s in found), found
        if v6:
            assert any(s.address == "::1" and s.port == v6 for s in found)
        assert len(found) == (2 if v6 else 1)
        with pytest.raises(AssertionError, match=rf"127\.0\.0\.2:{v4} "):
            assert_loopback_only(proc.pid)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert listening(proc.pid) == []


def test_a_loopback_server_passes_and_the_expected_port_must_be_there() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not listening(proc.pid):
            assert time.monotonic() < deadline, "http.server did not start"
            time.sleep(0.1)
        assert [(s.address, s.port) for s in assert_loopback_only(proc.pid, expect_port=port)] == [
            ("127.0.0.1", port)
        ]
        with pytest.raises(AssertionError, match="listens on port 1:"):
            assert_loopback_only(proc.pid, expect_port=1)
    finally:
        proc.terminate()
        proc.wait()
