"""The local web UI (``qarion-etl ui``): ``require_extra``, ``listen``, ``serve`` and ``create_app``.

Needs Starlette and uvicorn (the ``ui`` extra); the rest of qarion-etl never imports them.
The command checks the extra and binds its socket before it says where it listens, so a
missing package or a port in use is reported instead of an address that does not answer.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qarion_etl.errors import CannotListen, MissingExtra

if TYPE_CHECKING:
    from qarion_etl.project import Project

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def require_extra() -> None:
    """Raise ``MissingExtra`` (with the install command) when Starlette or uvicorn is missing."""
    for name in ("starlette", "uvicorn"):
        try:
            __import__(name)
        except ImportError:
            raise MissingExtra("ui", name, "the web UI") from None


@dataclass
class Listener:
    """A bound, listening socket and the address it answers on."""

    sock: socket.socket
    host: str
    port: int

    @property
    def url(self) -> str:
        from qarion_etl.ui.security import host_literal

        return f"http://{host_literal(self.host)}:{self.port}/"


def listen(host: str = "127.0.0.1", port: int = 8765) -> Listener:
    """Bind ``host:port`` (port 0: a free one) and listen.

    Raises:
        CannotListen: the address cannot be bound (in use, not an address of this machine).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise CannotListen(host, None, getattr(exc, "strerror", None) or str(exc)) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise CannotListen(host, port, exc.strerror or str(exc)) from None
    sock.set_inheritable(True)
    return Listener(sock, host, int(sock.getsockname()[1]))


def serve(project: Project, listener: Listener, allow_hosts: Sequence[str] = ()) -> None:
    """Serve the UI on ``listener`` until Ctrl-C (uvicorn re-raises it after shutting down)."""
    require_extra()
    import uvicorn

    from qarion_etl.ui.app import create_app
    from qarion_etl.ui.security import allowed_hosts

    log = logging.getLogger("qarion_etl.ui")
    if not log.handlers:  # an endpoint's failure is printed where the server runs
        log.addHandler(logging.StreamHandler())
    app = create_app(project, hosts=allowed_hosts(listener.host, listener.port, allow_hosts))
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[listener.sock])
    finally:
        app.state.viewer.close()
        listener.sock.close()
