"""One module per database engine, and the registry of their names.

Each engine is a ``Dialect`` subclass in its own module (``duckdb``, ``sqlite``,
``postgresql``, ``mysql``, ``spark``) and one instance of it here, in ``DIALECTS``. Names and
aliases map to that one instance, so two names for an engine cannot disagree: ``mariadb``
is the MySQL dialect, ``postgres`` the PostgreSQL one. An engine reached through a
SQLAlchemy dialect that is not listed gets a ``Generic`` dialect under its own name.

Adding an engine is one module here (a ``Dialect`` subclass: its facts as class
attributes, its differences as small overrides, ``error_kind`` and, where it can read
files itself, ``file_load``), its names in ``ENGINES`` and its row in
``tests/db/test_dialects.py``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from qarion_etl.db.engines.base import Dialect

if TYPE_CHECKING:
    from qarion_etl.db.engines.generic import Generic

__all__ = [
    "DIALECTS",
    "GENERIC",
    "Dialect",
    "Generic",
    "all_dialects",
    "dialect_named",
    "dialect_of_url",
    "known_dialect",
]

#: Each engine's names (its own first) and its class, as ``module:Class`` of this package.
#: An engine's module is imported when it is first named: a DuckDB project never loads the
#: others.
ENGINES: dict[tuple[str, ...], str] = {
    ("duckdb",): "duckdb:DuckDB",
    ("sqlite",): "sqlite:SQLite",
    ("postgresql", "postgres"): "postgresql:PostgreSQL",
    ("mysql", "mariadb"): "mysql:MySQL",
    ("spark",): "spark:Spark",
}
#: URL schemes that name an engine other than by its name (``sc://`` is Spark Connect).
SCHEMES: dict[str, str] = {"sc": "spark:Spark"}
_BY_NAME: dict[str, str] = {n: ref for names, ref in ENGINES.items() for n in names}
_LOADED: dict[str, Dialect] = {}


def _load(ref: str) -> Dialect:
    """The one instance of the engine ``module:Class`` (imported on first use)."""
    found = _LOADED.get(ref)
    if found is None:
        module, _, cls = ref.partition(":")
        engine_class = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
        found = _LOADED.setdefault(ref, engine_class())
    return found


def all_dialects() -> tuple[Dialect, ...]:
    """Every engine qarion-etl is tested on (importing each)."""
    return tuple(_load(ref) for ref in ENGINES.values())


def known_dialect(name: str) -> Dialect | None:
    """The dialect called ``name`` or one of its aliases, if it is one of ``ENGINES``."""
    ref = _BY_NAME.get(name.lower())
    return None if ref is None else _load(ref)


def dialect_named(name: str) -> Dialect:
    """The dialect called ``name`` or one of its aliases; ``Generic`` under that name otherwise."""
    found = known_dialect(name)
    if found is not None:
        return found
    from qarion_etl.db.engines.generic import Generic

    return Generic(name)


def dialect_of_url(url: str) -> Dialect:
    """The dialect a database URL names (``postgresql+psycopg://…`` is ``postgresql``,
    ``sc://…`` Spark)."""
    scheme = url.split(":", 1)[0].lower()
    ref = SCHEMES.get(scheme)
    return _load(ref) if ref is not None else dialect_named(scheme.split("+", 1)[0])


def __getattr__(name: str) -> Any:
    """``DIALECTS`` (every engine), ``GENERIC`` and ``Generic``, loaded when asked for."""
    if name == "DIALECTS":
        return all_dialects()
    if name in ("GENERIC", "Generic"):
        from qarion_etl.db.engines.generic import Generic

        return Generic("generic") if name == "GENERIC" else Generic
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
