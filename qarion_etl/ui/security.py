"""What keeps the web UI to its own user: the Host check and the security headers.

A page on another site can make the browser send requests to ``127.0.0.1:8765`` under a
name it controls (DNS rebinding) and then read the answers as its own. The UI answers only
a ``Host`` that names the address it listens on (``127.0.0.1:PORT``, ``localhost:PORT``,
``[::1]:PORT``) or a name given with ``--allow-host``; anything else gets ``400``.

Every answer, error pages and the refusal included, carries a strict
Content-Security-Policy (scripts and styles only the page's own, by hash; nothing fetched
from elsewhere; no framing), ``X-Content-Type-Options: nosniff`` and
``Referrer-Policy: no-referrer``. ``Guard`` is plain ASGI middleware, so it also answers
for an exception no endpoint caught (Starlette's own error page would go out without the
headers).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("qarion_etl.ui")

#: Names that reach a server bound to a loopback or wildcard address from this machine.
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
#: Addresses that mean "every interface".
WILDCARD = ("0.0.0.0", "::", "")

REFUSED = (
    "This qarion-etl ui does not answer this host name. Open it by the address it printed "
    "(http://127.0.0.1:PORT/), or start it with --allow-host NAME.\n"
)


def host_literal(host: str) -> str:
    """``host`` as it is written in a URL or a ``Host`` header (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def allowed_hosts(bind: str, port: int, extra: Iterable[str] = ()) -> frozenset[str]:
    """The ``Host`` header values the UI bound to ``bind:port`` answers (lower case).

    Loopback and wildcard binds answer the loopback names; a bind to one address answers
    that address. Each ``extra`` name (``--allow-host``) is answered as given, with the
    port or without one (a reverse proxy on port 80 or 443 sends none); ``NAME:PORT``
    only with that port.
    """
    bind = bind.strip().lower()
    if bind in WILDCARD or bind == "localhost":
        names = set(LOOPBACK)
    elif bind == "127.0.0.1":
        names = {"127.0.0.1", "localhost"}
    elif bind in ("::1", "[::1]"):
        names = {"[::1]", "localhost"}
    else:
        names = {host_literal(bind)}
    out = {f"{name}:{port}" for name in names}
    if port == 80:
        out.update(names)
    for name in (n.strip().lower() for n in extra):
        if name.startswith("[") and not name.endswith("]") or name.count(":") == 1:
            out.add(name)  # NAME:PORT, [IPv6]:PORT
        elif name:
            literal = host_literal(name)
            out.update({literal, f"{literal}:{port}"})
    return frozenset(out)


def server_policy(script_hashes: Iterable[str], style_hashes: Iterable[str]) -> str:
    """The Content-Security-Policy of every answer of the UI."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {_sources(script_hashes)}",
            f"style-src {_sources(style_hashes)}",
            "img-src 'self' data:",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _sources(hashes: Iterable[str]) -> str:
    return " ".join(hashes) or "'none'"


class Guard:
    """ASGI middleware: refuses a foreign ``Host`` and adds the security headers to every answer.

    Args:
        app: the application it guards.
        hosts: the ``Host`` values answered (see ``allowed_hosts``).
        policy: the Content-Security-Policy.
        scrub: masks secrets in the line logged for an uncaught exception.
    """

    def __init__(
        self,
        app: App,
        hosts: frozenset[str],
        policy: str,
        scrub: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.app = app
        self.hosts = hosts
        self.scrub = scrub
        self.headers = [
            (b"content-security-policy", policy.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (b"cache-control", b"no-store"),
        ]
        self._names = {name for name, _ in self.headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def guarded(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                kept = [(k, v) for k, v in message.get("headers", []) if k not in self._names]
                message["headers"] = kept + self.headers
            await send(message)

        if self._host(scope) not in self.hosts:
            await _plain(guarded, 400, REFUSED)
            return
        try:
            await self.app(scope, receive, guarded)
        except Exception as exc:
            what = self.scrub(
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            )
            log.error("%s %s failed: %s", scope.get("method"), scope.get("path"), what)
            if not started:
                await _plain(
                    guarded, 500, "Internal error: qarion-etl ui printed it where it runs.\n"
                )

    @staticmethod
    def _host(scope: Scope) -> str:
        for key, value in scope.get("headers", []):
            if key == b"host":
                return str(value.decode("latin-1")).strip().lower()
        return ""


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
