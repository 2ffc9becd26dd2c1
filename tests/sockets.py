"""Which TCP addresses the processes of a test listen on, read from Linux's ``/proc``.

A test that starts servers in a session of their own (``start_new_session=True``) asks
``listening(session)`` for every listening socket of every process of that session, and
``assert_loopback_only`` checks that each is on 127.0.0.1 or ::1: no test server may be
reachable from another machine.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = {"127.0.0.1", "::1"}
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column


@dataclass(frozen=True)
class Listener:
    address: str
    port: int
    pid: int
    command: str

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port} ({self.command}, pid {self.pid})"


def _address(hex_text: str) -> str:
    """An address of ``/proc/net/tcp{,6}``: 32-bit words, each in the host's byte order."""
    raw = b"".join(bytes.fromhex(hex_text[i : i + 8])[::-1] for i in range(0, len(hex_text), 8))
    ip = ipaddress.ip_address(raw)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _listening_inodes() -> dict[str, tuple[str, int]]:
    found: dict[str, tuple[str, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != _LISTEN:
                continue
            address, port = fields[1].split(":")
            found[fields[9]] = (_address(address), int(port, 16))
    return found


def session_pids(session: int) -> list[int]:
    """The live processes (zombies left out) of ``session``, a session leader's pid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # the process ended meanwhile
        # pid (comm) state ppid pgrp session …; comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(entry))
    return found


def listening(session: int) -> list[Listener]:
    """Every listening TCP socket of every process of ``session`` (a session leader's pid)."""
    inodes = _listening_inodes()
    found: list[Listener] = []
    for pid in session_pids(session):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            command = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue  # the process ended meanwhile
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                address, port = inodes[target[8:-1]]
                found.append(Listener(address, port, pid, command))
    return found


def assert_loopback_only(session: int, *, expect_port: int | None = None) -> list[Listener]:
    """Every listening socket of ``session`` is on 127.0.0.1 or ::1 (and ``expect_port`` is
    among them, so the check saw the servers it is about); returns them."""
    found = listening(session)
    exposed = [str(s) for s in found if s.address not in LOOPBACK]
    assert not exposed, f"listening beyond this machine: {', '.join(exposed)}"
    if expect_port is not None:
        assert any(s.port == expect_port for s in found), (
            f"nothing of session {session} listens on port {expect_port}: "
            f"{', '.join(map(str, found)) or 'no socket at all'}"
        )
    return found
