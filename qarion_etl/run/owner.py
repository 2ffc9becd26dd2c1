"""Which process executes a run: its owner (host, pid, start time), and whether it lives.

While a run executes, its record holds its owner. A ``running`` run whose owner is gone
from this host (killed with SIGKILL; a lost machine is not detectable) reads as
``abandoned``, and ``run --resume`` accepts it; a run whose owner is alive is refused.
The process's start time guards against a reused pid.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _start_ticks(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot ('' where unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def current_owner() -> dict[str, Any]:
    """This process as the owner of a run: host, pid and start time (against pid reuse)."""
    return {
        "host": _host(),
        "pid": os.getpid(),
        "pid_start": _start_ticks(os.getpid()),
    }


def owner_alive(owner: dict[str, Any]) -> bool | None:
    """Whether the process that owns a run still runs (``None``: on another host, unknown)."""
    if owner.get("host") != _host():
        return None
    pid = int(owner.get("pid") or 0)
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    started = owner.get("pid_start")
    return not started or _start_ticks(pid) in ("", started)


def _host() -> str:
    """This machine's name (``os.uname``; ``socket`` only where there is none)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()
