"""``${env:NAME}``, ``${env:NAME:-default}``, ``${credential:NAME}`` and ``${airflow_conn:ID}``.

``${airflow_conn:ID}`` is an Airflow Connection, resolved by the caller's
``ConnectionResolver`` (``qarion_etl.airflow.connections`` asks Airflow): a database URL
where a URL is expected, a table of credentials as a ``[credentials]`` entry. Like
``${credential:…}`` it must be the whole value.

A value that came from the environment is a ``Secret`` (``qarion_etl.masking``): it works
as an ordinary string but never shows in a ``repr``, ``config show`` or an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from qarion_etl.errors import install_hint
from qarion_etl.masking import Secret

_REF = re.compile(r"\$\{(env|credential|airflow_conn):([A-Za-z_][A-Za-z0-9_.-]*)(?::-(.*?))?\}")
_WHOLE_ONLY = ("credential", "airflow_conn")

#: ``(connection id, as_credentials) -> URL or credentials table``; raises
#: ``InterpolationError`` when the connection cannot be found or used.
ConnectionResolver = Callable[[str, bool], Any]


class InterpolationError(Exception):
    """A referenced variable or credential does not exist."""


def interpolate(
    value: Any,
    env: Mapping[str, str],
    credentials: Mapping[str, Any],
    where: str = "",
    connections: ConnectionResolver | None = None,
) -> Any:
    """Substitute references in ``value`` (recursively through tables and arrays)."""
    if isinstance(value, str):
        return _interpolate_str(value, env, credentials, where, connections)
    if isinstance(value, dict):
        return {
            k: interpolate(v, env, credentials, f"{where}.{k}" if where else k, connections)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            interpolate(v, env, credentials, f"{where}[{i}]", connections)
            for i, v in enumerate(value)
        ]
    return value


def connection_ref(text: Any) -> str | None:
    """The connection id when ``text`` is exactly ``${airflow_conn:ID}``, else ``None``."""
    m = _REF.fullmatch(text) if isinstance(text, str) else None
    return m.group(2) if m is not None and m.group(1) == "airflow_conn" else None


def resolve_connection(
    conn_id: str, connections: ConnectionResolver | None, where: str, *, as_credentials: bool
) -> Any:
    """An Airflow connection as a URL (or a credentials table), never shown."""
    if connections is None:
        raise InterpolationError(
            f"{where}: '${{airflow_conn:{conn_id}}}' names an Airflow connection, which only "
            f"resolves where Apache Airflow is installed ({install_hint('airflow')})"
        )
    try:
        found = connections(conn_id, as_credentials)
    except InterpolationError as exc:
        raise InterpolationError(f"{where}: {exc}") from None
    if isinstance(found, dict):
        return {k: Secret(v) if isinstance(v, str) else v for k, v in found.items()}
    return Secret(found) if isinstance(found, str) else found


def _interpolate_str(
    text: str,
    env: Mapping[str, str],
    credentials: Mapping[str, Any],
    where: str,
    connections: ConnectionResolver | None = None,
) -> Any:
    matches = list(_REF.finditer(text))
    if not matches:
        return text
    whole = matches[0]
    conn_id = connection_ref(text)
    if conn_id is not None:
        return resolve_connection(conn_id, connections, where, as_credentials=False)
    if len(matches) == 1 and whole.span() == (0, len(text)) and whole.group(1) == "credential":
        name = whole.group(2)
        if name not in credentials:
            known = ", ".join(sorted(credentials)) or "none defined"
            raise InterpolationError(
                f"{where}: unknown credential '{name}' (add a [credentials.{name}] table; known: {known})"
            )
        return credentials[name]
    secret = False

    def sub(m: re.Match[str]) -> str:
        nonlocal secret
        kind, name, default = m.group(1), m.group(2), m.group(3)
        if kind in _WHOLE_ONLY:
            raise InterpolationError(
                f"{where}: '${{{kind}:{name}}}' must be the whole value, not part of a string"
            )
        secret = True
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise InterpolationError(f"{where}: environment variable {name} is not set")

    result = _REF.sub(sub, text)
    return Secret(result) if secret else result
