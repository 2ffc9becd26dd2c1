"""``${airflow_conn:ID}`` in ``qarion-etl.toml``: an Airflow Connection as a URL or credentials.

Where a database URL is expected, a connection of type ``postgres``, ``mysql``,
``mariadb``, ``sqlite`` or ``duckdb`` becomes the SQLAlchemy URL qarion-etl uses for it;
as a ``[credentials]`` entry, an ``aws`` connection becomes the S3 credentials table.
The connection is looked up through Airflow (its secrets backends, the ``AIRFLOW_CONN_…``
variables, and inside a task the API server), never printed, and a missing one is a
configuration error that names it. Airflow is imported only when a reference is resolved.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from qarion_etl.definitions.interpolate import InterpolationError
from qarion_etl.errors import install_hint

#: Connection type -> SQLAlchemy URL scheme (the drivers qarion-etl installs).
_SCHEMES = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
_FILES = {"sqlite": "sqlite", "duckdb": "duckdb"}


def resolve(conn_id: str, as_credentials: bool) -> Any:
    """The URL (or, ``as_credentials``, the credentials table) of Airflow connection ``conn_id``.

    Raises:
        InterpolationError: Airflow is not installed, the connection does not exist, or its
            type cannot be used here.
    """
    try:
        from airflow.sdk import Connection
    except ImportError:
        raise InterpolationError(
            f"'${{airflow_conn:{conn_id}}}' needs Apache Airflow ({install_hint('airflow')})"
        ) from None
    try:
        conn = Connection.get(conn_id)
    except Exception as exc:  # Airflow's not-found error, or a secrets backend that failed
        raise InterpolationError(
            f"Airflow connection '{conn_id}' not found ({type(exc).__name__})"
        ) from None
    return credentials_of(conn) if as_credentials else url_of(conn)


def url_of(conn: Any) -> str:
    """A SQLAlchemy URL for a database connection."""
    kind = str(conn.conn_type or "").lower()
    if kind in _FILES:
        return f"{_FILES[kind]}:///{conn.host or conn.schema or ''}"
    scheme = _SCHEMES.get(kind)
    if scheme is None:
        raise InterpolationError(
            f"Airflow connection '{conn.conn_id}' is of type '{kind}': a database URL needs "
            f"one of {', '.join(sorted({*_SCHEMES, *_FILES}))}"
        )
    auth = ""
    if conn.login:
        auth = quote(str(conn.login), safe="")
        if conn.password:
            auth += ":" + quote(str(conn.password), safe="")
        auth += "@"
    port = f":{conn.port}" if conn.port else ""
    database = f"/{conn.schema}" if conn.schema else ""
    return f"{scheme}://{auth}{conn.host or 'localhost'}{port}{database}"


def credentials_of(conn: Any) -> dict[str, str]:
    """The S3 credentials table of an ``aws`` connection (key id, secret, region, token)."""
    extra = conn.extra_dejson or {}
    out = {
        "aws_access_key_id": conn.login,
        "aws_secret_access_key": conn.password,
        "aws_session_token": extra.get("aws_session_token"),
        "region_name": extra.get("region_name"),
    }
    return {k: str(v) for k, v in out.items() if v}
