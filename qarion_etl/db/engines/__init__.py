"""One module per database engine, and the registry of their names.

Each engine is a ``Dialect`` subclass in its own module (``duckdb``, ``sqlite``,
``postgresql``, ``mysql``, ``spark``) and one instance of it here, in ``DIALECTS``. Names and
aliases map to that one instance, so two names for an engine cannot disagree: ``mariadb``
is the MySQL dialect, ``postgres`` the PostgreSQL one. An engine reached through a
SQLAlchemy dialect that is not listed gets a ``Generic`` dialect under its own name.

Adding an engine is one module here (a ``Dialect`` subclass: its facts as class
attributes, its differences as small overrides, ``error_kind`` and, where it can read
files itself, ``file_load``), its instance in ``DIALECTS`` and its row in
``tests/db/test_dialects.py``.
"""

from __future__ import annotations

from qarion_etl.db.engines.base import Dialect
from qarion_etl.db.engines.duckdb import DuckDB
from qarion_etl.db.engines.generic import Generic
from qarion_etl.db.engines.mysql import MySQL
from qarion_etl.db.engines.postgresql import PostgreSQL
from qarion_etl.db.engines.spark import Spark
from qarion_etl.db.engines.sqlite import SQLite

__all__ = [
    "DIALECTS",
    "GENERIC",
    "Dialect",
    "Generic",
    "dialect_named",
    "dialect_of_url",
    "known_dialect",
]

#: The engines qarion-etl is tested on.
DIALECTS: tuple[Dialect, ...] = (DuckDB(), SQLite(), PostgreSQL(), MySQL(), Spark())
#: What an engine not listed gets (ANSI quoting, DuckDB's type names, no schemas).
GENERIC: Dialect = Generic("generic")

_BY_NAME: dict[str, Dialect] = {n: d for d in DIALECTS for n in d.names}
_BY_SCHEME: dict[str, Dialect] = {s: d for d in DIALECTS for s in d.url_schemes}


def known_dialect(name: str) -> Dialect | None:
    """The dialect called ``name`` or one of its aliases, if it is one of ``DIALECTS``."""
    return _BY_NAME.get(name.lower())


def dialect_named(name: str) -> Dialect:
    """The dialect called ``name`` or one of its aliases; ``Generic`` under that name otherwise."""
    found = known_dialect(name)
    return found if found is not None else Generic(name)


def dialect_of_url(url: str) -> Dialect:
    """The dialect a database URL names (``postgresql+psycopg://…`` is ``postgresql``,
    ``sc://…`` Spark)."""
    scheme = url.split(":", 1)[0].lower()
    return _BY_SCHEME.get(scheme) or dialect_named(scheme.split("+", 1)[0])
