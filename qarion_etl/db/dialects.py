"""The published import path of the dialects (they live in ``qarion_etl.db.engines``).

::

    from qarion_etl.db.dialects import Dialect, dialect_named
"""

from qarion_etl.db.engines import (
    DIALECTS,
    GENERIC,
    Dialect,
    Generic,
    dialect_named,
    dialect_of_url,
    known_dialect,
)
from qarion_etl.db.engines.base import ColumnTypes
from qarion_etl.db.engines.sqlite import SQLITE_BUSY_TIMEOUT_MS

__all__ = [
    "DIALECTS",
    "GENERIC",
    "SQLITE_BUSY_TIMEOUT_MS",
    "ColumnTypes",
    "Dialect",
    "Generic",
    "dialect_named",
    "dialect_of_url",
    "known_dialect",
]
