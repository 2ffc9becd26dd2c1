"""Reading database URLs: relative SQLite/DuckDB paths, and which URLs the native drivers serve."""

from __future__ import annotations

from pathlib import Path

#: URL prefixes served by the native drivers: the dialect each one is, and whether an
#: in-memory database is served too (a SQLite one is private to each connection, so it
#: stays with SQLAlchemy's pool, which knows that).
_NATIVE = {
    "sqlite:///": ("sqlite", False),
    "sqlite+pysqlite:///": ("sqlite", False),
    "duckdb:///": ("duckdb", True),
}
#: The dialects whose databases are files.
_FILE_DIALECTS = frozenset(d for d, _ in _NATIVE.values())
#: Server URLs the native drivers serve: the dialect, and the URL form the driver takes.
_NATIVE_SERVERS = {
    "postgresql+psycopg://": ("postgresql", "postgresql://"),
    "postgresql://": ("postgresql", "postgresql://"),
}


def resolve_url(url: str, root: Path | None, *, make_folder: bool = True) -> str:
    """Make a relative SQLite or DuckDB file path absolute against ``root``.

    Creates the parent folder of the file (unless ``make_folder`` is off), so
    ``sqlite:///.qarion/metadata.db`` works on first use.
    """
    for scheme in ("sqlite:///", "sqlite+pysqlite:///", "duckdb:///"):
        if url.startswith(scheme):
            rest = url[len(scheme) :]
            path_part, sep, query = rest.partition("?")
            if not path_part or path_part == ":memory:" or path_part.startswith(":memory:"):
                return url
            path = Path(path_part)
            if not path.is_absolute() and root is not None:
                path = root / path
            if make_folder:
                path.parent.mkdir(parents=True, exist_ok=True)
            return f"{scheme}{path}{sep}{query}"
    return url


def database_file(url: str) -> str | None:
    """The database file ``url`` names (a SQLite or DuckDB file), else ``None``."""
    target = native_target(url)
    if target is None or target[0] not in _FILE_DIALECTS or target[1].startswith(":memory:"):
        return None
    return target[1]


def native_target(url: str) -> tuple[str, str] | None:
    """``(dialect name, database path)`` when ``url`` is served natively, else ``None``.

    For a server (PostgreSQL through psycopg) the "path" is the URL as the driver takes it.
    URLs with query options stay with SQLAlchemy, which knows what those mean.
    """
    for prefix, (dialect, driver_prefix) in _NATIVE_SERVERS.items():
        if url.startswith(prefix):
            rest = url[len(prefix) :]
            if "?" in rest or not rest:
                return None
            return dialect, driver_prefix + rest
    for prefix, (dialect, serves_memory) in _NATIVE.items():
        if url.startswith(prefix):
            path = url[len(prefix) :]
            if "?" in path or not path:
                return None
            if path.startswith(":memory:") and not serves_memory:
                return None
            return dialect, path
    return None
